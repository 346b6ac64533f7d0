"""Encoding and decoding of Modbus register values.

A Modbus register is a 16-bit word sent high byte first (Modbus application protocol §4.2).
Values wider than one register are split over consecutive registers; vendors disagree on the
order of those words, so every codec here takes a `WordOrder` (chargers.md §4: most chargers
are big-endian, Schneider EVlink Pro sends the least significant word first).

Strings carry two ASCII characters per register, high byte first, and end at the first NUL
(Alfen's layout, chargers.md §4); word order does not apply to them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import StrEnum

from gateway.core.charger import ChargerUnavailable

RegisterValue = int | float | str
"""What one decoded register value can be: an integer, a float or an ASCII string."""


class RegisterType(StrEnum):
    """The data types a profile may give a register."""

    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"

    @property
    def is_integer(self) -> bool:
        return self in _INTEGER_TYPES

    @property
    def is_float(self) -> bool:
        return self in (RegisterType.F32, RegisterType.F64)

    @property
    def fixed_register_count(self) -> int | None:
        """Registers one value occupies, or None for strings (the profile gives the count)."""
        return _WIDTH_REGISTERS.get(self)


class WordOrder(StrEnum):
    """Order of the 16-bit words of a multi-register value."""

    BIG = "big"
    """Most significant word first (the Modbus convention; KEBA, ABB, Alfen, Heidelberg)."""
    LITTLE = "little"
    """Least significant word first (Schneider EVlink Pro float32/uint64, chargers.md §3)."""


_INTEGER_TYPES = frozenset(
    {
        RegisterType.U16,
        RegisterType.I16,
        RegisterType.U32,
        RegisterType.I32,
        RegisterType.U64,
        RegisterType.I64,
    }
)
_WIDTH_REGISTERS: dict[RegisterType, int] = {
    RegisterType.U16: 1,
    RegisterType.I16: 1,
    RegisterType.U32: 2,
    RegisterType.I32: 2,
    RegisterType.U64: 4,
    RegisterType.I64: 4,
    RegisterType.F32: 2,
    RegisterType.F64: 4,
}
# struct formats for the big-endian byte image of each numeric type.
_STRUCT_FORMAT: dict[RegisterType, str] = {
    RegisterType.U16: ">H",
    RegisterType.I16: ">h",
    RegisterType.U32: ">I",
    RegisterType.I32: ">i",
    RegisterType.U64: ">Q",
    RegisterType.I64: ">q",
    RegisterType.F32: ">f",
    RegisterType.F64: ">d",
}


class RegisterDecodeError(ChargerUnavailable):
    """A charger answered, but with registers that make no sense (wrong length, a non-ASCII
    string, an unknown state code). It is a `ChargerUnavailable` so that callers that survive an
    unreachable charger survive a babbling one too."""


def register_count(register_type: RegisterType, string_registers: int | None = None) -> int:
    """Number of registers one value of `register_type` occupies."""
    fixed = register_type.fixed_register_count
    if fixed is not None:
        return fixed
    if string_registers is None or string_registers < 1:
        raise ValueError("a string register needs a positive register count")
    return string_registers


def _words_to_bytes(words: Sequence[int], word_order: WordOrder) -> bytes:
    for word in words:
        if not 0 <= word <= 0xFFFF:
            raise RegisterDecodeError(f"register word {word!r} is not a 16-bit value")
    ordered = list(words) if word_order is WordOrder.BIG else list(reversed(words))
    return b"".join(word.to_bytes(2, "big") for word in ordered)


def decode_value(
    words: Sequence[int], register_type: RegisterType, word_order: WordOrder = WordOrder.BIG
) -> RegisterValue:
    """Decode the raw 16-bit words of one value.

    Raises `RegisterDecodeError` when the number of words does not fit the type or a string
    holds anything but printable ASCII.
    """
    if register_type is RegisterType.STRING:
        return _decode_string(words)
    expected = _WIDTH_REGISTERS[register_type]
    if len(words) != expected:
        raise RegisterDecodeError(
            f"{register_type.value} needs {expected} registers, got {len(words)}"
        )
    (value,) = struct.unpack(_STRUCT_FORMAT[register_type], _words_to_bytes(words, word_order))
    return float(value) if register_type.is_float else int(value)


def _decode_string(words: Sequence[int]) -> str:
    raw = _words_to_bytes(words, WordOrder.BIG)
    text = raw.split(b"\x00", 1)[0]
    if any(not 0x20 <= byte <= 0x7E for byte in text):
        raise RegisterDecodeError(f"string registers hold non-printable or non-ASCII bytes {raw!r}")
    return text.decode("ascii")


def encode_value(
    value: RegisterValue,
    register_type: RegisterType,
    word_order: WordOrder = WordOrder.BIG,
    string_registers: int | None = None,
) -> list[int]:
    """Encode one value into raw 16-bit words; the inverse of `decode_value`.

    Raises `ValueError` when the value does not fit the type (out of range, fractional value for
    an integer type, non-ASCII or too long a string).
    """
    if register_type is RegisterType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"string register needs a str, got {value!r}")
        return _encode_string(value, register_count(register_type, string_registers))
    if isinstance(value, str):
        raise ValueError(f"{register_type.value} register needs a number, got {value!r}")
    if register_type.is_integer:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(
                    f"{register_type.value} register needs a whole number, got {value}"
                )
            value = int(value)
        try:
            packed = struct.pack(_STRUCT_FORMAT[register_type], value)
        except struct.error as exc:
            raise ValueError(f"{value} does not fit {register_type.value}") from exc
    else:
        try:
            packed = struct.pack(_STRUCT_FORMAT[register_type], float(value))
        except OverflowError as exc:
            raise ValueError(f"{value} does not fit {register_type.value}") from exc
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words if word_order is WordOrder.BIG else list(reversed(words))


def _encode_string(text: str, registers: int) -> list[int]:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"string {text!r} is not ASCII") from exc
    if len(raw) > registers * 2:
        raise ValueError(f"string {text!r} does not fit {registers} registers")
    raw = raw.ljust(registers * 2, b"\x00")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
