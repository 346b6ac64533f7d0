"""Load-balancing solver benchmark: the Rust solver (through `gateway._core.BalancingSolver`)
against its plain-Python twin (`balancing_baseline.py`), side by side in one run.

The site is a three-level depot: grid -> boards (10 sub-boards each) -> sub-boards (100
chargers each) -> chargers; a mix of 3p and 1p chargers, phase rotations, 16/32 A maximums,
1 A and 0.1 A resolutions, caps, two priority classes, departure times, a fresh site meter;
the grid limit binds (about 7.5 A per charger), some sub-boards bind before it.

Reported: time per solve (best of several repeats: the least disturbed on a shared machine)
for 10,000 chargers, Rust (conversion of the per-tick Python lists included) and Python, and
the ratio; then the scaling from 100 to 100,000 chargers (the Python baseline up to 10,000
with --quick). Both solvers' setpoints are checked to agree first. Nothing here asserts a
speed: CI runs `--quick` and keeps the report.

    python benches/bench_balancing.py            # full form
    python benches/bench_balancing.py --quick --report benches/report-balancing.txt
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import balancing_baseline as base

from gateway._core import BalancingSolver

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


def rust_contender(d: Depot) -> tuple[Callable[[], list[float]], BalancingSolver]:
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
    # The per-tick columns as the control loop would keep them: flat Python lists.
    active = [i.active for i in d.inputs]
    max_current = [i.max_current for i in d.inputs]
    phases = [i.phases for i in d.inputs]
    allow_1p = [i.allow_1p for i in d.inputs]
    priority = [i.priority_class for i in d.inputs]
    energy = [i.energy_needed_wh for i in d.inputs]
    departure = [i.departure_s for i in d.inputs]
    waited = [i.waited for i in d.inputs]
    measured = [a for i in d.inputs for a in i.measured]
    meter = [a for x in d.node_inputs for a in (x.meter or (0.0, 0.0, 0.0))]
    meter_state = [1 if x.meter is not None else 0 for x in d.node_inputs]

    def run() -> list[float]:
        setpoints: list[float] = solver.solve(
            active,
            max_current=max_current,
            phases=phases,
            allow_1p=allow_1p,
            priority=priority,
            energy_needed_wh=energy,
            departure_s=departure,
            waited=waited,
            measured=measured,
            node_meter=meter,
            node_meter_state=meter_state,
        )[0]
        return setpoints

    return run, solver


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


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:9.2f} ms"
    return f"{ns / 1e3:9.1f} us"


def run_benchmark(quick: bool) -> str:
    lines = [
        "Load-balancing solver: Rust (via gateway._core) vs plain-Python baseline",
        f"python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"{'quick' if quick else 'full'} run",
        "",
    ]
    budget = 0.5 if quick else 2.0
    d = depot(10_000)
    rust, _ = rust_contender(d)
    python = python_contender(d)
    a, b = rust(), python()
    mismatches = sum(1 for x, y in zip(a, b, strict=True) if abs(x - y) > 1e-9)
    if mismatches:
        raise SystemExit(f"Rust and Python disagree on {mismatches} of 10,000 setpoints")
    t_rust = time_ns(rust, budget)
    t_python = time_ns(python, budget * 4)
    lines += [
        "10,000 chargers, three-level tree (grid -> 10 boards -> 100 sub-boards):",
        f"  rust   {fmt_ns(t_rust)} per solve (list conversion included)",
        f"  python {fmt_ns(t_python)} per solve",
        f"  rust is {t_python / t_rust:.0f}x faster; {sum(a):.1f} A allocated, "
        f"{sum(1 for x in a if x > 0)} chargers charging",
        "",
        "Scaling (time per solve):",
        f"  {'chargers':>9}  {'rust':>12}  {'python':>12}  {'ratio':>7}",
    ]
    python_limit = 10_000 if quick else 100_000
    for n in (100, 1_000, 10_000, 100_000):
        d = depot(n)
        rust, _ = rust_contender(d)
        t_r = time_ns(rust, budget)
        if n <= python_limit:
            t_p = time_ns(python_contender(d), budget * 2)
            lines.append(f"  {n:>9,}  {fmt_ns(t_r)}  {fmt_ns(t_p)}  {t_p / t_r:6.0f}x")
        else:
            lines.append(f"  {n:>9,}  {fmt_ns(t_r)}  {'-':>12}  {'-':>7}")
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
