"""The sans-I/O RPC core with the real codec."""

from __future__ import annotations

import itertools

import orjson
import pytest

from gateway.ocpp import Codec
from gateway.ocpp.rpc import (
    CallCompleted,
    CallErrorReceived,
    CallTimedOut,
    ConnectionLost,
    Ignored,
    IncomingCall,
    InvalidCallResult,
    ReplyWith,
    RpcEndpoint,
)


@pytest.fixture
def rpc() -> RpcEndpoint:
    ids = (f"id-{n}" for n in itertools.count(1))
    return RpcEndpoint(Codec("ocpp1.6"), call_timeout_s=30.0, new_message_id=lambda: next(ids))


def test_one_outstanding_call_in_fifo_order(rpc: RpcEndpoint) -> None:
    first = rpc.submit("Heartbeat", {})
    second = rpc.submit("Heartbeat", {})
    frame, outbound = rpc.next_frame(0.0) or ("", None)
    assert outbound is first
    assert orjson.loads(frame) == [2, "id-1", "Heartbeat", {}]
    assert rpc.next_frame(0.0) is None  # the first awaits its reply
    received = rpc.receive('[3, "id-1", {"currentTime": "2025-01-01T00:00:00Z"}]')
    assert isinstance(received, CallCompleted)
    assert first.result == {"currentTime": "2025-01-01T00:00:00Z"}
    _, outbound = rpc.next_frame(0.0) or ("", None)
    assert outbound is second


def test_urgent_call_jumps_the_queue(rpc: RpcEndpoint) -> None:
    rpc.submit("Heartbeat", {})
    boot = rpc.submit(
        "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}, urgent=True
    )
    assert (rpc.next_frame(0.0) or ("", None))[1] is boot


def test_timeout_fails_the_call_and_a_late_reply_is_ignored(rpc: RpcEndpoint) -> None:
    outbound = rpc.submit("Heartbeat", {})
    rpc.next_frame(0.0)
    assert rpc.expire(29.9) is None
    assert rpc.expire(30.0) is outbound
    assert isinstance(outbound.error, CallTimedOut)
    late = rpc.receive('[3, "id-1", {"currentTime": "2025-01-01T00:00:00Z"}]')
    assert isinstance(late, Ignored)


def test_a_retry_gets_a_fresh_message_id(rpc: RpcEndpoint) -> None:
    rpc.submit("Heartbeat", {})
    rpc.next_frame(0.0)
    lost = rpc.connection_lost()
    assert lost is not None
    assert isinstance(lost.error, ConnectionLost)
    rpc.submit("Heartbeat", {})
    frame, _ = rpc.next_frame(1.0) or ("", None)
    assert orjson.loads(frame)[1] == "id-2"


def test_call_error_and_invalid_result_fail_the_call(rpc: RpcEndpoint) -> None:
    first = rpc.submit("Heartbeat", {})
    rpc.next_frame(0.0)
    rpc.receive('[4, "id-1", "InternalError", "boom", {}]')
    assert isinstance(first.error, CallErrorReceived)
    assert first.error.code == "InternalError"
    second = rpc.submit("Heartbeat", {})
    rpc.next_frame(0.0)
    received = rpc.receive('[3, "id-2", {"currentTime": 5}]')
    assert isinstance(received, CallCompleted)
    assert isinstance(second.error, InvalidCallResult)


def test_inbound_calls_and_malformed_frames(rpc: RpcEndpoint) -> None:
    received = rpc.receive('[2, "c-1", "RemoteStopTransaction", {"transactionId": 3}]')
    assert isinstance(received, IncomingCall)
    answer = rpc.answer(received.call, {"status": "Accepted"})
    assert orjson.loads(answer) == [3, "c-1", {"status": "Accepted"}]
    # Our own invalid answer becomes an InternalError rather than an invalid frame.
    broken = rpc.answer(received.call, {"status": "Maybe"})
    assert orjson.loads(broken)[:3] == [4, "c-1", "InternalError"]
    bad = rpc.receive("[2, 1")
    assert isinstance(bad, ReplyWith)
    assert orjson.loads(bad.frame)[:3] == [4, "-1", "FormationViolation"]
    unsupported = rpc.receive('[2, "c-2", "ReserveNow", {}]')
    assert isinstance(unsupported, ReplyWith)


def test_cancelled_in_flight_call_keeps_its_slot_until_the_reply(rpc: RpcEndpoint) -> None:
    first = rpc.submit("Heartbeat", {})
    rpc.next_frame(0.0)
    rpc.cancel(first)
    second = rpc.submit("Heartbeat", {})
    assert rpc.next_frame(0.0) is None
    assert isinstance(rpc.receive('[3, "id-1", {"currentTime": "2025-01-01T00:00:00Z"}]'), Ignored)
    assert (rpc.next_frame(0.0) or ("", None))[1] is second
