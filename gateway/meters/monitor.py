"""Keeps the latest reading of a meter, and says when it is too old to trust.

The balancing loop asks `latest(now)` every tick. A meter that has not answered for
`stale_after_s` yields None, and the loop then treats its circuit as fully loaded
(load-balancing.md §6.2: a stale meter must never let the current rise; evcc #22839 is the
anti-pattern of charging at maximum when the grid currents went missing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from gateway.core.charger import ChargerUnavailable
from gateway.core.clock import Clock, SystemClock
from gateway.core.meter import MeterReading
from gateway.core.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER_S = 10.0
"""EVerest lets a limit expire after 10 update intervals (load-balancing.md §6.2); with the
default 1 s poll that is 10 s. evcc and openWB wait 60 s, which is long for a fuse."""


class SupportsMeterRead(Protocol):
    name: str

    async def read(self) -> MeterReading: ...


class MeterMonitor:
    """Polls `meter` every `interval_s` until cancelled and keeps its latest reading."""

    def __init__(
        self,
        meter: SupportsMeterRead,
        *,
        interval_s: float = 1.0,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        clock: Clock | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the meter poll interval must be positive")
        if stale_after_s <= interval_s:
            raise ValueError("stale_after_s must be longer than the poll interval")
        self.meter = meter
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self._clock: Clock = clock or SystemClock()
        self._reading: MeterReading | None = None
        self._read_at = float("-inf")
        self.online: bool | None = None
        """None until the first poll decides."""
        self.last_error = ""

    def latest(self, now: float | None = None) -> MeterReading | None:
        """The latest reading, or None when there is none younger than `stale_after_s`
        (`now` on the monotonic scale of the monitor's clock; default: the clock's now)."""
        at = self._clock.monotonic() if now is None else now
        if self._reading is None or at - self._read_at > self.stale_after_s:
            return None
        return self._reading

    def record(self, reading: MeterReading, at: float | None = None) -> None:
        """Take a reading obtained elsewhere (an MQTT meter, a test)."""
        self._reading = reading
        self._read_at = self._clock.monotonic() if at is None else at

    async def poll_once(self) -> None:
        try:
            reading = await self.meter.read()
        except ChargerUnavailable as exc:
            self.last_error = str(exc)
            if self.online is not False:
                self.online = False
                log.warning(
                    "meter not answering", extra={"meter": self.meter.name, "reason": str(exc)}
                )
            return
        if self.online is False:
            log.info("meter answering again", extra={"meter": self.meter.name})
        self.online = True
        self.record(reading)

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is logged once per outage, never fatal."""
        while True:
            raise_if_cancelling()
            await self.poll_once()
            await asyncio.sleep(self.interval_s)
