"""A simulated meter for tests, the demo and `evgw simulate`: the register image of a meter
profile, measuring a base load plus whatever simulated chargers hang below it.

It answers the same `handle_read` / `handle_write` calls as a simulated charger, so a
`SimulatorServer` serves it beside chargers under its own unit id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pymodbus.constants import ExcCodes

from gateway.meters.profile import MeterProfile, load_meter_profile
from gateway.modbus.profile import RegisterTable
from gateway.modbus.registers import RegisterType, encode_value
from gateway.simulation import NOMINAL_VOLTAGE_V

_READ_TABLES = {3: RegisterTable.HOLDING, 4: RegisterTable.INPUT}

PhaseCurrents = tuple[float, float, float]


class SimulatedMeter:
    """A meter of `profile` measuring `base_load_a` per phase plus each source's currents.

    Each source is a callable giving per-grid-phase currents (a simulated charger's
    `phase_currents_a` mapped through its rotation, say); import energy integrates the
    power between reads.
    """

    def __init__(
        self,
        profile: MeterProfile | str,
        *,
        unit_id: int | None = None,
        base_load_a: PhaseCurrents = (0.0, 0.0, 0.0),
        sources: Sequence[Callable[[], PhaseCurrents]] = (),
    ) -> None:
        self.profile = load_meter_profile(profile) if isinstance(profile, str) else profile
        self.unit_id = self.profile.default_unit_id if unit_id is None else unit_id
        self.base_load_a = base_load_a
        self.sources = list(sources)
        self.energy_import_wh = 0.0
        self.forced_exception: int | None = None
        """If set, every request is answered with this Modbus exception code."""
        self.reads = 0

    @property
    def current_a(self) -> PhaseCurrents:
        total = list(self.base_load_a)
        for source in self.sources:
            for phase, amps in enumerate(source()):
                total[phase] += amps
        return (total[0], total[1], total[2])

    def values(self) -> dict[str, float]:
        """Engineering values of every role the simulator models."""
        currents = self.current_a
        powers = [amps * NOMINAL_VOLTAGE_V for amps in currents]
        return {
            "current_l1": currents[0],
            "current_l2": currents[1],
            "current_l3": currents[2],
            "voltage_l1": NOMINAL_VOLTAGE_V,
            "voltage_l2": NOMINAL_VOLTAGE_V,
            "voltage_l3": NOMINAL_VOLTAGE_V,
            "power_l1": powers[0],
            "power_l2": powers[1],
            "power_l3": powers[2],
            "power": sum(powers),
            "energy_import": self.energy_import_wh,
            "energy_export": 0.0,
        }

    async def handle_read(self, func_code: int, address: int, count: int) -> list[int] | ExcCodes:
        if self.forced_exception is not None:
            return ExcCodes(self.forced_exception)
        table = _READ_TABLES.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        by_address = {
            spec.address: spec for spec in self.profile.registers.values() if spec.table is table
        }
        values = self.values()
        words: list[int] = []
        at = address
        while at < address + count:
            spec = by_address.get(at)
            if spec is None or spec.end > address + count:
                return ExcCodes.ILLEGAL_ADDRESS
            raw = values.get(spec.name, 0.0) / spec.scale
            if spec.type.is_integer:
                words += encode_value(round(raw), spec.type, spec.word_order)
            elif spec.type is RegisterType.STRING:
                words += encode_value("", spec.type, spec.word_order, spec.count)
            else:
                words += encode_value(raw, spec.type, spec.word_order)
            at = spec.end
        self.reads += 1
        return words

    async def handle_write(self, address: int, words: Sequence[int]) -> ExcCodes | None:
        """A meter takes no writes from the gateway."""
        return ExcCodes.ILLEGAL_ADDRESS
