"""A meter on a Modbus link, read per its profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gateway.core.charger import ChargerUnavailable
from gateway.core.meter import MeterReading
from gateway.meters.profile import MeterProfile
from gateway.modbus.link import ModbusLinkError
from gateway.modbus.profile import RegisterTable
from gateway.modbus.registers import RegisterDecodeError, RegisterValue


class RegisterReader(Protocol):
    """The part of a Modbus link (TCP, RTU, RTU over TCP) a meter needs."""

    async def read_registers(
        self, unit_id: int, table: RegisterTable, address: int, count: int
    ) -> list[int]: ...


class MeterUnavailable(ChargerUnavailable):
    """The meter did not answer, answered with a Modbus exception or with garbage."""


class ModbusMeter:
    """One meter, addressed by `unit_id` (None: the profile's) on `link`."""

    def __init__(
        self, link: RegisterReader, unit_id: int | None, profile: MeterProfile, *, name: str
    ) -> None:
        self.link = link
        self.unit_id = profile.default_unit_id if unit_id is None else unit_id
        self.profile = profile
        self.name = name
        self._plan = profile.plan_reads()
        self._layouts = [request.layout() for request in self._plan]

    def __repr__(self) -> str:
        return f"ModbusMeter({self.name})"

    async def read(self) -> MeterReading:
        """Poll the meter once. Raises `MeterUnavailable` naming the meter, the registers
        and what went wrong."""
        values: dict[str, RegisterValue] = {}
        for index, request in enumerate(self._plan):
            try:
                words = await self.link.read_registers(
                    self.unit_id, request.table, request.address, request.count
                )
            except ModbusLinkError as exc:
                names = ", ".join(spec.name for spec in request.registers)
                raise MeterUnavailable(f"meter {self.name}: {names}: {exc}") from exc
            try:
                values.update(request.decode(words, self._layouts[index]))
            except RegisterDecodeError as exc:
                raise MeterUnavailable(f"meter {self.name}: {exc}") from exc
        return _reading(values)


def _reading(values: Mapping[str, RegisterValue]) -> MeterReading:
    def number(name: str) -> float:
        return float(values.get(name, 0.0))

    def triple(prefix: str) -> tuple[float, float, float]:
        return (number(f"{prefix}_l1"), number(f"{prefix}_l2"), number(f"{prefix}_l3"))

    per_phase = triple("power") if "power_l1" in values else None
    if "power" in values:
        power = number("power")
    elif per_phase is not None:
        power = sum(per_phase)
    else:
        # No power register at all: estimate from current and voltage, for display only.
        power = sum(i * v for i, v in zip(triple("current"), triple("voltage"), strict=True))
    return MeterReading(
        current_a=triple("current"),
        voltage_v=triple("voltage"),
        power_w=power,
        power_per_phase_w=per_phase,
        energy_import_wh=number("energy_import"),
        energy_export_wh=number("energy_export") if "energy_export" in values else None,
    )
