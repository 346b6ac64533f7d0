"""Polls one charger at its interval and reports readings and availability changes.

One poller per charger, each its own task, so a slow or dead charger delays nobody else
(chargers on the same Modbus link still take turns on it, as the wire demands).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.core.charger import ChargerReading, ChargerUnavailable
from gateway.core.tasks import raise_if_cancelling

log = logging.getLogger(__name__)


class SupportsRead(Protocol):
    async def read(self) -> ChargerReading: ...


@dataclass(frozen=True, slots=True)
class ChargerPolled:
    """A successful poll."""

    charger_id: str
    reading: ChargerReading
    at: float
    """Event-loop time of the poll."""


@dataclass(frozen=True, slots=True)
class ChargerOffline:
    """The charger stopped answering (reported once, on the transition)."""

    charger_id: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class ChargerOnline:
    """The charger answers again after being offline (reported once, before its reading)."""

    charger_id: str
    at: float


PollEvent = ChargerPolled | ChargerOffline | ChargerOnline
PollSink = asyncio.Queue[PollEvent] | Callable[[PollEvent], Awaitable[None] | None]


class ChargerPoller:
    """Reads `charger` every `interval_s` seconds and hands every event to `sink`: an
    `asyncio.Queue` or a callback (plain or async).

    The charger counts as offline after `failures_before_offline` consecutive failed polls
    (every failure is a `ChargerUnavailable`; nothing else is caught). A poll slower than the
    interval skips the missed slots rather than bunching polls up. An exception from the sink is
    logged and does not stop polling.
    """

    def __init__(
        self,
        charger_id: str,
        charger: SupportsRead,
        sink: PollSink,
        *,
        interval_s: float = 1.0,
        failures_before_offline: int = 1,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the poll interval must be positive")
        if failures_before_offline < 1:
            raise ValueError("failures_before_offline must be at least 1")
        self.charger_id = charger_id
        self.charger = charger
        self.sink = sink
        self.interval_s = interval_s
        self.failures_before_offline = failures_before_offline
        self.online: bool | None = None
        """None until the first poll decides."""
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling in a background task."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"poll {self.charger_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Poll until cancelled."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            raise_if_cancelling()
            await self.poll_once()
            next_at += self.interval_s
            now = loop.time()
            if next_at < now:
                # Skip the slots a slow poll missed.
                next_at += (now - next_at) // self.interval_s * self.interval_s + self.interval_s
            await asyncio.sleep(next_at - now)

    async def poll_once(self) -> None:
        """One poll: read, update availability, report."""
        loop = asyncio.get_running_loop()
        try:
            reading = await self.charger.read()
        except ChargerUnavailable as exc:
            self._failures += 1
            if self.online is not False and self._failures >= self.failures_before_offline:
                self.online = False
                log.warning(
                    "charger offline", extra={"charger": self.charger_id, "reason": str(exc)}
                )
                await self._emit(ChargerOffline(self.charger_id, str(exc), loop.time()))
            return
        self._failures = 0
        if self.online is False:
            log.info("charger back online", extra={"charger": self.charger_id})
            await self._emit(ChargerOnline(self.charger_id, loop.time()))
        self.online = True
        await self._emit(ChargerPolled(self.charger_id, reading, loop.time()))

    async def _emit(self, event: PollEvent) -> None:
        try:
            if isinstance(self.sink, asyncio.Queue):
                await self.sink.put(event)
                return
            result = self.sink(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("poll sink failed", extra={"charger": self.charger_id})
