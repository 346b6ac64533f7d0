"""One balancing tick without I/O: solver plus planner, for the gateway and the simulations.

`BalancingController.tick` takes a snapshot of every charger (online, wants current, what it
measures, what the vehicle needs), takes the share of offline chargers off the circuits above
them, runs the `BalancingSolver` for the whole site in one pass (load-balancing.md §5), and
returns the setpoint writes the `SetpointPlanner` decides on. The caller carries the writes
out (cuts first) and confirms each one that succeeded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway._core import BalancingSolver
from gateway.balancing.phases import PhaseSwitcher, PhaseSwitchSettings
from gateway.balancing.planner import (
    ChargerLimits,
    PlannerSettings,
    SetpointPlanner,
    SetpointWrite,
)
from gateway.balancing.topology import (
    ChargerPlacement,
    Circuit,
    circuit_loads,
)
from gateway.core.meter import MeterReading

METER_NONE, METER_FRESH, METER_STALE = 0, 1, 2
"""The solver's `node_meter_state` codes."""

MIN_RUN_S = 180.0
"""A session the solver admits keeps precedence over paused ones of its class for this long
(evcc's 3 min disable delay, load-balancing.md §3.5). Without it, urgencies that drift every
tick swap the marginal sessions between charging and paused every few ticks, the oscillation
§4 warns about; with it, paused sessions still take their turn, every few minutes."""
DEFAULT_RESOLUTION_A = 0.1
"""Setpoint step the solver rounds down to; the generic and KEBA profiles take 0.1 A / 1 mA."""


@dataclass(frozen=True, slots=True)
class BalancedCharger:
    """A charger as the balancing sees it (from its `[[chargers]]` table)."""

    id: str
    circuit: str
    phases: int = 3
    phase_rotation: str = "RST"
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    failsafe_current_a: float = 0.0
    watchdog_timeout_s: float = 0.0
    priority: int = 0
    resolution_a: float = DEFAULT_RESOLUTION_A
    can_switch_phases: bool = False
    """A three-phase charger that may switch a session to one phase (`phase_switching`)."""

    @property
    def placement(self) -> ChargerPlacement:
        return ChargerPlacement(self.id, self.circuit, self.phases, self.phase_rotation)

    @property
    def limits(self) -> ChargerLimits:
        return ChargerLimits(
            min_current_a=self.min_current_a,
            max_current_a=self.max_current_a,
            resolution_a=self.resolution_a,
            failsafe_current_a=self.failsafe_current_a,
            watchdog_timeout_s=self.watchdog_timeout_s,
        )


@dataclass(frozen=True, slots=True)
class ChargerSnapshot:
    """The state of one charger at a tick."""

    online: bool
    wants_current: bool
    """A session is active and not being stopped."""
    measured_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cap_a: float = math.inf
    """This tick's cap (EV, cable, upstream or local-API limits); inf = none."""
    energy_needed_wh: float | None = None
    departure_in_s: float | None = None
    session_id: str | None = None
    """The active session, so 1p/3p switching can count switches per session."""


@dataclass(frozen=True, slots=True)
class PhaseChange:
    """Switch a charger to `phases` before this tick's setpoints are written."""

    charger_id: str
    phases: int


@dataclass(frozen=True, slots=True)
class BalancingStatus:
    """What the balancing last decided for one charger, for the local API and logs."""

    setpoint_a: float | None
    """Last setpoint the charger confirmed (None: unknown)."""
    target_a: float
    """What the solver granted on the last tick."""
    reason: str


class BalancingController:
    """Solver and planner for one site. Raises ValueError (naming the circuit or charger)
    for a tree the solver refuses."""

    def __init__(
        self,
        circuits: Sequence[Circuit],
        chargers: Sequence[BalancedCharger],
        settings: PlannerSettings | None = None,
        *,
        min_run_s: float = MIN_RUN_S,
        phase_settings: PhaseSwitchSettings | None = None,
    ) -> None:
        self.min_run_s = min_run_s
        self._running_since: dict[str, float] = {}
        self._paused_since: dict[str, float] = {}
        self._circuit_limits: dict[str, dict[str, tuple[float, float, float]]] = {}
        self.circuits = {circuit.id: circuit for circuit in circuits}
        self.chargers = {charger.id: charger for charger in chargers}
        self._placements = [charger.placement for charger in chargers]
        self.solver = BalancingSolver(
            [
                (
                    circuit.id,
                    circuit.parent,
                    circuit.max_current_a,
                    math.inf if circuit.max_power_w is None else circuit.max_power_w,
                )
                for circuit in circuits
            ],
            [
                (
                    charger.id,
                    charger.circuit,
                    charger.phases,
                    charger.phase_rotation,
                    charger.min_current_a,
                    charger.max_current_a,
                    charger.resolution_a,
                    charger.can_switch_phases and charger.phases == 3,
                )
                for charger in chargers
            ],
        )
        self.phases = PhaseSwitcher(
            [c.id for c in chargers if c.can_switch_phases and c.phases == 3], phase_settings
        )
        self.phase_changes: list[PhaseChange] = []
        """What the last tick wants switched before its writes (see `confirm_phases`)."""
        self.planner = SetpointPlanner(
            {charger.id: charger.limits for charger in chargers}, settings
        )
        self._status = {
            charger.id: BalancingStatus(None, 0.0, "not balanced yet") for charger in chargers
        }

    def set_circuit_limit(
        self, circuit_id: str, source: str, amps: tuple[float, float, float] | None
    ) -> None:
        """See `BalancingLoop.set_circuit_limit`."""
        if circuit_id not in self.circuits:
            raise LookupError(f"unknown circuit {circuit_id!r}")
        limits = self._circuit_limits.setdefault(circuit_id, {})
        if amps is None:
            limits.pop(source, None)
            return
        if not all(math.isfinite(a) and a >= 0 for a in amps):
            raise ValueError(f"a circuit limit must be non-negative amperes, got {amps}")
        limits[source] = amps

    def circuit_limits(self, circuit_id: str) -> dict[str, tuple[float, float, float]]:
        """The limits on a circuit by source, besides its fuse (a copy; empty when none)."""
        return dict(self._circuit_limits.get(circuit_id, {}))

    def status(self, charger_id: str) -> BalancingStatus:
        """The last decision for a charger. Raises KeyError for an unknown one."""
        return self._status[charger_id]

    def tick(
        self,
        now: float,
        snapshots: Mapping[str, ChargerSnapshot],
        meters: Mapping[str, MeterReading | None] | None = None,
    ) -> list[SetpointWrite]:
        """Solve the whole site and plan the writes (cuts and restores first). A charger
        missing from `snapshots` counts as offline.

        `meters` maps a metered circuit's id to its meter's latest reading, or to None when
        that reading is stale: the circuit then counts as fully loaded, so every charger below
        it pauses (load-balancing.md §6.2). With a fresh reading the circuit's capacity is its
        limit minus the non-EV load (measured minus the managed chargers' draw, §2)."""
        ids = self.solver.charger_ids
        offline = {
            charger_id: not self._snapshot(snapshots, charger_id).online for charger_id in ids
        }
        for charger_id in ids:
            self.planner.set_online(charger_id, not offline[charger_id])
        reserved = {
            charger_id: self.planner.reserved_a(charger_id, now)
            for charger_id in ids
            if offline[charger_id]
        }
        loads = circuit_loads(self.circuits, self._placements, reserved)
        node_max_current: list[float] = []
        node_max_power: list[float] = []
        for node_id in self.solver.node_ids:
            circuit = self.circuits[node_id]
            load = loads[node_id]
            limits = self._circuit_limits.get(node_id, {}).values()
            node_max_current.extend(
                max(
                    0.0,
                    min([circuit.max_current_a[phase], *(limit[phase] for limit in limits)])
                    - load[phase],
                )
                for phase in range(3)
            )
            power = math.inf if circuit.max_power_w is None else circuit.max_power_w
            node_max_power.append(max(0.0, power - load[3]))

        node_meter: list[float] = []
        node_meter_state: list[int] = []
        for node_id in self.solver.node_ids:
            if meters is None or node_id not in meters:
                node_meter.extend((0.0, 0.0, 0.0))
                node_meter_state.append(METER_NONE)
                continue
            reading = meters[node_id]
            if reading is None:
                node_meter.extend((0.0, 0.0, 0.0))
                node_meter_state.append(METER_STALE)
            else:
                # A meter without direction may read a small negative noise; never below 0.
                node_meter.extend(max(0.0, amps) for amps in reading.current_a)
                node_meter_state.append(METER_FRESH)

        columns = [self._snapshot(snapshots, charger_id) for charger_id in ids]
        for charger_id, snapshot in zip(ids, columns, strict=True):
            if charger_id in self.phases:
                session = snapshot.session_id if snapshot.wants_current else None
                self.phases.new_session(charger_id, session)
        phases_now = [self._phases_now(charger_id) for charger_id in ids]
        allow_1p = [
            int(
                charger_id in self.phases
                and phases_now[index] == 3
                and self.phases.can_switch(charger_id, now)
            )
            for index, charger_id in enumerate(ids)
        ]
        measured: list[float] = []
        for charger_id, snapshot in zip(ids, columns, strict=True):
            if offline[charger_id]:
                # The meter sees an unreachable charger's draw; count it as the share kept
                # reserved for it (already off the limits above), not as non-EV load twice.
                amps = reserved[charger_id]
                one_phase = self.chargers[charger_id].phases == 1
                measured.extend((amps, 0.0, 0.0) if one_phase else (amps, amps, amps))
            else:
                measured.extend(max(0.0, amps) for amps in snapshot.measured_a)
        # A vehicle whose stated need is met asks for nothing more: its share goes to others.
        active = [int(s.online and s.wants_current and not _need_met(s)) for s in columns]
        solve_args: dict[str, Any] = {
            "max_current": [s.cap_a for s in columns],
            "priority": [self._admission_class(charger_id, now) for charger_id in ids],
            "energy_needed_wh": [
                math.nan if s.energy_needed_wh is None else s.energy_needed_wh for s in columns
            ],
            "departure_s": [
                math.nan if s.departure_in_s is None else s.departure_in_s for s in columns
            ],
            "waited": [self._waited(charger_id, now) for charger_id in ids],
            "measured": measured,
            "node_max_current": node_max_current,
            "node_max_power": node_max_power,
            "node_meter": node_meter,
            "node_meter_state": node_meter_state,
        }
        setpoints, solved_phases, reasons, reason_nodes, reason_rows = self.solver.solve(
            active, phases=phases_now, allow_1p=allow_1p, **solve_args
        )
        setpoints = list(setpoints)
        self.phase_changes = self._plan_phases(
            now, ids, active, phases_now, setpoints, list(solved_phases), solve_args
        )
        targets: dict[str, float] = {}
        for index, charger_id in enumerate(ids):
            if offline[charger_id]:
                reason = (
                    f"offline: {reserved[charger_id]:g} A kept reserved"
                    " (last setpoint, or failsafe after the watchdog)"
                )
                self._status[charger_id] = BalancingStatus(
                    self.planner.written_a(charger_id), 0.0, reason
                )
                continue
            targets[charger_id] = setpoints[index]
            if setpoints[index] <= 0:
                self._running_since.pop(charger_id, None)
                if active[index]:
                    self._paused_since.setdefault(charger_id, now)
                else:
                    self._paused_since.pop(charger_id, None)
            else:
                self._running_since.setdefault(charger_id, now)
                self._paused_since.pop(charger_id, None)
            reason = self.solver.describe(reasons[index], reason_nodes[index], reason_rows[index])
            if self.chargers[charger_id].phases == 3 and solved_phases[index] == 1:
                reason += "; on one phase (three did not fit)"
            self._status[charger_id] = BalancingStatus(
                self.planner.written_a(charger_id), setpoints[index], reason
            )
        return self.planner.plan(now, targets)

    def _phases_now(self, charger_id: str) -> int:
        if charger_id in self.phases:
            return self.phases.phases(charger_id)
        return self.chargers[charger_id].phases

    def _plan_phases(
        self,
        now: float,
        ids: Sequence[str],
        active: list[int],
        phases_now: list[int],
        setpoints: list[float],
        solved_phases: list[int],
        solve_args: dict[str, Any],
    ) -> list[PhaseChange]:
        """Decide the 1p/3p switches of this tick; `setpoints` is adjusted in place where a
        charger must pause while it switches."""
        switchable = [i for i, cid in enumerate(ids) if cid in self.phases]
        if not switchable:
            return []
        on_one = [i for i in switchable if phases_now[i] == 1 and active[i]]
        fits_three_probe: set[int] = set()
        if on_one:
            # What if the sessions on one phase went back to three: would they be admitted?
            probe_phases = list(phases_now)
            for i in on_one:
                probe_phases[i] = 3
            probe, probe_phases_out, *_ = self.solver.solve(
                active, phases=probe_phases, allow_1p=[0] * len(ids), **solve_args
            )
            fits_three_probe = {i for i in on_one if probe[i] > 0 and probe_phases_out[i] == 3}
        changes: list[PhaseChange] = []
        for i in switchable:
            charger_id = ids[i]
            admitted = setpoints[i] > 0
            if phases_now[i] == 3:
                fits_three = admitted and solved_phases[i] == 3
                fits_one = admitted and solved_phases[i] == 1
            else:
                fits_three = i in fits_three_probe
                fits_one = admitted
            wanted = self.phases.wanted(charger_id, now, fits_three=fits_three, fits_one=fits_one)
            if phases_now[i] == 3 and solved_phases[i] == 1 and wanted == 3:
                setpoints[i] = 0.0  # allocated on one phase, but it may not switch now
            if wanted != phases_now[i]:
                changes.append(PhaseChange(charger_id, wanted))
                if wanted == 3:
                    # Its allocation was for one phase: pause through the switch; the next
                    # tick allocates for three.
                    setpoints[i] = 0.0
        return changes

    def confirm_phases(self, change: PhaseChange, at: float) -> None:
        """The charger now charges on `change.phases`."""
        self.phases.confirm(change.charger_id, change.phases, at)

    def _waited(self, charger_id: str, now: float) -> int:
        """Rotation periods (`min_run_s` each) a session has waited paused: among equals, the
        solver admits those that waited ahead of those that charged, so paused vehicles take
        turns (load-balancing.md §3) instead of starving."""
        since = self._paused_since.get(charger_id)
        if since is None or self.min_run_s <= 0:
            return 0
        return int((now - since) // self.min_run_s)

    def _admission_class(self, charger_id: str, now: float) -> int:
        """The configured priority, doubled, plus 1 while the session is in its minimum
        run time: a higher configured class still goes first."""
        since = self._running_since.get(charger_id)
        dwelling = since is not None and now - since < self.min_run_s
        return self.chargers[charger_id].priority * 2 + int(dwelling)

    def confirm(self, write: SetpointWrite, at: float) -> None:
        """The charger took `write` (keeps the reported status in step)."""
        self.planner.confirm(write, at)
        status = self._status[write.charger_id]
        self._status[write.charger_id] = BalancingStatus(
            write.current_a, status.target_a, status.reason
        )

    @staticmethod
    def _snapshot(snapshots: Mapping[str, ChargerSnapshot], charger_id: str) -> ChargerSnapshot:
        return snapshots.get(charger_id) or _OFFLINE


def _need_met(snapshot: ChargerSnapshot) -> bool:
    return snapshot.energy_needed_wh is not None and snapshot.energy_needed_wh <= 0


_OFFLINE = ChargerSnapshot(online=False, wants_current=False)
