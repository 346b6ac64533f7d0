"""Which setpoints to write, and when: the sans-I/O half of the control loop.

The solver says what each charger may have; the planner decides what to *write* this tick,
following load-balancing.md §4-§6:

* **Cuts at once.** A target below the last written setpoint is written on this tick, before
  any raise, so the site never passes through a state above a fuse.
* **Raises ramped.** A raise is limited to `ramp_a_per_s` times the time since the charger's last
  write (at most `RAISE_WINDOW_CAP_S`), default 0.5 A/s: 6 → 32 A in about a minute, OpenEMS's
  3 %/s (§4). A paused charger that is admitted jumps to its minimum first, since the pilot
  cannot offer less (chargers.md §1).
* **Only on change.** A raise smaller than `deadband_a` is not written (OpenEMS ignores 50 W ≈
  0.2 A at 230 V, §4); a cut is always written, since skipping it could overload a fuse.
* **Keep-alive.** A charger with a watchdog gets its setpoint rewritten at the latest every
  `watchdog_timeout_s / 2` (KEBA/evcc practice, chargers.md §5; §5 asks for at most timeout/2).
* **Offline chargers keep their share.** A charger that does not answer is assumed to draw
  what it was last told (its maximum if never told), and after its watchdog has had time to
  fire, its failsafe current, whichever the charger can be at (§6.3); the controller takes that
  reservation off every circuit above it, so nobody else is handed its capacity. Back online,
  its setpoint is rewritten at once (its watchdog may have fired meanwhile).

A write is only taken as done once the caller confirms it (`confirm`); a failed write leaves
the planner assuming the charger still has the old, possibly higher, setpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

RAISE_WINDOW_CAP_S = 5.0
"""A raise may use at most this much ramp time (the longest loop interval), so a charger that
sat still for long still climbs gradually instead of jumping."""
DEFAULT_RAMP_A_PER_S = 0.5
"""6 → 32 A in ~52 s: OpenEMS's 3 %/s, about one minute (load-balancing.md §4)."""
DEFAULT_DEADBAND_A = 0.2
"""OpenEMS's 50 W deadband at 230 V on one phase, rounded down (load-balancing.md §4)."""
RESOLUTION_NOISE = 1e-9
"""Float slack when rounding ramped values down to the charger's resolution."""


class WriteKind(StrEnum):
    CUT = "cut"
    """Lower than what the charger has; applied before any raise."""
    RESTORE = "restore"
    """The charger's setpoint is unknown (start-up, back online): write the target at once."""
    RAISE = "raise"
    KEEP_ALIVE = "keep-alive"
    """The same setpoint again, to feed the charger's watchdog."""

    @property
    def lowers_or_resets(self) -> bool:
        """Writes to carry out before any raise."""
        return self in (WriteKind.CUT, WriteKind.RESTORE)


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    ramp_a_per_s: float = DEFAULT_RAMP_A_PER_S
    deadband_a: float = DEFAULT_DEADBAND_A

    def __post_init__(self) -> None:
        if not self.ramp_a_per_s > 0 or not math.isfinite(self.ramp_a_per_s):
            raise ValueError(f"ramp_a_per_s must be positive, got {self.ramp_a_per_s}")
        if not 0 <= self.deadband_a < 6:
            raise ValueError(f"deadband_a must be in [0, 6) A, got {self.deadband_a}")


@dataclass(frozen=True, slots=True)
class ChargerLimits:
    """What the planner must know about one charger."""

    min_current_a: float = 6.0
    max_current_a: float = 16.0
    resolution_a: float = 0.1
    failsafe_current_a: float = 0.0
    watchdog_timeout_s: float = 0.0
    """0 = no watchdog: no keep-alive, and an offline charger stays reserved at its last
    setpoint indefinitely."""


@dataclass(frozen=True, slots=True)
class SetpointWrite:
    charger_id: str
    current_a: float
    kind: WriteKind
    target_a: float
    """What the solver granted; `current_a` is lower while a raise ramps."""


@dataclass(slots=True)
class _ChargerState:
    limits: ChargerLimits
    written_a: float | None = None
    """Last confirmed setpoint; None = unknown (never written, or offline since)."""
    assumed_a: float | None = None
    """What an offline charger may still be at (the last confirmed value before it left)."""
    written_at: float = -math.inf
    online: bool = False
    watchdog_armed: bool = False


class SetpointPlanner:
    """Per-charger write decisions; see the module docstring. Pure: time is passed in."""

    def __init__(
        self, chargers: Mapping[str, ChargerLimits], settings: PlannerSettings | None = None
    ) -> None:
        self.settings = settings or PlannerSettings()
        self._chargers = {
            charger_id: _ChargerState(limits) for charger_id, limits in chargers.items()
        }

    # --- queries ---------------------------------------------------------------------------

    def written_a(self, charger_id: str) -> float | None:
        """The last setpoint the charger confirmed, None if unknown."""
        return self._chargers[charger_id].written_a

    def reserved_a(self, charger_id: str, now: float) -> float:
        """The current a charger that does not answer may be drawing per phase (0 for an
        online one: it is accounted through the solver). See the module docstring."""
        state = self._chargers[charger_id]
        if state.online:
            # Its target comes from the solver; an unknown setpoint is rewritten (RESTORE)
            # before any other charger is raised.
            return 0.0
        limits = state.limits
        last = state.written_a if state.written_a is not None else state.assumed_a
        watchdog_fired = (
            state.watchdog_armed
            and limits.watchdog_timeout_s > 0
            and now - state.written_at >= limits.watchdog_timeout_s
        )
        if watchdog_fired:
            return limits.failsafe_current_a
        if last is None:
            return max(limits.max_current_a, limits.failsafe_current_a)
        return max(last, limits.failsafe_current_a if state.watchdog_armed else 0.0)

    # --- inputs ----------------------------------------------------------------------------

    def set_online(self, charger_id: str, online: bool) -> None:
        state = self._chargers[charger_id]
        if state.online and not online and state.written_a is not None:
            # What it was last told is what it may be doing now; forget it as "written" so
            # it is rewritten at once when it answers again.
            state.assumed_a = state.written_a
            state.written_a = None
        state.online = online

    def set_watchdog_armed(self, charger_id: str, armed: bool = True) -> None:
        """The charger's failsafe current and watchdog are programmed (`configure_failsafe`)."""
        self._chargers[charger_id].watchdog_armed = armed

    def confirm(self, write: SetpointWrite, at: float) -> None:
        """The charger took `write`."""
        state = self._chargers[write.charger_id]
        state.written_a = write.current_a
        state.assumed_a = None
        state.written_at = at

    # --- the decision ----------------------------------------------------------------------

    def plan(self, now: float, targets: Mapping[str, float]) -> list[SetpointWrite]:
        """The writes for this tick, cuts and restores first. `targets` holds the solver's
        setpoint for every online charger (absent = 0); offline chargers get no write."""
        first: list[SetpointWrite] = []
        then: list[SetpointWrite] = []
        for charger_id, state in self._chargers.items():
            if not state.online:
                continue
            write = self._decide(charger_id, state, now, targets.get(charger_id, 0.0))
            if write is not None:
                (first if write.kind.lowers_or_resets else then).append(write)
        return first + then

    def _decide(
        self, charger_id: str, state: _ChargerState, now: float, target: float
    ) -> SetpointWrite | None:
        limits = state.limits
        written = state.written_a
        if written is None:
            return SetpointWrite(charger_id, target, WriteKind.RESTORE, target)
        if target < written:
            return SetpointWrite(charger_id, target, WriteKind.CUT, target)
        if target - written >= self.settings.deadband_a and target > 0:
            window = min(now - state.written_at, RAISE_WINDOW_CAP_S)
            ramped = written + self.settings.ramp_a_per_s * max(window, 0.0)
            step = limits.resolution_a
            # round() drops the float noise of k x step (6.6000000000000005).
            ramped = round(math.floor(ramped / step + RESOLUTION_NOISE) * step, 9)
            value = min(target, max(ramped, limits.min_current_a))
            big_enough = value - written >= self.settings.deadband_a or value == target
            if big_enough and value > written:
                return SetpointWrite(charger_id, value, WriteKind.RAISE, target)
        keep_alive_every = limits.watchdog_timeout_s / 2
        if keep_alive_every > 0 and now - state.written_at >= keep_alive_every:
            return SetpointWrite(charger_id, written, WriteKind.KEEP_ALIVE, target)
        return None
