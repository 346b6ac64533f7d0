"""The per-phase load of the last hours, for the dashboard's chart: a fixed-size ring of
samples per series (the site, and each circuit), so memory stays bounded however long the
gateway runs.

Memory: each sample is a time and three currents, four 8-byte floats; with the defaults
(a sample every 10 s for 6 h = 2,160 samples) a series takes 2,160 x 32 B = 69 KB, so a site
with ten circuits stays under 1 MB.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Final

DEFAULT_SAMPLE_INTERVAL_S: Final = 10.0
"""Fine enough to show a session ramping or a fuse nearly full, coarse enough to keep six
hours in a few kilobytes per series."""
DEFAULT_HOURS: Final = 6.0
"""A depot's evening arrival peak, or a night shift, fits in the chart."""
_FIELDS: Final = 4  # time, L1, L2, L3


class LoadSeries:
    """A ring of (unix time, L1, L2, L3) samples; the oldest is overwritten when full."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._data = array("d", bytes(8 * _FIELDS * capacity))
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, at: float, amps: Iterable[float]) -> None:
        l1, l2, l3 = amps
        base = self._next * _FIELDS
        self._data[base : base + _FIELDS] = array("d", (at, l1, l2, l3))
        self._next = (self._next + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def samples(self, since: float = -math.inf) -> list[tuple[float, float, float, float]]:
        """Samples at or after `since` (unix time), oldest first."""
        start = (self._next - self._count) % self.capacity
        found = []
        for offset in range(self._count):
            base = ((start + offset) % self.capacity) * _FIELDS
            at, l1, l2, l3 = self._data[base : base + _FIELDS]
            if at >= since:
                found.append((at, l1, l2, l3))
        return found

    @property
    def memory_bytes(self) -> int:
        return self._data.itemsize * len(self._data)


class LoadHistory:
    """One `LoadSeries` per named series ("site", and each circuit's id)."""

    def __init__(
        self,
        *,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        hours: float = DEFAULT_HOURS,
    ) -> None:
        if sample_interval_s <= 0 or hours <= 0:
            raise ValueError("sample interval and hours must be positive")
        self.sample_interval_s = sample_interval_s
        self.hours = hours
        self.capacity = max(1, math.ceil(hours * 3600.0 / sample_interval_s))
        self._series: dict[str, LoadSeries] = {}

    def add(self, series: str, at: float, amps: Iterable[float]) -> None:
        ring = self._series.get(series)
        if ring is None:
            ring = self._series[series] = LoadSeries(self.capacity)
        ring.add(at, amps)

    @property
    def series(self) -> list[str]:
        return list(self._series)

    def samples(self, series: str, since: float = -math.inf) -> list[tuple[float, ...]]:
        """Raises LookupError for a series never sampled."""
        ring = self._series.get(series)
        if ring is None:
            raise LookupError(f"unknown series {series!r}")
        return list(ring.samples(since))

    @property
    def memory_bytes(self) -> int:
        return sum(ring.memory_bytes for ring in self._series.values())
