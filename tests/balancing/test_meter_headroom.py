"""Headroom from a meter (load-balancing.md §2) and the stale-meter failsafe (§6.2), through
the controller and the Rust solver."""

from __future__ import annotations

import pytest

from gateway.balancing.controller import BalancedCharger, BalancingController, ChargerSnapshot
from gateway.balancing.planner import PlannerSettings
from gateway.balancing.topology import Circuit
from gateway.core.meter import MeterReading

VOLTS = (230.0, 230.0, 230.0)


def site() -> BalancingController:
    circuits = [
        Circuit("grid", None, (63.0, 63.0, 63.0)),
        Circuit("board", "grid", (50.0, 50.0, 50.0)),
    ]
    chargers = [
        BalancedCharger("a", "board", max_current_a=32.0),
        # A single-phase charger wired to grid L2.
        BalancedCharger("b", "grid", phases=1, phase_rotation="S", max_current_a=32.0),
    ]
    return BalancingController(circuits, chargers, PlannerSettings(ramp_a_per_s=1000.0))


def meter(l1: float, l2: float, l3: float) -> MeterReading:
    return MeterReading((l1, l2, l3), VOLTS, (l1 + l2 + l3) * 230.0)


def targets(
    control: BalancingController,
    snapshots: dict[str, ChargerSnapshot],
    meters: dict[str, MeterReading | None],
) -> dict[str, float]:
    for now in (0.0, 1.0):  # the first tick restores unknown setpoints
        for write in control.tick(now, snapshots, meters):
            control.confirm(write, now)
    return {cid: control.status(cid).target_a for cid in ("a", "b")}


def test_non_ev_load_on_the_grid_meter_narrows_the_phases_it_loads() -> None:
    control = site()
    snapshots = {
        "a": ChargerSnapshot(True, True, measured_a=(20.0, 20.0, 20.0)),
        "b": ChargerSnapshot(True, True, measured_a=(10.0, 0.0, 0.0)),
    }
    # The grid meter sees our 20 A on every phase, b's 10 A on L2, and 40 A of a
    # building's own load on L1: L1 has 63 - 40 = 23 A for the chargers.
    reading = meter(20.0 + 40.0, 20.0 + 10.0, 20.0)
    got = targets(control, snapshots, {"grid": reading})
    assert got["a"] == pytest.approx(23.0)
    assert "grid" in control.status("a").reason
    assert "L1" in control.status("a").reason
    assert got["b"] == pytest.approx(32.0)  # L2: 63 - 0 non-EV - a's 23 A leaves 40 A


def test_without_the_meter_the_same_site_runs_on_its_static_limits() -> None:
    control = site()
    snapshots = {
        "a": ChargerSnapshot(True, True, measured_a=(20.0, 20.0, 20.0)),
        "b": ChargerSnapshot(True, True, measured_a=(10.0, 0.0, 0.0)),
    }
    got = targets(control, snapshots, {})
    # L2 of the grid (63 A) is shared by a and b: 31.5 A each.
    assert got == {"a": pytest.approx(31.5), "b": pytest.approx(31.5)}


def test_a_stale_meter_pauses_everything_below_it_and_says_so() -> None:
    control = site()
    snapshots = {
        "a": ChargerSnapshot(True, True, measured_a=(16.0, 16.0, 16.0)),
        "b": ChargerSnapshot(True, True, measured_a=(16.0, 0.0, 0.0)),
    }
    got = targets(control, snapshots, {"board": None})
    assert got["a"] == 0.0
    assert "stale" in control.status("a").reason.lower()
    # b hangs on the grid, not below the stale board meter: it keeps charging.
    assert got["b"] == pytest.approx(32.0)


def test_a_meter_reading_less_than_our_chargers_gives_no_extra_capacity() -> None:
    # A meter that lags the chargers' ramp (or sees export) reads less than what our
    # chargers report; the non-EV load is clipped at 0, never negative.
    control = site()
    snapshots = {
        "a": ChargerSnapshot(True, True, measured_a=(30.0, 30.0, 30.0)),
        "b": ChargerSnapshot(True, False),
    }
    got = targets(control, snapshots, {"board": meter(5.0, 5.0, 5.0)})
    assert got["a"] == pytest.approx(32.0)  # its own maximum, and no more than the fuse
    # With 30 A of other load on the board's L1 (60 measured - a's 30), a gets 50 - 30.
    got = targets(control, snapshots, {"board": meter(60.0, 30.0, 30.0)})
    assert got["a"] == pytest.approx(20.0)


def test_an_offline_chargers_reserved_share_is_not_counted_twice() -> None:
    control = site()
    online = {
        "a": ChargerSnapshot(True, True, measured_a=(10.0, 10.0, 10.0)),
        "b": ChargerSnapshot(True, True, measured_a=(12.0, 0.0, 0.0)),
    }
    targets(control, online, {})
    b_share = control.planner.written_a("b")
    assert b_share is not None
    assert b_share == pytest.approx(31.5)
    # b stops answering; the grid meter still sees it drawing its share on L2, plus a
    # 5 A building load on L2. a may use 63 - 5 - b's share on L2, not 63 - 5 - 2 x share.
    reading = meter(10.0, 10.0 + b_share + 5.0, 10.0)
    got = targets(control, {"a": online["a"]}, {"grid": reading})
    assert got["a"] == pytest.approx(63.0 - 5.0 - b_share)
    assert "offline" in control.status("b").reason
