"""The upstream connection's life, over real WebSockets on loopback: one outstanding CALL,
the peer's CALLs served while ours waits (the peer even waits for our reply before answering
ours), reply timeouts, ping/pong liveness, permessage-deflate per version, the reconnect
back-off's schedule, and a Rejected boot retried at the interval the central system gave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from gateway.modbus import SimulatedCharger
from gateway.ocpp import Call, JsonObject
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.connection import OcppClientConnection
from gateway.ocpp.rpc import CallTimedOut
from gateway.ocpp.v16.station import codec16
from gateway.ocpp.v201.station import codec201
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, OcppPackageCsms
from tests.ocpp.test_station16 import CHARGER_ID, has_status, running_gateway, statuses

PeerScript = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def peer(
    script: PeerScript, subprotocol: str = "ocpp1.6", **options: Any
) -> AsyncIterator[tuple[str, list[ServerConnection]]]:
    """A bare WebSocket central system running `script` for every connection."""
    connections: list[ServerConnection] = []

    async def handler(websocket: ServerConnection) -> None:
        connections.append(websocket)
        with contextlib.suppress(Exception):
            await script(websocket)

    async with serve(
        handler, "127.0.0.1", 0, subprotocols=[Subprotocol(subprotocol)], **options
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ocpp/CP-1", connections


@contextlib.asynccontextmanager
async def client(
    url: str,
    *,
    version: str = "1.6",
    handler: Callable[[Call], Awaitable[JsonObject]] | None = None,
    **options: Any,
) -> AsyncIterator[OcppClientConnection]:
    async def answer(call: Call) -> JsonObject:
        return {"configurationKey": []}

    connection = OcppClientConnection(
        url,
        codec16() if version == "1.6" else codec201(),
        handler or answer,
        identity="CP-1",
        backoff=ReconnectBackoff(minimum_s=0.05, random_range_s=0.05, repeat_times=1),
        **options,
    )
    task = asyncio.create_task(connection.run())
    try:
        yield connection
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def receive(websocket: ServerConnection) -> list[Any]:
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        frame = await websocket.recv()
    parsed: list[Any] = json.loads(frame)
    return parsed


async def test_one_outstanding_call_and_the_peers_call_served_while_ours_waits() -> None:
    seen: list[list[Any]] = []

    async def script(websocket: ServerConnection) -> None:
        first = await receive(websocket)
        seen.append(first)
        # Before answering our CALL, the central system asks something itself and waits for
        # the answer: a client that serves CALLs only between its own would deadlock here.
        await websocket.send(json.dumps([2, "csms-1", "GetConfiguration", {}]))
        reply = await receive(websocket)
        seen.append(reply)
        await websocket.send(json.dumps([3, first[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
        second = await receive(websocket)
        seen.append(second)
        await websocket.send(json.dumps([3, second[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
        await websocket.wait_closed()

    async with peer(script) as (url, _), client(url) as connection:
        results = await asyncio.gather(
            connection.call("Heartbeat", {}), connection.call("Heartbeat", {})
        )
    assert [frame[0] for frame in seen] == [2, 3, 2]  # CALL, our CALLRESULT, then the 2nd CALL
    assert seen[1] == [3, "csms-1", {"configurationKey": []}]
    assert seen[0][1] != seen[2][1]
    assert list(results) == [{"currentTime": "2026-01-01T00:00:00Z"}] * 2


async def test_an_unanswered_call_times_out_and_its_late_reply_is_ignored() -> None:
    async def script(websocket: ServerConnection) -> None:
        first = await receive(websocket)
        second = await receive(websocket)  # sent only once the first timed out
        await websocket.send(json.dumps([3, first[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
        await websocket.send(json.dumps([3, second[1], {"currentTime": "2026-02-02T00:00:00Z"}]))
        await websocket.wait_closed()

    async with peer(script) as (url, _), client(url, call_timeout_s=0.3) as connection:
        with pytest.raises(CallTimedOut):
            await connection.call("Heartbeat", {})
        answer = await connection.call("Heartbeat", {})
    assert answer == {"currentTime": "2026-02-02T00:00:00Z"}


async def test_a_peer_that_stops_answering_pings_is_dropped_and_reconnected() -> None:
    async def script(websocket: ServerConnection) -> None:
        if len(connections) == 1:
            # The first connection goes silent (a dead NAT mapping): no pong ever comes back.
            websocket.transport.pause_reading()
        await websocket.wait_closed()

    changes: list[bool] = []
    async with (
        # A short close timeout: the paused connection cannot do a closing handshake.
        peer(script, close_timeout=0.5) as (url, connections),
        client(
            url,
            ping_interval_s=0.2,
            ping_timeout_s=0.3,
            close_timeout_s=0.5,
            listener=changes.append,
        ),
    ):
        async with asyncio.timeout(SAFETY_DEADLINE_S):
            while len(connections) < 2 or changes[-1:] != [True]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert changes[:3] == [True, False, True]


@pytest.mark.parametrize(("version", "deflate"), [("2.0.1", True), ("1.6", False)])
async def test_permessage_deflate_is_negotiated_on_2_0_1_only(version: str, deflate: bool) -> None:
    async def script(websocket: ServerConnection) -> None:
        await websocket.wait_closed()

    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    async with (
        peer(script, subprotocol, compression="deflate") as (url, connections),
        client(url, version=version) as connection,
    ):
        await connection.wait_connected()
        websocket = connections[0]
        assert websocket.request is not None
        assert websocket.response is not None
        offered = websocket.request.headers.get("Sec-WebSocket-Extensions") or ""
        agreed = websocket.response.headers.get("Sec-WebSocket-Extensions") or ""
    assert ("permessage-deflate" in offered) is deflate
    assert ("permessage-deflate" in agreed) is deflate


def test_back_off_doubles_with_a_fresh_random_part_then_stays_flat() -> None:
    backoff = ReconnectBackoff(
        minimum_s=1.0, random_range_s=2.0, repeat_times=3, rng=random.Random(7)
    )
    delays = [backoff.next_delay() for _ in range(6)]
    bases = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base <= delay <= base + 2.0
    assert len({round(d - b, 6) for d, b in zip(delays, bases, strict=True)}) == 6  # fresh
    other = ReconnectBackoff(
        minimum_s=1.0, random_range_s=2.0, repeat_times=3, rng=random.Random(8)
    )
    assert other.next_delay() != delays[0]  # two sockets do not reconnect in step
    backoff.reset()
    assert 1.0 <= backoff.next_delay() <= 3.0


async def test_a_rejected_boot_is_retried_after_the_given_interval_with_nothing_sent_between(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms.boot_answers = [("Rejected", 2), ("Accepted", 300)]
    boots: list[float] = []
    original = csms.record

    def timed(identity: str, message: Any) -> None:
        if message.action == "BootNotification":
            boots.append(time.monotonic())
        original(identity, message)

    csms.record = timed  # type: ignore[method-assign]
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for_action(CHARGER_ID, "StatusNotification")
        actions = [m.action for m in csms.received[CHARGER_ID]]
    assert actions[:2] == ["BootNotification", "BootNotification"]
    # The retry waited the interval the Rejected answer gave (a lower bound only).
    assert boots[1] - boots[0] >= 1.9


async def test_statuses_are_reported_again_after_an_outage(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3") as gateway:
        station = gateway.stations[CHARGER_ID]
        station.offline_threshold_s = 0.0  # every outage counts
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        await csms.stop()
        await csms.start()
        # Unchanged, yet reported again on both connectors once the socket is back.
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
    assert statuses(received, 0).count("Available") == 2
