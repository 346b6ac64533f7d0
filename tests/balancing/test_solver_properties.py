"""The Rust load-balancing solver through the binding (`gateway._core.BalancingSolver`).

Hypothesis builds random trees (1-4 levels of nodes) and fleets (1-80 chargers: 1p/3p,
phase rotations, minimums, maximums, resolutions, caps, classes, urgency inputs, meters,
stale meters) and checks:

* differential: the plain-Python twin `benches/balancing_baseline.py` gives the same
  setpoints, reasons, phases, ranks and unrounded values;
* no row (node x phase, node power) loaded beyond its capacity, re-derived here;
* every admitted charger in [min, max], on its resolution grid; everyone else exactly 0;
* max-min fairness: the bottleneck condition on the unrounded values;
* monotone in capacity: more capacity changes admission only lexicographically upward in
  rank order; with the same admission, the sorted unrounded values do not decrease;
* determinism; bad input refused with a ValueError naming the culprit.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
import balancing_baseline as base

from gateway._core import BalancingSolver, BalancingTick

INF = math.inf
V = base.NOMINAL_VOLTAGE_V
ROTATIONS = ["RST", "RTS", "SRT", "STR", "TRS", "TSR"]
ROTATION_MAP = {
    r: (tuple("RST".index(c) for c in r)) for r in ROTATIONS
}  # rotation -> grid phase of L1, L2, L3
ADMITTED = {base.AT_MAXIMUM, base.CAP, base.SATURATED}


@dataclass(frozen=True)
class Case:
    nodes: list[base.NodeSpec]
    chargers: list[base.ChargerSpec]
    rotations: list[str]
    node_inputs: list[base.NodeInput]
    inputs: list[base.ChargerInput]


def grid(lo: float, hi: float, step: float) -> st.SearchStrategy[float]:
    """Multiples of `step` in [lo, hi]: sums stay exact, so both sides agree bit for bit."""
    return st.integers(0, int((hi - lo) / step)).map(lambda k: lo + k * step)


def maybe_inf(strategy: st.SearchStrategy[float], inf_weight: int) -> st.SearchStrategy[float]:
    return st.one_of([strategy] * (10 - inf_weight) + [st.just(INF)] * inf_weight)


@st.composite
def cases(draw: st.DrawFn, max_chargers: int = 80) -> Case:
    n_nodes = draw(st.integers(1, 10))
    nodes: list[base.NodeSpec] = []
    depth: list[int] = []
    for k in range(n_nodes):
        if k == 0:
            parent = None
            depth.append(0)
        else:
            candidates = [p for p in range(k) if depth[p] < 3]
            p = draw(st.sampled_from(candidates))
            parent = f"n{p}"
            depth.append(depth[p] + 1)
        scale = 400.0 if k == 0 else 120.0
        limit = maybe_inf(grid(0.0, scale, 0.5), 1)
        power = maybe_inf(grid(0.0, scale * 3 * V, 230.0), 7)
        nodes.append(
            base.NodeSpec(
                f"n{k}",
                parent,
                (draw(limit), draw(limit), draw(limit)),
                draw(power),
            )
        )
    n_chargers = draw(st.integers(1, max_chargers))
    chargers: list[base.ChargerSpec] = []
    rotations: list[str] = []
    inputs: list[base.ChargerInput] = []
    while len(chargers) < n_chargers:
        phases = draw(st.sampled_from([1, 3, 3]))
        rotation = draw(st.sampled_from(ROTATIONS))
        minimum = draw(st.one_of(st.just(6.0), grid(5.0, 10.0, 0.25)))
        maximum = draw(grid(minimum + 1.0, 32.0, 0.5))
        m = ROTATION_MAP[rotation]
        spec = base.ChargerSpec(
            id="",
            node=f"n{draw(st.integers(0, n_nodes - 1))}",
            phases=phases,
            phase_map=(m[0], m[1], m[2]),
            min_current=minimum,
            max_current=maximum,
            resolution=draw(st.sampled_from([1.0, 0.1, 0.5, 0.001])),
            can_switch_phases=phases == 3 and draw(st.booleans()),
        )
        tick = base.ChargerInput(
            active=draw(st.integers(0, 9)) > 0,
            max_current=draw(maybe_inf(grid(0.0, 32.0, 0.5), 7)),
            phases=3 if phases == 3 and draw(st.integers(0, 4)) > 0 else 1,
            allow_1p=draw(st.booleans()),
            priority_class=draw(st.integers(0, 2)),
            energy_needed_wh=draw(st.one_of(st.just(math.nan), grid(0.0, 60_000.0, 500.0))),
            departure_s=draw(st.one_of(st.just(math.nan), grid(-600.0, 36_000.0, 60.0))),
            waited=draw(st.integers(0, 2)),
            measured=(
                draw(grid(0.0, 32.0, 0.5)),
                draw(grid(0.0, 32.0, 0.5)),
                draw(grid(0.0, 32.0, 0.5)),
            ),
        )
        for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
            if len(chargers) < n_chargers:
                chargers.append(replace(spec, id=f"c{len(chargers)}"))
                rotations.append(rotation)
                inputs.append(tick)
    node_inputs = []
    for _ in range(n_nodes):
        kind = draw(st.integers(0, 9))
        meter = None
        if 1 <= kind <= 3:
            meter_value = grid(-20.0, 300.0, 0.5)
            meter = (draw(meter_value), draw(meter_value), draw(meter_value))
        extra = maybe_inf(grid(0.0, 150.0, 0.5), 8)
        node_inputs.append(
            base.NodeInput(
                max_current=(draw(extra), draw(extra), draw(extra)),
                meter=meter,
                stale=kind == 0,
            )
        )
    return Case(nodes, chargers, rotations, node_inputs, inputs)


def solver(case: Case) -> BalancingSolver:
    return BalancingSolver(
        [(n.id, n.parent, n.max_current, n.max_power) for n in case.nodes],
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
            for c, r in zip(case.chargers, case.rotations, strict=True)
        ],
    )


@dataclass(frozen=True)
class Out:
    setpoints: list[float]
    phases: list[int]
    reasons: list[int]
    nodes: list[int]
    limits: list[int]
    ranks: list[int]
    urgencies: list[float]
    unrounded: list[float]


def solve(s: BalancingSolver, case: Case) -> Out:
    inputs, nodes = case.inputs, case.node_inputs
    result = s.solve_detailed(
        [i.active for i in inputs],
        max_current=[i.max_current for i in inputs],
        phases=[i.phases for i in inputs],
        allow_1p=[i.allow_1p for i in inputs],
        priority=[i.priority_class for i in inputs],
        energy_needed_wh=[i.energy_needed_wh for i in inputs],
        departure_s=[i.departure_s for i in inputs],
        waited=[i.waited for i in inputs],
        measured=[a for i in inputs for a in i.measured],
        node_max_current=[a for n in nodes for a in n.max_current],
        node_max_power=[n.max_power for n in nodes],
        node_meter=[a for n in nodes for a in (n.meter or (0.0, 0.0, 0.0))],
        node_meter_state=[2 if n.stale else (1 if n.meter is not None else 0) for n in nodes],
    )
    return Out(*result[:8])


def capacities(case: Case) -> list[list[float]]:
    """Each node's row capacities, re-derived from the inputs (not the solvers' code)."""
    out = []
    for k, (spec, tick) in enumerate(zip(case.nodes, case.node_inputs, strict=True)):
        cap = [min(a, b) for a, b in zip(spec.max_current, tick.max_current, strict=True)]
        cap.append(min(spec.max_power, tick.max_power))
        if tick.stale:
            cap = [0.0] * 4
        elif tick.meter is not None:
            managed = [0.0, 0.0, 0.0]
            for i, c in enumerate(case.chargers):
                if k in path(case, i):
                    for j in range(3):
                        managed[c.phase_map[j]] += case.inputs[i].measured[j]
            other = [max(tick.meter[p] - managed[p], 0.0) for p in range(3)]
            cap = [max(cap[p] - other[p], 0.0) for p in range(3)] + [
                max(cap[3] - V * sum(other), 0.0)
            ]
        out.append(cap)
    return out


def path(case: Case, i: int) -> list[int]:
    index = {n.id: k for k, n in enumerate(case.nodes)}
    k: int | None = index[case.chargers[i].node]
    result = []
    while k is not None:
        result.append(k)
        parent = case.nodes[k].parent
        k = None if parent is None else index[parent]
    return result


def usage(case: Case, i: int, phases: int) -> tuple[int, int]:
    """(grid phase mask, phase count) the charger's result loads."""
    return (0b111, 3) if phases == 3 else (1 << case.chargers[i].phase_map[0], 1)


def loads(case: Case, out: Out, values: list[float]) -> list[list[float]]:
    load = [[0.0] * 4 for _ in case.nodes]
    for i, x in enumerate(values):
        mask, n = usage(case, i, out.phases[i])
        for k in path(case, i):
            for p in range(3):
                if mask & (1 << p):
                    load[k][p] += x
            load[k][3] += x * n * V
    return load


def bounds(case: Case, i: int) -> tuple[float, float]:
    """(min, upper) as the solver derives them: min rounded up, max and cap rounded down."""
    c = case.chargers[i]
    res_ma = round(c.resolution * 1000)
    lo = base.ceil_to(c.min_current, res_ma)
    hi = base.floor_to(c.max_current, res_ma)
    cap = base.floor_to(min(case.inputs[i].max_current, hi), res_ma)
    return lo, min(hi, cap)


@settings(max_examples=120, deadline=None)
@given(cases())
def test_rust_matches_the_python_baseline(case: Case) -> None:
    out = solve(solver(case), case)
    expected = base.Site(case.nodes, case.chargers).solve(case.node_inputs, case.inputs)
    for i, e in enumerate(expected):
        got = (out.reasons[i], out.nodes[i], out.limits[i], out.phases[i], out.ranks[i])
        assert got == (e.reason, e.node, e.limit, e.phases, e.rank), f"charger {i}"
        assert out.setpoints[i] == pytest.approx(e.setpoint, abs=1e-9), f"charger {i}"
        assert out.unrounded[i] == pytest.approx(e.unrounded, abs=1e-9), f"charger {i}"
        assert out.urgencies[i] == pytest.approx(e.urgency, rel=1e-12), f"charger {i}"


@settings(max_examples=120, deadline=None)
@given(cases())
def test_limits_bounds_and_fairness(case: Case) -> None:
    s = solver(case)
    out = solve(s, case)
    assert solve(s, case) == out, "not deterministic"
    tol = 1e-6 * (1 + len(case.chargers))
    cap = capacities(case)
    for values in (out.setpoints, out.unrounded):
        for k, (load, c) in enumerate(zip(loads(case, out, values), cap, strict=True)):
            for slot in range(4):
                slack = tol * (V if slot == 3 else 1.0)
                assert load[slot] <= c[slot] + slack, f"node {k} slot {slot} overloaded"

    for i, x in enumerate(out.setpoints):
        lo, hi = bounds(case, i)
        if out.reasons[i] in ADMITTED:
            assert lo - 1e-9 <= x <= hi + 1e-9, f"charger {i}: {x} outside [{lo}, {hi}]"
            steps = x / case.chargers[i].resolution
            assert abs(steps - round(steps)) < 1e-6, f"charger {i}: {x} off its grid"
        else:
            assert x == 0.0, f"charger {i} not admitted but {x}"
        if out.reasons[i] in (base.AT_MAXIMUM, base.CAP):
            assert out.unrounded[i] == pytest.approx(hi, abs=1e-9)

    # Bottleneck condition: a saturated charger's row is full, and no member of that row
    # above its own minimum has more than it.
    unrounded_load = loads(case, out, out.unrounded)
    for i, reason in enumerate(out.reasons):
        if reason != base.SATURATED:
            continue
        k, slot = out.nodes[i], out.limits[i]
        assert k in path(case, i)
        slack = tol * (V if slot == 3 else 1.0)
        assert unrounded_load[k][slot] >= cap[k][slot] - slack
        for j, other in enumerate(out.unrounded):
            if j == i or out.reasons[j] not in ADMITTED or k not in path(case, j):
                continue
            mask, _ = usage(case, j, out.phases[j])
            if slot < 3 and not mask & (1 << slot):
                continue
            lo_j, _ = bounds(case, j)
            assert other <= out.unrounded[i] + 1e-6 or other <= lo_j + 1e-9, (
                f"charger {i} could rise at the expense of {j} at node {k} slot {slot}"
            )


def decisions(case: Case, out: Out, order: list[int]) -> list[int]:
    """0 paused, 1 admitted after a 1p fallback, 2 admitted as asked."""
    result = []
    for i in order:
        if out.reasons[i] not in ADMITTED:
            result.append(0)
        elif out.phases[i] == 1 and case.inputs[i].phases == 3 and case.chargers[i].phases == 3:
            result.append(1)
        else:
            result.append(2)
    return result


@settings(max_examples=120, deadline=None)
@given(cases(), st.data())
def test_monotone_in_capacity(case: Case, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(case.nodes) - 1))
    nodes = list(case.nodes)
    node_inputs = list(case.node_inputs)
    how = data.draw(st.sampled_from(["phase", "power", "tick", "meter"]))
    if how == "phase":
        p = data.draw(st.integers(0, 2))
        more = list(nodes[k].max_current)
        more[p] += data.draw(grid(0.5, 60.0, 0.5))
        nodes[k] = replace(nodes[k], max_current=(more[0], more[1], more[2]))
    elif how == "power":
        nodes[k] = replace(nodes[k], max_power=nodes[k].max_power + 23_000.0)
    elif how == "tick":
        node_inputs[k] = replace(node_inputs[k], max_current=(INF, INF, INF))
    elif node_inputs[k].meter is not None:
        meter = node_inputs[k].meter
        assert meter is not None
        drop = data.draw(grid(0.0, 40.0, 0.5))
        node_inputs[k] = replace(
            node_inputs[k], meter=(meter[0] - drop, meter[1] - drop, meter[2] - drop)
        )
    bigger = replace(case, nodes=nodes, node_inputs=node_inputs)
    a, b = solve(solver(case), case), solve(solver(bigger), bigger)
    assert a.ranks == b.ranks, "the order does not depend on capacity"
    order = sorted((i for i, r in enumerate(a.ranks) if r >= 0), key=lambda i: a.ranks[i])
    da, db = decisions(case, a, order), decisions(bigger, b, order)
    if da != db:
        first = next(n for n, (x, y) in enumerate(zip(da, db, strict=True)) if x != y)
        assert db[first] > da[first], f"more capacity lowered the admission of rank {first}"
        return
    va = sorted(a.unrounded[i] for i in order)
    vb = sorted(b.unrounded[i] for i in order)
    for x, y in zip(va, vb, strict=True):
        if abs(x - y) > 1e-6:
            assert y > x, "more capacity lowered the leximin vector"
            break


def tick_columns(case: Case, buffers: bool) -> tuple[object, dict[str, object]]:
    """The `solve` arguments of a case: lists, or float64 / int64 buffers (some of them
    behind a memoryview)."""
    inputs, nodes = case.inputs, case.node_inputs
    floats: dict[str, list[float]] = {
        "max_current": [i.max_current for i in inputs],
        "energy_needed_wh": [i.energy_needed_wh for i in inputs],
        "departure_s": [i.departure_s for i in inputs],
        "measured": [a for i in inputs for a in i.measured],
        "node_max_current": [a for n in nodes for a in n.max_current],
        "node_max_power": [n.max_power for n in nodes],
        "node_meter": [a for n in nodes for a in (n.meter or (0.0, 0.0, 0.0))],
    }
    ints: dict[str, list[int]] = {
        "phases": [i.phases for i in inputs],
        "allow_1p": [int(i.allow_1p) for i in inputs],
        "priority": [i.priority_class for i in inputs],
        "waited": [i.waited for i in inputs],
        "node_meter_state": [2 if n.stale else (1 if n.meter is not None else 0) for n in nodes],
    }
    active = [int(i.active) for i in inputs]
    if not buffers:
        return active, {**floats, **ints}
    columns: dict[str, object] = {k: array("d", v) for k, v in floats.items()}
    columns.update({k: array("q", v) for k, v in ints.items()})
    columns["measured"] = memoryview(array("d", floats["measured"]))
    return bytes(active), columns


@settings(max_examples=60, deadline=None)
@given(cases())
def test_buffers_and_reused_memory_agree_with_lists(case: Case) -> None:
    """Buffer columns give what list columns give, and a solver reusing its memory from
    earlier (different) ticks gives what a fresh one gives."""
    flipped = replace(
        case,
        inputs=[replace(i, active=not i.active) if k % 2 else i for k, i in enumerate(case.inputs)],
    )
    s = solver(case)
    results = []
    for tick in (case, flipped, case, flipped):
        active, columns = tick_columns(tick, buffers=False)
        from_lists = s.solve(active, **columns)
        active, columns = tick_columns(tick, buffers=True)
        from_buffers = s.solve(active, **columns)
        assert from_lists == from_buffers
        assert from_lists == solve_fresh(tick)
        results.append(from_lists)
    assert results[0] == results[2]
    assert results[1] == results[3]


def solve_fresh(case: Case) -> tuple[list[float], list[int], list[int], list[int], list[int]]:
    active, columns = tick_columns(case, buffers=False)
    out = solver(case).solve_detailed(active, **columns)
    return out[0], out[1], out[2], out[3], out[4]


def simple_site() -> BalancingSolver:
    return BalancingSolver(
        [("grid", None, (32.0, 32.0, 32.0), INF), ("board", "grid", (20.0, 20.0, 20.0), INF)],
        [
            ("cp1", "board", 3, "RST", 6.0, 16.0, 1.0, False),
            ("cp2", "board", 1, "T", 6.0, 32.0, 0.1, False),
            ("cp3", "grid", 3, "TSR", 6.0, 32.0, 1.0, True),
        ],
    )


def test_columns_accept_lists_tuples_and_buffers() -> None:
    s = simple_site()
    from_lists = s.solve([True, True, True], max_current=[INF, INF, INF])
    from_buffers = s.solve(array("q", [1, 1, 1]), max_current=array("d", [INF, INF, INF]))
    from_tuples = s.solve((1, 1, 1), max_current=(INF, INF, INF))
    assert from_lists == from_buffers == from_tuples
    setpoints, phases, reasons, nodes, limits = from_lists
    # Board L3 carries cp1 and cp2 (cp2's L1 is on grid T): 10 A each. The grid's L3 then
    # carries 10 + 10 + cp3: cp3 gets 12 A.
    assert setpoints == [10.0, 10.0, 12.0]
    assert phases == [3, 1, 3]
    assert reasons == [base.SATURATED, base.SATURATED, base.SATURATED]
    assert s.describe(reasons[0], nodes[0], limits[0]) == 'saturated: node "board" phase L3'
    assert s.describe(reasons[2], nodes[2], limits[2]) == 'saturated: node "grid" phase L3'
    assert s.node_ids == ["grid", "board"]
    assert s.charger_ids == ["cp1", "cp2", "cp3"]


def test_stale_meter_pauses_and_is_explained() -> None:
    s = simple_site()
    setpoints, _, reasons, nodes, limits = s.solve(
        [1, 1, 1], node_meter_state=[0, 2], node_meter=None
    )
    assert setpoints == [0.0, 0.0, 32.0]
    assert reasons[:2] == [base.STALE_METER] * 2
    assert s.describe(reasons[0], nodes[0], limits[0]) == (
        'paused: meter at node "board" is stale (counted as fully loaded)'
    )


def test_bad_input_is_refused_by_name() -> None:
    grid_node = ("grid", None, (32.0, 32.0, 32.0), INF)
    with pytest.raises(ValueError, match=r'charger "cp1": rotation "RSS"'):
        BalancingSolver([grid_node], [("cp1", "grid", 3, "RSS", 6.0, 16.0, 1.0, False)])
    with pytest.raises(ValueError, match=r'node "b": unknown parent node "x"'):
        BalancingSolver([grid_node, ("b", "x", (1.0, 1.0, 1.0), INF)], [])
    with pytest.raises(ValueError, match=r'node "a": is on a cycle'):
        BalancingSolver(
            [grid_node, ("a", "b", (1.0, 1.0, 1.0), INF), ("b", "a", (1.0, 1.0, 1.0), INF)],
            [],
        )
    with pytest.raises(ValueError, match=r'charger "cp1": max_current must be finite and >='):
        BalancingSolver([grid_node], [("cp1", "grid", 3, "RST", 10.0, 8.0, 1.0, False)])
    with pytest.raises(ValueError, match=r'node "grid": max_current on L1 must be a number'):
        BalancingSolver([("grid", None, (-1.0, 1.0, 1.0), INF)], [])
    s = simple_site()
    with pytest.raises(ValueError, match=r"active: 2 values for 3"):
        s.solve([1, 1])
    with pytest.raises(ValueError, match=r'charger "cp2": tick max_current must be >= 0'):
        s.solve([1, 1, 1], max_current=[INF, math.nan, INF])
    with pytest.raises(ValueError, match=r'charger "cp1": measured current on its L1'):
        s.solve([1, 1, 1], measured=[-1.0] + [0.0] * 8)
    with pytest.raises(ValueError, match=r'node "board": 7 is not 0'):
        s.solve([1, 1, 1], node_meter_state=[0, 7])
    with pytest.raises(ValueError, match=r"no such reason"):
        s.describe(9, -1, -1)


def fill_tick(tick: BalancingTick, case: Case) -> None:
    """Writes a case's columns into a tick's own arrays, in place."""
    active, columns = tick_columns(case, buffers=False)
    assert isinstance(active, list)
    tick.active[:] = array("q", active)
    for name, values in columns.items():
        column = getattr(tick, name)
        assert isinstance(values, list)
        column[:] = array(column.typecode, values)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_tick_agrees_with_solve(case: Case) -> None:
    """A `BalancingTick` writes into its arrays what `solve` returns, tick after tick (its
    arrays and memory reused across different ticks)."""
    flipped = replace(
        case,
        inputs=[replace(i, active=not i.active) if k % 2 else i for k, i in enumerate(case.inputs)],
    )
    s = solver(case)
    tick = BalancingTick(s)
    assert tick.solver is s
    for t in (case, flipped, case):
        fill_tick(tick, t)
        tick.solve()
        active, columns = tick_columns(t, buffers=False)
        expected = s.solve(active, **columns)
        got = (
            tick.setpoints.tolist(),
            tick.phases_used.tolist(),
            tick.reasons.tolist(),
            tick.reason_nodes.tolist(),
            tick.reason_limits.tolist(),
        )
        assert got == expected


def test_tick_defaults_and_bad_columns() -> None:
    s = simple_site()
    tick = BalancingTick(s)
    assert (len(tick.active), len(tick.measured), len(tick.node_meter)) == (3, 9, 6)
    tick.solve()
    assert (tick.setpoints.tolist(), tick.reasons.tolist()) == ([0.0] * 3, [base.INACTIVE] * 3)
    tick.active[:] = array("q", [1, 1, 1])
    tick.solve()
    assert (tick.setpoints.tolist(), tick.phases_used.tolist()) == (
        s.solve([1, 1, 1])[0],
        s.solve([1, 1, 1])[1],
    )
    tick.max_current[1] = math.nan
    with pytest.raises(ValueError, match=r'charger "cp2": tick max_current must be >= 0'):
        tick.solve()
    tick.max_current[1] = INF
    tick.phases.append(3)
    with pytest.raises(ValueError, match=r"phases: 4 values for 3"):
        tick.solve()
    tick.phases.pop()
    tick.setpoints.append(0.0)
    with pytest.raises(ValueError, match=r"setpoints: 4 values for 3"):
        tick.solve()
