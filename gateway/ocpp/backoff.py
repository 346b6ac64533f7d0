"""Reconnection back-off with jitter, after OCPP 2.0.1 §5.3 (the 1.6 spec names none).

The first wait is `minimum_s` plus a random share of `random_range_s`; each further failure
doubles the base and draws fresh randomness, for `repeat_times` doublings, then the wait
stays flat. Jitter spreads the reconnects of many gateways (or of the many sockets of one
gateway) after a central-system outage, so they do not arrive as a storm.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class ReconnectBackoff:
    minimum_s: float = 1.0
    random_range_s: float = 2.0
    """libocpp's defaults are 1 s and 2 s (ocpp.md §7)."""
    repeat_times: int = 5
    """libocpp's 2 caps the wait near 4 s; 5 doublings (about 32 s plus jitter) is gentler on
    a central system that is down, and still brings a socket back within a minute."""
    rng: random.Random = field(default_factory=random.Random)
    _failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; counts one more failure."""
        doublings = min(self._failures, self.repeat_times)
        self._failures += 1
        return self.minimum_s * 2.0**doublings + self.rng.uniform(0, self.random_range_s)

    def reset(self) -> None:
        """A connection succeeded: start again from the minimum."""
        self._failures = 0
