"""Property tests: random text, random JSON and mutated valid frames never crash the codec;
every outcome is a message or an `OcppError`, and valid CALLs round-trip through encode."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._core import Call, CallError, CallResult, CallResultError, Codec, OcppError, Send

if TYPE_CHECKING:
    from gateway._core import Message, Subprotocol

VERSIONS: tuple[Subprotocol, ...] = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
CODECS = [Codec(v) for v in VERSIONS] + [
    Codec(v, max_depth=4, max_frame_bytes=300) for v in VERSIONS
]
MESSAGES = (Call, CallResult, CallError, CallResultError, Send)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID: list[str] = [
    '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]',
    '[2,"2","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging",'
    '"timestamp":"2024-05-01T10:00:00Z"}]',
    '[2,"3","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-05-01T10:00:00Z",'
    '"sampledValue":[{"value":"230.1","measurand":"Voltage","phase":"L1","unit":"V"}]}]}]',
    '[2,"4","BootNotification",{"chargingStation":{"model":"M","vendorName":"V"},'
    '"reason":"PowerUp"}]',
    '[2,"5","TransactionEvent",{"eventType":"Started","timestamp":"2024-05-01T10:00:00Z",'
    '"triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"t"}}]',
    '[3,"6",{"currentTime":"2024-05-01T10:00:00Z"}]',
    '[4,"7","FormationViolation","bad",{}]',
    '[5,"8","FormatViolation","bad",{}]',
    '[6,"9","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z",'
    '"data":[{"t":0.5,"v":"1"}]}]',
]
PENDING = {str(i): a for i, a in enumerate(["Heartbeat"] * 10)}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["Heartbeat", "BootNotification", "Accepted", "2024-01-01T00:00:00Z"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def check(frame: str | bytes) -> None:
    """Every codec returns a message or raises an OcppError; nothing else."""
    for codec in CODECS:
        outcome: Message | OcppError
        try:
            outcome = codec.decode(frame, PENDING)
        except OcppError as error:
            outcome = error
        if isinstance(outcome, OcppError):
            assert isinstance(outcome.code, str)
            assert isinstance(outcome.message_id, str)
            assert len(outcome.description) <= 255
            reply = outcome.error_frame()
            if outcome.should_reply:
                assert reply is not None
                assert json.loads(reply)[0] in (4, 5)
            else:
                assert reply is None
        assert isinstance(outcome, (*MESSAGES, OcppError))
        # decode_many agrees with decode
        [batched] = codec.decode_many([frame], PENDING)
        assert type(batched) is type(outcome)
        if isinstance(outcome, Call):
            again = codec.decode(
                codec.encode_call(outcome.message_id, outcome.action, outcome.payload)
            )
            assert again == outcome


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    check(text)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    check(data)


@SETTINGS
@given(json_values)
def test_random_json_never_crashes(value: Any) -> None:
    check(json.dumps(value))


@SETTINGS
@given(
    st.integers(min_value=-1, max_value=8),
    st.text(max_size=40),
    st.sampled_from(["Heartbeat", "BootNotification", "MeterValues", "Nope", "TransactionEvent"]),
    json_values,
)
def test_random_frames_never_crash(
    message_type: int, message_id: str, action: str, payload: Any
) -> None:
    check(json.dumps([message_type, message_id, action, payload]))
    check(json.dumps([message_type, message_id, payload]))
    check(json.dumps([message_type, message_id, action, "why", payload]))


@SETTINGS
@given(
    st.sampled_from(VALID),
    st.lists(
        st.tuples(st.integers(min_value=0), st.characters(), st.integers(0, 3)),
        min_size=1,
        max_size=5,
    ),
)
def test_character_mutations_never_crash(base: str, edits: list[tuple[int, str, int]]) -> None:
    text = base
    for position, char, op in edits:
        if not text:
            break
        i = position % len(text)
        if op == 0:
            text = text[:i] + char + text[i + 1 :]
        elif op == 1:
            text = text[:i] + text[i + 1 :]
        elif op == 2:
            text = text[:i] + char + text[i:]
        else:
            text = text[:i]
    check(text)


def replace_at(node: Any, path: list[int], replacement: Any) -> Any:
    """`node` with the element at `path` (indices taken modulo container sizes) replaced."""
    if not path or not isinstance(node, (list, dict)) or not node:
        return replacement
    step, rest = path[0], path[1:]
    if isinstance(node, list):
        i = step % len(node)
        return [*node[:i], replace_at(node[i], rest, replacement), *node[i + 1 :]]
    key = list(node)[step % len(node)]
    return {**node, key: replace_at(node[key], rest, replacement)}


@SETTINGS
@given(st.sampled_from(VALID), st.lists(st.integers(min_value=0), max_size=6), json_values)
def test_structural_mutations_never_crash(base: str, path: list[int], replacement: Any) -> None:
    check(json.dumps(replace_at(json.loads(base), path, replacement)))


def test_valid_frames_decode() -> None:
    codec = Codec("ocpp2.1")
    for frame in VALID[3:]:
        assert isinstance(codec.decode(frame, PENDING), MESSAGES)
