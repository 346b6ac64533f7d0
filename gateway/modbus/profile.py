"""Charger profiles: what a model's Modbus register map means, loaded from a TOML data file.

A profile says, per register: address (0-based PDU), table, type, word order, scale, unit,
access and the confidence flag from the reference (D, V, U). It maps the vendor's state
registers to an IEC 61851 `CpState`, names the registers that carry the setpoint, enable,
failsafe current and watchdog, and gives the request rules for the model.

Registers whose names are in `READING_ROLES` feed the `ChargerReading`; any other register is
informational (serial number, firmware) and read only on request. Shipped profiles live in
`gateway/modbus/profiles/<name>.toml`; see `generic.toml` for a fully commented example.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.core.charger import CpState
from gateway.modbus.registers import (
    RegisterDecodeError,
    RegisterType,
    RegisterValue,
    WordOrder,
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
    """Rewrite the current setpoint (any write restarts the watchdog)."""


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

    @property
    def end(self) -> int:
        """The address just past this value."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class StateRule:
    """Maps the state registers to a `CpState` when every condition holds."""

    conditions: tuple[tuple[str, frozenset[int]], ...]
    cp_state: CpState

    def matches(self, values: Mapping[str, int]) -> bool:
        return all(values[name] in allowed for name, allowed in self.conditions)


@dataclass(frozen=True, slots=True)
class StateMapping:
    registers: tuple[str, ...]
    rules: tuple[StateRule, ...]
    encode: Mapping[CpState, Mapping[str, int]]
    """Raw state-register values that represent each state (used by the simulator)."""
    known: Mapping[str, frozenset[int]] = field(default_factory=lambda: MappingProxyType({}))
    """Every valid code of a state register, where the profile lists them."""

    def decode(self, values: Mapping[str, int]) -> CpState:
        """The `CpState` for these raw state-register values; first matching rule wins.

        Raises `RegisterDecodeError` when a value is not a known code or no rule matches.
        """
        for name, codes in self.known.items():
            if values[name] not in codes:
                raise RegisterDecodeError(f"unknown state code {name}={values[name]}")
        for rule in self.rules:
            if rule.matches(values):
                return rule.cp_state
        shown = ", ".join(f"{name}={values[name]}" for name in self.registers)
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
class RequestRules:
    one_value_per_read: bool
    """True when reads may not span value boundaries (KEBA, chargers.md §3)."""
    max_registers_per_read: int
    """Upper bound of one read request, at most 125 (Modbus application protocol §6.3)."""


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One planned read: `count` registers from `address` of `table`, covering `registers`."""

    table: RegisterTable
    address: int
    count: int
    registers: tuple[RegisterSpec, ...]


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

    @property
    def reading_registers(self) -> tuple[RegisterSpec, ...]:
        """Registers a poll reads: the state registers and every reading role present."""
        names = list(self.state.registers)
        names += [name for name in READING_ROLES if name in self.registers and name not in names]
        return tuple(self.registers[name] for name in names)

    def plan_reads(self, registers: Iterable[RegisterSpec]) -> tuple[ReadRequest, ...]:
        """Group `registers` into as few read requests as the request rules allow.

        With `one_value_per_read` every value is its own request. Otherwise values that are
        contiguous in the same table share a request of at most `max_registers_per_read`
        registers; gaps are never bridged, since unmapped addresses may answer with an
        exception.
        """
        ordered = sorted(set(registers), key=lambda spec: (spec.table, spec.address))
        requests: list[ReadRequest] = []
        group: list[RegisterSpec] = []

        def flush() -> None:
            if group:
                start = group[0].address
                requests.append(
                    ReadRequest(group[0].table, start, group[-1].end - start, tuple(group))
                )
                group.clear()

        for spec in ordered:
            if group and (
                self.requests.one_value_per_read
                or spec.table is not group[0].table
                or spec.address != group[-1].end
                or spec.end - group[0].address > self.requests.max_registers_per_read
            ):
                flush()
            group.append(spec)
        flush()
        return tuple(requests)


def round_down_to_resolution(amps: float, resolution_a: float) -> float:
    """Round `amps` down to a multiple of `resolution_a` (chargers.md §4: round setpoints
    down), exactly: decimal arithmetic keeps 16.0 A at 0.1 A resolution from becoming 15.9."""
    step = Decimal(repr(resolution_a))
    steps = (Decimal(repr(amps)) / step).to_integral_value(rounding="ROUND_FLOOR")
    return float(steps * step)


def profile_names() -> list[str]:
    """Names of the profiles shipped with the package."""
    folder = resources.files("gateway.modbus") / "profiles"
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def load_profile(name_or_path: str | Path) -> ChargerProfile:
    """Load a shipped profile by name (`"keba-p30"`) or any profile file by path.

    Raises `ProfileError` naming the file, the key and the problem when the file is
    malformed, and `FileNotFoundError` when there is no such profile.
    """
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and path.suffix != ".toml" and len(path.parts) == 1:
        resource = resources.files("gateway.modbus") / "profiles" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise FileNotFoundError(
                f"no charger profile named {name_or_path!r}; shipped: {', '.join(profile_names())}"
            )
        text = resource.read_text(encoding="utf-8")
        file_name = f"{name_or_path}.toml"
    else:
        text = path.read_text(encoding="utf-8")
        file_name = path.name
    return parse_profile(text, file_name)


def parse_profile(text: str, file_name: str) -> ChargerProfile:
    """Parse and check a profile from TOML text; `file_name` appears in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file_name}: not valid TOML: {exc}") from exc
    return _ProfileParser(file_name).parse(document)


class _Table:
    """A TOML table being consumed; reports problems with the file name and the key path."""

    def __init__(self, file_name: str, path: str, data: Mapping[str, Any]) -> None:
        self.file_name = file_name
        self.path = path
        self.data = dict(data)
        self.used: set[str] = set()

    def key_path(self, key: str) -> str:
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

    def parse(self, document: Mapping[str, Any]) -> ChargerProfile:
        root = _Table(self.file_name, "", document)
        device = root.table("device")
        assert device is not None
        name = device.string("name")
        description = device.string("description", "")
        source = device.string("source", "")
        default_unit_id = device.integer("default_unit_id", 0, 255, default=1)
        device.finish()

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
        writes.finish()
        if current.pause is PauseMode.DISABLE and enable is None:
            raise writes.error("current.pause", "'disable' needs a [writes.enable] table")
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
        )

    def _requests(self, table: _Table | None) -> RequestRules:
        if table is None:
            return RequestRules(False, MAX_REGISTERS_PER_READ)
        rules = RequestRules(
            one_value_per_read=table.boolean("one_value_per_read", False),
            max_registers_per_read=table.integer(
                "max_registers_per_read", 1, MAX_REGISTERS_PER_READ, default=MAX_REGISTERS_PER_READ
            ),
        )
        table.finish()
        return rules

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
        )
        table.finish()
        return spec

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
            if not spec.type.is_integer or not spec.access.readable:
                raise table.error("registers", f"{name!r} must be a readable integer register")
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
            conditions: list[tuple[str, frozenset[int]]] = []
            for register_name in list(when.data):
                if register_name not in names:
                    raise when.error(register_name, "is not one of [state] registers")
                allowed = when.raw(register_name)
                options = allowed if isinstance(allowed, list) else [allowed]
                if not options or not all(
                    isinstance(option, int) and not isinstance(option, bool) for option in options
                ):
                    raise when.error(register_name, f"{allowed!r} must be an integer or a list")
                conditions.append((register_name, frozenset(options)))
            if not conditions:
                raise when.error("", "a rule needs at least one condition")
            when.finish()
            rule_table.finish()
            rules.append(StateRule(tuple(conditions), cp_state))

        known: dict[str, frozenset[int]] = {}
        known_table = table.table("known", required=False)
        if known_table is not None:
            for register_name in list(known_table.data):
                if register_name not in names:
                    raise known_table.error(register_name, "is not one of [state] registers")
                codes = known_table.raw(register_name)
                if (
                    not isinstance(codes, list)
                    or not codes
                    or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
                ):
                    raise known_table.error(register_name, "must be a list of integers")
                known[register_name] = frozenset(codes)
            known_table.finish()
        for rule in rules:
            for register_name, allowed in rule.conditions:
                stray = allowed - known.get(register_name, allowed)
                if stray:
                    raise table.error(
                        f"known.{register_name}", f"misses codes used in rules: {sorted(stray)}"
                    )

        encode_table = table.table("encode")
        assert encode_table is not None
        encode: dict[CpState, Mapping[str, int]] = {}
        mapping = StateMapping(
            tuple(names), tuple(rules), MappingProxyType(encode), MappingProxyType(known)
        )
        for key in list(encode_table.data):
            if key not in CpState.__members__:
                raise encode_table.error(key, f"{key!r} is not an IEC 61851 state")
            values_table = encode_table.table(key)
            assert values_table is not None
            values: dict[str, int] = {}
            for name in names:
                values[name] = values_table.integer(name, 0, 2**63)
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


def _is_multiple(value: float, step: float) -> bool:
    quotient = Decimal(repr(value)) / Decimal(repr(step))
    return quotient == quotient.to_integral_value()
