"""The setpoint planner: cuts at once, raises ramped, deadband, keep-alive, offline share."""

from __future__ import annotations

import pytest

from gateway.balancing import (
    BalancedCharger,
    BalancingController,
    ChargerLimits,
    ChargerSnapshot,
    Circuit,
    PlannerSettings,
    SetpointPlanner,
    SetpointWrite,
    WriteKind,
)

LIMITS = ChargerLimits(min_current_a=6.0, max_current_a=32.0, resolution_a=0.1)
SETTINGS = PlannerSettings(ramp_a_per_s=0.5, deadband_a=0.2)


def planner_at(
    written: dict[str, float], at: float = 0.0, **limits: ChargerLimits
) -> SetpointPlanner:
    """A planner whose chargers are online and have confirmed `written`."""
    planner = SetpointPlanner({cid: limits.get(cid, LIMITS) for cid in written}, SETTINGS)
    for charger_id, amps in written.items():
        planner.set_online(charger_id, True)
        planner.confirm(SetpointWrite(charger_id, amps, WriteKind.RESTORE, amps), at)
    return planner


def only(writes: list[SetpointWrite]) -> SetpointWrite:
    assert len(writes) == 1, writes
    return writes[0]


def test_a_cut_is_written_at_once_and_before_raises() -> None:
    planner = planner_at({"a": 6.0, "b": 20.0})
    writes = planner.plan(10.0, {"a": 16.0, "b": 10.0})
    assert [(w.charger_id, w.kind) for w in writes] == [
        ("b", WriteKind.CUT),
        ("a", WriteKind.RAISE),
    ]
    assert writes[0].current_a == 10.0


def test_a_raise_ramps_at_the_configured_rate() -> None:
    planner = planner_at({"a": 6.0})
    raise_ = only(planner.plan(2.0, {"a": 16.0}))
    assert raise_.kind is WriteKind.RAISE
    assert raise_.current_a == pytest.approx(7.0)  # 0.5 A/s x 2 s
    assert raise_.target_a == 16.0
    planner.confirm(raise_, 2.0)
    # Long silence does not turn into a jump: at most RAISE_WINDOW_CAP_S (5 s) of ramp.
    assert only(planner.plan(1000.0, {"a": 16.0})).current_a == pytest.approx(9.5)


def test_a_paused_charger_starts_at_its_minimum() -> None:
    planner = planner_at({"a": 0.0})
    assert only(planner.plan(0.1, {"a": 13.0})).current_a == 6.0


def test_raises_inside_the_deadband_are_not_written() -> None:
    planner = planner_at({"a": 10.0})
    assert planner.plan(3.0, {"a": 10.1}) == []
    # A cut of the same size is written: skipping it could overload a fuse.
    assert only(planner.plan(3.0, {"a": 9.9})).kind is WriteKind.CUT


def test_keep_alive_inside_half_the_watchdog() -> None:
    with_watchdog = ChargerLimits(watchdog_timeout_s=20.0)
    planner = planner_at({"a": 10.0}, a=with_watchdog)
    assert planner.plan(9.9, {"a": 10.0}) == []
    keep_alive = only(planner.plan(10.0, {"a": 10.0}))
    assert (keep_alive.kind, keep_alive.current_a) == (WriteKind.KEEP_ALIVE, 10.0)
    planner.confirm(keep_alive, 10.0)
    assert planner.plan(15.0, {"a": 10.0}) == []
    # Without a watchdog nothing is rewritten.
    assert planner_at({"b": 10.0}).plan(1e6, {"b": 10.0}) == []


def test_an_unknown_setpoint_is_restored_at_once() -> None:
    planner = SetpointPlanner({"a": LIMITS}, SETTINGS)
    planner.set_online("a", True)
    restore = only(planner.plan(0.0, {"a": 16.0}))
    assert (restore.kind, restore.current_a) == (WriteKind.RESTORE, 16.0)


def test_an_offline_charger_keeps_its_share_until_its_watchdog_fires() -> None:
    limits = ChargerLimits(failsafe_current_a=8.0, watchdog_timeout_s=60.0)
    planner = planner_at({"a": 16.0}, at=100.0, a=limits)
    planner.set_watchdog_armed("a")
    assert planner.reserved_a("a", 101.0) == 0.0
    planner.set_online("a", False)
    assert planner.plan(101.0, {"a": 32.0}) == []  # no writes to a charger that is gone
    assert planner.reserved_a("a", 101.0) == 16.0
    assert planner.reserved_a("a", 160.0) == 8.0  # its watchdog has fired: the failsafe
    # Back online: the setpoint is unknown (the watchdog may have fired), rewritten at once.
    planner.set_online("a", True)
    assert only(planner.plan(161.0, {"a": 10.0})).kind is WriteKind.RESTORE


def test_a_charger_never_told_anything_is_reserved_at_its_maximum() -> None:
    planner = SetpointPlanner({"a": LIMITS}, SETTINGS)
    assert planner.reserved_a("a", 0.0) == 32.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="ramp_a_per_s"):
        PlannerSettings(ramp_a_per_s=0.0)
    with pytest.raises(ValueError, match="deadband_a"):
        PlannerSettings(deadband_a=-1.0)


def controller() -> BalancingController:
    circuits = [Circuit("grid", None, (32.0, 32.0, 32.0))]
    chargers = [
        BalancedCharger(cid, "grid", max_current_a=32.0, failsafe_current_a=8.0)
        for cid in ("a", "b", "c")
    ]
    return BalancingController(circuits, chargers, PlannerSettings(ramp_a_per_s=100.0))


def run_tick(
    control: BalancingController, now: float, snapshots: dict[str, ChargerSnapshot]
) -> dict[str, float]:
    for write in control.tick(now, snapshots):
        control.confirm(write, now)
    return {cid: control.planner.written_a(cid) or 0.0 for cid in ("a", "b", "c")}


def test_controller_shares_the_fuse_and_reserves_an_offline_chargers_share() -> None:
    control = controller()
    charging = ChargerSnapshot(online=True, wants_current=True)
    everyone = {"a": charging, "b": charging, "c": charging}
    run_tick(control, 0.0, everyone)  # restores: every setpoint was unknown
    setpoints = run_tick(control, 1.0, everyone)
    assert sum(setpoints.values()) <= 32.0
    assert min(setpoints.values()) >= 10.6
    assert "saturated" in control.status("a").reason

    # "c" stops answering: it may still draw its 10.6 A, so the others may not take it.
    gone = {"a": charging, "b": charging}
    setpoints = run_tick(control, 2.0, gone)
    assert setpoints["a"] + setpoints["b"] + 10.6 <= 32.0 + 1e-9
    assert "offline" in control.status("c").reason


def test_an_admitted_session_keeps_its_turn_for_the_minimum_run_time() -> None:
    # Room for one session at 6 A: a more urgent arrival waits until the running one has
    # had its minimum run time, instead of swapping on the next tick.
    control = BalancingController(
        [Circuit("grid", None, (6.0, 6.0, 6.0))],
        [BalancedCharger(cid, "grid") for cid in ("a", "b")],
        PlannerSettings(ramp_a_per_s=100.0),
        min_run_s=180.0,
    )
    relaxed = ChargerSnapshot(
        online=True, wants_current=True, energy_needed_wh=1_000, departure_in_s=36_000
    )
    urgent = ChargerSnapshot(
        online=True, wants_current=True, energy_needed_wh=30_000, departure_in_s=3_600
    )
    idle = ChargerSnapshot(online=True, wants_current=False)
    for write in control.tick(0.0, {"a": relaxed, "b": idle}):
        control.confirm(write, 0.0)
    assert control.status("a").target_a == 6.0
    control.tick(2.0, {"a": relaxed, "b": urgent})
    assert (control.status("a").target_a, control.status("b").target_a) == (6.0, 0.0)
    control.tick(181.0, {"a": relaxed, "b": urgent})
    assert (control.status("a").target_a, control.status("b").target_a) == (0.0, 6.0)
