"""A thin asyncio OCPP-J client connection over `websockets`, around `RpcEndpoint`.

It keeps one WebSocket to the central system up (reconnecting with back-off and jitter),
checks the negotiated subprotocol, runs every inbound CALL as its own task (so a handler may
await our own CALLs without deadlocking the receive loop: mobilityhouse/ocpp #323), and lets
callers `await call(action, payload)`. Liveness is websockets' ping/pong: a missing pong
closes the socket, which triggers a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Final, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import Frame
from websockets.typing import Subprotocol as WsSubprotocol

from gateway.ocpp import Call, Codec, JsonObject
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.rpc import (
    DEFAULT_CALL_TIMEOUT_S,
    CallCompleted,
    CallFailed,
    Ignored,
    IncomingCall,
    OutboundCall,
    ReplyWith,
    RpcEndpoint,
    RpcStats,
)
from gateway.ocpp.security import basic_authorization

logger = logging.getLogger(__name__)

DEFAULT_PING_INTERVAL_S: Final = 30.0
"""WebSocket ping period. Short enough to notice a dead NAT mapping within a minute, long
enough to be negligible traffic; SteVe pings every 15 min, so the client side must ping."""
DEFAULT_PING_TIMEOUT_S: Final = 30.0
OPEN_TIMEOUT_S: Final = 10.0
"""websockets' default for the TCP + TLS + HTTP upgrade."""
CLOSE_TIMEOUT_S: Final = 5.0
"""How long a closing handshake may take before the TCP connection is dropped. After a
missing pong the peer is presumed dead and cannot answer the close either: half websockets'
10 s default brings the socket back sooner, and a live central system answers a close in
well under a second."""


class CallErrorReply(Exception):
    """Raised by an inbound-CALL handler to answer with a CALLERROR."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


InboundHandler = Callable[[Call], Awaitable[JsonObject]]
"""Handles one inbound CALL; returns the CALLRESULT payload or raises `CallErrorReply`."""
ConnectionListener = Callable[[bool], None]
"""Told True when a connection is up (subprotocol agreed), False when it went down."""
FailureListener = Callable[[BaseException], None]
"""Told why a connection attempt or a connection failed (before the back-off wait)."""


FollowUp = Callable[[], Coroutine[Any, Any, None]]
_follow_ups: ContextVar[list[FollowUp] | None] = ContextVar("_follow_ups", default=None)
_orphans: set[asyncio.Task[None]] = set()


def after_answer(follow_up: FollowUp) -> None:
    """From inside an inbound-CALL handler: run `follow_up` as a task once the answer to
    that CALL has been sent (a triggered message must follow its TriggerMessage response).
    Outside a handler it is scheduled at once."""
    pending = _follow_ups.get()
    if pending is not None:
        pending.append(follow_up)
        return
    task = asyncio.get_running_loop().create_task(follow_up())
    _orphans.add(task)
    task.add_done_callback(_orphans.discard)


class _RedactSecrets(logging.Filter):
    """websockets logs the handshake's headers and every frame at DEBUG. The basic-auth
    header carries the station's password and a ChangeConfiguration/SetVariables frame may
    carry a new one, and neither may reach a log: the header's value and the frames'
    contents are replaced (a frame keeps its type and size)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple):
            return True
        if any(isinstance(arg, str) and arg.lower() == "authorization" for arg in args):
            record.args = (*args[:-1], "[redacted]")
        elif any(isinstance(arg, Frame) for arg in args):
            record.args = tuple(
                f"{arg.opcode.name} [{len(arg.data)} bytes, contents not logged]"
                if isinstance(arg, Frame)
                else arg
                for arg in args
            )
        return True


websocket_logger = logging.getLogger("gateway.ocpp.websocket")
"""The logger handed to websockets for the upstream sockets (Authorization redacted)."""
websocket_logger.addFilter(_RedactSecrets())


class OcppClientConnection:
    """One identity's connection to the central system. `run()` until cancelled."""

    def __init__(
        self,
        url: str,
        codec: Codec,
        handler: InboundHandler,
        *,
        identity: str,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        backoff: ReconnectBackoff | None = None,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
        ping_timeout_s: float | None = DEFAULT_PING_TIMEOUT_S,
        listener: ConnectionListener | None = None,
        ssl_context: ssl.SSLContext | None = None,
        password: Callable[[], str | None] | None = None,
        on_failure: FailureListener | None = None,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        """`password` is asked before every connection attempt (a key the central system
        changed applies from the next connection on); None or a None answer: no basic
        auth. `ssl_context` is required for a wss:// URL to be checked as configured."""
        self.url = url
        self.identity = identity
        self._codec = codec
        self._handler = handler
        self._rpc = RpcEndpoint(codec, call_timeout_s=call_timeout_s)
        self._backoff = backoff or ReconnectBackoff()
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._listener = listener
        self._ssl_context = ssl_context
        self._password = password
        self._on_failure = on_failure
        self._close_timeout_s = close_timeout_s
        self._waiters: dict[OutboundCall, asyncio.Future[None]] = {}
        self._wake_sender = asyncio.Event()
        self._connected = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._log = {"identity": identity}

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def stats(self) -> RpcStats:
        """This identity's frame and failure counters (across reconnects)."""
        return self._rpc.stats

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def call(self, action: str, payload: JsonObject, *, urgent: bool = False) -> JsonObject:
        """Send a CALL (after those queued before it, unless `urgent`) and return the
        CALLRESULT payload. While disconnected the CALL waits for the next connection. Raises
        a `CallFailed` subclass. Cancelling the await withdraws the CALL."""
        outbound = self._rpc.submit(action, payload, urgent=urgent)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[outbound] = done
        self._wake_sender.set()
        try:
            await done
        except asyncio.CancelledError:
            self._rpc.cancel(outbound)
            raise
        finally:
            self._waiters.pop(outbound, None)
        if outbound.error is not None:
            raise outbound.error
        assert outbound.result is not None
        return outbound.result

    async def run(self) -> None:
        """Connect, serve, and reconnect after every loss, until cancelled."""
        try:
            while True:
                try:
                    await self._serve_one_connection()
                except InvalidURI:
                    raise
                except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as error:
                    logger.warning("upstream connection failed: %s", error, extra=self._log)
                    self._failed(error)
                except Exception as error:
                    # Whatever broke this connection must not end the identity's presence
                    # upstream: log it and reconnect like after any other failure.
                    logger.exception("upstream connection crashed", extra=self._log)
                    self._failed(error)
                delay = self._backoff.next_delay()
                logger.info("reconnecting in %.1f s", delay, extra=self._log)
                await asyncio.sleep(delay)
        finally:
            for outbound in self._rpc.fail_all("connection shut down"):
                self._complete(outbound)
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

    def _failed(self, error: BaseException) -> None:
        if self._on_failure is not None:
            try:
                self._on_failure(error)
            except Exception:
                logger.exception("failure listener failed", extra=self._log)

    async def _serve_one_connection(self) -> None:
        password = self._password() if self._password is not None else None
        headers = (
            {"Authorization": basic_authorization(self.identity, password)}
            if password is not None
            else None
        )
        async with connect(
            self.url,
            subprotocols=[WsSubprotocol(self._codec.subprotocol)],
            additional_headers=headers,
            ssl=self._ssl_context,
            logger=websocket_logger,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=self._close_timeout_s,
            ping_interval=self._ping_interval_s,
            ping_timeout=self._ping_timeout_s,
            # OCPP 1.6J discourages compression beyond plain WebSocket (ocpp.md §2).
            compression=None if self._codec.subprotocol == "ocpp1.6" else "deflate",
            max_size=self._codec.max_frame_bytes,
        ) as websocket:
            if websocket.subprotocol != self._codec.subprotocol:
                logger.error(
                    "central system did not agree to subprotocol %s (got %r); closing",
                    self._codec.subprotocol,
                    websocket.subprotocol,
                    extra=self._log,
                )
                await websocket.close(code=1002, reason="subprotocol not agreed")
                return
            logger.info("upstream connected", extra={**self._log, "url": self.url})
            self._backoff.reset()
            self._connected.set()
            self._notify(True)
            sender = asyncio.create_task(self._send_calls(websocket), name=f"send-{self.identity}")
            try:
                await self._receive(websocket)
            finally:
                self._connected.clear()
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                lost = self._rpc.connection_lost()
                if lost is not None:
                    self._complete(lost)
                self._notify(False)
                logger.info("upstream disconnected", extra=self._log)

    def _notify(self, connected: bool) -> None:
        if self._listener is not None:
            try:
                self._listener(connected)
            except Exception:
                logger.exception("connection listener failed", extra=self._log)

    async def _send_calls(self, websocket: ClientConnection) -> None:
        """Send queued CALLs one at a time; time out the outstanding one."""
        while True:
            expired = self._rpc.expire(time.monotonic())
            if expired is not None:
                logger.warning("%s", expired.error, extra=self._log)
                self._complete(expired)
            next_call = self._rpc.next_frame(time.monotonic())
            if next_call is None:
                # Skipped (codec-refused) calls completed inside next_frame.
                self._complete_finished_waiters()
                self._wake_sender.clear()
                deadline = self._rpc.next_deadline
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake_sender.wait()
                continue
            frame, outbound = next_call
            logger.debug(
                "→ %s", outbound.action, extra={**self._log, "message_id": outbound.message_id}
            )
            await websocket.send(frame)

    async def _receive(self, websocket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in websocket:
                received = self._rpc.receive(frame)
                if isinstance(received, CallCompleted):
                    self._complete(received.outbound)
                    self._wake_sender.set()
                elif isinstance(received, IncomingCall):
                    task = asyncio.create_task(
                        self._handle(websocket, received.call),
                        name=f"handle-{self.identity}-{received.call.action}",
                    )
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)
                elif isinstance(received, ReplyWith):
                    logger.warning(
                        "malformed frame from central system: %s %s",
                        received.error.code,
                        received.error.description,
                        extra=self._log,
                    )
                    await websocket.send(received.frame)
                elif isinstance(received, Ignored):
                    logger.warning("frame ignored: %s", received.reason, extra=self._log)

    async def _handle(self, websocket: ClientConnection, call: Call) -> None:
        follow_ups: list[FollowUp] = []
        _follow_ups.set(follow_ups)  # this task's own context
        try:
            payload = await self._handler(call)
        except CallErrorReply as error:
            reply = self._rpc.answer_error(call, error.code, error.description)
        except Exception:
            logger.exception("handler for %s failed", call.action, extra=self._log)
            reply = self._rpc.answer_error(call, "InternalError", "handler failed")
        else:
            reply = self._rpc.answer(call, payload)
        try:
            await websocket.send(reply)
        except ConnectionClosed:
            logger.warning(
                "connection closed before the answer to %s", call.action, extra=self._log
            )
        for follow_up in follow_ups:
            task = asyncio.create_task(
                self._follow_up(call.action, follow_up), name=f"after-{call.action}"
            )
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _follow_up(self, action: str, follow_up: FollowUp) -> None:
        try:
            await follow_up()
        except CallFailed as error:
            logger.warning("follow-up of %s failed: %s", action, error, extra=self._log)
        except Exception:
            logger.exception("follow-up of %s failed", action, extra=self._log)

    def _complete(self, outbound: OutboundCall) -> None:
        waiter = self._waiters.get(outbound)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _complete_finished_waiters(self) -> None:
        for outbound, waiter in self._waiters.items():
            if outbound.done and not waiter.done():
                waiter.set_result(None)


class StationLink(Protocol):
    """What a station needs of its way to the central system: its own `OcppClientConnection`,
    or its share of one identity's connection (`gateway.ocpp.shared_station`)."""

    @property
    def url(self) -> str: ...

    @property
    def identity(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def stats(self) -> RpcStats: ...

    async def wait_connected(self) -> None: ...

    async def call(
        self, action: str, payload: JsonObject, *, urgent: bool = False
    ) -> JsonObject: ...

    async def run(self) -> None: ...


__all__ = [
    "CallErrorReply",
    "CallFailed",
    "InboundHandler",
    "OcppClientConnection",
    "StationLink",
    "after_answer",
]
