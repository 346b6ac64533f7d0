"""A test CSMS built on the `ocpp` package's `ocpp.v201` (mobilityhouse, 2.1.0), served over a
real WebSocket on loopback with the subprotocol `ocpp2.0.1`: an independent peer for the
gateway's OCPP 2.0.1 side. Payloads are recorded as the package hands them over (snake_case
keys at the top level)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from ocpp.exceptions import InternalError
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from tests.ocpp.central_system_ocpp import (
    SAFETY_DEADLINE_S,
    Received,
    RecordingConnection,
    handles,
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class RecordingStation(ChargePoint):  # type: ignore[misc]
    """Answers like a permissive CSMS and records every CALL it receives."""

    def __init__(self, identity: str, connection: RecordingConnection, csms: Csms201) -> None:
        super().__init__(identity, connection)
        self.csms = csms

    def _record(self, action: str, **payload: Any) -> None:
        self.csms.record(self.id, Received(action, payload))
        if self.csms.fail_calls.get(action, 0) > 0:
            self.csms.fail_calls[action] -= 1
            raise InternalError(description=f"{action} failed on purpose")

    def _id_token_info(self, id_token: str) -> dict[str, Any]:
        return self.csms.id_token_infos.get(id_token, {"status": "Accepted"})

    @handles(Action.boot_notification)
    def on_boot(self, **payload: Any) -> Any:
        self._record("BootNotification", **payload)
        status, interval = self.csms.next_boot_answer()
        return call_result.BootNotification(current_time=_now(), interval=interval, status=status)

    @handles(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> Any:
        self._record("Heartbeat", **payload)
        return call_result.Heartbeat(current_time=_now())

    @handles(Action.status_notification)
    def on_status(self, **payload: Any) -> Any:
        self._record("StatusNotification", **payload)
        return call_result.StatusNotification()

    @handles(Action.authorize)
    def on_authorize(self, **payload: Any) -> Any:
        self._record("Authorize", **payload)
        return call_result.Authorize(
            id_token_info=self._id_token_info(payload["id_token"]["id_token"])
        )

    @handles(Action.transaction_event)
    def on_transaction_event(self, **payload: Any) -> Any:
        self._record("TransactionEvent", **payload)
        id_token = payload.get("id_token")
        if id_token is None:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info=self._id_token_info(id_token["id_token"]))

    @handles(Action.security_event_notification)
    def on_security_event(self, **payload: Any) -> Any:
        self._record("SecurityEventNotification", **payload)
        return call_result.SecurityEventNotification()


@dataclass
class Csms201:
    boot_answers: list[tuple[str, int]] = field(default_factory=lambda: [("Accepted", 30)])
    """(status, interval) per BootNotification; the last one repeats."""
    received: dict[str, list[Received]] = field(default_factory=dict)
    raw_frames: dict[str, list[str]] = field(default_factory=dict)
    stations: dict[str, RecordingStation] = field(default_factory=dict)
    fail_calls: dict[str, int] = field(default_factory=dict)
    """Action → how many of its next CALLs to answer with a CALLERROR (InternalError)."""
    id_token_infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    """idToken → the idTokenInfo Authorize and TransactionEvent answer (Accepted otherwise)."""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: Server | None = None
    _boots: int = 0
    _port: int = 0

    @property
    def url(self) -> str:
        assert self._port, "start() first"
        return f"ws://127.0.0.1:{self._port}/ocpp"

    async def start(self) -> None:
        """Serve; after a `stop()`, again on the same port (the same URL)."""
        self._server = await serve(
            self._serve, "127.0.0.1", self._port, subprotocols=[Subprotocol("ocpp2.0.1")]
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        """Close the server and every connection (the CSMS goes down)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def next_boot_answer(self) -> tuple[str, int]:
        answer = self.boot_answers[min(self._boots, len(self.boot_answers) - 1)]
        self._boots += 1
        return answer

    def record(self, identity: str, message: Received) -> None:
        self.received.setdefault(identity, []).append(message)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self, identity: str, predicate: Callable[[list[Received]], bool]
    ) -> list[Received]:
        """Wait until `predicate` holds for what `identity` sent; return it. The deadline is
        a safety net against a hung test, not a performance assertion."""
        async with asyncio.timeout(SAFETY_DEADLINE_S), self._changed:
            await self._changed.wait_for(lambda: predicate(self.received.get(identity, [])))
        return self.received[identity]

    async def wait_for_action(self, identity: str, action: str, count: int = 1) -> list[Received]:
        messages = await self.wait_for(
            identity, lambda got: sum(1 for m in got if m.action == action) >= count
        )
        return [m for m in messages if m.action == action]

    async def send_raw(self, identity: str, frame: str) -> None:
        """Send a frame as is (malformed calls the package would refuse to build)."""
        await self.stations[identity]._connection.send(frame)

    def call_errors(self, identity: str) -> dict[str, str]:
        """Message id → error code of every CALLERROR the station sent."""
        errors = {}
        for frame in self.raw_frames.get(identity, []):
            parsed = json.loads(frame)
            if parsed[0] == 4:
                errors[parsed[1]] = parsed[2]
        return errors

    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        identity = unquote(websocket.request.path.rsplit("/", 1)[-1])
        frames = self.raw_frames.setdefault(identity, [])
        station = RecordingStation(identity, RecordingConnection(websocket, frames), self)
        self.stations[identity] = station
        with contextlib.suppress(Exception):  # the connection closed
            await station.start()
