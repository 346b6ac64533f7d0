"""The physics of a simulated charger and the EV plugged into it.

Physics is computed lazily from elapsed time (scaled by `speed`) whenever the state is looked
at, in sub-steps, so results depend only on the clock: tests can pass their own `clock`.

EV model: `plug_in()` gives state B1 until the charger is enabled with a setpoint >= 6 A; then
C2, the current following min(setpoint, EV maximum) with a first-order lag; the EV tapers over
the last tenth of its energy and, when full, goes to B2. `unplug()` gives A. Energy integrates
230 V per phase. Faults on demand give F with a vendor error code. If the watchdog timeout is
set and nothing is written within it, the setpoint falls back to the failsafe current.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.core.charger import CpState

log = logging.getLogger(__name__)

NOMINAL_VOLTAGE_V = 230.0
"""Phase-to-neutral voltage of the simulated supply (the brief: 230 V per phase)."""
CURRENT_LAG_TIME_CONSTANT_S = 10.0
"""Time constant of the EV's current following the offer (the brief: ~10 s)."""
PILOT_MINIMUM_A = 6.0
"""Below 6 A the pilot offers nothing (chargers.md §1)."""
TAPER_FRACTION = 0.1
"""The EV tapers its current over the last tenth of the energy it needs."""
TAPER_FLOOR = 0.1
"""Fraction of its maximum an EV still draws at the very end, so a session ends in finite time."""
PHYSICS_STEP_S = 0.5
"""Longest simulated time step; lag and energy are integrated at this granularity."""


@dataclass
class SimulatedEv:
    """The vehicle plugged into a simulated charger."""

    rfid: str | None
    energy_needed_wh: float
    max_current_a: float
    phases: int
    delivered_wh: float = 0.0

    @property
    def full(self) -> bool:
        return self.delivered_wh >= self.energy_needed_wh

    def demand_a(self) -> float:
        """The current this EV would draw now if offered enough (tapering near full)."""
        remaining = self.energy_needed_wh - self.delivered_wh
        if remaining <= 0:
            return 0.0
        window = TAPER_FRACTION * self.energy_needed_wh
        factor = min(1.0, max(TAPER_FLOOR, remaining / window)) if window > 0 else 1.0
        return self.max_current_a * factor


class SimulatedChargePoint:
    """One charger's controllable state and its EV; see the module docstring.

    The wire-format layers call `set_setpoint`, `set_enabled`, `set_failsafe_current`,
    `set_watchdog_timeout` and `set_phases` for what the gateway writes, then `note_write()`
    once per request (any write restarts the watchdog, as on KEBA and Alfen).
    """

    def __init__(
        self,
        *,
        name: str = "charger",
        speed: float = 1.0,
        clock: Callable[[], float] | None = None,
        phases: int = 3,
    ) -> None:
        if phases not in (1, 3):
            raise ValueError("a charger switches 1 or 3 phases")
        self.name = name
        self.speed = speed
        self._clock = clock or time.monotonic
        self._clock_origin = self._clock()
        self._now_s = 0.0
        # Charger state as the gateway sets it. A charger starts enabled with no setpoint.
        self._setpoint_a = 0.0
        self._enabled = True
        self._failsafe_current_a = 0.0
        self._watchdog_timeout_s = 0.0
        self._last_write_s = 0.0
        self._phases = phases
        self.watchdog_tripped = False
        # Physical state.
        self.ev: SimulatedEv | None = None
        self._current_a = 0.0
        self._energy_wh = 0.0
        self._fault_code = 0

    # ---------------------------------------------------------------- observable state

    @property
    def now_s(self) -> float:
        """Simulated seconds since creation."""
        self.advance()
        return self._now_s

    @property
    def setpoint_a(self) -> float:
        """The maximum current last set (or the failsafe current after the watchdog fired)."""
        self.advance()
        return self._setpoint_a

    @property
    def enabled(self) -> bool:
        self.advance()
        return self._enabled

    @property
    def failsafe_current_a(self) -> float:
        return self._failsafe_current_a

    @property
    def watchdog_timeout_s(self) -> float:
        return self._watchdog_timeout_s

    @property
    def phases(self) -> int:
        """Phases the charger switches through to the EV: 1 or 3 (1p/3p switching)."""
        return self._phases

    @property
    def offered_a(self) -> float:
        """The current the pilot offers now (0 when disabled, faulted or below 6 A)."""
        self.advance()
        return self._offered_a()

    @property
    def current_a(self) -> float:
        """Current drawn per used phase."""
        self.advance()
        return self._current_a

    @property
    def phase_currents_a(self) -> tuple[float, float, float]:
        self.advance()
        return self._phase_currents()

    @property
    def power_w(self) -> float:
        self.advance()
        return sum(self._phase_currents()) * NOMINAL_VOLTAGE_V

    @property
    def energy_wh(self) -> float:
        """Lifetime energy delivered."""
        self.advance()
        return self._energy_wh

    @property
    def error_code(self) -> int:
        return self._fault_code

    @property
    def cp_state(self) -> CpState:
        self.advance()
        return self._cp_state()

    # ---------------------------------------------------------------- scenario controls

    def plug_in(
        self,
        rfid: str | None = None,
        energy_needed_wh: float = 20_000.0,
        max_current_a: float = 16.0,
        phases: int = 3,
    ) -> None:
        """Connect an EV that wants `energy_needed_wh`, draws at most `max_current_a` per
        phase on `phases` phases and presents `rfid` (if any) at the charger's reader."""
        if phases not in (1, 3):
            raise ValueError("an EV charges on 1 or 3 phases")
        self.advance()
        self.ev = SimulatedEv(rfid, energy_needed_wh, max_current_a, phases)

    def unplug(self) -> None:
        self.advance()
        self.ev = None
        self._current_a = 0.0

    def inject_fault(self, error_code: int = 1) -> None:
        """Put the charger in state F with the vendor `error_code` until `clear_fault()`."""
        if error_code <= 0:
            raise ValueError("a fault needs a non-zero error code")
        self.advance()
        self._fault_code = error_code
        self._current_a = 0.0

    def clear_fault(self) -> None:
        self.advance()
        self._fault_code = 0

    def reboot(self) -> None:
        """Power-cycle the charger: what the gateway wrote (setpoint, failsafe current,
        watchdog) is gone and charging is enabled again, as on chargers that keep none of
        it across a reboot (KEBA's 5004, Alfen's setpoint, Heidelberg's 261/262, chargers.md
        §3). The EV stays plugged in."""
        self.advance()
        self._setpoint_a = 0.0
        self._enabled = True
        self._failsafe_current_a = 0.0
        self._watchdog_timeout_s = 0.0
        self.watchdog_tripped = False
        self._current_a = 0.0

    def advance(self) -> None:
        """Bring the physics up to the clock."""
        target_s = (self._clock() - self._clock_origin) * self.speed
        while self._now_s < target_s:
            step = min(PHYSICS_STEP_S, target_s - self._now_s)
            self._step(step)
            self._now_s += step

    # ---------------------------------------------------------------- what the gateway writes

    def set_setpoint(self, amps: float) -> None:
        self.advance()
        self._setpoint_a = amps

    def set_enabled(self, enabled: bool) -> None:
        self.advance()
        self._enabled = enabled

    def set_failsafe_current(self, amps: float) -> None:
        self.advance()
        self._failsafe_current_a = amps

    def set_watchdog_timeout(self, seconds: float) -> None:
        self.advance()
        self._watchdog_timeout_s = seconds

    def set_phases(self, phases: int) -> None:
        """Switch between 1 and 3 phases; the EV's current restarts from 0, as a real
        switch pauses charging for a moment."""
        if phases not in (1, 3):
            raise ValueError("a charger switches 1 or 3 phases")
        self.advance()
        if phases != self._phases:
            self._phases = phases
            self._current_a = 0.0

    def note_write(self) -> None:
        """A write request arrived: restart the watchdog."""
        self.advance()
        self._last_write_s = self._now_s
        self.watchdog_tripped = False

    # ---------------------------------------------------------------- physics

    def _offered_a(self) -> float:
        if self._fault_code or not self._enabled or self._setpoint_a < PILOT_MINIMUM_A:
            return 0.0
        return self._setpoint_a

    def _cp_state(self) -> CpState:
        if self._fault_code:
            return CpState.F
        if self.ev is None:
            return CpState.A
        offered = self._offered_a()
        if self.ev.full:
            return CpState.B2 if offered > 0 else CpState.B1
        return CpState.C2 if offered > 0 else CpState.B1

    def _active_phases(self) -> int:
        if self.ev is None:
            return 0
        return min(self.ev.phases, self._phases)

    def _phase_currents(self) -> tuple[float, float, float]:
        active = self._active_phases()
        if active == 0:
            return (0.0, 0.0, 0.0)
        if active == 1:
            return (self._current_a, 0.0, 0.0)
        return (self._current_a, self._current_a, self._current_a)

    def _step(self, dt_s: float) -> None:
        at_s = self._now_s + dt_s
        if (
            self._watchdog_timeout_s > 0
            and not self.watchdog_tripped
            and at_s - self._last_write_s >= self._watchdog_timeout_s
        ):
            self.watchdog_tripped = True
            self._setpoint_a = self._failsafe_current_a
            log.info(
                "simulated watchdog fired",
                extra={"charger": self.name, "failsafe_a": self._failsafe_current_a},
            )
        ev = self.ev
        if ev is None or self._cp_state() is not CpState.C2:
            # Leaving C2 (pause, full, fault) stops the current at once.
            self._current_a = 0.0
            return
        target = min(self._offered_a(), ev.demand_a())
        self._current_a += (target - self._current_a) * (
            1.0 - math.exp(-dt_s / CURRENT_LAG_TIME_CONSTANT_S)
        )
        energy = sum(self._phase_currents()) * NOMINAL_VOLTAGE_V * dt_s / 3600.0
        energy = min(energy, ev.energy_needed_wh - ev.delivered_wh)
        ev.delivered_wh += energy
        self._energy_wh += energy
