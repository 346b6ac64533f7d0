"""The fuse tree of a site and where each charger's phases land on it, free of I/O.

Shared by the configuration check (failsafe currents against every fuse) and the control
loop (reserving the share of a charger that stopped answering). Grid phases are numbered
0, 1, 2 for L1, L2, L3; a phase rotation names, per charger phase, the grid phase it is
wired to with the letters R, S, T (OCPP `ConnectorPhaseRotation`, load-balancing.md §2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NOMINAL_VOLTAGE_V = 230.0
"""Phase-to-neutral voltage for A → W, as the solver uses it (EN 50160 nominal)."""
PHASE_LETTERS = "RST"
THREE_PHASE_ROTATIONS = frozenset({"RST", "RTS", "SRT", "STR", "TRS", "TSR"})
SINGLE_PHASE_ROTATIONS = frozenset(PHASE_LETTERS)
GRID_PHASE_NAMES = ("L1", "L2", "L3")


def grid_phases(rotation: str, phases: int) -> tuple[int, ...]:
    """The grid phases (0-2) a charger loads when it charges on `phases` phases: all three
    for a three-phase session, the grid phase of its L1 for a single-phase one. Raises
    ValueError for a rotation that is not one of "RST".."TSR" or "R"/"S"/"T"."""
    if rotation not in THREE_PHASE_ROTATIONS and rotation not in SINGLE_PHASE_ROTATIONS:
        raise ValueError(f'phase rotation must be one of RST..TSR or R, S, T, got "{rotation}"')
    if phases == 3:
        if len(rotation) != 3:
            raise ValueError(
                f'a three-phase charger needs a three-letter rotation, got "{rotation}"'
            )
        return (0, 1, 2)
    return (PHASE_LETTERS.index(rotation[0]),)


@dataclass(frozen=True, slots=True)
class Circuit:
    """One fuse (or power cap) of the tree; `parent` None for the grid connection."""

    id: str
    parent: str | None
    max_current_a: tuple[float, float, float]
    max_power_w: float | None = None


@dataclass(frozen=True, slots=True)
class ChargerPlacement:
    """Where a charger hangs and what it loads."""

    id: str
    circuit: str
    phases: int
    rotation: str


def ancestors(circuits: Mapping[str, Circuit], circuit_id: str) -> list[str]:
    """`circuit_id` and every circuit above it up to the root. Assumes a checked tree (no
    cycle, every parent known)."""
    path: list[str] = []
    current: str | None = circuit_id
    while current is not None:
        path.append(current)
        current = circuits[current].parent
    return path


@dataclass(frozen=True, slots=True)
class Overload:
    """A circuit whose limit a set of currents exceeds."""

    circuit: str
    row: int
    """0-2: grid phase L1-L3 (A); 3: power (W)."""
    load: float
    limit: float

    def describe(self, what: str) -> str:
        if self.row == 3:
            return f"{what} sum to {self.load:g} W, over its {self.limit:g} W power limit"
        phase = GRID_PHASE_NAMES[self.row]
        return f"{what} sum to {self.load:g} A on {phase}, over its {self.limit:g} A limit"


def circuit_loads(
    circuits: Mapping[str, Circuit],
    placements: Iterable[ChargerPlacement],
    currents_a: Mapping[str, float],
) -> dict[str, list[float]]:
    """Per circuit: [A on L1, A on L2, A on L3, W] when each charger draws its entry in
    `currents_a` (absent = 0) on its phases; every circuit on the path to the root counts it."""
    loads = {circuit_id: [0.0, 0.0, 0.0, 0.0] for circuit_id in circuits}
    for placement in placements:
        amps = currents_a.get(placement.id, 0.0)
        if amps <= 0:
            continue
        phases = grid_phases(placement.rotation, placement.phases)
        for circuit_id in ancestors(circuits, placement.circuit):
            row = loads[circuit_id]
            for phase in phases:
                row[phase] += amps
            row[3] += amps * len(phases) * NOMINAL_VOLTAGE_V
    return loads


def overloads(
    circuits: Mapping[str, Circuit],
    placements: Sequence[ChargerPlacement],
    currents_a: Mapping[str, float],
) -> list[Overload]:
    """Every (circuit, row) whose limit the given currents exceed, in circuit order. The
    failsafe check: with each charger at its failsafe current this must be empty, so that
    every charger falling back at once (the gateway gone) trips no fuse (load-balancing.md
    §6.1)."""
    found: list[Overload] = []
    for circuit_id, row in circuit_loads(circuits, placements, currents_a).items():
        circuit = circuits[circuit_id]
        # A millionth of an ampere absorbs float noise in sums of decimal currents.
        for phase in range(3):
            if row[phase] > circuit.max_current_a[phase] + 1e-6:
                found.append(Overload(circuit_id, phase, row[phase], circuit.max_current_a[phase]))
        if circuit.max_power_w is not None and row[3] > circuit.max_power_w + 1e-3:
            found.append(Overload(circuit_id, 3, row[3], circuit.max_power_w))
    return found
