"""The balancing control loop: the asyncio shell around `BalancingController`.

Every `interval_s` (1-5 s, load-balancing.md §5), and at once on a session starting or
ending or a charger going offline or coming back, it reads the site's state (which chargers
answer, which have a session wanting current, their measured currents, the vehicles' needs),
solves the whole site in one pass, and writes the planned setpoints through each charger's
driver: cuts and restores first, raises only when every cut went through (a charger that did
not take a cut may still draw the old current). Each confirmed setpoint becomes the
connector's allocated current, so a session starting or a charger that lost its setpoint is
reconciled by the site's own poll at the balanced value, never at the charger's maximum.

It also programs each charger's failsafe current and watchdog (`configure_failsafe`) as soon
as the charger answers, where its driver supports that, so the chargers fall back to currents
that trip no fuse if the gateway dies (load-balancing.md §6.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from gateway.balancing.controller import (
    BalancingController,
    BalancingStatus,
    ChargerSnapshot,
    PhaseChange,
)
from gateway.balancing.planner import SetpointWrite, WriteKind
from gateway.core.charger import ChargerControl
from gateway.core.clock import Clock, SystemClock
from gateway.core.events import ChargerConnectivityChanged, SessionEnded, SessionStarted, SiteEvent
from gateway.core.meter import MeterReading
from gateway.core.site import Site
from gateway.core.tasks import raise_if_cancelling

logger = logging.getLogger(__name__)

MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 5.0
"""Recompute the whole site every 1-5 s (load-balancing.md §5)."""


EVENT_SETTLE_S = 0.1
"""After an event, wait this long before recomputing, so a burst of events makes one tick."""
_RECOMPUTE_ON = (SessionStarted, SessionEnded, ChargerConnectivityChanged)


@runtime_checkable
class FailsafeCapable(Protocol):
    """A driver that can program the charger's watchdog (`ModbusCharger`)."""

    async def configure_failsafe(self, current_a: float, timeout_s: int) -> None: ...
    async def refresh_watchdog(self) -> None: ...


class MeterSource(Protocol):
    """Where the loop gets a circuit's meter reading (`gateway.meters.MeterMonitor`)."""

    def latest(self, now: float | None = None) -> MeterReading | None:
        """The latest reading, None when stale."""


@runtime_checkable
class PhaseSwitching(Protocol):
    """A driver that can switch a charger between one and three phases."""

    async def set_phases(self, phases: int) -> None: ...


@dataclass(frozen=True, slots=True)
class UsualNeed:
    """What the vehicles at a charger usually need (its `departure` and `energy_needed_kwh`
    in the config): applied to each session that has no need of its own."""

    departure: str
    """Local time of day, "HH:MM": the next such time after the session starts."""
    energy_wh: float


@dataclass(frozen=True, slots=True)
class VehicleNeed:
    """What the vehicle of one session needs, from the config, the local API or upstream."""

    energy_wh: float
    """Energy still to deliver, counted from the session's start."""
    departure_at: float
    """On the loop clock's monotonic scale."""
    session_id: str


class BalancingLoop:
    """Runs `controller` over `site` until cancelled; see the module docstring."""

    def __init__(
        self,
        site: Site,
        controller: BalancingController,
        *,
        interval_s: float = 2.0,
        clock: Clock | None = None,
        meters: Mapping[str, MeterSource] | None = None,
        usual_needs: Mapping[str, UsualNeed] | None = None,
    ) -> None:
        """`meters` maps circuit ids to the meter measuring each (its headroom then comes
        from the measurement; a stale meter pauses everything below it)."""
        if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
            raise ValueError(
                f"interval_s must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g} s,"
                f" got {interval_s:g}"
            )
        unknown = set(controller.chargers) - set(site.charger_ids)
        if unknown:
            raise ValueError(f"balanced chargers not on the site: {', '.join(sorted(unknown))}")
        unknown_circuits = set(meters or {}) - set(controller.circuits)
        if unknown_circuits:
            raise ValueError(f"meters on unknown circuits: {', '.join(sorted(unknown_circuits))}")
        self.site = site
        self.controller = controller
        self.meters: dict[str, MeterSource] = dict(meters or {})
        self.usual_needs: dict[str, UsualNeed] = dict(usual_needs or {})
        self.interval_s = interval_s
        self._clock: Clock = clock or SystemClock()
        self._needs: dict[str, VehicleNeed] = {}
        self._caps: dict[str, dict[str, float]] = {}
        self._failsafe_done: set[str] = set()
        self.solve_observer: Callable[[float], None] | None = None
        """Told the seconds each tick's solve took (the metrics' solver time)."""
        for charger_id in controller.chargers:
            # Until the loop grants current, a starting session is enabled at 0 A (paused).
            site.set_allocated_current(charger_id, 0.0)

    def status(self, charger_id: str) -> BalancingStatus:
        """Last setpoint, last target and the solver's reason for a charger."""
        return self.controller.status(charger_id)

    def set_charger_cap(self, charger_id: str, source: str, amps: float | None) -> None:
        """Cap a charger at `amps` per phase on behalf of `source` ("ocpp", "ocpi",
        "local-api", ...), or lift that source's cap with None. The tightest cap of all
        sources applies, as one more limit above the charger (load-balancing.md §7); below
        the charger's minimum it pauses. Raises LookupError for an unknown charger,
        ValueError for a negative or non-finite current."""
        if charger_id not in self.controller.chargers:
            raise LookupError(f"unknown balanced charger {charger_id!r}")
        caps = self._caps.setdefault(charger_id, {})
        if amps is None:
            caps.pop(source, None)
            return
        if not (math.isfinite(amps) and amps >= 0):
            raise ValueError(f"a cap must be a non-negative number of amperes, got {amps}")
        caps[source] = amps

    def charger_caps(self, charger_id: str) -> dict[str, float]:
        """The caps on a charger by source (a copy; empty when none)."""
        return dict(self._caps.get(charger_id, {}))

    def vehicle_need(self, charger_id: str) -> VehicleNeed | None:
        """The need the balancing holds for the charger's active session, if any."""
        need = self._needs.get(charger_id)
        session = self.site.connector(charger_id).session
        if need is None or session is None or session.id != need.session_id:
            return None
        return need

    def monotonic(self) -> float:
        """Now on the loop clock's monotonic scale (`VehicleNeed.departure_at`'s)."""
        return self._clock.monotonic()

    def set_circuit_limit(
        self, circuit_id: str, source: str, amps: tuple[float, float, float] | None
    ) -> None:
        """Limit a circuit to `amps` per grid phase on behalf of `source` (a capacity-tariff
        cap, a grid operator's dimming, an EMS), or lift it with None; the tightest of the
        static fuse and every source applies. Raises LookupError for an unknown circuit,
        ValueError for a negative or non-finite current."""
        self.controller.set_circuit_limit(circuit_id, source, amps)

    def set_vehicle_need(self, charger_id: str, energy_wh: float, departure_in_s: float) -> None:
        """Tell the balancing what the vehicle in the active session needs. Raises
        LookupError without an active session, ValueError for a negative or non-finite
        value."""
        if not (math.isfinite(energy_wh) and energy_wh >= 0):
            raise ValueError(f"energy must be a non-negative number of Wh, got {energy_wh}")
        if not (math.isfinite(departure_in_s) and departure_in_s >= 0):
            raise ValueError(f"departure must be a non-negative number of s, got {departure_in_s}")
        session = self.site.connector(charger_id).session
        if session is None:
            raise LookupError(f"no active session on {charger_id!r}")
        self._needs[charger_id] = VehicleNeed(
            energy_wh, self._clock.monotonic() + departure_in_s, session.id
        )

    async def run(self) -> None:
        """Tick every `interval_s`, and at once when a session starts or ends or a charger
        goes offline or comes back (load-balancing.md §5), until cancelled. A failing tick
        is logged, never fatal."""
        events = self.site.subscribe()
        try:
            while True:
                raise_if_cancelling()
                try:
                    await self.tick()
                except Exception:
                    logger.exception("balancing tick failed")
                await self._next_tick(events)
        finally:
            self.site.unsubscribe(events)

    async def _next_tick(self, events: asyncio.Queue[SiteEvent]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval_s):
                while not isinstance(event := await events.get(), _RECOMPUTE_ON):
                    pass
                self._note(event)
                # Let a burst (many vehicles plugging in after a power cut) land in one tick.
                await asyncio.sleep(EVENT_SETTLE_S)
        while not events.empty():
            self._note(events.get_nowait())

    def _note(self, event: SiteEvent) -> None:
        if isinstance(event, ChargerConnectivityChanged) and not event.online:
            # It may come back rebooted, its watchdog and failsafe current gone (KEBA,
            # Alfen, Heidelberg lose them, chargers.md §5): program them again when it answers.
            self._failsafe_done.discard(event.charger_id)

    async def tick(self) -> None:
        """One pass: failsafe programming, solve, writes."""
        await self._program_failsafes()
        now = self._clock.monotonic()
        readings = {circuit_id: meter.latest(now) for circuit_id, meter in self.meters.items()}
        solve_started = time.perf_counter()
        writes = self.controller.tick(now, self._snapshots(now), readings)
        if self.solve_observer is not None:
            self.solve_observer(time.perf_counter() - solve_started)
        for change in self.controller.phase_changes:
            if not await self._switch_phases(change):
                # Still on its old phases while its allocation assumed the new ones: hand it
                # nothing this tick.
                writes = [w for w in writes if w.charger_id != change.charger_id]
                with contextlib.suppress(Exception):
                    await self.site.driver(change.charger_id).set_current_limit(0.0)
        first = [write for write in writes if write.kind.lowers_or_resets]
        then = [write for write in writes if not write.kind.lowers_or_resets]
        results = await asyncio.gather(*(self._apply(write) for write in first))
        if not all(results):
            # A charger that did not take its cut may still draw the old current: hand the
            # capacity to nobody this tick. Keep-alives still go out.
            then = [write for write in then if write.kind is WriteKind.KEEP_ALIVE]
        await asyncio.gather(*(self._apply(write) for write in then))

    async def _switch_phases(self, change: PhaseChange) -> bool:
        driver = self.site.driver(change.charger_id)
        if not isinstance(driver, PhaseSwitching):
            return False
        try:
            await driver.set_phases(change.phases)
        except Exception as error:
            logger.warning(
                "phase switch failed: %s",
                error,
                extra={"charger_id": change.charger_id, "phases": change.phases},
            )
            return False
        self.controller.confirm_phases(change, self._clock.monotonic())
        logger.info(
            "phases switched", extra={"charger_id": change.charger_id, "phases": change.phases}
        )
        return True

    def _snapshots(self, now: float) -> dict[str, ChargerSnapshot]:
        snapshots: dict[str, ChargerSnapshot] = {}
        for charger_id in self.controller.chargers:
            connector = self.site.connector(charger_id)
            session = connector.session
            reading = connector.reading
            need = self._needs.get(charger_id)
            if need is not None and (session is None or session.id != need.session_id):
                del self._needs[charger_id]
                need = None
            usual = self.usual_needs.get(charger_id)
            if need is None and session is not None and usual is not None:
                need = self._needs[charger_id] = VehicleNeed(
                    usual.energy_wh,
                    now + seconds_until(usual.departure, self._clock.now()),
                    session.id,
                )
            energy_left: float | None = None
            departure_in: float | None = None
            if need is not None and session is not None:
                delivered = 0.0 if reading is None else reading.energy_wh - session.meter_start_wh
                energy_left = max(0.0, need.energy_wh - delivered)
                departure_in = need.departure_at - now
            snapshots[charger_id] = ChargerSnapshot(
                online=connector.online and reading is not None,
                wants_current=session is not None and connector.desired_offer.enabled,
                measured_a=reading.current_a if reading is not None else (0.0, 0.0, 0.0),
                cap_a=min(self._caps.get(charger_id, {}).values(), default=math.inf),
                energy_needed_wh=energy_left,
                departure_in_s=departure_in,
                session_id=None if session is None else session.id,
            )
        return snapshots

    async def _apply(self, write: SetpointWrite) -> bool:
        driver: ChargerControl = self.site.driver(write.charger_id)
        allocated = self.site.connector(write.charger_id).allocated_current_a
        if allocated is None or write.current_a < allocated:
            # Lowered before the write goes out: a site poll that reads the charger while
            # the cut is in flight must not restore the old, higher current. (A raise is
            # published only once confirmed, for the same reason.)
            self.site.set_allocated_current(write.charger_id, write.current_a)
        try:
            await driver.set_current_limit(write.current_a)
            if write.kind is WriteKind.KEEP_ALIVE and isinstance(driver, FailsafeCapable):
                # Some chargers are kept alive by their timeout register, not the setpoint.
                await driver.refresh_watchdog()
        except Exception as error:
            logger.warning(
                "balancing write failed: %s",
                error,
                extra={"charger_id": write.charger_id, "current_a": write.current_a},
            )
            return False
        self.controller.confirm(write, self._clock.monotonic())
        self.site.set_allocated_current(write.charger_id, write.current_a)
        if write.kind is not WriteKind.KEEP_ALIVE:
            logger.info(
                "balancing setpoint",
                extra={
                    "charger_id": write.charger_id,
                    "current_a": write.current_a,
                    "kind": str(write.kind),
                    "reason": self.controller.status(write.charger_id).reason,
                },
            )
        return True

    async def _program_failsafes(self) -> None:
        for charger_id, charger in self.controller.chargers.items():
            if charger_id in self._failsafe_done or not self.site.connector(charger_id).online:
                continue
            driver = self.site.driver(charger_id)
            if charger.watchdog_timeout_s <= 0 or not isinstance(driver, FailsafeCapable):
                self._failsafe_done.add(charger_id)
                continue
            try:
                await driver.configure_failsafe(
                    charger.failsafe_current_a, round(charger.watchdog_timeout_s)
                )
            except NotImplementedError:
                logger.warning(
                    "charger has no watchdog: it keeps its last setpoint if the gateway stops",
                    extra={"charger_id": charger_id},
                )
                self._failsafe_done.add(charger_id)
                continue
            except Exception as error:
                logger.warning(
                    "could not program the failsafe: %s", error, extra={"charger_id": charger_id}
                )
                continue
            self._failsafe_done.add(charger_id)
            self.controller.planner.set_watchdog_armed(charger_id)
            logger.info(
                "failsafe programmed",
                extra={
                    "charger_id": charger_id,
                    "failsafe_current_a": charger.failsafe_current_a,
                    "watchdog_timeout_s": charger.watchdog_timeout_s,
                },
            )


def seconds_until(time_of_day: str, now: datetime) -> float:
    """Seconds from `now` (aware) to the next `time_of_day` ("HH:MM") in local time."""
    local = now.astimezone()
    hours, minutes = (int(part) for part in time_of_day.split(":"))
    target = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return (target - local).total_seconds()
