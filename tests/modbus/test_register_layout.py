"""`gateway._core.RegisterLayout` against the pure-Python decoder (`scaled_value` over
`decode_value`): same values of the same Python types for every type, word order, scale and
hex flag; the same failures; exceptions, never a crash, on garbage."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._core import RegisterLayout
from gateway.core.charger import ChargerUnavailable
from gateway.modbus.driver import scaled_value
from gateway.modbus.profile import (
    Access,
    Confidence,
    ReadRequest,
    RegisterSpec,
    RegisterTable,
    load_profile,
    profile_names,
)
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterType,
    RegisterValue,
    WordOrder,
    encode_value,
    register_count,
)

if TYPE_CHECKING:
    from gateway._core import RegisterLayoutValue

SCALES = [1.0, 0.1, 0.001, 0.5, 10.0, -1.0]


def make_spec(
    name: str,
    address: int,
    register_type: RegisterType,
    *,
    count: int | None = None,
    word_order: WordOrder = WordOrder.BIG,
    scale: float = 1.0,
    hex_format: bool = False,
) -> RegisterSpec:
    return RegisterSpec(
        name=name,
        address=address,
        table=RegisterTable.INPUT,
        type=register_type,
        count=register_count(register_type, count),
        word_order=word_order,
        scale=scale,
        unit="",
        confidence=Confidence.VENDOR,
        access=Access.READ,
        format="hex" if hex_format else None,
    )


def layout_value(spec: RegisterSpec, base: int) -> RegisterLayoutValue:
    """A spec as a layout tuple, its offset taken from the request's first address."""
    return (
        spec.name,
        spec.address - base,
        spec.type.value,
        spec.count,
        spec.word_order.value,
        spec.scale,
        spec.format == "hex",
    )


def python_decode(
    specs: Sequence[RegisterSpec], base: int, words: Sequence[int]
) -> dict[str, RegisterValue]:
    """What the driver does today for one request."""
    values: dict[str, RegisterValue] = {}
    for spec in specs:
        offset = spec.address - base
        values[spec.name] = scaled_value(spec, words[offset : offset + spec.count])
    return values


def assert_same(rust: dict[str, RegisterValue], python: dict[str, RegisterValue]) -> None:
    assert list(rust) == list(python)
    for name, value in python.items():
        assert type(rust[name]) is type(value), name
        assert rust[name] == value, name


def assert_agree(specs: Sequence[RegisterSpec], base: int, words: list[int]) -> None:
    """Both decoders give the same values, or both raise `RegisterDecodeError`.

    One deliberate difference: a value reaching past the block is an error for the layout,
    while `decode_value` decodes a truncated string (the driver never hands it a short block:
    the link checks the register count)."""
    layout = RegisterLayout([layout_value(spec, base) for spec in specs])
    if any(spec.end - base > len(words) for spec in specs):
        with pytest.raises(RegisterDecodeError):
            layout.decode(words)
        return
    try:
        expected = python_decode(specs, base, words)
    except RegisterDecodeError:
        with pytest.raises(RegisterDecodeError):
            layout.decode(words)
        return
    assert_same(layout.decode(words), expected)


words_16 = st.integers(0, 0xFFFF)
interesting_words = st.one_of(
    words_16,
    st.sampled_from([0, 0xFFFF, 0x7F80, 0x7FC0, 0x7FF0, 0xFF80, 0x8000, 0x4142, 0x4300]),
)


@st.composite
def spec_and_offset(draw: st.DrawFn, index: int = 0) -> RegisterSpec:
    register_type = draw(st.sampled_from(list(RegisterType)))
    return make_spec(
        f"v{index}",
        draw(st.integers(0, 30)),
        register_type,
        count=draw(st.integers(1, 6)) if register_type is RegisterType.STRING else None,
        word_order=draw(st.sampled_from(list(WordOrder))),
        scale=draw(st.sampled_from(SCALES)),
        hex_format=register_type.is_integer and draw(st.booleans()),
    )


@st.composite
def layouts(draw: st.DrawFn) -> list[RegisterSpec]:
    n = draw(st.integers(0, 8))
    return [draw(spec_and_offset(index=i)) for i in range(n)]


@settings(max_examples=1000, deadline=None)
@given(specs=layouts(), words=st.lists(interesting_words, max_size=45))
def test_agrees_with_python_on_random_layouts(specs: list[RegisterSpec], words: list[int]) -> None:
    assert_agree(specs, 0, words)


@pytest.mark.parametrize("register_type", [t for t in RegisterType if t is not RegisterType.STRING])
@pytest.mark.parametrize("word_order", list(WordOrder))
@pytest.mark.parametrize("scale", [1.0, 0.001])
@settings(max_examples=150, deadline=None)
@given(words=st.lists(interesting_words, min_size=4, max_size=4))
def test_agrees_for_every_type_and_word_order(
    register_type: RegisterType, word_order: WordOrder, scale: float, words: list[int]
) -> None:
    specs = [make_spec("v", 0, register_type, word_order=word_order, scale=scale)]
    if register_type.is_integer:
        specs.append(make_spec("h", 0, register_type, word_order=word_order, hex_format=True))
    assert_agree(specs, 0, words)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20))
def test_strings_round_trip(text: str) -> None:
    words = encode_value(text, RegisterType.STRING, string_registers=10)
    layout = RegisterLayout([("s", 0, "string", 10, "big", 1.0, False)])
    assert layout.decode(words) == {"s": text}


@pytest.mark.parametrize("name", profile_names())
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_agrees_on_the_shipped_profiles(name: str, data: st.DataObject) -> None:
    profile = load_profile(name)
    readable = [spec for spec in profile.registers.values() if spec.access.readable]
    for request in profile.plan_reads(readable):
        words = data.draw(
            st.lists(interesting_words, min_size=request.count, max_size=request.count)
        )
        assert_agree(request.registers, request.address, words)


def test_a_generic_poll_block_decodes_the_same() -> None:
    # Words a generic charger would send: floats, a f64, a string, small integers.
    profile = load_profile("generic")
    (request,) = profile.plan_reads(profile.reading_registers)
    words = [0] * request.count
    sent: list[tuple[str, RegisterValue]] = [
        ("cp_state", 4),
        ("current_l1", 15.5),
        ("voltage_l1", 230.25),
        ("energy", 12345.678),
        ("rfid", "04A1B2C3"),
    ]
    for spec, value in sent:
        register = profile.registers[spec]
        offset = register.address - request.address
        words[offset : offset + register.count] = encode_value(
            value, register.type, register.word_order, register.count
        )
    layout = layout_for(request)
    decoded = layout.decode(words)
    assert decoded["cp_state"] == 4
    assert decoded["current_l1"] == 15.5
    assert decoded["energy"] == 12345.678
    assert decoded["rfid"] == "04A1B2C3"
    assert_same(decoded, python_decode(request.registers, request.address, words))


def layout_for(request: ReadRequest) -> RegisterLayout:
    return RegisterLayout([layout_value(spec, request.address) for spec in request.registers])


def test_keba_rfid_is_hex_and_scaled_values_are_floats() -> None:
    profile = load_profile("keba-p30")
    requests = {r.registers[0].name: r for r in profile.plan_reads(profile.reading_registers)}
    assert layout_for(requests["rfid"]).decode([0x04A1, 0xB2C3]) == {"rfid": "04a1b2c3"}
    assert layout_for(requests["rfid"]).decode([0, 0]) == {"rfid": ""}
    current = layout_for(requests["current_l1"]).decode([0, 16_000])["current_l1"]
    assert isinstance(current, float)
    assert current == 16_000 * 0.001
    voltage = layout_for(requests["voltage_l1"]).decode([0, 230])["voltage_l1"]
    assert isinstance(voltage, int)
    assert voltage == 230


# ---------------------------------------------------------------- errors


def test_decode_errors_are_register_decode_errors_naming_the_value() -> None:
    layout = RegisterLayout(
        [
            ("state", 0, "u16", 1, "big", 1.0, False),
            ("power", 1, "f32", 2, "big", 1.0, False),
            ("tag", 3, "string", 2, "big", 1.0, False),
        ]
    )
    assert layout.names == ("state", "power", "tag")
    assert layout.block_len == 5
    assert len(layout) == 3
    assert repr(layout) == "RegisterLayout(3 values, 5 registers)"
    with pytest.raises(RegisterDecodeError, match=r"^tag: needs registers 3\.\.5"):
        layout.decode([1, 0, 0, 0])
    with pytest.raises(RegisterDecodeError, match=r"^power: value NaN is not a finite number"):
        layout.decode([1, 0x7FC0, 0, 0, 0])
    with pytest.raises(RegisterDecodeError, match=r"^tag: string registers hold non-printable"):
        layout.decode([1, 0, 0, 0x4101, 0])
    with pytest.raises(RegisterDecodeError, match="register word 70000 is not a 16-bit value"):
        layout.decode([1, 70000, 0, 0, 0])
    with pytest.raises(RegisterDecodeError, match="register word -1 is not a 16-bit value"):
        layout.decode([-1, 0, 0, 0, 0])
    with pytest.raises(TypeError):
        layout.decode([1, "x", 0, 0, 0])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        layout.decode(5)  # type: ignore[arg-type]
    # A babbling charger is an unavailable one: the poller keeps polling it.
    assert issubclass(RegisterDecodeError, ChargerUnavailable)


def test_decode_accepts_tuples_and_iterables_and_longer_blocks() -> None:
    layout = RegisterLayout([("a", 1, "u32", 2, "little", 1.0, False)])
    expected = {"a": 0x0003_0002}
    assert layout.decode((1, 2, 3, 4)) == expected
    assert layout.decode(iter([1, 2, 3])) == expected
    assert layout.decode(range(1, 4)) == expected
    assert layout.decode([True, 2, 3]) == expected


def test_decode_many() -> None:
    layout = RegisterLayout([("a", 0, "u16", 1, "big", 0.5, False)])
    assert layout.decode_many([[2], [4, 9], (6,)]) == [{"a": 1.0}, {"a": 2.0}, {"a": 3.0}]
    assert layout.decode_many([]) == []
    with pytest.raises(RegisterDecodeError, match=r"^block 1: a: needs registers 0\.\.1"):
        layout.decode_many([[2], []])
    with pytest.raises(RegisterDecodeError, match=r"^block 2: register word 65536"):
        layout.decode_many([[2], [3], [65536]])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (("a", 0, "u24", 1, "big", 1.0, False), "unknown register type"),
        (("a", 0, "u16", 1, "middle", 1.0, False), "unknown word order"),
        (("a", 0, "u32", 1, "big", 1.0, False), "1 registers do not fit type u32"),
        (("a", 0, "string", 0, "big", 1.0, False), "0 registers do not fit type string"),
        (("a", 65535, "u32", 2, "big", 1.0, False), "reach past"),
        (("a", 2**64 - 1, "u16", 1, "big", 1.0, False), "reach past"),
        (("a", 0, "u16", 1, "big", math.nan, False), "not a finite number"),
        (("a", 0, "u16", 1, "big", math.inf, False), "not a finite number"),
        (("a", 0, "f32", 2, "big", 1.0, True), "hex format needs an integer type"),
    ],
)
def test_bad_layouts_raise_value_error(value: RegisterLayoutValue, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegisterLayout([value])


def test_malformed_layouts_raise() -> None:
    with pytest.raises(ValueError, match="a: two values with this name"):
        RegisterLayout([("a", 0, "u16", 1, "big", 1.0, False)] * 2)
    with pytest.raises((TypeError, ValueError)):
        RegisterLayout([("a", 0, "u16")])  # type: ignore[list-item]
    with pytest.raises(OverflowError):
        RegisterLayout([("a", -1, "u16", 1, "big", 1.0, False)])
    with pytest.raises(TypeError):
        RegisterLayout(None)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 70000),
            st.sampled_from([t.value for t in RegisterType] + ["x"]),
            st.integers(0, 200),
            st.sampled_from(["big", "little", "?"]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.booleans(),
        ),
        max_size=5,
    ),
    blocks=st.lists(st.lists(st.integers(-5, 70000), max_size=300), max_size=3),
)
def test_garbage_raises_exceptions_never_crashes(
    values: list[RegisterLayoutValue], blocks: list[list[int]]
) -> None:
    try:
        layout = RegisterLayout(values)
    except ValueError:
        return
    for block in blocks:
        with contextlib.suppress(RegisterDecodeError):
            layout.decode(block)
    with contextlib.suppress(RegisterDecodeError):
        layout.decode_many(blocks)
