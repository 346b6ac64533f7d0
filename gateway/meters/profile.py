"""Meter profiles: what a meter model's Modbus registers mean, loaded from a TOML data file.

A meter profile has the `[device]`, `[requests]` and `[registers.*]` tables of a charger
profile (`gateway.modbus.profile`; same keys, same checks, same error messages naming the
file, the key and the problem) and no state or writes: a meter is only read. Register names
with a meaning are in `METER_ROLES`; per-phase currents are required, since they are what
the load balancer needs.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.modbus.profile import (
    ProfileError,
    ReadRequest,
    RegisterSpec,
    RequestRules,
    plan_reads,
    read_profile_file,
    register_table_parser,
    shipped_names,
)

METER_ROLES: Mapping[str, str] = MappingProxyType(
    {
        "current_l1": "A",
        "current_l2": "A",
        "current_l3": "A",
        "voltage_l1": "V",
        "voltage_l2": "V",
        "voltage_l3": "V",
        "power": "W",
        "power_l1": "W",
        "power_l2": "W",
        "power_l3": "W",
        "energy_import": "Wh",
        "energy_export": "Wh",
    }
)
"""Register names a `MeterReading` is made of, with the unit each must have after scaling."""

REQUIRED_METER_ROLES = ("current_l1", "current_l2", "current_l3")
PER_PHASE_POWER = ("power_l1", "power_l2", "power_l3")


@dataclass(frozen=True, slots=True)
class MeterProfile:
    """A meter model's register map, as loaded from its profile file."""

    name: str
    description: str
    source: str
    file: str
    default_unit_id: int
    registers: Mapping[str, RegisterSpec]
    requests: RequestRules

    @property
    def reading_registers(self) -> tuple[RegisterSpec, ...]:
        return tuple(spec for name, spec in self.registers.items() if name in METER_ROLES)

    def plan_reads(self) -> tuple[ReadRequest, ...]:
        """The read requests one poll makes (as few as the request rules allow)."""
        return plan_reads(self.reading_registers, self.requests)


def meter_profile_names() -> list[str]:
    """Names of the meter profiles shipped with the package."""
    return shipped_names("gateway.meters")


def load_meter_profile(name_or_path: str | Path) -> MeterProfile:
    """Load a shipped meter profile by name (`"eastron-sdm630"`) or any file by path.

    Raises `ProfileError` naming the file, the key and the problem when the file is
    malformed, and `FileNotFoundError` when there is no such profile."""
    text, file_name = read_profile_file("gateway.meters", "meter", name_or_path)
    return parse_meter_profile(text, file_name)


def parse_meter_profile(text: str, file_name: str) -> MeterProfile:
    """Parse and check a meter profile from TOML text; `file_name` appears in errors."""
    try:
        document: Mapping[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file_name}: not valid TOML: {exc}") from exc
    parser = register_table_parser(file_name, document)
    device = parser.device()
    requests = parser.requests()
    registers = parser.registers()
    for role in REQUIRED_METER_ROLES:
        if role not in registers:
            raise ProfileError(f"{file_name}: registers.{role}: is required (every meter has it)")
    for name, spec in registers.items():
        unit = METER_ROLES.get(name)
        if unit is None:
            continue
        if not spec.access.readable or spec.type.value == "string":
            raise ProfileError(f"{file_name}: registers.{name}: must be a readable number")
        if spec.unit != unit:
            raise ProfileError(
                f"{file_name}: registers.{name}.unit: {spec.unit!r} must be {unit!r} after scaling"
            )
    present = [name for name in PER_PHASE_POWER if name in registers]
    if present and len(present) != len(PER_PHASE_POWER):
        raise ProfileError(
            f"{file_name}: registers: per-phase power needs all of {', '.join(PER_PHASE_POWER)}"
        )
    parser.finish()
    return MeterProfile(
        name=device.name,
        description=device.description,
        source=device.source,
        file=file_name,
        default_unit_id=device.default_unit_id,
        registers=MappingProxyType(registers),
        requests=requests,
    )
