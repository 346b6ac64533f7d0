"""What each circuit of the fuse tree carries now, per grid phase: its limit, the current
measured on it and the current the balancing allocated below it.

Measured is the circuit's meter when it has a fresh one (everything on the circuit,
chargers and building), else the sum of the chargers' own readings below it. Allocated is
the sum of the setpoints the balancing confirmed for the chargers below it. Both map each
charger's phases onto the grid phases through its rotation (load-balancing.md §2).

The charger → circuits paths are computed once; a reading then costs a few additions per
charger, so the metrics and the alarms can ask every few seconds for a thousand chargers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.balancing.loop import MeterSource
from gateway.balancing.topology import PHASE_LETTERS, Circuit, ancestors
from gateway.config import GatewayConfig
from gateway.core.site import Site

Phases = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class CircuitLoad:
    circuit_id: str
    limit_a: Phases
    measured_a: Phases
    allocated_a: Phases
    metered: bool
    """True when `measured_a` comes from a fresh meter reading."""

    def worst_share(self) -> tuple[float, int]:
        """The highest measured/limit ratio over the phases, and that phase (0-2)."""
        best = (0.0, 0)
        for phase in range(3):
            limit = self.limit_a[phase]
            if limit > 0:
                share = self.measured_a[phase] / limit
                if share > best[0]:
                    best = (share, phase)
        return best


@dataclass(frozen=True, slots=True)
class _Placement:
    charger_id: str
    path: tuple[int, ...]
    """Indexes of the circuits from the charger's up to the root."""
    grid_phase: tuple[int, int, int]
    """The grid phase of each charger phase L1, L2, L3."""
    phases: int


class CircuitLoads:
    """The fuse tree of a configuration, ready to be read against the site's state."""

    def __init__(self, config: GatewayConfig) -> None:
        self.circuits: list[Circuit] = [section.circuit for section in config.circuits]
        by_id = {circuit.id: circuit for circuit in self.circuits}
        index = {circuit.id: position for position, circuit in enumerate(self.circuits)}
        root = config.root_circuit
        self._placements: list[_Placement] = []
        if root is None:
            return
        for charger in config.chargers:
            rotation = charger.effective_rotation
            letters = rotation if len(rotation) == 3 else rotation * 3
            self._placements.append(
                _Placement(
                    charger.id,
                    tuple(index[c] for c in ancestors(by_id, charger.circuit or root)),
                    (
                        PHASE_LETTERS.index(letters[0]),
                        PHASE_LETTERS.index(letters[1]),
                        PHASE_LETTERS.index(letters[2]),
                    ),
                    charger.phases,
                )
            )

    def read(
        self,
        site: Site,
        meters: Mapping[str, MeterSource],
        active_phases: Mapping[str, int] | None = None,
    ) -> list[CircuitLoad]:
        """Every circuit's load now. `active_phases` gives the phases a phase-switching
        charger charges on now (default: its configured phases)."""
        count = len(self.circuits)
        measured = [[0.0, 0.0, 0.0] for _ in range(count)]
        allocated = [[0.0, 0.0, 0.0] for _ in range(count)]
        for placement in self._placements:
            connector = site.connector(placement.charger_id)
            reading = connector.reading
            phases = placement.phases
            if active_phases is not None:
                phases = active_phases.get(placement.charger_id, phases)
            grid = placement.grid_phase
            granted = connector.allocated_current_a or 0.0
            for node in placement.path:
                row = measured[node]
                if reading is not None and connector.online:
                    amps = reading.current_a
                    row[grid[0]] += amps[0]
                    if placement.phases == 3:
                        row[grid[1]] += amps[1]
                        row[grid[2]] += amps[2]
                if granted > 0:
                    out = allocated[node]
                    out[grid[0]] += granted
                    if phases == 3:
                        out[grid[1]] += granted
                        out[grid[2]] += granted
        loads: list[CircuitLoad] = []
        for position, circuit in enumerate(self.circuits):
            meter = meters.get(circuit.id)
            fresh = None if meter is None else meter.latest()
            values: Sequence[float] = measured[position] if fresh is None else fresh.current_a
            loads.append(
                CircuitLoad(
                    circuit.id,
                    circuit.max_current_a,
                    (max(0.0, values[0]), max(0.0, values[1]), max(0.0, values[2])),
                    (allocated[position][0], allocated[position][1], allocated[position][2]),
                    fresh is not None,
                )
            )
        return loads
