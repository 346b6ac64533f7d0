"""The Rust OCPP-J codec through its Python API (`gateway._core`): messages, every CallError
case per version with its spelling, `error_frame()`, batches, pending CALLRESULT validation,
limits and the encoders."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from gateway import _core
from gateway._core import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Codec,
    OcppError,
    Send,
)

if TYPE_CHECKING:
    from gateway._core import Subprotocol

V16: Subprotocol = "ocpp1.6"
V201: Subprotocol = "ocpp2.0.1"
V21: Subprotocol = "ocpp2.1"
ALL: tuple[Subprotocol, ...] = (V16, V201, V21)

BOOT16: dict[str, Any] = {"chargePointVendor": "V", "chargePointModel": "M"}
BOOT2: dict[str, Any] = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
BOOT = {V16: BOOT16, V201: BOOT2, V21: BOOT2}
NOW = "2024-05-01T10:00:00Z"


def frame(*parts: Any) -> str:
    return json.dumps(list(parts), separators=(",", ":"))


def raises(
    codec: Codec, text: str | bytes, cls: type[OcppError], pending: dict[str, str] | None = None
) -> OcppError:
    with pytest.raises(cls) as info:
        codec.decode(text, pending)
    error = info.value
    assert isinstance(error, OcppError)
    assert str(error) == error.description
    assert len(error.description) <= 255
    assert error.details == {}
    return error


def expect(
    version: Subprotocol,
    text: str | bytes,
    cls: type[OcppError],
    code: str,
    message_id: str,
    **options: Any,
) -> OcppError:
    """Decode must raise `cls` with `code` and answer with `message_id`."""
    error = raises(Codec(version, **options), text, cls)
    assert (error.code, error.message_id, error.should_reply) == (code, message_id, True)
    reply = error.error_frame()
    assert reply is not None
    assert json.loads(reply) == [4, message_id, code, error.description, {}]
    return error


# Code per version: (1.6, 2.0.1/2.1).
SPELLING: dict[type[OcppError], tuple[str, str]] = {
    _core.FormatViolation: ("FormationViolation", "FormatViolation"),
    _core.ProtocolError: ("ProtocolError", "ProtocolError"),
    _core.OccurrenceConstraintViolation: (
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
    ),
    _core.PropertyConstraintViolation: (
        "PropertyConstraintViolation",
        "PropertyConstraintViolation",
    ),
    _core.TypeConstraintViolation: ("TypeConstraintViolation", "TypeConstraintViolation"),
    _core.ActionNotImplemented: ("NotImplemented", "NotImplemented"),
    _core.ActionNotSupported: ("NotSupported", "NotSupported"),
    _core.RpcFrameworkError: ("FormationViolation", "RpcFrameworkError"),
    _core.MessageTypeNotSupported: ("MessageTypeNotSupported", "MessageTypeNotSupported"),
}


def expect_each(
    frames: dict[Subprotocol, str], cls: type[OcppError], message_id: str, **options: Any
) -> None:
    for version, text in frames.items():
        code16, code2 = SPELLING[cls]
        expect(version, text, cls, code16 if version == V16 else code2, message_id, **options)


def same(text: str) -> dict[Subprotocol, str]:
    return {v: text for v in ALL}


# --- module surface ---------------------------------------------------------------------


def test_constants() -> None:
    assert _core.DEFAULT_MAX_FRAME_BYTES == 4 * 1024 * 1024
    assert _core.DEFAULT_MAX_DEPTH == 32
    assert _core.MAX_MESSAGE_ID_LENGTH == 36


def test_exception_hierarchy() -> None:
    for cls in SPELLING:
        assert issubclass(cls, OcppError)
        assert cls.__module__ == "gateway._core"
    assert issubclass(OcppError, Exception)


def test_codec_properties_and_actions() -> None:
    codec = Codec(V16, max_frame_bytes=1000, max_depth=10)
    assert (codec.subprotocol, codec.max_frame_bytes, codec.max_depth) == (V16, 1000, 10)
    actions = codec.actions()
    assert actions == sorted(actions)
    assert {"BootNotification", "Heartbeat", "RemoteStartTransaction"} <= set(actions)
    assert not any(a.endswith(("Response", "Request")) for a in actions)
    assert "TransactionEvent" in Codec(V201).actions()
    assert "NotifyPeriodicEventStream" in Codec(V21).actions()
    default = Codec(V201)
    assert default.max_frame_bytes == _core.DEFAULT_MAX_FRAME_BYTES
    assert default.max_depth == _core.DEFAULT_MAX_DEPTH


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subprotocol": "ocpp1.5"},
        {"subprotocol": V16, "max_frame_bytes": 0},
        {"subprotocol": V16, "max_depth": -1},
        {"subprotocol": V16, "max_depth": 10_000},
        {"subprotocol": V16, "supported_actions": ["TransactionEvent"]},
    ],
)
def test_codec_rejects_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"subprotocol|must be positive|hard limit|not an action"):
        Codec(**kwargs)


# --- valid frames -----------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_decode_call(version: Subprotocol) -> None:
    codec = Codec(version)
    message = codec.decode(frame(2, "abc", "BootNotification", BOOT[version]))
    assert isinstance(message, Call)
    assert (message.message_id, message.action, message.payload) == (
        "abc",
        "BootNotification",
        BOOT[version],
    )
    assert message == Call("abc", "BootNotification", BOOT[version])
    assert message != Call("abd", "BootNotification", BOOT[version])
    assert repr(message).startswith("Call(message_id='abc', action='BootNotification'")
    # bytes work as well as str
    assert codec.decode(frame(2, "abc", "BootNotification", BOOT[version]).encode()) == message


def test_decode_converts_json_types_exactly() -> None:
    payload = {
        "vendorId": "v",
        "data": "é \n 😀",
    }
    message = Codec(V16).decode(frame(2, "1", "DataTransfer", payload))
    assert isinstance(message, Call)
    assert message.payload == payload
    custom = {"vendorId": "v", "n": None, "b": True, "i": -(2**70), "f": 1.5, "l": [1, [2.0]]}
    message = Codec(V201).decode(frame(2, "1", "Heartbeat", {"customData": custom}))
    assert isinstance(message, Call)
    got = message.payload["customData"]
    assert got == custom
    assert type(got["i"]) is int
    assert type(got["f"]) is float
    assert type(got["b"]) is bool
    assert type(got["l"][1][0]) is float


def test_call_result_without_pending_is_unvalidated() -> None:
    message = Codec(V16).decode('[3,"r1",{"anything":1}]')
    assert message == CallResult("r1", None, {"anything": 1})


@pytest.mark.parametrize("version", ALL)
def test_call_result_validated_against_pending_action(version: Subprotocol) -> None:
    codec = Codec(version)
    good = frame(3, "r1", {"currentTime": NOW})
    message = codec.decode(good, {"r1": "Heartbeat"})
    assert isinstance(message, CallResult)
    assert message.action == "Heartbeat"
    # An id we are not waiting for: a late reply, passed through unvalidated.
    assert codec.decode(good, {"other": "Heartbeat"}) == CallResult(
        "r1", None, {"currentTime": NOW}
    )
    bad = frame(3, "r1", {"currentTime": "soon"})
    error = raises(codec, bad, _core.PropertyConstraintViolation, {"r1": "Heartbeat"})
    assert error.message_id == "r1"
    if version == V21:
        assert error.should_reply
        assert error.error_frame() == frame(
            5, "r1", "PropertyConstraintViolation", error.description, {}
        )
    else:
        assert not error.should_reply
        assert error.error_frame() is None
    missing = raises(codec, '[3,"r1",{}]', _core.OccurrenceConstraintViolation, {"r1": "Heartbeat"})
    assert missing.code == SPELLING[_core.OccurrenceConstraintViolation][version != V16]


def test_pending_accepts_any_mapping() -> None:
    from types import MappingProxyType

    message = Codec(V16).decode(
        frame(3, "r1", {"currentTime": NOW}), MappingProxyType({"r1": "Heartbeat"})
    )
    assert isinstance(message, CallResult)
    assert message.action == "Heartbeat"


@pytest.mark.parametrize("version", ALL)
def test_call_error_codes_are_kept_as_received(version: Subprotocol) -> None:
    for code in (
        "FormationViolation",
        "FormatViolation",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "VendorSpecific",
    ):
        message = Codec(version).decode(frame(4, "e1", code, "why", {"k": [1]}))
        assert message == CallError("e1", code, "why", {"k": [1]})


def test_ocpp21_call_result_error_and_send() -> None:
    codec = Codec(V21)
    assert codec.decode(frame(5, "x", "FormatViolation", "", {})) == CallResultError(
        "x", "FormatViolation", "", {}
    )
    payload = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.5, "v": "1"}]}
    message = codec.decode(frame(6, "s", "NotifyPeriodicEventStream", payload))
    assert message == Send("s", "NotifyPeriodicEventStream", payload)
    # A bad SEND is never answered.
    error = raises(codec, frame(6, "s", "NotifyPeriodicEventStream", {}), OcppError)
    assert not error.should_reply
    assert error.error_frame() is None


# --- CallError cases, per version ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["[2,", "", "nope", '[2,"a","Heartbeat",{}] x', b'[2,"\xff","Heartbeat",{}]'],
)
def test_invalid_json_is_rpc_framework_error(text: str | bytes) -> None:
    for version in ALL:
        code = SPELLING[_core.RpcFrameworkError][version != V16]
        expect(version, text, _core.RpcFrameworkError, code, "-1")


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '"frame"',
        "2",
        "[]",
        '["2","a","Heartbeat",{}]',
        '[2.0,"a","Heartbeat",{}]',
        "[2]",
        '[2,5,"Heartbeat",{}]',
        '[2,"","Heartbeat",{}]',
        frame(2, "x" * 37, "Heartbeat", {}),
    ],
)
def test_unreadable_frame_is_rpc_framework_error(text: str) -> None:
    expect_each(same(text), _core.RpcFrameworkError, "-1")


def test_message_id_of_36_characters_is_fine() -> None:
    for version in ALL:
        assert isinstance(Codec(version).decode(frame(2, "é" * 36, "Heartbeat", {})), Call)


def test_size_limit() -> None:
    text = frame(2, "a", "BootNotification", BOOT16)
    error = expect(
        V16, text, _core.RpcFrameworkError, "FormationViolation", "-1", max_frame_bytes=50
    )
    assert "max_frame_bytes (50)" in error.description
    expect(V201, text, _core.RpcFrameworkError, "RpcFrameworkError", "-1", max_frame_bytes=50)
    assert isinstance(Codec(V16, max_frame_bytes=len(text)).decode(text), Call)


def test_depth_limit() -> None:
    nested: Any = 1
    for _ in range(40):
        nested = [nested]
    text = frame(2, "a", "Heartbeat", {"customData": {"vendorId": "v", "x": nested}})
    error = expect(V201, text, _core.RpcFrameworkError, "RpcFrameworkError", "-1")
    assert "max_depth (32)" in error.description
    expect(V16, text, _core.RpcFrameworkError, "FormationViolation", "-1")
    # Far beyond any limit: a clean error, no crash.
    expect(V201, "[" * 200_000, _core.RpcFrameworkError, "RpcFrameworkError", "-1")
    assert isinstance(Codec(V201, max_depth=200).decode(text), Call)


def test_unknown_message_type() -> None:
    for t in (0, 1, 7, 99):
        text = frame(t, "abc", "Heartbeat", {})
        for version in (V201, V21):
            expect(version, text, _core.MessageTypeNotSupported, "MessageTypeNotSupported", "abc")
        error = raises(Codec(V16), text, _core.MessageTypeNotSupported)
        assert not error.should_reply
        assert error.error_frame() is None
    expect(V201, "[7]", _core.MessageTypeNotSupported, "MessageTypeNotSupported", "-1")


@pytest.mark.parametrize(
    "text", [frame(5, "a", "GenericError", "", {}), frame(6, "a", "Heartbeat", {})]
)
def test_types_5_and_6_before_21(text: str) -> None:
    expect(V201, text, _core.MessageTypeNotSupported, "MessageTypeNotSupported", "a")
    assert not raises(Codec(V16), text, _core.MessageTypeNotSupported).should_reply


@pytest.mark.parametrize(
    "text", ['[2,"abc","Heartbeat"]', '[2,"abc","Heartbeat",{},{}]', '[2,"abc",5,{}]']
)
def test_wrong_call_structure_is_protocol_error(text: str) -> None:
    expect_each(same(text), _core.ProtocolError, "abc")


def expect_unanswered_response(text: str, cls: type[OcppError]) -> None:
    """A broken CALLRESULT is answered only on 2.1, as CALLRESULTERROR (type 5); a broken
    CALLERROR never."""
    for version in ALL:
        error = raises(Codec(version), text, cls)
        assert error.code == SPELLING[cls][version != V16]
        assert error.message_id == "abc"
        if version == V21 and text.startswith("[3,"):
            assert error.should_reply
            assert error.error_frame() == frame(5, "abc", error.code, error.description, {})
        else:
            assert not error.should_reply
            assert error.error_frame() is None


@pytest.mark.parametrize(
    "text",
    [
        '[3,"abc"]',
        '[3,"abc",{},{}]',
        '[4,"abc","GenericError",""]',
        '[4,"abc",5,"",{}]',
        '[4,"abc","GenericError",null,{}]',
        '[4,"abc","GenericError","",[]]',
    ],
)
def test_wrong_response_structure_is_an_unanswered_protocol_error(text: str) -> None:
    expect_unanswered_response(text, _core.ProtocolError)


@pytest.mark.parametrize("payload", ["[]", "null", '"x"', "3"])
def test_payload_not_an_object_is_format_violation(payload: str) -> None:
    expect_each(same(f'[2,"abc","Heartbeat",{payload}]'), _core.FormatViolation, "abc")
    expect_unanswered_response(f'[3,"abc",{payload}]', _core.FormatViolation)


def test_unknown_action_is_not_implemented() -> None:
    for action in ("Foo", "heartbeat", "BootNotificationResponse"):
        expect_each(same(frame(2, "abc", action, {})), _core.ActionNotImplemented, "abc")
    expect(
        V16,
        frame(2, "a", "TransactionEvent", {}),
        _core.ActionNotImplemented,
        "NotImplemented",
        "a",
    )


def test_unsupported_action_is_not_supported() -> None:
    for version in ALL:
        codec = Codec(version, supported_actions=["BootNotification"])
        assert isinstance(codec.decode(frame(2, "a", "BootNotification", BOOT[version])), Call)
        expect(
            version,
            frame(2, "a", "Heartbeat", {}),
            _core.ActionNotSupported,
            "NotSupported",
            "a",
            supported_actions={"BootNotification"},
        )
        # unknown beats unsupported
        raises(codec, frame(2, "a", "Foo", {}), _core.ActionNotImplemented)


def test_missing_required_is_occurrence_constraint_violation() -> None:
    expect_each(
        {
            V16: frame(2, "a", "BootNotification", {"chargePointVendor": "V"}),
            V201: frame(2, "a", "BootNotification", {"reason": "PowerUp"}),
            V21: frame(2, "a", "BootNotification", {"reason": "PowerUp"}),
        },
        _core.OccurrenceConstraintViolation,
        "a",
    )


def test_item_count_is_occurrence_constraint_violation() -> None:
    expect_each(
        {
            V16: frame(2, "a", "MeterValues", {"connectorId": 1, "meterValue": []}),
            V201: frame(2, "a", "MeterValues", {"evseId": 1, "meterValue": []}),
        },
        _core.OccurrenceConstraintViolation,
        "a",
    )


def test_wrong_type_is_type_constraint_violation() -> None:
    status2 = {"timestamp": NOW, "connectorStatus": "Available", "evseId": "1", "connectorId": 1}
    expect_each(
        {
            V16: frame(
                2,
                "a",
                "StatusNotification",
                {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
            ),
            V201: frame(2, "a", "StatusNotification", status2),
            V21: frame(2, "a", "StatusNotification", status2),
        },
        _core.TypeConstraintViolation,
        "a",
    )


def meter16(measurand: str) -> str:
    sampled = [{"value": "1"}, {"value": "2"}, {"value": "3", "measurand": measurand}]
    payload = {"connectorId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": sampled}]}
    return frame(2, "a", "MeterValues", payload)


def test_property_constraints() -> None:
    error = expect(
        V16, meter16("Foo"), _core.PropertyConstraintViolation, "PropertyConstraintViolation", "a"
    )
    assert error.description == (
        'meterValue[0].sampledValue[2].measurand: "Foo" is not one of the allowed values'
    )
    long_vendor = frame(2, "a", "BootNotification", {**BOOT16, "chargePointVendor": "x" * 21})
    bad_time = frame(
        2,
        "a",
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "now"},
    )
    bad_reason = frame(2, "a", "BootNotification", {**BOOT2, "reason": "Sunday"})
    for text in (long_vendor, bad_time):
        expect(V16, text, _core.PropertyConstraintViolation, "PropertyConstraintViolation", "a")
    expect_each({V201: bad_reason, V21: bad_reason}, _core.PropertyConstraintViolation, "a")
    # check_formats=False lets a bad timestamp through
    assert isinstance(Codec(V16, check_formats=False).decode(bad_time), Call)


def test_multiple_of_accepts_decimal_multiples() -> None:
    def profile(limit: float) -> str:
        schedule = {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        }
        cs = {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": schedule,
        }
        return frame(2, "a", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": cs})

    assert isinstance(Codec(V16).decode(profile(7.2)), Call)
    raises(Codec(V16), profile(7.25), _core.PropertyConstraintViolation)


def test_additional_property_is_format_violation() -> None:
    expect_each(
        {
            V16: frame(2, "a", "BootNotification", {**BOOT16, "colour": "red"}),
            V201: frame(2, "a", "BootNotification", {**BOOT2, "colour": "red"}),
        },
        _core.FormatViolation,
        "a",
    )


# --- batches ----------------------------------------------------------------------------


def test_decode_many_returns_errors_in_place() -> None:
    codec = Codec(V16)
    frames: list[str | bytes] = [
        frame(2, "1", "BootNotification", BOOT16),
        "garbage",
        frame(3, "2", {"currentTime": NOW}).encode(),
        frame(2, "3", "Foo", {}),
    ]
    results = codec.decode_many(frames, {"2": "Heartbeat"})
    assert len(results) == 4
    assert isinstance(results[0], Call)
    assert isinstance(results[1], _core.RpcFrameworkError)
    assert isinstance(results[2], CallResult)
    assert results[2].action == "Heartbeat"
    assert isinstance(results[3], _core.ActionNotImplemented)
    assert codec.decode_many([]) == []
    with pytest.raises(TypeError):
        codec.decode_many([1])  # type: ignore[list-item]


def test_frame_of_wrong_type_is_type_error() -> None:
    with pytest.raises(TypeError):
        Codec(V16).decode(5)  # type: ignore[arg-type]


# --- exceptions -------------------------------------------------------------------------


def test_exceptions_pickle_with_their_attributes() -> None:
    error = raises(Codec(V16), frame(2, "a", "Foo", {}), _core.ActionNotImplemented)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is _core.ActionNotImplemented
    assert (copy.code, copy.message_id, copy.description, copy.should_reply) == (
        error.code,
        error.message_id,
        error.description,
        error.should_reply,
    )
    assert copy.error_frame() == error.error_frame()


def test_description_is_at_most_255_characters() -> None:
    error = raises(Codec(V201), frame(2, "a", "Heartbeat", {"k" * 400: 1}), _core.FormatViolation)
    assert len(error.description) <= 255


# --- encoding ---------------------------------------------------------------------------


def test_encode_call_and_result() -> None:
    codec = Codec(V16)
    assert codec.encode_call("1", "BootNotification", BOOT16) == frame(
        2, "1", "BootNotification", BOOT16
    )
    assert codec.encode_call("1", "Heartbeat", {}) == '[2,"1","Heartbeat",{}]'
    result = {"status": "Accepted", "currentTime": NOW, "interval": 300}
    assert codec.encode_result("1", "BootNotification", result) == frame(3, "1", result)
    assert codec.encode_call("1", "DataTransfer", {"vendorId": "é", "data": "\n"}) == (
        '[2,"1","DataTransfer",{"vendorId":"é","data":"\\n"}]'
    )
    with pytest.raises(_core.OccurrenceConstraintViolation) as info:
        codec.encode_call("1", "BootNotification", {})
    assert info.value.message_id == "1"
    assert not info.value.should_reply
    with pytest.raises(_core.ActionNotImplemented):
        codec.encode_call("1", "Foo", {})
    with pytest.raises(_core.PropertyConstraintViolation):
        codec.encode_result("1", "BootNotification", {**result, "status": "Maybe"})


def test_encode_round_trips() -> None:
    codec = Codec(V201)
    payload = {"customData": {"vendorId": "v", "f": 5.0, "big": 2**80, "u": "😀", "n": None}}
    message = codec.decode(codec.encode_call("x", "Heartbeat", payload))
    assert message == Call("x", "Heartbeat", payload)
    assert isinstance(message, Call)
    assert type(message.payload["customData"]["f"]) is float


@pytest.mark.parametrize("message_id", ["", "x" * 37])
def test_encode_rejects_bad_ids(message_id: str) -> None:
    with pytest.raises(ValueError, match="message id must be 1 to 36 characters"):
        Codec(V16).encode_call(message_id, "Heartbeat", {})
    with pytest.raises(ValueError, match="message id must be 1 to 36 characters"):
        Codec(V16).encode_error(message_id, "GenericError")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"customData": {"vendorId": "v", "x": object()}}, TypeError),
        ({"customData": {"vendorId": "v", 1: 2}}, TypeError),
        ({"customData": {"vendorId": "v", "x": (1, 2)}}, TypeError),
        ({"customData": {"vendorId": "v", "x": float("nan")}}, ValueError),
    ],
)
def test_encode_rejects_non_json_values(payload: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Codec(V201).encode_call("1", "Heartbeat", payload)


def test_encode_rejects_self_reference() -> None:
    loop: dict[str, Any] = {"vendorId": "v"}
    loop["self"] = loop
    with pytest.raises(ValueError, match="max_depth"):
        Codec(V201).encode_call("1", "Heartbeat", {"customData": loop})


def test_encode_error_spelling() -> None:
    c16, c2 = Codec(V16), Codec(V201)
    for code in ("FormatViolation", "FormationViolation"):
        assert c16.encode_error("a", code, "d") == '[4,"a","FormationViolation","d",{}]'
        assert c2.encode_error("a", code, "d") == '[4,"a","FormatViolation","d",{}]'
    for code in ("OccurenceConstraintViolation", "OccurrenceConstraintViolation"):
        assert '"OccurenceConstraintViolation"' in c16.encode_error("a", code)
        assert '"OccurrenceConstraintViolation"' in c2.encode_error("a", code)
    assert c2.encode_error("a", "InternalError", "x" * 300, {"k": 1}) == frame(
        4, "a", "InternalError", "x" * 255, {"k": 1}
    )
    with pytest.raises(ValueError, match=r"not an error code of ocpp2\.0\.1"):
        c2.encode_error("a", "Bogus")
    with pytest.raises(ValueError, match=r"not an error code of ocpp1\.6"):
        c16.encode_error("a", "MessageTypeNotSupported")
    assert '"MessageTypeNotSupported"' in c2.encode_error("a", "MessageTypeNotSupported")


def test_encode_send_only_on_21() -> None:
    payload = {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.5, "v": "1"}]}
    assert Codec(V21).encode_send("s", "NotifyPeriodicEventStream", payload) == frame(
        6, "s", "NotifyPeriodicEventStream", payload
    )
    with pytest.raises(ValueError, match="SEND does not exist"):
        Codec(V201).encode_send("s", "NotifyPeriodicEventStream", payload)


def test_validate() -> None:
    codec = Codec(V16)
    codec.validate("BootNotification", BOOT16)
    codec.validate("Heartbeat", {"currentTime": NOW}, response=True)
    with pytest.raises(_core.OccurrenceConstraintViolation) as info:
        codec.validate("Heartbeat", {}, response=True)
    assert info.value.message_id == "-1"
    assert not info.value.should_reply
    with pytest.raises(_core.ActionNotImplemented):
        codec.validate("Nope", {})


# --- re-entrancy and threads --------------------------------------------------------------


class ReentrantPending(Mapping[str, str]):
    """A pending map whose lookup decodes another frame: runs while the codec is mid-decode."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.inner: list[object] = []

    def __getitem__(self, key: str) -> str:
        self.inner.append(self.codec.decode(frame(2, "in", "BootNotification", BOOT16)))
        return "Heartbeat"

    def __iter__(self) -> Iterator[str]:
        return iter(["r1"])

    def __len__(self) -> int:
        return 1


def test_reentrant_decode_does_not_deadlock() -> None:
    codec = Codec(V16)
    pending = ReentrantPending(codec)
    message = codec.decode(frame(3, "r1", {"currentTime": NOW}), pending)
    assert isinstance(message, CallResult)
    assert message.action == "Heartbeat"
    assert pending.inner == [Call("in", "BootNotification", BOOT16)]


def test_concurrent_decoding() -> None:
    codec = Codec(V16)
    text = frame(2, "1", "BootNotification", BOOT16)

    def work(_: int) -> bool:
        return all(codec.decode(text) == Call("1", "BootNotification", BOOT16) for _ in range(200))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(8)))


class FailingPending(Mapping[str, str]):
    """A pending map whose lookup fails with an unexpected error."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("store unavailable")

    def __iter__(self) -> Iterator[str]:
        return iter([])

    def __len__(self) -> int:
        return 0


def test_pending_lookup_errors_propagate() -> None:
    codec = Codec(V16)
    text = frame(3, "r1", {"currentTime": NOW})
    with pytest.raises(RuntimeError, match="store unavailable"):
        codec.decode(text, FailingPending())
    with pytest.raises(TypeError):
        codec.decode(text, {"r1": 5})  # type: ignore[dict-item]
    # An action the version does not define: reported, never answered.
    error = raises(codec, text, _core.ActionNotImplemented, {"r1": "TransactionEvent"})
    assert not error.should_reply
