"""The OCPP-J RPC core, free of I/O: one instance per upstream identity.

It decides what goes on the wire and what a received frame means, and leaves sending,
receiving and sleeping to the caller (`gateway.ocpp.connection`):

- **One outstanding CALL.** Outbound CALLs wait in a FIFO; `next_frame()` hands out the next
  one only when no CALL is awaiting its reply (1.6 SHOULD, 2.0.1 SHALL). `urgent` calls
  (BootNotification) jump the queue.
- **A fresh UUID4 message id for every send**, retries included (SteVe rejects a reused id;
  project rule, ocpp.md §3).
- **Replies** are matched to the outstanding CALL by id; the codec validates a CALLRESULT
  against the response schema of the CALL's action. A reply to anything else (late, after a
  timeout, or unknown) is reported as ignored: log and drop.
- **Timeouts**: the caller asks `next_deadline` and calls `expire(now)`.
- **Malformed input** becomes the CALLERROR frame the codec built (`OcppError.error_frame()`),
  or nothing where the spec says to ignore it (`should_reply` False).
"""

from __future__ import annotations

import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from gateway.ocpp import Call, CallError, CallResult, Codec, JsonObject, OcppError

DEFAULT_CALL_TIMEOUT_S: Final = 30.0
"""How long a CALL waits for its reply (the spec leaves it to the implementer; libocpp 1.6
uses 30 s, mobilityhouse/ocpp too)."""


class CallFailed(Exception):
    """A CALL of ours did not get a usable CALLRESULT."""


class CallErrorReceived(CallFailed):
    """The peer answered with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: JsonObject) -> None:
        super().__init__(f"{action}: {code} {description}".rstrip())
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class CallTimedOut(CallFailed):
    """No reply within the call timeout."""


class ConnectionLost(CallFailed):
    """The connection closed while the CALL awaited its reply (it may or may not have been
    processed by the peer)."""


class InvalidCallResult(CallFailed):
    """The peer's CALLRESULT failed validation (treated as a failed call, 1.6/2.0.1)."""


class CallCancelled(CallFailed):
    """The caller gave up on the CALL before it completed."""


@dataclass(eq=False, slots=True)
class OutboundCall:
    """A CALL of ours, from submission to its outcome. Exactly one of `result`/`error` is set
    once `done`."""

    action: str
    payload: JsonObject
    message_id: str | None = None
    """The id of the current (last) send; None while queued."""
    sends: int = 0
    result: JsonObject | None = None
    error: CallFailed | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A valid CALL from the peer: handle it and answer with `answer()` or `answer_error()`."""

    call: Call


@dataclass(frozen=True, slots=True)
class CallCompleted:
    """An outbound CALL has its outcome (result or error)."""

    outbound: OutboundCall


@dataclass(frozen=True, slots=True)
class ReplyWith:
    """Send this frame back (a CALLERROR for a malformed or unsupported CALL)."""

    frame: str
    error: OcppError


@dataclass(frozen=True, slots=True)
class Ignored:
    """Nothing to do; log `reason`."""

    reason: str


Received = IncomingCall | CallCompleted | ReplyWith | Ignored


@dataclass(slots=True)
class RpcStats:
    """Frames and failures of one endpoint since it was made, for the metrics
    (`gateway.monitoring.metrics`): plain counters, bumped once per frame."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(action, "call" | "result" | "error") → frames we sent."""
    received: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(action, "call" | "result" | "error") → valid frames the peer sent."""
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(action or "", kind) → failures: "timeout", "call_error" (the peer's CALLERROR to our
    CALL), "invalid_result", "malformed" (a frame we could not use), "late_reply"."""


@dataclass(slots=True)
class _InFlight:
    outbound: OutboundCall
    deadline: float


@dataclass(slots=True)
class RpcEndpoint:
    """RPC bookkeeping for one connection identity. It outlives a WebSocket: queued CALLs
    wait across reconnects; the outstanding one fails with `ConnectionLost`."""

    codec: Codec
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    new_message_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    stats: RpcStats = field(default_factory=RpcStats)
    _queue: deque[OutboundCall] = field(default_factory=deque)
    _in_flight: _InFlight | None = None

    # --- outbound ------------------------------------------------------------------------

    def submit(self, action: str, payload: JsonObject, *, urgent: bool = False) -> OutboundCall:
        """Queue a CALL. `urgent` puts it at the head (BootNotification must go first)."""
        outbound = OutboundCall(action, payload)
        if urgent:
            self._queue.appendleft(outbound)
        else:
            self._queue.append(outbound)
        return outbound

    def cancel(self, outbound: OutboundCall) -> None:
        """Give up on a CALL: dropped if still queued. If already sent, it keeps its slot
        until its reply (then ignored) or its timeout, so the peer never sees two
        outstanding CALLs. No effect on a completed call."""
        if outbound.done:
            return
        if outbound in self._queue:
            self._queue.remove(outbound)
        outbound.error = CallCancelled(f"{outbound.action}: cancelled")

    @property
    def awaiting_reply(self) -> OutboundCall | None:
        return self._in_flight.outbound if self._in_flight is not None else None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def next_frame(self, now: float) -> tuple[str, OutboundCall] | None:
        """The next CALL frame to send, when none awaits a reply. A CALL whose payload the
        codec refuses (a bug on our side) completes with the codec's error and is skipped."""
        while self._in_flight is None and self._queue:
            outbound = self._queue.popleft()
            message_id = self.new_message_id()
            try:
                frame = self.codec.encode_call(message_id, outbound.action, outbound.payload)
            except (OcppError, ValueError) as error:
                outbound.error = CallFailed(f"{outbound.action}: refused by the codec: {error}")
                continue
            outbound.message_id = message_id
            outbound.sends += 1
            self.stats.sent[(outbound.action, "call")] += 1
            self._in_flight = _InFlight(outbound, now + self.call_timeout_s)
            return frame, outbound
        return None

    @property
    def next_deadline(self) -> float | None:
        return self._in_flight.deadline if self._in_flight is not None else None

    def expire(self, now: float) -> OutboundCall | None:
        """Fail the outstanding CALL if its reply is overdue; returns it when it did."""
        in_flight = self._in_flight
        if in_flight is None or now < in_flight.deadline:
            return None
        self._in_flight = None
        self.stats.errors[(in_flight.outbound.action, "timeout")] += 1
        if in_flight.outbound.done:  # cancelled meanwhile
            return None
        in_flight.outbound.error = CallTimedOut(
            f"{in_flight.outbound.action}: no reply within {self.call_timeout_s:g} s"
        )
        return in_flight.outbound

    def connection_lost(self) -> OutboundCall | None:
        """The WebSocket closed: fail the outstanding CALL; queued ones stay queued."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None or in_flight.outbound.done:
            return None
        in_flight.outbound.error = ConnectionLost(
            f"{in_flight.outbound.action}: connection closed before the reply"
        )
        return in_flight.outbound

    def fail_all(self, error_text: str) -> list[OutboundCall]:
        """Fail everything queued and outstanding (shutting down)."""
        failed = []
        if self._in_flight is not None:
            failed.append(self._in_flight.outbound)
            self._in_flight = None
        failed.extend(self._queue)
        self._queue.clear()
        for outbound in failed:
            if not outbound.done:
                outbound.error = CallCancelled(f"{outbound.action}: {error_text}")
        return failed

    # --- inbound -------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> Received:
        """Interpret one frame from the peer."""
        in_flight = self._in_flight
        pending: dict[str, str] = {}
        if in_flight is not None and in_flight.outbound.message_id is not None:
            pending[in_flight.outbound.message_id] = in_flight.outbound.action
        try:
            message = self.codec.decode(frame, pending)
        except OcppError as error:
            if in_flight is not None and error.message_id in pending:
                # An invalid CALLRESULT to our CALL: "log it and treat the call as failed".
                self._in_flight = None
                self.stats.errors[(in_flight.outbound.action, "invalid_result")] += 1
                if in_flight.outbound.done:
                    return Ignored(f"invalid reply to cancelled {in_flight.outbound.action}")
                in_flight.outbound.error = InvalidCallResult(
                    f"{in_flight.outbound.action}: {error.code} {error.description}"
                )
                return CallCompleted(in_flight.outbound)
            self.stats.errors[("", "malformed")] += 1
            reply = error.error_frame() if error.should_reply else None
            if reply is None:
                return Ignored(f"{error.code}: {error.description}")
            return ReplyWith(reply, error)
        if isinstance(message, Call):
            self.stats.received[(message.action, "call")] += 1
            return IncomingCall(message)
        if isinstance(message, CallResult | CallError):
            if in_flight is None or message.message_id not in pending:
                self.stats.errors[("", "late_reply")] += 1
                kind = "CALLRESULT" if isinstance(message, CallResult) else "CALLERROR"
                return Ignored(f"late or unknown {kind} {message.message_id!r}")
            self._in_flight = None
            outbound = in_flight.outbound
            reply_kind = "result" if isinstance(message, CallResult) else "error"
            self.stats.received[(outbound.action, reply_kind)] += 1
            if isinstance(message, CallError):
                self.stats.errors[(outbound.action, "call_error")] += 1
            if outbound.done:
                return Ignored(f"reply to cancelled {outbound.action} {message.message_id!r}")
            if isinstance(message, CallResult):
                outbound.result = message.payload
            else:
                outbound.error = CallErrorReceived(
                    outbound.action, message.code, message.description, message.details
                )
            return CallCompleted(outbound)
        return Ignored(f"{type(message).__name__} is not used on {self.codec.subprotocol}")

    def answer(self, call: Call, payload: JsonObject) -> str:
        """The CALLRESULT frame for `call`. If our own payload fails the response schema (a
        bug), the peer gets an InternalError instead of an invalid frame."""
        try:
            frame = self.codec.encode_result(call.message_id, call.action, payload)
        except (OcppError, ValueError) as error:
            self.stats.sent[(call.action, "error")] += 1
            return self.codec.encode_error(
                call.message_id, "InternalError", f"invalid {call.action} response: {error}"
            )
        self.stats.sent[(call.action, "result")] += 1
        return frame

    def answer_error(self, call: Call, code: str, description: str = "") -> str:
        """The CALLERROR frame for `call`."""
        self.stats.sent[(call.action, "error")] += 1
        return self.codec.encode_error(call.message_id, code, description)
