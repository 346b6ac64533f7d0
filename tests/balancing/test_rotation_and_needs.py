"""Paused sessions take turns (the solver's `waited`, counted by the controller per rotation
period), and a charger's usual departure and energy from the config rank its sessions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from gateway.balancing.controller import BalancedCharger, BalancingController, ChargerSnapshot
from gateway.balancing.loop import seconds_until
from gateway.balancing.planner import PlannerSettings
from gateway.balancing.topology import Circuit


def admitted(
    control: BalancingController, now: float, snapshots: dict[str, ChargerSnapshot]
) -> str:
    for write in control.tick(now, snapshots):
        control.confirm(write, now)
    on = [cid for cid in snapshots if control.status(cid).target_a > 0]
    assert len(on) == 1, on
    return on[0]


def test_equal_sessions_take_turns_period_by_period() -> None:
    # Room for one session at 6 A; two equal vehicles; a rotation period of 10 s.
    control = BalancingController(
        [Circuit("fuse", None, (6.0, 6.0, 6.0))],
        [BalancedCharger(cid, "fuse") for cid in ("a", "b")],
        PlannerSettings(ramp_a_per_s=100.0),
        min_run_s=10.0,
    )
    wanting = ChargerSnapshot(online=True, wants_current=True)
    both = {"a": wanting, "b": wanting}
    turns = [admitted(control, float(now), both) for now in range(0, 61, 2)]
    # Each holds its turn for a period, then the other, who waited, goes: no starving, and
    # no flapping within a period.
    changes = sum(1 for before, after in itertools.pairwise(turns) if before != after)
    assert 4 <= changes <= 6, turns
    assert turns.count("a") >= 10, turns
    assert turns.count("b") >= 10, turns
    runs = "".join(turns).replace("ab", "a|b").replace("ba", "b|a").split("|")
    assert min(len(run) for run in runs[1:-1]) >= 5, turns  # at least a period (10 s / 2 s)


def test_seconds_until_the_next_local_time_of_day() -> None:
    now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    local = now.astimezone()
    target = f"{(local.hour + 1) % 24:02d}:{local.minute:02d}"
    assert seconds_until(target, now) == pytest.approx(3600.0)
    same = f"{local.hour:02d}:{local.minute:02d}"
    assert seconds_until(same, now) == pytest.approx(86400.0)  # today's has passed: tomorrow
