"""Load-balancing solver benchmark: the Rust solver (through `gateway._core.BalancingSolver`)
against its plain-Python twin (`balancing_baseline.py`), side by side in one run.

The site is a three-level depot: grid -> boards (10 sub-boards each) -> sub-boards (100
chargers each) -> chargers; a mix of 3p and 1p chargers, phase rotations, 16/32 A maximums,
1 A and 0.1 A resolutions, caps, two priority classes, departure times, a fresh site meter;
the grid limit binds (about 7.5 A per charger), some sub-boards bind before it.

Reported, side by side in one run: time per solve (best of several repeats: the least
disturbed on a shared machine) of the Rust solver through the binding with Python lists (as
the controller calls it, conversion of the per-tick lists and the result lists included),
through the binding with `array.array` columns (one copy per column, result lists built),
through a `BalancingTick` (columns allocated once and written in place: the results go into
caller-owned arrays, no Python objects per tick), the Rust solver alone (timed inside Rust
by `BalancingSolver.time_solve`, no conversion), and the plain-Python baseline; the ratios;
then the scaling from 100 to 100,000 chargers (the Python baseline up to 10,000 with
--quick). Both solvers' setpoints are
checked to agree first, on all three input paths. The same tick is solved repeatedly, so the
ranking starts from an unchanged order (a real tick changes it a little). Nothing here
asserts a speed: CI runs `--quick` and keeps the report.

    python benches/bench_balancing.py            # full form
    python benches/bench_balancing.py --quick --report benches/report-balancing.txt
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import timeit
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import balancing_baseline as base

from gateway._core import BalancingSolver, BalancingTick

ROTATIONS = ["RST", "RTS", "SRT", "STR", "TRS", "TSR"]
INF = math.inf


@dataclass
class Depot:
    nodes: list[base.NodeSpec]
    chargers: list[base.ChargerSpec]
    rotations: list[str]
    node_inputs: list[base.NodeInput]
    inputs: list[base.ChargerInput]


def depot(n: int) -> Depot:
    """The benchmark site with `n` chargers (deterministic; the same as the Rust example)."""
    subs = max(1, -(-n // 100))
    boards = max(1, -(-subs // 10))
    nodes = [base.NodeSpec("grid", None, (7.5 * n,) * 3)]
    nodes += [
        base.NodeSpec(f"board{b}", "grid", (8_000.0,) * 3, 5_000_000.0) for b in range(boards)
    ]
    nodes += [
        base.NodeSpec(f"sub{s}", f"board{s // 10}", ((700.0 if s % 3 == 0 else 1_200.0),) * 3)
        for s in range(subs)
    ]
    chargers, rotations, inputs = [], [], []
    for i in range(n):
        phases = 1 if i % 5 == 4 else 3
        rotation = ROTATIONS[i % 6]
        m = tuple("RST".index(c) for c in rotation)
        chargers.append(
            base.ChargerSpec(
                id=f"cp{i}",
                node=f"sub{i // 100}",
                phases=phases,
                phase_map=(m[0], m[1], m[2]),
                min_current=6.0,
                max_current=16.0 if i % 2 == 0 else 32.0,
                resolution=0.1 if i % 7 == 0 else 1.0,
                can_switch_phases=phases == 3 and i % 3 == 0,
            )
        )
        rotations.append(rotation)
        inputs.append(
            base.ChargerInput(
                active=i % 10 != 9,
                max_current=10.0 if i % 11 == 0 else INF,
                phases=phases,
                allow_1p=i % 3 == 0,
                priority_class=int(i % 4 == 0),
                energy_needed_wh=(i % 50) * 1_000.0,
                departure_s=3_600.0 + (i % 13) * 1_800.0,
                waited=i % 3,
                measured=(5.0, 5.0, 5.0),
            )
        )
    node_inputs = [base.NodeInput() for _ in nodes]
    node_inputs[0] = base.NodeInput(meter=(7.0 * n,) * 3)
    return Depot(nodes, chargers, rotations, node_inputs, inputs)


@dataclass
class RustContenders:
    lists: Callable[[], list[float]]
    """Through the binding, per-tick Python lists (as the controller calls it)."""
    buffers: Callable[[], list[float]]
    """Through the binding, `array.array` columns, result lists built."""
    tick: Callable[[], object]
    """Through a `BalancingTick`: columns allocated once, results written in place."""
    tick_setpoints: Callable[[], list[float]]
    """The tick's setpoints as a list (for the agreement check, not timed)."""
    alone: Callable[[int], list[float]]
    """The Rust solver alone: ns per solve of `repeats` solves timed inside Rust."""


def rust_contenders(d: Depot) -> RustContenders:
    solver = BalancingSolver(
        [(x.id, x.parent, x.max_current, x.max_power) for x in d.nodes],
        [
            (
                c.id,
                c.node,
                c.phases,
                r,
                c.min_current,
                c.max_current,
                c.resolution,
                c.can_switch_phases,
            )
            for c, r in zip(d.chargers, d.rotations, strict=True)
        ],
    )
    # The per-tick columns as the control loop keeps them: flat Python lists.
    active = [int(i.active) for i in d.inputs]
    columns: dict[str, list[float] | list[int]] = {
        "max_current": [i.max_current for i in d.inputs],
        "phases": [i.phases for i in d.inputs],
        "allow_1p": [int(i.allow_1p) for i in d.inputs],
        "priority": [i.priority_class for i in d.inputs],
        "energy_needed_wh": [i.energy_needed_wh for i in d.inputs],
        "departure_s": [i.departure_s for i in d.inputs],
        "waited": [i.waited for i in d.inputs],
        "measured": [a for i in d.inputs for a in i.measured],
        "node_meter": [a for x in d.node_inputs for a in (x.meter or (0.0, 0.0, 0.0))],
        "node_meter_state": [1 if x.meter is not None else 0 for x in d.node_inputs],
    }
    # The same columns as buffers: float64 ('d') and int64 ('q') arrays.
    active_array = array("q", active)
    arrays = {
        name: array("d" if isinstance(values[0], float) else "q", values)
        for name, values in columns.items()
    }

    def lists() -> list[float]:
        setpoints: list[float] = solver.solve(active, **columns)[0]
        return setpoints

    def buffers() -> list[float]:
        setpoints: list[float] = solver.solve(active_array, **arrays)[0]
        return setpoints

    # The same columns in a tick's own arrays, written once (a control loop would update
    # the items that changed).
    tick = BalancingTick(solver)
    tick.active[:] = active_array
    for name, values in arrays.items():
        getattr(tick, name)[:] = values

    def tick_setpoints() -> list[float]:
        tick.solve()
        return tick.setpoints.tolist()

    def alone(repeats: int) -> list[float]:
        times: list[float] = solver.time_solve(
            active_array,
            repeats=repeats,
            **arrays,
        )
        return times

    return RustContenders(lists, buffers, tick.solve, tick_setpoints, alone)


def python_contender(d: Depot) -> Callable[[], list[float]]:
    site = base.Site(d.nodes, d.chargers)

    def run() -> list[float]:
        return [r.setpoint for r in site.solve(d.node_inputs, d.inputs)]

    return run


def time_ns(run: Callable[[], object], budget_s: float) -> float:
    """Best-of-repeats time per call in ns, spending about `budget_s` seconds."""
    timer = timeit.Timer(run)
    once = max(timer.timeit(1), 1e-9)
    number = max(1, int(budget_s / 5 / once))
    repeats = 5 if once * number * 5 <= budget_s * 2 else 2
    return min(timer.repeat(repeat=repeats, number=number)) / number * 1e9


def time_alone_ns(alone: Callable[[int], list[float]], budget_s: float) -> float:
    """Best time per solve in ns of the Rust solver timed inside Rust."""
    once = max(min(alone(3)), 1.0)
    return min(alone(max(3, int(budget_s * 1e9 / once))))


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:9.2f} ms"
    return f"{ns / 1e3:9.1f} us"


def ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:6.0f}x"


def run_benchmark(quick: bool) -> str:
    lines = [
        "Load-balancing solver: Rust (via gateway._core) vs plain-Python baseline",
        f"python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"{'quick' if quick else 'full'} run",
        "",
    ]
    budget = 0.5 if quick else 2.0
    d = depot(10_000)
    rust = rust_contenders(d)
    python = python_contender(d)
    a, b, c = rust.lists(), rust.buffers(), python()
    if a != b or a != rust.tick_setpoints():
        raise SystemExit("the list, buffer and tick paths disagree")
    mismatches = sum(1 for x, y in zip(a, c, strict=True) if abs(x - y) > 1e-9)
    if mismatches:
        raise SystemExit(f"Rust and Python disagree on {mismatches} of 10,000 setpoints")
    t_lists = time_ns(rust.lists, budget)
    t_buffers = time_ns(rust.buffers, budget)
    t_tick = time_ns(rust.tick, budget)
    t_alone = time_alone_ns(rust.alone, budget)
    t_python = time_ns(python, budget * 4)
    lines += [
        "10,000 chargers, three-level tree (grid -> 10 boards -> 100 sub-boards), per solve:",
        f"  rust, Python lists     {fmt_ns(t_lists)}  {ratio(t_python, t_lists)} faster"
        "  (as the controller calls it; conversion included)",
        f"  rust, array buffers    {fmt_ns(t_buffers)}  {ratio(t_python, t_buffers)} faster"
        "  (one copy per column; result lists included)",
        f"  rust, BalancingTick    {fmt_ns(t_tick)}  {ratio(t_python, t_tick)} faster"
        "  (arrays allocated once; results written in place)",
        f"  rust solver alone      {fmt_ns(t_alone)}  {ratio(t_python, t_alone)} faster"
        "  (timed inside Rust, no conversion)",
        f"  python baseline        {fmt_ns(t_python)}",
        f"  {sum(a):.1f} A allocated, {sum(1 for x in a if x > 0)} chargers charging",
        "",
        "Scaling (time per solve; ratio = python / rust):",
        f"  {'chargers':>9}  {'rust lists':>12}  {'rust buffers':>12}  {'rust tick':>12}"
        f"  {'rust alone':>12}  {'python':>12}  {'lists':>7}  {'buffers':>7}  {'tick':>7}",
    ]
    python_limit = 10_000 if quick else 100_000
    for n in (100, 1_000, 10_000, 100_000):
        d = depot(n)
        rust = rust_contenders(d)
        t_l = time_ns(rust.lists, budget)
        t_b = time_ns(rust.buffers, budget)
        t_t = time_ns(rust.tick, budget)
        t_a = time_alone_ns(rust.alone, budget)
        row = f"  {n:>9,}  {fmt_ns(t_l)}  {fmt_ns(t_b)}  {fmt_ns(t_t)}  {fmt_ns(t_a)}"
        if n <= python_limit:
            t_p = time_ns(python_contender(d), budget * 2)
            lines.append(
                f"{row}  {fmt_ns(t_p)}  {ratio(t_p, t_l)}  {ratio(t_p, t_b)}  {ratio(t_p, t_t)}"
            )
        else:
            lines.append(f"{row}  {'-':>12}  {'-':>7}  {'-':>7}  {'-':>7}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short run, as CI does")
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    report = run_benchmark(args.quick)
    print(report, end="")
    if args.report:
        args.report.write_text(report)


if __name__ == "__main__":
    main()
