"""1p/3p switching with hysteresis, free of I/O (load-balancing.md §3.5).

A three-phase charger that can switch (KEBA P40, Alfen with "Allow 1- and 3-phased charging",
go-e, our MQTT schema) keeps charging on one phase when its three-phase minimum (3 x 6 A) no
longer fits but one phase does, instead of pausing. The rules:

* **Down at once.** When the solver can admit the session only on one phase, it switches
  down on that tick, since staying on three phases would mean pausing it.
* **Up only when stable.** Back to three phases only after three phases have fitted
  continuously for `up_delay_s` (EVerest waits 600 s, openWB 7 min): a budget hovering
  around 3 x 6 A must not toggle the contactors.
* **Dwell.** No switch within `min_dwell_s` of the previous one, either way.
* **A cap per session.** At most `max_switches` per session: every switch interrupts
  charging, and EVerest warns that some early EVs (first-generation Renault Zoe) can be damaged
  by switching from 1p to 3p while charging.

A charger starts each session on three phases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_UP_DELAY_S = 600.0
"""EVerest's 600 s before going back to three phases (load-balancing.md §3.5)."""
DEFAULT_MIN_DWELL_S = 180.0
"""evcc's 3 min disable delay, applied to every switch."""
DEFAULT_MAX_SWITCHES = 4
"""Switches per session; a cap the reference asks for without giving a number."""


@dataclass(frozen=True, slots=True)
class PhaseSwitchSettings:
    up_delay_s: float = DEFAULT_UP_DELAY_S
    min_dwell_s: float = DEFAULT_MIN_DWELL_S
    max_switches: int = DEFAULT_MAX_SWITCHES

    def __post_init__(self) -> None:
        for name in ("up_delay_s", "min_dwell_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number of seconds, got {value}")
        if self.max_switches < 0:
            raise ValueError(f"max_switches must be >= 0, got {self.max_switches}")


@dataclass(slots=True)
class _State:
    phases: int = 3
    session: str | None = None
    switches: int = 0
    last_switch_at: float = -math.inf
    three_fit_since: float | None = None


class PhaseSwitcher:
    """Per switchable charger: the phases it charges on now and whether to switch."""

    def __init__(self, charger_ids: list[str], settings: PhaseSwitchSettings | None = None) -> None:
        self.settings = settings or PhaseSwitchSettings()
        self._states = {charger_id: _State() for charger_id in charger_ids}

    def __contains__(self, charger_id: object) -> bool:
        return charger_id in self._states

    def phases(self, charger_id: str) -> int:
        """The phases the charger is on (as last confirmed)."""
        return self._states[charger_id].phases

    def switches(self, charger_id: str) -> int:
        """Switches in the current session."""
        return self._states[charger_id].switches

    def new_session(self, charger_id: str, session_id: str | None) -> None:
        """A session started (or ended, with None): the count and the stability start over.
        The charger is left on the phases it is on; the caller switches it back to three
        phases for a new session if it is on one (`wanted`)."""
        state = self._states[charger_id]
        if state.session != session_id:
            state.session = session_id
            state.switches = 0
            state.three_fit_since = None

    def can_switch(self, charger_id: str, now: float) -> bool:
        state = self._states[charger_id]
        return (
            state.switches < self.settings.max_switches
            and now - state.last_switch_at >= self.settings.min_dwell_s
        )

    def wanted(self, charger_id: str, now: float, *, fits_three: bool, fits_one: bool) -> int:
        """The phases the charger should be on from now: `fits_three` says whether the solver
        admits the session on three phases, `fits_one` on one."""
        state = self._states[charger_id]
        if state.session is None:
            # Idle: back to three phases for the next vehicle, if it is not there already.
            return 3
        if state.phases == 3:
            state.three_fit_since = None
            if not fits_three and fits_one and self.can_switch(charger_id, now):
                return 1
            return 3
        # On one phase.
        if not fits_three:
            state.three_fit_since = None
            return 1
        if state.three_fit_since is None:
            state.three_fit_since = now
        stable = now - state.three_fit_since >= self.settings.up_delay_s
        if stable and self.can_switch(charger_id, now):
            return 3
        return 1

    def confirm(self, charger_id: str, phases: int, at: float) -> None:
        """The charger now charges on `phases`."""
        state = self._states[charger_id]
        if phases != state.phases:
            state.phases = phases
            state.last_switch_at = at
            state.three_fit_since = None
            if state.session is not None:
                state.switches += 1
