"""Register codecs: every type and word order, against known byte patterns."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.charger import round_down_to_resolution
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterType,
    WordOrder,
    decode_value,
    encode_value,
)

BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE


@pytest.mark.parametrize(
    ("words", "register_type", "word_order", "expected"),
    [
        ([0x1234], RegisterType.U16, BIG, 0x1234),
        ([0xFFFF], RegisterType.I16, BIG, -1),
        ([0x8000], RegisterType.I16, BIG, -32768),
        ([0x0001, 0x0002], RegisterType.U32, BIG, 0x0001_0002),
        ([0x0001, 0x0002], RegisterType.U32, LITTLE, 0x0002_0001),
        ([0xFFFF, 0xFFFE], RegisterType.I32, BIG, -2),
        ([0xFFFE, 0xFFFF], RegisterType.I32, LITTLE, -2),
        ([0x0000, 0x0000, 0x0001, 0x0000], RegisterType.U64, BIG, 0x1_0000),
        ([0x0000, 0x0000, 0x0001, 0x0000], RegisterType.U64, LITTLE, 0x1_0000_0000),
        ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], RegisterType.I64, BIG, -1),
        # IEEE 754: 230.0 = 0x43660000, 16.0 = 0x41800000.
        ([0x4366, 0x0000], RegisterType.F32, BIG, 230.0),
        ([0x0000, 0x4366], RegisterType.F32, LITTLE, 230.0),
        ([0x4180, 0x0000], RegisterType.F32, BIG, 16.0),
        # 1.5 as a double = 0x3FF8000000000000.
        ([0x3FF8, 0x0000, 0x0000, 0x0000], RegisterType.F64, BIG, 1.5),
        ([0x0000, 0x0000, 0x0000, 0x3FF8], RegisterType.F64, LITTLE, 1.5),
        # KEBA 1008: 16 A reported as 16000 mA in a big-endian UINT32.
        ([0x0000, 0x3E80], RegisterType.U32, BIG, 16000),
    ],
)
def test_decode_known_patterns(
    words: list[int], register_type: RegisterType, word_order: WordOrder, expected: float
) -> None:
    assert decode_value(words, register_type, word_order) == expected
    assert encode_value(expected, register_type, word_order) == words


def test_decode_string_two_ascii_characters_per_register_nul_terminated() -> None:
    # "B2" in the high/low bytes, then NUL padding (Alfen's Mode 3 state, chargers.md §3).
    assert decode_value([0x4232, 0x0000, 0x0000], RegisterType.STRING) == "B2"
    assert decode_value([0x4142, 0x4300], RegisterType.STRING) == "ABC"
    assert decode_value([0x0000], RegisterType.STRING) == ""
    assert encode_value("ABC", RegisterType.STRING, string_registers=3) == [0x4142, 0x4300, 0]


@pytest.mark.parametrize("words", [[0xC3A9, 0x0000], [0x4107, 0x0000], [0x41FF]])
def test_decode_string_refuses_non_ascii_and_control_bytes(words: list[int]) -> None:
    with pytest.raises(RegisterDecodeError, match="non-printable or non-ASCII"):
        decode_value(words, RegisterType.STRING)


def test_decode_refuses_wrong_word_count_and_out_of_range_words() -> None:
    with pytest.raises(RegisterDecodeError, match="u32 needs 2 registers, got 1"):
        decode_value([1], RegisterType.U32)
    with pytest.raises(RegisterDecodeError, match="not a 16-bit value"):
        decode_value([0x10000], RegisterType.U16)


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit u16"):
        encode_value(65536, RegisterType.U16)
    with pytest.raises(ValueError, match="does not fit f32"):
        encode_value(1e39, RegisterType.F32)
    with pytest.raises(ValueError, match="whole number"):
        encode_value(1.5, RegisterType.U32)
    with pytest.raises(ValueError, match="not ASCII"):
        encode_value("é", RegisterType.STRING, string_registers=2)
    with pytest.raises(ValueError, match="does not fit 1 registers"):
        encode_value("ABC", RegisterType.STRING, string_registers=1)


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.sampled_from(list(WordOrder)))
def test_i32_round_trips(value: int, word_order: WordOrder) -> None:
    words = encode_value(value, RegisterType.I32, word_order)
    assert decode_value(words, RegisterType.I32, word_order) == value


@given(st.floats(allow_nan=False, width=32), st.sampled_from(list(WordOrder)))
def test_f32_round_trips(value: float, word_order: WordOrder) -> None:
    words = encode_value(value, RegisterType.F32, word_order)
    decoded = decode_value(words, RegisterType.F32, word_order)
    assert decoded == value or (math.isinf(value) and decoded == value)


@pytest.mark.parametrize(
    ("amps", "resolution", "expected"),
    [
        (16.0, 0.1, 16.0),  # float division alone would give 15.9
        (16.09, 0.1, 16.0),
        (6.999, 1.0, 6.0),
        (15.9999, 0.001, 15.999),
        (32.0, 0.5, 32.0),
        (31.99, 0.5, 31.5),
        (0.0, 0.1, 0.0),
    ],
)
def test_round_down_to_resolution(amps: float, resolution: float, expected: float) -> None:
    assert round_down_to_resolution(amps, resolution) == expected
