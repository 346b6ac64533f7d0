"""Where the core gets the time from, so state machines can be driven by tests and replays."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time for records, monotonic time for deadlines (immune to clock steps)."""

    def now(self) -> datetime:
        """The current UTC time, timezone-aware."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""


class SystemClock:
    """The host's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()
