"""A small OCPP 1.6J central system for the demo, built on the project's own codec and RPC
core: it accepts every charge point, authorizes every identifier, numbers transactions from 1,
and prints one readable line per message it receives, e.g.

    12:00:03  CP-1  → StartTransaction  idTag=TAG-0101 meterStart=15200 Wh  ⇒ transactionId 1

It can also start and stop transactions remotely, to show the reverse direction.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.ocpp import Call, Codec, JsonObject
from gateway.ocpp.rpc import CallCompleted, IncomingCall, ReplyWith, RpcEndpoint
from gateway.ocpp.v16.station import ocpp_timestamp

logger = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("ocpp1.6")


class DemoCentralSystem:
    """`await start()` returns the port; `url` is the base URL for charge points."""

    def __init__(
        self,
        out: TextIO,
        *,
        heartbeat_interval_s: int = 10,
        host: str = "127.0.0.1",
    ) -> None:
        self.out = out
        self.heartbeat_interval_s = heartbeat_interval_s
        self.host = host
        self.port: int | None = None
        self._codec = Codec("ocpp1.6")
        self._server: Server | None = None
        self._transaction_ids = itertools.count(1)
        self._connections: dict[str, tuple[ServerConnection, RpcEndpoint]] = {}
        self.on_status: Callable[[str, int, str], None] | None = None
        """Called with (identity, connectorId, status) for every StatusNotification."""
        self.on_transaction_started: Callable[[str, int], None] | None = None
        """Called with (identity, transactionId) for every StartTransaction."""

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ocpp"

    async def start(self) -> int:
        self._server = await serve(
            self._serve, self.host, 0, subprotocols=[SUBPROTOCOL], compression=None
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def send_call(self, identity: str, action: str, payload: JsonObject) -> bool:
        """Send a CALL to a connected charge point; its answer is printed. False if the
        charge point is not connected."""
        entry = self._connections.get(identity)
        if entry is None:
            return False
        websocket, rpc = entry
        rpc.submit(action, payload)
        self._print(identity, "⇐", action, _summary(action, payload))
        next_frame = rpc.next_frame(time.monotonic())
        if next_frame is not None:
            asyncio.get_running_loop().create_task(_send_quietly(websocket, next_frame[0]))
        return True

    async def _serve(self, websocket: ServerConnection) -> None:
        path = websocket.request.path if websocket.request is not None else "/"
        identity = unquote(path.rstrip("/").rsplit("/", 1)[-1])
        if websocket.subprotocol != SUBPROTOCOL:
            await websocket.close(1002, "ocpp1.6 required")
            return
        rpc = RpcEndpoint(self._codec)
        self._connections[identity] = (websocket, rpc)
        self._print(identity, "·", "connected", "")
        try:
            async for frame in websocket:
                received = rpc.receive(frame)
                if isinstance(received, IncomingCall):
                    await websocket.send(self._answer(identity, rpc, received.call))
                elif isinstance(received, ReplyWith):
                    await websocket.send(received.frame)
                elif isinstance(received, CallCompleted):
                    outbound = received.outbound
                    outcome = (
                        str(outbound.result.get("status", "ok"))
                        if outbound.result is not None
                        else str(outbound.error)
                    )
                    self._print(identity, "⇒", outbound.action, f"answered {outcome}")
                    next_frame = rpc.next_frame(time.monotonic())
                    if next_frame is not None:
                        await websocket.send(next_frame[0])
        except ConnectionClosed:
            pass
        finally:
            if self._connections.get(identity, (None,))[0] is websocket:
                del self._connections[identity]
            self._print(identity, "·", "disconnected", "")

    def _answer(self, identity: str, rpc: RpcEndpoint, call: Call) -> str:
        payload = call.payload
        answer: JsonObject
        outcome = ""
        if call.action == "BootNotification":
            answer = {
                "status": "Accepted",
                "currentTime": ocpp_timestamp(datetime.now(UTC)),
                "interval": self.heartbeat_interval_s,
            }
            outcome = "Accepted"
        elif call.action == "Heartbeat":
            answer = {"currentTime": ocpp_timestamp(datetime.now(UTC))}
        elif call.action == "Authorize":
            answer = {"idTagInfo": {"status": "Accepted"}}
            outcome = "Accepted"
        elif call.action == "StartTransaction":
            transaction_id = next(self._transaction_ids)
            answer = {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
            outcome = f"transactionId {transaction_id}"
            if self.on_transaction_started is not None:
                self.on_transaction_started(identity, transaction_id)
        elif call.action == "StopTransaction":
            answer = {"idTagInfo": {"status": "Accepted"}}
        elif call.action in ("StatusNotification", "MeterValues", "DataTransfer"):
            answer = {} if call.action != "DataTransfer" else {"status": "Accepted"}
            if call.action == "StatusNotification" and self.on_status is not None:
                self.on_status(identity, int(payload["connectorId"]), str(payload["status"]))
        else:
            answer = {}
        line = _summary(call.action, payload)
        if outcome:
            line += f"  ⇒ {outcome}"
        self._print(identity, "→", call.action, line)
        return rpc.answer(call, answer)

    def _print(self, identity: str, arrow: str, action: str, detail: str) -> None:
        clock = datetime.now().strftime("%H:%M:%S")
        print(f"{clock}  {identity:<6} {arrow} {action:<22} {detail}".rstrip(), file=self.out)
        with contextlib.suppress(Exception):
            self.out.flush()


def _summary(action: str, payload: JsonObject) -> str:
    """The interesting fields of a message, readable."""
    get = payload.get
    if action == "BootNotification":
        return f"{get('chargePointVendor')} {get('chargePointModel')}"
    if action == "StatusNotification":
        text = f"connector {get('connectorId')}: {get('status')}"
        if get("errorCode") not in (None, "NoError"):
            text += f" ({get('errorCode')})"
        return text
    if action == "Authorize":
        return f"idTag={get('idTag')}"
    if action == "StartTransaction":
        return f"idTag={get('idTag')} meterStart={get('meterStart')} Wh"
    if action == "MeterValues":
        return _meter_summary(payload)
    if action == "StopTransaction":
        return (
            f"transactionId={get('transactionId')} meterStop={get('meterStop')} Wh"
            f" reason={get('reason', 'Local')}"
        )
    if action in ("RemoteStartTransaction", "RemoteStopTransaction"):
        return " ".join(f"{key}={value}" for key, value in payload.items())
    return ""


def _meter_summary(payload: JsonObject) -> str:
    parts = [f"transactionId={payload.get('transactionId')}"]
    currents = []
    for meter_value in payload.get("meterValue", []):
        for sample in meter_value.get("sampledValue", []):
            measurand: Any = sample.get("measurand")
            if measurand == "Energy.Active.Import.Register":
                parts.append(f"{sample['value']} Wh")
            elif measurand == "Power.Active.Import":
                parts.append(f"{sample['value']} W")
            elif measurand == "Current.Import":
                currents.append(sample["value"])
    if currents:
        parts.append("/".join(currents) + " A")
    return " ".join(parts)


async def _send_quietly(websocket: ServerConnection, frame: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await websocket.send(frame)
