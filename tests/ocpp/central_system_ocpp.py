"""A test central system built on the `ocpp` package (mobilityhouse, 2.1.0), served over a
real WebSocket on loopback: an independent peer for the gateway's OCPP 1.6 side."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote

from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

SAFETY_DEADLINE_S = 60.0


@dataclass(frozen=True)
class Received:
    action: str
    payload: dict[str, Any]


class RecordingConnection:
    """The websocket as the `ocpp` package wants it, keeping every raw frame received."""

    def __init__(self, websocket: ServerConnection, frames: list[str]) -> None:
        self._websocket = websocket
        self._frames = frames

    async def recv(self) -> str:
        frame = await self._websocket.recv()
        assert isinstance(frame, str)
        self._frames.append(frame)
        return frame

    async def send(self, frame: str) -> None:
        await self._websocket.send(frame)


Handler = TypeVar("Handler", bound=Callable[..., Any])


def handles(action: Action) -> Callable[[Handler], Handler]:
    """`ocpp.routing.on`, typed."""
    decorator: Callable[[Handler], Handler] = on(action)
    return decorator


def _now() -> str:
    return datetime.now(UTC).isoformat()


class RecordingChargePoint(ChargePoint):  # type: ignore[misc]
    """Answers like a permissive CSMS and records every CALL it receives."""

    def __init__(
        self, identity: str, connection: RecordingConnection, csms: OcppPackageCsms
    ) -> None:
        super().__init__(identity, connection)
        self.csms = csms

    def _record(self, action: str, **payload: Any) -> None:
        self.csms.record(self.id, Received(action, payload))
        if self.csms.fail_calls.get(action, 0) > 0:
            self.csms.fail_calls[action] -= 1
            raise InternalError(description=f"{action} failed on purpose")

    def _id_tag_info(self, id_tag: str) -> dict[str, Any]:
        return self.csms.id_tag_infos.get(id_tag, {"status": "Accepted"})

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
        return call_result.Authorize(id_tag_info=self._id_tag_info(payload["id_tag"]))

    @handles(Action.start_transaction)
    def on_start(self, **payload: Any) -> Any:
        transaction_id = next(self.csms.transaction_ids)
        self._record("StartTransaction", transaction_id=transaction_id, **payload)
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=self._id_tag_info(payload["id_tag"])
        )

    @handles(Action.meter_values)
    def on_meter_values(self, **payload: Any) -> Any:
        self._record("MeterValues", **payload)
        return call_result.MeterValues()

    @handles(Action.stop_transaction)
    def on_stop(self, **payload: Any) -> Any:
        self._record("StopTransaction", **payload)
        return call_result.StopTransaction()

    @handles(Action.security_event_notification)
    def on_security_event(self, **payload: Any) -> Any:
        self._record("SecurityEventNotification", **payload)
        return call_result.SecurityEventNotification()


@dataclass
class OcppPackageCsms:
    boot_answers: list[tuple[str, int]] = field(default_factory=lambda: [("Accepted", 30)])
    """(status, interval) per BootNotification; the last one repeats."""
    received: dict[str, list[Received]] = field(default_factory=dict)
    raw_frames: dict[str, list[str]] = field(default_factory=dict)
    charge_points: dict[str, RecordingChargePoint] = field(default_factory=dict)
    transaction_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(101))
    fail_calls: dict[str, int] = field(default_factory=dict)
    """Action → how many of its next CALLs to answer with a CALLERROR (InternalError); the
    CALL is recorded all the same."""
    id_tag_infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    """idTag → the idTagInfo Authorize and StartTransaction answer ({"status": "Accepted"}
    for any other)."""
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
            self._serve, "127.0.0.1", self._port, subprotocols=[Subprotocol("ocpp1.6")]
        )
        self._port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        """Close the server and every connection (the central system goes down)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def message_ids(self, identity: str, action: str) -> list[str]:
        """The message ids of the CALLs of `action` received, in order."""
        ids = []
        for frame in self.raw_frames.get(identity, []):
            parsed = json.loads(frame)
            if parsed[0] == 2 and parsed[2] == action:
                ids.append(parsed[1])
        return ids

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

    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        identity = unquote(websocket.request.path.rsplit("/", 1)[-1])
        frames = self.raw_frames.setdefault(identity, [])
        charge_point = RecordingChargePoint(identity, RecordingConnection(websocket, frames), self)
        self.charge_points[identity] = charge_point
        with contextlib.suppress(Exception):  # the connection closed
            await charge_point.start()
