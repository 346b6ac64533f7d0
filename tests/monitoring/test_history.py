"""Charger uptime and fault history in a real SQLite store, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.monitoring.history import ChargerHistory
from gateway.store import Store

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class StepClock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - START).total_seconds()

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


async def test_uptime_counts_offline_time_against_observed_time(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "evgw.sqlite3")
    clock = StepClock()
    history = ChargerHistory(store, clock)
    try:
        await history.start_run()
        clock.advance(600)
        down = await history.episode_started("CP-1", "offline", "", clock.now())
        clock.advance(300)
        await history.episode_ended(down, clock.now())
        fault = await history.episode_started("CP-1", "fault", "GroundFailure (vendor 4)", clock.at)
        clock.advance(100)
        await history.episode_ended(fault, clock.now())
        clock.advance(1000)
        cp1, cp2 = await history.summary(["CP-1", "CP-2"], window_s=3600)
        assert cp1.observed_s == 2000
        assert cp1.offline_s == 300
        assert cp1.uptime_percent == pytest.approx(85.0)
        assert cp1.faults == 1
        assert cp1.last_fault is not None
        assert cp1.last_fault.detail == "GroundFailure (vendor 4)"
        assert cp2.uptime_percent == 100.0
        assert cp2.faults == 0
        # A window that ends before the episode saw no downtime of it.
        (short,) = await history.summary(["CP-1"], window_s=500)
        assert short.offline_s == 0
        assert short.faults == 0
        assert short.last_fault is not None  # the last fault ever, for planning
        with pytest.raises(ValueError, match="window"):
            await history.summary(window_s=0)
    finally:
        await store.close()


async def test_time_the_gateway_was_off_does_not_count_and_a_crash_closes_at_its_mark(
    tmp_path: Path,
) -> None:
    path = tmp_path / "evgw.sqlite3"
    clock = StepClock()
    store = await Store.open(path)
    history = ChargerHistory(store, clock)
    await history.start_run()
    clock.advance(100)
    await history.episode_started("CP-1", "offline", "", clock.now())
    clock.advance(100)
    await history.mark_alive()  # the last sign of life before the power cut
    clock.advance(50)
    await store.close()  # no stop_run: the process died

    clock.advance(10_000)  # off for hours
    store = await Store.open(path)
    history = ChargerHistory(store, clock)
    try:
        await history.start_run()
        (episode,) = await history.episodes("CP-1")
        assert episode.ended_at == START + timedelta(seconds=200)  # at the mark
        clock.advance(800)
        await history.stop_run()
        (cp1,) = await history.summary(["CP-1"], window_s=86400)
        # Observed: 200 s of the first run (to its mark) and 800 s of the second.
        assert cp1.observed_s == 1000
        assert cp1.offline_s == 100
        assert cp1.uptime_percent == pytest.approx(90.0)
    finally:
        await store.close()
