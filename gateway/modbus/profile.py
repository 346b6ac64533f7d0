"""Charger profiles: what a model's Modbus register map means, loaded from a TOML data file.

A profile says, per register: address (0-based PDU), table, type, word order, scale, unit,
access and the confidence flag from the reference (D, V, U). It maps the vendor's state
registers to an IEC 61851 `CpState`, names the registers that carry the setpoint, enable,
failsafe current and watchdog, and gives the request rules for the model.

Registers whose names are in `READING_ROLES` feed the `ChargerReading`; any other register is
informational (serial number, firmware) and read only on request. Shipped profiles live in
`gateway/modbus/profiles/<name>.toml`; see `generic.toml` for a fully commented example of
every key, including the ones no generic charger needs:

- state registers that hold strings (Alfen's Mode 3 state "C2") or a bit field of an integer
  register (ABB 0x400C: `[state.bits]`), and rules that match "any value but" (`{ not = [0] }`);
- a register on another unit id than the charger's (`unit_id`, Alfen's station on unit 200);
- an energy register that restarts with every session (`counter = "session"`, ABB);
- 1p/3p phase switching (`[writes.phases]`), start-up writes (`[writes.startup]`), a keep-alive
  for chargers whose watchdog time is set outside the gateway (`[writes.keep_alive]`);
- vendor fault codes as OCPP 1.6 ChargePointErrorCodes (`[errors]`);
- the least gap between two requests (`[requests] min_gap_s`, Heidelberg).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway._core import RegisterLayout
from gateway.core.charger import CpState, OcppErrorCode
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterType,
    RegisterValue,
    WordOrder,
    encode_value,
    register_count,
)

MAX_REGISTERS_PER_READ = 125
"""Modbus application protocol §6.3: a read of holding/input registers returns at most 125."""


class ProfileError(ValueError):
    """A profile file is malformed. The message names the file, the key and the problem."""


class RegisterTable(StrEnum):
    HOLDING = "holding"
    """Holding registers: read with function code 3, written with 6 or 16."""
    INPUT = "input"
    """Input registers: read-only, read with function code 4."""


class Confidence(StrEnum):
    """How far a register's meaning is established (chargers.md, "Confidence flags")."""

    DRIVER = "D"
    """Used by an open-source driver (evcc, OpenEMS)."""
    VENDOR = "V"
    """From a vendor document or its transcription."""
    UNVERIFIED = "U"
    """Weak or conflicting source: check on hardware first."""


class Access(StrEnum):
    READ = "r"
    WRITE = "w"
    READ_WRITE = "rw"

    @property
    def readable(self) -> bool:
        return self is not Access.WRITE

    @property
    def writable(self) -> bool:
        return self is not Access.READ


class PauseMode(StrEnum):
    """How a 0 A limit is carried out."""

    WRITE_ZERO = "write_zero"
    """Write 0 to the current register."""
    DISABLE = "disable"
    """The current register does not accept 0 (KEBA 5004: 6000-63000 mA): disable instead."""


class WatchdogRefresh(StrEnum):
    """What the driver writes to keep the charger's watchdog from expiring."""

    TIMEOUT = "timeout"
    """Rewrite the watchdog timeout register (evcc's KEBA keep-alive, chargers.md §5)."""
    SETPOINT = "setpoint"
    """Rewrite the current setpoint (any write restarts the watchdog; Alfen: a 1210 write
    within the validity time)."""


class EnergyCounter(StrEnum):
    """What the `energy` register counts."""

    LIFETIME = "lifetime"
    """Lifetime import: a session's energy is the difference of two readings."""
    SESSION = "session"
    """Energy of the current session, restarting at 0 with the next one (ABB 0x401E): the
    driver adds the sessions up into a counter that only grows while it runs."""


StateValue = int | str
"""A state register's value as rules see it: an integer (after `[state.bits]`) or a string."""


READING_ROLES: Mapping[str, str | None] = MappingProxyType(
    {
        "current_l1": "A",
        "current_l2": "A",
        "current_l3": "A",
        "voltage_l1": "V",
        "voltage_l2": "V",
        "voltage_l3": "V",
        "power": "W",
        "energy": "Wh",
        "offered_current": "A",
        "enabled": None,
        "rfid": None,
        "error_code": None,
    }
)
"""Register names with a fixed meaning in a `ChargerReading`, with the unit each must have."""

REQUIRED_READING_ROLES = ("current_l1", "current_l2", "current_l3", "power", "energy")

SIMULATED_STATES_REQUIRED = (CpState.A, CpState.B1, CpState.C2, CpState.F)
"""States every profile must be able to encode, so the simulator can play an EV session."""


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One value in a charger's register map."""

    name: str
    address: int
    table: RegisterTable
    type: RegisterType
    count: int
    """Registers the value occupies (fixed by the type, except for strings)."""
    word_order: WordOrder
    scale: float
    """Engineering value = raw value x scale."""
    unit: str
    confidence: Confidence
    access: Access
    format: str | None = None
    """"hex": show an integer as lowercase hex, zero-padded to its byte width (RFID tags)."""
    sim_value: RegisterValue | None = None
    """A constant the simulator serves for an informational register (after scaling)."""
    description: str = ""
    unit_id: int | None = None
    """The unit id this register lives on when it is not the charger's own (Alfen: station
    registers on unit 200, socket registers on the socket's unit 1 or 2)."""
    counter: EnergyCounter = EnergyCounter.LIFETIME
    """For the `energy` register: lifetime or per-session counter."""

    @property
    def end(self) -> int:
        """The address just past this value."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class StateCondition:
    """A state register's value is (or, with `negate`, is not) one of `values`."""

    register: str
    values: frozenset[StateValue]
    negate: bool = False

    def holds(self, value: StateValue) -> bool:
        return (value in self.values) != self.negate


@dataclass(frozen=True, slots=True)
class StateRule:
    """Maps the state registers to a `CpState` when every condition holds."""

    conditions: tuple[StateCondition, ...]
    cp_state: CpState

    def matches(self, values: Mapping[str, StateValue]) -> bool:
        return all(condition.holds(values[condition.register]) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class BitField:
    """The part of an integer register a state rule looks at: (raw >> shift) & mask."""

    shift: int
    mask: int

    def extract(self, raw: int) -> int:
        return (raw >> self.shift) & self.mask

    def insert(self, value: int) -> int:
        """The raw register value with this field set to `value` and every other bit 0."""
        return (value & self.mask) << self.shift


@dataclass(frozen=True, slots=True)
class StateMapping:
    registers: tuple[str, ...]
    rules: tuple[StateRule, ...]
    encode: Mapping[CpState, Mapping[str, StateValue]]
    """State-register values that represent each state (used by the simulator), as the rules
    see them (bit fields extracted)."""
    known: Mapping[str, frozenset[StateValue]] = field(default_factory=lambda: MappingProxyType({}))
    """Every valid code of a state register, where the profile lists them."""
    bits: Mapping[str, BitField] = field(default_factory=lambda: MappingProxyType({}))
    """State registers of which the rules see only a bit field."""

    def value(self, name: str, register_value: RegisterValue) -> StateValue:
        """What the rules see of a state register's decoded value (its bit field, if any)."""
        if isinstance(register_value, str):
            return register_value
        raw = int(register_value)
        bit_field = self.bits.get(name)
        return bit_field.extract(raw) if bit_field is not None else raw

    def register_value(self, name: str, value: StateValue) -> RegisterValue:
        """The register value that carries the rules' `value` (inverse of `value`)."""
        bit_field = self.bits.get(name)
        if bit_field is not None and isinstance(value, int):
            return bit_field.insert(value)
        return value

    def decode(self, values: Mapping[str, StateValue]) -> CpState:
        """The `CpState` for these state-register values; first matching rule wins.

        Raises `RegisterDecodeError` when a value is not a known code or no rule matches.
        """
        for name, codes in self.known.items():
            if values[name] not in codes:
                raise RegisterDecodeError(f"unknown state code {name}={values[name]!r}")
        for rule in self.rules:
            if rule.matches(values):
                return rule.cp_state
        shown = ", ".join(f"{name}={values[name]!r}" for name in self.registers)
        raise RegisterDecodeError(f"unknown state code ({shown})")


@dataclass(frozen=True, slots=True)
class CurrentWrite:
    """A writable current register (setpoint or failsafe current)."""

    register: str
    resolution_a: float
    """Commands are rounded down to a multiple of this (chargers.md §4)."""
    min_a: float
    """Smallest non-zero current the charger accepts; 6 A is the pilot's floor (§1)."""
    max_a: float
    pause: PauseMode = PauseMode.WRITE_ZERO


@dataclass(frozen=True, slots=True)
class EnableWrite:
    register: str
    on_value: int
    off_value: int


@dataclass(frozen=True, slots=True)
class WatchdogWrite:
    """The watchdog timeout register, in seconds; 0 switches the watchdog off."""

    register: str
    min_s: int
    max_s: int
    refresh: WatchdogRefresh


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A keep-alive for a charger whose watchdog time is not the gateway's to set (Alfen's
    validity time is set in the service app): refresh every `interval_s`."""

    refresh: WatchdogRefresh
    interval_s: float
    charger_timeout_s: float
    """The timeout the charger applies (its documented default); the simulator applies it,
    and `interval_s` must be at most half of it (chargers.md §5: refresh well inside)."""
    fallback_current: str | None = None
    """A readable register with the current the charger falls back to (Alfen 1212)."""


@dataclass(frozen=True, slots=True)
class PhaseWrite:
    """1p/3p switching: write `one_phase` or `three_phases` to `register`."""

    register: str
    one_phase: int
    three_phases: int
    readback: str | None = None
    """A readable register holding the same values for the phases in force, if any."""

    def value(self, phases: int) -> int:
        return self.one_phase if phases == 1 else self.three_phases

    def phases(self, value: int) -> int | None:
        """The phases a readback value means; None for any other value."""
        return {self.one_phase: 1, self.three_phases: 3}.get(value)


@dataclass(frozen=True, slots=True)
class StartupWrite:
    """A value a model needs written once per connection or after a reboot (Heidelberg:
    standby off, remote lock open)."""

    register: str
    value: float
    """Engineering value (raw x scale)."""


@dataclass(frozen=True, slots=True)
class RequestRules:
    one_value_per_read: bool
    """True when reads may not span value boundaries (KEBA, chargers.md §3)."""
    max_registers_per_read: int
    """Upper bound of one read request, at most 125 (Modbus application protocol §6.3)."""
    min_gap_s: float = 0.0
    """Least time between the end of one request and the start of the next on the bus
    (Heidelberg: 100 ms, after evcc). Carried for the link; the profile does not enforce it."""


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One planned read: `count` registers from `address` of `table`, covering `registers`."""

    table: RegisterTable
    address: int
    count: int
    registers: tuple[RegisterSpec, ...]
    unit_id: int | None = None
    """The unit id to ask, when not the charger's own."""

    def layout(self) -> RegisterLayout:
        """The compiled decoder for this request's answer (Rust, `gateway._core`): 20-28x
        cheaper than decoding value by value in Python and 2x cheaper than one struct.unpack
        per block (benches/bench_registers.py), with the same results and errors."""
        return RegisterLayout(
            (
                spec.name,
                spec.address - self.address,
                spec.type.value,
                spec.count,
                spec.word_order.value,
                spec.scale,
                spec.format == "hex",
            )
            for spec in self.registers
        )

    def decode(self, words: Sequence[int], layout: RegisterLayout | None = None) -> dict[str, Any]:
        """Decode this request's answer into engineering values by register name. Raises
        `RegisterDecodeError` naming the register, its table and address."""
        try:
            return (layout or self.layout()).decode(words)
        except RegisterDecodeError as exc:
            message = str(exc)
            for spec in self.registers:
                # The decoder's message starts with the value's name: add where it lives.
                if message.startswith(f"{spec.name}: "):
                    problem = message[len(spec.name) + 2 :]
                    where = f"{spec.table.value} {spec.address}"
                    raise RegisterDecodeError(f"{spec.name} ({where}): {problem}") from exc
            where = f"{self.table.value} {self.address}..{self.address + self.count - 1}"
            raise RegisterDecodeError(f"{message} ({where})") from exc


@dataclass(frozen=True, slots=True)
class ChargerProfile:
    """A charger model's register map and behaviour, as loaded from its profile file."""

    name: str
    description: str
    source: str
    file: str
    default_unit_id: int
    registers: Mapping[str, RegisterSpec]
    state: StateMapping
    current: CurrentWrite
    enable: EnableWrite | None
    failsafe_current: CurrentWrite | None
    watchdog: WatchdogWrite | None
    requests: RequestRules
    keep_alive: KeepAlive | None = None
    phases: PhaseWrite | None = None
    startup: tuple[StartupWrite, ...] = ()
    errors: Mapping[int, OcppErrorCode] = field(default_factory=lambda: MappingProxyType({}))
    """Vendor fault code -> OCPP 1.6 ChargePointErrorCode; other non-zero codes: OtherError."""

    def ocpp_error_code(self, vendor_code: int, cp_state: CpState) -> OcppErrorCode:
        """The OCPP 1.6 error code for a vendor fault code (0 = none) in `cp_state`."""
        if vendor_code != 0:
            return self.errors.get(vendor_code, OcppErrorCode.OTHER_ERROR)
        return OcppErrorCode.OTHER_ERROR if cp_state.faulted else OcppErrorCode.NO_ERROR

    @property
    def reading_registers(self) -> tuple[RegisterSpec, ...]:
        """Registers a poll reads: the state registers and every reading role present."""
        names = list(self.state.registers)
        names += [name for name in READING_ROLES if name in self.registers and name not in names]
        return tuple(self.registers[name] for name in names)

    def plan_reads(self, registers: Iterable[RegisterSpec]) -> tuple[ReadRequest, ...]:
        """Group `registers` into as few read requests as the request rules allow (see
        the module-level `plan_reads`)."""
        return plan_reads(registers, self.requests)


def plan_reads(registers: Iterable[RegisterSpec], rules: RequestRules) -> tuple[ReadRequest, ...]:
    """Group `registers` into as few read requests as the request rules allow.

    With `one_value_per_read` every value is its own request. Otherwise values that are
    contiguous in the same table and on the same unit id share a request of at most
    `max_registers_per_read` registers; gaps are never bridged, since unmapped addresses
    may answer with an exception.
    """
    ordered = sorted(
        set(registers),
        key=lambda spec: (
            -1 if spec.unit_id is None else spec.unit_id,
            spec.table,
            spec.address,
        ),
    )
    requests: list[ReadRequest] = []
    group: list[RegisterSpec] = []

    def flush() -> None:
        if group:
            start = group[0].address
            requests.append(
                ReadRequest(
                    group[0].table,
                    start,
                    group[-1].end - start,
                    tuple(group),
                    group[0].unit_id,
                )
            )
            group.clear()

    for spec in ordered:
        if group and (
            rules.one_value_per_read
            or spec.table is not group[0].table
            or spec.unit_id != group[0].unit_id
            or spec.address != group[-1].end
            or spec.end - group[0].address > rules.max_registers_per_read
        ):
            flush()
        group.append(spec)
    flush()
    return tuple(requests)


def shipped_names(package: str) -> list[str]:
    """Names of the profile files shipped in `package`'s `profiles` folder."""
    folder = resources.files(package) / "profiles"
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def read_profile_file(package: str, kind: str, name_or_path: str | Path) -> tuple[str, str]:
    """The text and file name of a profile: a shipped one by name (a bare name without
    `.toml`, looked up in `package`'s `profiles` folder) or any file by path. Raises
    `FileNotFoundError` naming the shipped `kind` profiles when there is no such name."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and path.suffix != ".toml" and len(path.parts) == 1:
        resource = resources.files(package) / "profiles" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise FileNotFoundError(
                f"no {kind} profile named {name_or_path!r};"
                f" shipped: {', '.join(shipped_names(package))}"
            )
        return resource.read_text(encoding="utf-8"), f"{name_or_path}.toml"
    return path.read_text(encoding="utf-8"), path.name


def profile_names() -> list[str]:
    """Names of the charger profiles shipped with the package."""
    return shipped_names("gateway.modbus")


def load_profile(name_or_path: str | Path) -> ChargerProfile:
    """Load a shipped profile by name (`"keba-p30"`) or any profile file by path.

    Raises `ProfileError` naming the file, the key and the problem when the file is
    malformed, and `FileNotFoundError` when there is no such profile.
    """
    text, file_name = read_profile_file("gateway.modbus", "charger", name_or_path)
    return parse_profile(text, file_name)


def parse_profile(text: str, file_name: str) -> ChargerProfile:
    """Parse and check a profile from TOML text; `file_name` appears in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file_name}: not valid TOML: {exc}") from exc
    return _ProfileParser(file_name).parse(document)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The `[device]` table of a profile."""

    name: str
    description: str
    source: str
    default_unit_id: int


class RegisterTableParser:
    """The `[device]`, `[requests]` and `[registers.*]` tables of a profile document, with the
    checks and error messages of a charger profile, for other register-map files (meters).
    Call `device()`, `requests()`, `registers()`, then `finish()` to refuse unknown keys."""

    def __init__(self, file_name: str, document: Mapping[str, Any]) -> None:
        self._parser = _ProfileParser(file_name)
        self._root = _Table(file_name, "", document)

    def device(self) -> DeviceInfo:
        return self._parser.device(self._root)

    def requests(self) -> RequestRules:
        return self._parser._requests(self._root.table("requests", required=False))

    def registers(self) -> dict[str, RegisterSpec]:
        table = self._root.table("registers")
        assert table is not None
        registers = self._parser._registers(table)
        self._parser._check_overlaps(table, registers)
        return registers

    def finish(self) -> None:
        self._root.finish()


def register_table_parser(file_name: str, document: Mapping[str, Any]) -> RegisterTableParser:
    """A parser of the register tables of `document` (see `RegisterTableParser`)."""
    return RegisterTableParser(file_name, document)


class _Table:
    """A TOML table being consumed; reports problems with the file name and the key path."""

    def __init__(self, file_name: str, path: str, data: Mapping[str, Any]) -> None:
        self.file_name = file_name
        self.path = path
        self.data = dict(data)
        self.used: set[str] = set()

    def key_path(self, key: str) -> str:
        if not key:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.file_name}: {self.key_path(key)}: {problem}")

    def _take(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "is required")
            return None
        return self.data[key]

    def string(self, key: str, default: str | None = None) -> str:
        value = self._take(key, default is None)
        if value is None:
            assert default is not None
            return default
        if not isinstance(value, str):
            raise self.error(key, f"{value!r} is not a string")
        return value

    def choice(self, key: str, allowed: Iterable[str], default: str | None = None) -> str:
        options = list(allowed)
        value = self.string(key, default)
        if value not in options:
            raise self.error(key, f"{value!r} is not one of {', '.join(options)}")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self._take(key, default is None)
        if value is None:
            assert default is not None
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"{value!r} is not an integer")
        if not low <= value <= high:
            raise self.error(key, f"{value} is outside {low}..{high}")
        return value

    def number(self, key: str, default: float | None = None, positive: bool = False) -> float:
        value = self._take(key, default is None)
        if value is None:
            assert default is not None
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"{value!r} is not a number")
        if not math.isfinite(value) or (positive and value <= 0):
            raise self.error(key, f"{value!r} must be a {'positive ' if positive else ''}number")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"{value!r} is not true or false")
        return value

    def table(self, key: str, required: bool = True) -> _Table | None:
        value = self._take(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return _Table(self.file_name, self.key_path(key), value)

    def raw(self, key: str, required: bool = False) -> Any:
        return self._take(key, required)

    def finish(self) -> None:
        """Refuse keys nobody asked for: a typo must not silently drop a setting."""
        for key in self.data:
            if key not in self.used:
                raise self.error(key, "unknown key")


class _ProfileParser:
    def __init__(self, file_name: str) -> None:
        self.file_name = file_name

    def device(self, root: _Table) -> DeviceInfo:
        device = root.table("device")
        assert device is not None
        info = DeviceInfo(
            name=device.string("name"),
            description=device.string("description", ""),
            source=device.string("source", ""),
            default_unit_id=device.integer("default_unit_id", 0, 255, default=1),
        )
        device.finish()
        return info

    def parse(self, document: Mapping[str, Any]) -> ChargerProfile:
        root = _Table(self.file_name, "", document)
        info = self.device(root)
        name, description, source = info.name, info.description, info.source
        default_unit_id = info.default_unit_id

        requests_table = root.table("requests", required=False)
        requests = self._requests(requests_table)

        registers_table = root.table("registers")
        assert registers_table is not None
        registers = self._registers(registers_table)
        self._check_overlaps(registers_table, registers)
        self._check_roles(registers_table, registers)

        state_table = root.table("state")
        assert state_table is not None
        state = self._state(state_table, registers)

        writes = root.table("writes")
        assert writes is not None
        current_table = writes.table("current")
        assert current_table is not None
        current = self._current_write(current_table, registers, with_pause=True)
        enable_table = writes.table("enable", required=False)
        enable = self._enable_write(enable_table, registers) if enable_table else None
        failsafe_table = writes.table("failsafe_current", required=False)
        failsafe = (
            self._current_write(failsafe_table, registers, with_pause=False)
            if failsafe_table
            else None
        )
        watchdog_table = writes.table("watchdog_timeout", required=False)
        watchdog = self._watchdog_write(watchdog_table, registers) if watchdog_table else None
        keep_alive_table = writes.table("keep_alive", required=False)
        keep_alive = None
        if keep_alive_table is not None:
            if watchdog is not None:
                raise writes.error(
                    "keep_alive",
                    "conflicts with [writes.watchdog_timeout]: with a watchdog register the "
                    "keep-alive period follows the timeout the gateway programs",
                )
            keep_alive = self._keep_alive(keep_alive_table, registers)
        phases_table = writes.table("phases", required=False)
        phases = self._phase_write(phases_table, registers) if phases_table else None
        controlled = {current.register}
        controlled.update(
            write.register for write in (enable, failsafe, watchdog, phases) if write is not None
        )
        startup_table = writes.table("startup", required=False)
        startup = self._startup(startup_table, registers, controlled) if startup_table else ()
        writes.finish()
        if current.pause is PauseMode.DISABLE and enable is None:
            raise writes.error("current.pause", "'disable' needs a [writes.enable] table")
        errors_table = root.table("errors", required=False)
        errors = self._errors(errors_table, registers) if errors_table else {}
        root.finish()
        return ChargerProfile(
            name=name,
            description=description,
            source=source,
            file=self.file_name,
            default_unit_id=default_unit_id,
            registers=MappingProxyType(registers),
            state=state,
            current=current,
            enable=enable,
            failsafe_current=failsafe,
            watchdog=watchdog,
            requests=requests,
            keep_alive=keep_alive,
            phases=phases,
            startup=startup,
            errors=MappingProxyType(errors),
        )

    def _requests(self, table: _Table | None) -> RequestRules:
        if table is None:
            return RequestRules(False, MAX_REGISTERS_PER_READ)
        rules = RequestRules(
            one_value_per_read=table.boolean("one_value_per_read", False),
            max_registers_per_read=table.integer(
                "max_registers_per_read", 1, MAX_REGISTERS_PER_READ, default=MAX_REGISTERS_PER_READ
            ),
            min_gap_s=self._min_gap(table),
        )
        table.finish()
        return rules

    def _min_gap(self, table: _Table) -> float:
        if "min_gap_s" not in table.data:
            table.raw("min_gap_s")
            return 0.0
        gap = table.number("min_gap_s")
        if not 0 <= gap <= 10:
            raise table.error("min_gap_s", f"{gap} is outside 0..10 s")
        return gap

    def _registers(self, table: _Table) -> dict[str, RegisterSpec]:
        registers: dict[str, RegisterSpec] = {}
        for name in list(table.data):
            spec_table = table.table(name)
            assert spec_table is not None
            registers[name] = self._register(name, spec_table)
        if not registers:
            raise ProfileError(f"{self.file_name}: registers: no registers defined")
        return registers

    def _register(self, name: str, table: _Table) -> RegisterSpec:
        register_type = RegisterType(table.choice("type", [t.value for t in RegisterType]))
        if register_type is RegisterType.STRING:
            count = table.integer("count", 1, MAX_REGISTERS_PER_READ)
        else:
            if "count" in table.data:
                raise table.error(
                    "count", f"only string registers take a count, not {register_type.value}"
                )
            count = register_count(register_type)
        address = table.integer("address", 0, 0xFFFF)
        if address + count > 0x10000:
            raise table.error("address", f"{address} + {count} registers runs past 65535")
        access = Access(table.choice("access", [a.value for a in Access], default="r"))
        table_name = RegisterTable(
            table.choice("table", [t.value for t in RegisterTable], default="holding")
        )
        if table_name is RegisterTable.INPUT and access.writable:
            raise table.error("access", "input registers cannot be written")
        value_format = table.raw("format")
        if value_format is not None and (value_format != "hex" or not register_type.is_integer):
            raise table.error("format", f"{value_format!r}: only 'hex' on integer registers")
        scale = table.number("scale", 1.0, positive=True)
        if register_type is RegisterType.STRING and scale != 1.0:
            raise table.error("scale", "a string register cannot be scaled")
        sim_value = table.raw("sim_value")
        if sim_value is not None and (
            isinstance(sim_value, bool) or not isinstance(sim_value, int | float | str)
        ):
            raise table.error("sim_value", f"{sim_value!r} is not a number or string")
        spec = RegisterSpec(
            name=name,
            address=address,
            table=table_name,
            type=register_type,
            count=count,
            word_order=WordOrder(
                table.choice("word_order", [w.value for w in WordOrder], default="big")
            ),
            scale=scale,
            unit=table.string("unit", ""),
            confidence=Confidence(table.choice("confidence", [c.value for c in Confidence])),
            access=access,
            format=value_format,
            sim_value=sim_value,
            description=table.string("description", ""),
            unit_id=self._unit_id(table),
            counter=EnergyCounter(
                table.choice("counter", [c.value for c in EnergyCounter], default="lifetime")
            ),
        )
        if spec.counter is not EnergyCounter.LIFETIME and name != "energy":
            raise table.error("counter", "only the energy register takes a counter kind")
        table.finish()
        return spec

    def _unit_id(self, table: _Table) -> int | None:
        if "unit_id" not in table.data:
            table.raw("unit_id")
            return None
        return table.integer("unit_id", 0, 255)

    def _check_overlaps(self, table: _Table, registers: Mapping[str, RegisterSpec]) -> None:
        ordered = sorted(registers.values(), key=lambda spec: (spec.table, spec.address))
        for before, after in itertools.pairwise(ordered):
            if before.table is after.table and after.address < before.end:
                raise table.error(
                    after.name,
                    f"address {after.address} overlaps {before.name} "
                    f"({before.address}..{before.end - 1}, {before.table.value})",
                )

    def _check_roles(self, table: _Table, registers: Mapping[str, RegisterSpec]) -> None:
        for role in REQUIRED_READING_ROLES:
            if role not in registers:
                raise table.error(role, "is required (every profile reports it)")
        for role, unit in READING_ROLES.items():
            spec = registers.get(role)
            if spec is None:
                continue
            if not spec.access.readable:
                raise table.error(f"{role}.access", "a reading register must be readable")
            if unit is not None and spec.unit != unit:
                raise table.error(f"{role}.unit", f"{spec.unit!r} must be {unit!r} after scaling")
            if unit is not None and spec.type is RegisterType.STRING:
                raise table.error(f"{role}.type", "a measurement cannot be a string")
        for role in ("enabled", "error_code"):
            spec = registers.get(role)
            if spec is not None and not spec.type.is_integer:
                raise table.error(f"{role}.type", f"{spec.type.value!r} must be an integer type")

    def _state(self, table: _Table, registers: Mapping[str, RegisterSpec]) -> StateMapping:
        names = table.raw("registers", required=True)
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(name, str) for name in names)
        ):
            raise table.error("registers", "must be a non-empty list of register names")
        for name in names:
            spec = registers.get(name)
            if spec is None:
                raise table.error("registers", f"{name!r} is not a register in [registers]")
            if spec.type.is_float or not spec.access.readable:
                raise table.error(
                    "registers", f"{name!r} must be a readable integer or string register"
                )
        bits = self._state_bits(table, names, registers)
        string_registers = {name for name in names if registers[name].type is RegisterType.STRING}

        def check_value(where: _Table, name: str, value: Any, shown: Any) -> StateValue:
            """A state value of the right kind for register `name`, or a ProfileError."""
            if name in string_registers:
                if not isinstance(value, str):
                    raise where.error(
                        name, f"{shown!r}: {name} is a string register, compare with strings"
                    )
                return value
            if isinstance(value, bool) or not isinstance(value, int):
                raise where.error(name, f"{shown!r} must be an integer or a list")
            bit_field = bits.get(name)
            if bit_field is not None and not 0 <= value <= bit_field.mask:
                raise where.error(
                    name, f"{value} does not fit the bit field (mask {bit_field.mask:#x})"
                )
            return value

        rules_raw = table.raw("rules", required=True)
        if not isinstance(rules_raw, list) or not rules_raw:
            raise table.error("rules", "must be a non-empty list of {when = {...}, state = ...}")
        rules: list[StateRule] = []
        for index, rule_raw in enumerate(rules_raw):
            if not isinstance(rule_raw, dict):
                raise table.error(f"rules[{index}]", "must be a table")
            rule_table = _Table(self.file_name, table.key_path(f"rules[{index}]"), rule_raw)
            cp_state = CpState(rule_table.choice("state", [s.value for s in CpState]))
            when = rule_table.table("when")
            assert when is not None
            conditions: list[StateCondition] = []
            for register_name in list(when.data):
                if register_name not in names:
                    raise when.error(register_name, "is not one of [state] registers")
                allowed = when.raw(register_name)
                negate = False
                if isinstance(allowed, dict):
                    if set(allowed) != {"not"}:
                        raise when.error(
                            register_name, f"{allowed!r}: a table here takes only 'not'"
                        )
                    negate = True
                    allowed = allowed["not"]
                options = allowed if isinstance(allowed, list) else [allowed]
                if not options:
                    raise when.error(register_name, "an empty list matches nothing")
                matched = frozenset(
                    check_value(when, register_name, option, allowed) for option in options
                )
                conditions.append(StateCondition(register_name, matched, negate))
            if not conditions:
                raise when.error("", "a rule needs at least one condition")
            when.finish()
            rule_table.finish()
            rules.append(StateRule(tuple(conditions), cp_state))

        known: dict[str, frozenset[StateValue]] = {}
        known_table = table.table("known", required=False)
        if known_table is not None:
            for register_name in list(known_table.data):
                if register_name not in names:
                    raise known_table.error(register_name, "is not one of [state] registers")
                codes = known_table.raw(register_name)
                if not isinstance(codes, list) or not codes:
                    raise known_table.error(register_name, "must be a non-empty list of codes")
                known[register_name] = frozenset(
                    check_value(known_table, register_name, code, codes) for code in codes
                )
            known_table.finish()
        for rule in rules:
            for condition in rule.conditions:
                stray = condition.values - known.get(condition.register, condition.values)
                if stray:
                    raise table.error(
                        f"known.{condition.register}",
                        f"misses codes used in rules: {sorted(stray, key=str)}",
                    )

        encode_table = table.table("encode")
        assert encode_table is not None
        encode: dict[CpState, Mapping[str, StateValue]] = {}
        mapping = StateMapping(
            tuple(names),
            tuple(rules),
            MappingProxyType(encode),
            MappingProxyType(known),
            MappingProxyType(bits),
        )
        for key in list(encode_table.data):
            if key not in CpState.__members__:
                raise encode_table.error(key, f"{key!r} is not an IEC 61851 state")
            values_table = encode_table.table(key)
            assert values_table is not None
            values: dict[str, StateValue] = {}
            for name in names:
                raw_value = values_table.raw(name, required=True)
                if name not in string_registers and isinstance(raw_value, int):
                    values_table.integer(name, 0, 2**63)
                values[name] = check_value(values_table, name, raw_value, raw_value)
            values_table.finish()
            try:
                decoded = mapping.decode(values)
            except RegisterDecodeError as exc:
                raise encode_table.error(key, f"{values} matches no rule") from exc
            if decoded is not CpState(key):
                raise encode_table.error(key, f"{values} decodes to {decoded.value}, not {key}")
            encode[CpState(key)] = MappingProxyType(values)
        for required in SIMULATED_STATES_REQUIRED:
            if required not in encode:
                raise encode_table.error(required.value, "is required (the simulator needs it)")
        encode_table.finish()
        table.finish()
        return mapping

    def _state_bits(
        self, table: _Table, names: list[str], registers: Mapping[str, RegisterSpec]
    ) -> dict[str, BitField]:
        bits: dict[str, BitField] = {}
        bits_table = table.table("bits", required=False)
        if bits_table is None:
            return bits
        for name in list(bits_table.data):
            if name not in names:
                raise bits_table.error(name, "is not one of [state] registers")
            spec = registers[name]
            field_table = bits_table.table(name)
            assert field_table is not None
            if not spec.type.is_integer:
                raise bits_table.error(
                    name, f"is a {spec.type.value} register: only integer registers have bits"
                )
            width = 16 * spec.count
            shift = field_table.integer("shift", 0, width - 1)
            mask = field_table.integer("mask", 1, 2**width - 1)
            if mask << shift >= 2**width:
                field_table.finish()
                raise field_table.error(
                    "mask", f"{mask:#x} << {shift} runs past the register's {width} bits"
                )
            field_table.finish()
            bits[name] = BitField(shift, mask)
        bits_table.finish()
        return bits

    def _writable(self, table: _Table, key: str, registers: Mapping[str, RegisterSpec]) -> str:
        name = table.string(key)
        spec = registers.get(name)
        if spec is None:
            raise table.error(key, f"{name!r} is not a register in [registers]")
        if not spec.access.writable:
            raise table.error(key, f"{name!r} is not writable (access = {spec.access.value!r})")
        if spec.type is RegisterType.STRING:
            raise table.error(key, f"{name!r} is a string register")
        return name

    def _current_write(
        self, table: _Table, registers: Mapping[str, RegisterSpec], with_pause: bool
    ) -> CurrentWrite:
        name = self._writable(table, "register", registers)
        spec = registers[name]
        if spec.unit != "A":
            raise table.error("register", f"{name!r} has unit {spec.unit!r}, needs 'A'")
        resolution = table.number("resolution", spec.scale, positive=True)
        if spec.type.is_integer and not _is_multiple(resolution, spec.scale):
            raise table.error(
                "resolution", f"{resolution} is not a multiple of the register scale {spec.scale}"
            )
        minimum = table.number("min", 6.0, positive=True)
        maximum = table.number("max", positive=True)
        if maximum < minimum:
            raise table.error("max", f"{maximum} is below min {minimum}")
        pause = PauseMode.WRITE_ZERO
        if with_pause:
            pause = PauseMode(table.choice("pause", [p.value for p in PauseMode], "write_zero"))
        table.finish()
        return CurrentWrite(name, resolution, minimum, maximum, pause)

    def _enable_write(self, table: _Table, registers: Mapping[str, RegisterSpec]) -> EnableWrite:
        write = EnableWrite(
            register=self._writable(table, "register", registers),
            on_value=table.integer("on", 0, 0xFFFF, default=1),
            off_value=table.integer("off", 0, 0xFFFF, default=0),
        )
        if write.on_value == write.off_value:
            raise table.error("off", "must differ from on")
        table.finish()
        return write

    def _watchdog_write(
        self, table: _Table, registers: Mapping[str, RegisterSpec]
    ) -> WatchdogWrite:
        name = self._writable(table, "register", registers)
        if registers[name].unit != "s":
            raise table.error("register", f"{name!r} has unit {registers[name].unit!r}, needs 's'")
        minimum = table.integer("min", 1, 0xFFFF)
        write = WatchdogWrite(
            register=name,
            min_s=minimum,
            max_s=table.integer("max", minimum, 0xFFFFFFFF),
            refresh=WatchdogRefresh(
                table.choice("refresh", [r.value for r in WatchdogRefresh], "timeout")
            ),
        )
        table.finish()
        return write

    def _keep_alive(self, table: _Table, registers: Mapping[str, RegisterSpec]) -> KeepAlive:
        refresh = table.choice("refresh", [WatchdogRefresh.SETPOINT.value], "setpoint")
        timeout = table.number("charger_timeout_s", positive=True)
        interval = table.number("interval_s", positive=True)
        if interval > timeout / 2:
            raise table.error(
                "interval_s",
                f"{interval} s is more than half the charger's timeout of {timeout} s "
                "(refresh well inside the timeout, chargers.md §5)",
            )
        fallback = None
        if "fallback_current" in table.data:
            fallback = table.string("fallback_current")
            spec = registers.get(fallback)
            if spec is None:
                raise table.error(
                    "fallback_current", f"{fallback!r} is not a register in [registers]"
                )
            if not spec.access.readable or spec.unit != "A":
                raise table.error(
                    "fallback_current", f"{fallback!r} must be a readable register in 'A'"
                )
        else:
            table.raw("fallback_current")
        table.finish()
        return KeepAlive(WatchdogRefresh(refresh), interval, timeout, fallback)

    def _phase_write(self, table: _Table, registers: Mapping[str, RegisterSpec]) -> PhaseWrite:
        name = self._writable(table, "register", registers)
        spec = registers[name]
        if not spec.type.is_integer:
            raise table.error("register", f"{name!r} must be an integer register")
        high = 2 ** (16 * spec.count) - 1
        one = table.integer("one_phase", 0, high)
        three = table.integer("three_phases", 0, high)
        if one == three:
            raise table.error("three_phases", f"{three} is also the value for one phase")
        readback = None
        if "readback" in table.data:
            readback = table.string("readback")
            back = registers.get(readback)
            if back is None:
                raise table.error("readback", f"{readback!r} is not a register in [registers]")
            if not back.access.readable or not back.type.is_integer:
                raise table.error("readback", f"{readback!r} must be a readable integer register")
        else:
            table.raw("readback")
        table.finish()
        return PhaseWrite(name, one, three, readback)

    def _startup(
        self, table: _Table, registers: Mapping[str, RegisterSpec], controlled: set[str]
    ) -> tuple[StartupWrite, ...]:
        writes: list[StartupWrite] = []
        for name in list(table.data):
            if name not in registers:
                raise table.error(name, "is not a register in [registers]")
            spec = registers[name]
            if not spec.access.writable:
                raise table.error(name, f"is not writable (access = {spec.access.value!r})")
            if name in controlled:
                raise table.error(name, "is written by another [writes] table")
            if spec.type is RegisterType.STRING:
                raise table.error(name, "is a string register")
            value = table.number(name)
            raw = value / spec.scale
            try:
                if spec.type.is_integer:
                    if abs(raw - round(raw)) > 1e-9:
                        raise ValueError(f"is not a multiple of the scale {spec.scale}")
                    encode_value(round(raw), spec.type, spec.word_order)
                else:
                    encode_value(raw, spec.type, spec.word_order)
            except ValueError as exc:
                raise table.error(name, f"{value}: {exc}") from exc
            writes.append(StartupWrite(name, value))
        if not writes:
            raise table.error("", "lists no register")
        table.finish()
        return tuple(writes)

    def _errors(
        self, table: _Table, registers: Mapping[str, RegisterSpec]
    ) -> dict[int, OcppErrorCode]:
        if "error_code" not in registers:
            raise table.error("", "vendor codes need an error_code register to come from")
        codes = [c.value for c in OcppErrorCode]
        errors: dict[int, OcppErrorCode] = {}
        for key in list(table.data):
            if not key.isdigit():
                raise table.error(key, "is not a vendor fault code (a decimal integer)")
            code = int(key)
            if code == 0:
                raise table.error(key, "0 means no fault and is always NoError")
            ocpp = OcppErrorCode(table.choice(key, codes))
            if ocpp is OcppErrorCode.NO_ERROR:
                raise table.error(key, "a non-zero fault code cannot be NoError")
            errors[code] = ocpp
        table.finish()
        return errors


def _is_multiple(value: float, step: float) -> bool:
    quotient = Decimal(repr(value)) / Decimal(repr(step))
    return quotient == quotient.to_integral_value()
