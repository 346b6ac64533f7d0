"""A depot day, time-compressed: ≥ 50 simulated chargers under a fuse tree far below their
total, vehicles arriving and leaving with departure times and energy needs, balanced by the
gateway's own `BalancingController` (the Rust solver plus the setpoint planner).

Chargers are the Modbus simulator's `SimulatedCharger` objects (its EV model follows the
setpoint with a ~10 s first-order lag), driven in-process by a manual clock: setpoints reach
them as real register writes (`handle_write`, encoded as the driver encodes them), without
sockets, so 50 chargers x a day take seconds. Every balancing tick the site and board
currents (what the EVs actually draw, per grid phase) are recorded.

Reported: the highest site and board currents against their limits (asserted: never above,
a safety property), the energy delivered against each vehicle's need by its departure (totals
and the share of vehicles fully served), setpoint writes, and the run time.

    python benches/depot_day.py                      # 60 chargers, 24 h
    python benches/depot_day.py --quick --report benches/report-depot-day.txt   # 50, 14 h
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.balancing import (
    BalancedCharger,
    BalancingController,
    ChargerSnapshot,
    Circuit,
    PlannerSettings,
    overloads,
)
from gateway.core.charger import CpState
from gateway.core.meter import MeterReading
from gateway.modbus import SimulatedCharger
from gateway.modbus.driver import raw_setpoint
from gateway.modbus.simulator import NOMINAL_VOLTAGE_V

HOUR_S = 3600.0
INTERVAL_S = 2.0
"""Balancing period (the gateway's default; load-balancing.md §5: 1-5 s)."""
BOARD_LIMIT_A = 200.0
SITE_LIMIT_A = 250.0
"""Per grid phase: 250 A ≈ 172 kW, for chargers whose maxima sum to 60 x 32 A = 1920 A."""
CHARGER_MAX_A = 32.0
PILOT_MINIMUM_A = 6.0


def static_safe_share(chargers: int) -> float:
    """The failsafe current every charger may fall back to at once (load-balancing.md §6.1:
    the fuse ÷ the number of chargers), 0 (stop) when that is below the pilot's 6 A."""
    share = SITE_LIMIT_A / chargers
    return PILOT_MINIMUM_A if share >= PILOT_MINIMUM_A else 0.0


SEED = 20261123


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Visit:
    """One vehicle's stay at a charger."""

    charger: int
    arrive_s: float
    depart_s: float
    need_wh: float
    max_current_a: float
    delivered_wh: float = 0.0
    plugged: bool = False
    done: bool = False


def make_visits(chargers: int, start_s: float, end_s: float, rng: random.Random) -> list[Visit]:
    """Vans back in the evening, out in the morning; half the bays also see a daytime top-up.
    Times are seconds since midnight of the first day."""
    visits = []
    for charger in range(chargers):
        arrive = rng.uniform(16.5, 20.5) * HOUR_S
        depart = rng.uniform(29.5, 31.5) * HOUR_S  # 05:30-07:30 next morning
        need = rng.uniform(15_000, 70_000)
        max_a = 16.0 if rng.random() < 0.6 else 32.0
        visits.append(Visit(charger, arrive, depart, need, max_a))
        if rng.random() < 0.5:
            day_arrive = rng.uniform(9.0, 12.0) * HOUR_S
            stay = rng.uniform(2.0, 4.0) * HOUR_S
            visits.append(
                Visit(charger, day_arrive, day_arrive + stay, rng.uniform(5_000, 25_000), max_a)
            )
    return [v for v in visits if start_s <= v.arrive_s and v.depart_s <= end_s]


def building_load_a(at_s: float) -> tuple[float, float, float]:
    """The depot's own load per grid phase (workshop, offices, lights), measured by the site
    meter with the chargers: a working day with a morning ramp, a lunch peak and an evening
    fall, unbalanced towards L1 (single-phase machines), changing smoothly (tens of minutes)."""
    hour = (at_s / HOUR_S) % 24.0
    day = max(0.0, math.sin(math.pi * (hour - 6.0) / 13.0)) if 6.0 <= hour <= 19.0 else 0.0
    base = 12.0 + 48.0 * day  # 12 A at night, 60 A at midday
    return (base * 1.25, base, base * 0.75)


async def write_setpoint(sim: SimulatedCharger, amps: float) -> None:
    """What `ModbusCharger.set_current_limit` puts on the wire, handed to the simulator."""
    write = sim.profile.current
    spec = sim.profile.registers[write.register]
    error = await sim.handle_write(spec.address, raw_setpoint(write, spec, amps))
    if error is not None:
        raise RuntimeError(f"simulator refused {amps} A: {error}")


async def simulate(chargers: int, start_h: float, end_h: float) -> str:
    rng = random.Random(SEED)
    start_s, end_s = start_h * HOUR_S, end_h * HOUR_S
    clock = ManualClock()
    clock.now = start_s
    sims = [SimulatedCharger("generic", clock=clock) for _ in range(chargers)]
    boards = [f"board-{number}" for number in (1, 2)]
    circuits = [Circuit("grid", None, (SITE_LIMIT_A,) * 3)] + [
        Circuit(board, "grid", (BOARD_LIMIT_A,) * 3) for board in boards
    ]
    failsafe_a = static_safe_share(chargers)
    balanced = [
        BalancedCharger(
            f"CP-{index:02}",
            boards[index % 2],
            max_current_a=CHARGER_MAX_A,
            failsafe_current_a=failsafe_a,
        )
        for index in range(chargers)
    ]
    by_circuit = {c.id: c for c in circuits}
    placements = [charger.placement for charger in balanced]
    failsafe_overloads = overloads(by_circuit, placements, {c.id: failsafe_a for c in balanced})
    controller = BalancingController(circuits, balanced, PlannerSettings())
    visits = sorted(make_visits(chargers, start_s, end_s, rng), key=lambda v: v.arrive_s)
    at_charger: dict[int, Visit] = {}
    pending = list(visits)

    peak = {circuit.id: 0.0 for circuit in circuits}
    peak_setpoints = 0.0
    peak_site = 0.0
    writes = 0
    ticks = 0
    started = time.perf_counter()
    while clock.now < end_s:
        now = clock.now
        # Departures and arrivals due by now.
        for index, visit in list(at_charger.items()):
            if now >= visit.depart_s:
                leaving = sims[index].ev
                visit.delivered_wh = leaving.delivered_wh if leaving is not None else 0.0
                sims[index].unplug()
                visit.done = True
                del at_charger[index]
        while pending and pending[0].arrive_s <= now:
            arrival = pending.pop(0)
            if arrival.charger in at_charger:
                continue  # bay still taken: the van queues elsewhere (not counted)
            sims[arrival.charger].plug_in(None, arrival.need_wh, arrival.max_current_a, 3)
            arrival.plugged = True
            at_charger[arrival.charger] = arrival

        snapshots = {}
        for index, charger in enumerate(balanced):
            stay = at_charger.get(index)
            sim = sims[index]
            ev = sim.ev
            snapshots[charger.id] = ChargerSnapshot(
                online=True,
                wants_current=stay is not None and sim.cp_state is not CpState.A,
                measured_a=sim.phase_currents_a,
                energy_needed_wh=None if ev is None else ev.energy_needed_wh - ev.delivered_wh,
                departure_in_s=None if stay is None else stay.depart_s - now,
            )
        ev_draw = sum(sim.current_a for sim in sims)  # per grid phase: all 3p on RST
        base = building_load_a(now)
        site_meter = MeterReading(
            current_a=(base[0] + ev_draw, base[1] + ev_draw, base[2] + ev_draw),
            voltage_v=(NOMINAL_VOLTAGE_V,) * 3,
            power_w=(sum(base) + 3 * ev_draw) * NOMINAL_VOLTAGE_V,
        )
        planned = controller.tick(now, snapshots, {"grid": site_meter})
        for write in planned:  # cuts and restores come first
            await write_setpoint(sims[int(write.charger_id[3:])], write.current_a)
            controller.confirm(write, now)
        writes += sum(1 for write in planned)
        ticks += 1

        # Record what the EVs draw (per grid phase, all chargers 3p on RST) and the setpoints.
        board_draw = dict.fromkeys(boards, 0.0)
        setpoint_sum = 0.0
        for index, sim in enumerate(sims):
            board_draw[boards[index % 2]] += sim.current_a
            setpoint_sum += sim.setpoint_a
        for board, amps in board_draw.items():
            peak[board] = max(peak[board], amps)
        peak["grid"] = max(peak["grid"], sum(board_draw.values()))
        # What the grid connection carries: the building plus the chargers, a tick after the
        # meter reading the solver used (the EVs follow their setpoints with a lag).
        site_total = sum(board_draw.values())
        peak_site = max(peak_site, *(load + site_total for load in building_load_a(now)))
        peak_setpoints = max(peak_setpoints, setpoint_sum)
        clock.now = now + INTERVAL_S
    for index, visit in at_charger.items():
        ev = sims[index].ev
        visit.delivered_wh = ev.delivered_wh if ev else 0.0
        visit.done = True
    elapsed = time.perf_counter() - started

    served = [v for v in visits if v.plugged]
    needed = sum(v.need_wh for v in served)
    delivered = sum(v.delivered_wh for v in served)
    # 1 Wh of slack: the EV model's taper integrates the last watt-hours asymptotically.
    full = sum(1 for v in served if v.delivered_wh >= v.need_wh - 1.0)
    worst = min((v.delivered_wh / v.need_wh for v in served), default=1.0)
    lines = [
        f"depot day: {chargers} simulated chargers (generic profile, EV lag"
        f" {10:g} s), {start_h:g} h → {end_h:g} h, balancing every {INTERVAL_S:g} s",
        f"fuse tree: grid {SITE_LIMIT_A:g} A/phase ← 2 boards x {BOARD_LIMIT_A:g} A/phase;"
        f" charger maxima sum to {chargers * CHARGER_MAX_A:g} A; failsafe {failsafe_a:g} A"
        f" each ({'within every fuse' if not failsafe_overloads else 'OVER A FUSE'})",
        f"building load (site meter): {building_load_a(0)[1]:g}-"
        f"{building_load_a(12.5 * HOUR_S)[0]:.0f} A per phase, unbalanced towards L1",
        f"peak site current, chargers + building, worst phase: {peak_site:.1f} A of"
        f" {SITE_LIMIT_A:g} A",
        f"peak charger current {peak['grid']:.1f} A of {SITE_LIMIT_A:g} A"
        f" (sum of setpoints peaked at {peak_setpoints:.1f} A)",
        *(f"peak {b} current {peak[b]:.1f} A of {BOARD_LIMIT_A:g} A" for b in boards),
        f"vehicles: {len(served)} served, {full} fully charged by departure"
        f" ({100.0 * full / max(1, len(served)):.1f} %), worst {100.0 * worst:.1f} % of its need",
        f"energy: {delivered / 1000:.1f} kWh delivered of {needed / 1000:.1f} kWh needed"
        f" ({100.0 * delivered / max(1.0, needed):.1f} %)",
        f"setpoint writes: {writes} in {ticks} ticks",
        f"run time: {elapsed:.1f} s for {(end_s - start_s) / HOUR_S:g} simulated hours"
        f" ({(end_s - start_s) / max(elapsed, 1e-9):.0f}x real time), Python"
        f" {sys.version.split()[0]}",
    ]
    # The safety property, asserted (a speed never is): no fuse is ever overloaded.
    assert peak["grid"] <= SITE_LIMIT_A + 1e-6, peak
    assert peak_site <= SITE_LIMIT_A + 1e-6, peak_site
    assert all(peak[b] <= BOARD_LIMIT_A + 1e-6 for b in boards), peak
    assert peak_setpoints <= SITE_LIMIT_A + 1e-6, peak_setpoints
    assert not failsafe_overloads, failsafe_overloads
    # Energy is 230 V x A per phase, as the solver's power rows count it.
    assert NOMINAL_VOLTAGE_V == 230.0
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="50 chargers, 16:00-06:00")
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    if args.quick:
        report = asyncio.run(simulate(50, 16.0, 32.0))
    else:
        report = asyncio.run(simulate(60, 8.0, 32.0))
    print(report, end="")
    if args.report:
        args.report.write_text(report)


if __name__ == "__main__":
    main()
