"""1p/3p switching (load-balancing.md §3.5): down at once when three phases do not fit but one
does, back up only after three phases fitted for `up_delay_s`, a dwell between switches and a
cap per session; through the controller and the Rust solver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.balancing.controller import (
    BalancedCharger,
    BalancingController,
    ChargerSnapshot,
    PhaseChange,
)
from gateway.balancing.loop import BalancingLoop
from gateway.balancing.phases import PhaseSwitcher, PhaseSwitchSettings
from gateway.balancing.planner import PlannerSettings
from gateway.balancing.topology import Circuit
from gateway.core.site import ChargerSpec, Site
from gateway.modbus import ModbusCharger, ModbusTcpLink, SimulatedCharger

SETTINGS = PhaseSwitchSettings(up_delay_s=60.0, min_dwell_s=20.0, max_switches=3)


def test_switcher_goes_down_at_once_and_up_only_after_the_delay() -> None:
    switcher = PhaseSwitcher(["c"], SETTINGS)
    switcher.new_session("c", "s1")
    assert switcher.wanted("c", 0.0, fits_three=False, fits_one=True) == 1
    switcher.confirm("c", 1, 0.0)
    # Three phases fit again, but not for long enough yet.
    assert switcher.wanted("c", 30.0, fits_three=True, fits_one=True) == 1
    assert switcher.wanted("c", 80.0, fits_three=False, fits_one=True) == 1  # broke off
    assert switcher.wanted("c", 90.0, fits_three=True, fits_one=True) == 1
    assert switcher.wanted("c", 149.0, fits_three=True, fits_one=True) == 1
    assert switcher.wanted("c", 150.0, fits_three=True, fits_one=True) == 3
    switcher.confirm("c", 3, 150.0)
    assert switcher.switches("c") == 2


def test_switcher_keeps_a_dwell_and_a_cap_per_session() -> None:
    switcher = PhaseSwitcher(["c"], SETTINGS)
    switcher.new_session("c", "s1")
    switcher.confirm("c", 1, 0.0)
    switcher.confirm("c", 3, 100.0)
    # Within the dwell after the last switch: stays on three phases (and pauses instead).
    assert switcher.wanted("c", 110.0, fits_three=False, fits_one=True) == 3
    assert switcher.wanted("c", 120.0, fits_three=False, fits_one=True) == 1
    switcher.confirm("c", 1, 120.0)
    assert switcher.switches("c") == 3
    # The cap is reached: no more switches this session, however long three phases fit.
    assert switcher.wanted("c", 500.0, fits_three=True, fits_one=True) == 1
    assert switcher.wanted("c", 1000.0, fits_three=True, fits_one=True) == 1
    # A new session starts over (and an idle charger goes back to three phases).
    switcher.new_session("c", None)
    assert switcher.wanted("c", 1001.0, fits_three=True, fits_one=True) == 3


def test_bad_switch_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="up_delay_s"):
        PhaseSwitchSettings(up_delay_s=-1.0)
    with pytest.raises(ValueError, match="max_switches"):
        PhaseSwitchSettings(max_switches=-1)


def site() -> BalancingController:
    # L1 has 8 A more than L2/L3: two 3p sessions at 6 A leave 8 A on L1, 4 A elsewhere, so
    # a third session fits on one phase (L1) only.
    circuits = [Circuit("fuse", None, (20.0, 12.0, 12.0))]
    chargers = [
        BalancedCharger("a", "fuse", max_current_a=16.0, priority=1),
        BalancedCharger("b", "fuse", max_current_a=16.0, priority=1),
        BalancedCharger("c", "fuse", max_current_a=16.0, can_switch_phases=True),
    ]
    return BalancingController(
        circuits,
        chargers,
        PlannerSettings(ramp_a_per_s=1000.0),
        min_run_s=0.0,
        phase_settings=SETTINGS,
    )


def tick(
    control: BalancingController, now: float, wanting: dict[str, bool]
) -> tuple[dict[str, float], list[PhaseChange]]:
    snapshots = {
        cid: ChargerSnapshot(True, wants, session_id=f"session-{cid}")
        for cid, wants in wanting.items()
    }
    for write in control.tick(now, snapshots):
        control.confirm(write, now)
    changes = list(control.phase_changes)
    for change in changes:
        control.confirm_phases(change, now)
    return {cid: control.status(cid).target_a for cid in wanting}, changes


def test_a_session_that_does_not_fit_on_three_phases_charges_on_one() -> None:
    control = site()
    everyone = {"a": True, "b": True, "c": True}
    targets, changes = tick(control, 0.0, everyone)
    assert changes == [PhaseChange("c", 1)]
    assert targets["a"] == targets["b"] == 6.0
    assert targets["c"] == pytest.approx(8.0)  # L1: 20 - 2 x 6
    assert "one phase" in control.status("c").reason

    # b leaves: three phases fit again, but c stays on one until they fitted 60 s.
    wanting = {"a": True, "b": False, "c": True}
    for now in (2.0, 30.0, 61.0):
        targets, changes = tick(control, now, wanting)
        assert changes == []
        assert targets["c"] > 0
    targets, changes = tick(control, 62.0, wanting)
    assert changes == [PhaseChange("c", 3)]
    assert targets["c"] == 0.0  # paused through the switch
    targets, changes = tick(control, 64.0, wanting)
    assert changes == []
    assert targets["c"] == pytest.approx(6.0)  # on three phases: 12 - 6 per phase


def test_a_charger_that_cannot_switch_pauses_instead() -> None:
    circuits = [Circuit("fuse", None, (20.0, 12.0, 12.0))]
    chargers = [
        BalancedCharger(cid, "fuse", max_current_a=16.0, priority=1) for cid in ("a", "b")
    ] + [BalancedCharger("c", "fuse", max_current_a=16.0)]
    control = BalancingController(circuits, chargers, PlannerSettings(ramp_a_per_s=1000.0))
    targets, changes = tick(control, 0.0, {"a": True, "b": True, "c": True})
    assert changes == []
    assert targets["c"] == 0.0


async def test_the_loop_switches_a_real_charger_over_modbus() -> None:
    """KEBA P40 simulators (phase switching through 5050/5052) under the same fuse, polled
    and commanded over Modbus TCP by the site and the balancing loop."""
    sims = [SimulatedCharger("keba-p40") for _ in range(3)]
    site = Site()
    links = []
    for index, sim in enumerate(sims):
        port = await sim.start()
        link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=0.5)
        links.append(link)
        site.add_charger(
            ChargerSpec("abc"[index], max_current_a=16.0, poll_interval_s=0.1),
            ModbusCharger(link, None, sim.profile, name="abc"[index]),
        )
    control = BalancingController(
        [Circuit("fuse", None, (20.0, 12.0, 12.0))],
        [
            BalancedCharger("a", "fuse", max_current_a=16.0, priority=1),
            BalancedCharger("b", "fuse", max_current_a=16.0, priority=1),
            BalancedCharger("c", "fuse", max_current_a=16.0, can_switch_phases=True),
        ],
        PlannerSettings(ramp_a_per_s=1000.0),
        min_run_s=0.0,
        phase_settings=PhaseSwitchSettings(up_delay_s=2.0, min_dwell_s=1.0),
    )
    loop = BalancingLoop(site, control, interval_s=1.0)
    tasks = [asyncio.create_task(site.run()), asyncio.create_task(loop.run())]
    try:
        for index, sim in enumerate(sims):
            sim.plug_in(rfid=f"0000000{index + 1}", energy_needed_wh=50_000.0)
        await until(lambda: sims[2].phases == 1, "c switched to one phase")
        await until(lambda: sims[2].current_a > 1.0, "c charges on one phase")
        assert sims[2].phase_currents_a[1] == sims[2].phase_currents_a[2] == 0.0
        sims[1].unplug()
        await until(lambda: sims[2].phases == 3, "c back on three phases")
        await until(lambda: sims[2].phase_currents_a[2] > 1.0, "c charges on three phases")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in links:
            await link.close()
        for sim in sims:
            await sim.stop()


async def until(condition: Callable[[], bool], what: str, within_s: float = 20.0) -> None:
    try:
        async with asyncio.timeout(within_s):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {within_s} s: {what}") from None
