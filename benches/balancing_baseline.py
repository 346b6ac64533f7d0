"""Plain-Python twin of the Rust load-balancing solver (`rust/balancing`).

The SAME algorithm, step for step and in the same order of floating-point operations, so that
its results match the Rust solver's up to float tolerance (in practice bit for bit). Two
uses: the baseline the benchmark (`bench_balancing.py`) compares the Rust solver against, and
the differential oracle of `tests/balancing/test_solver_properties.py`. The algorithm and its
guarantees are documented in the crate docs (`rust/balancing/src/lib.rs`); in short:

1. capacity per row (node x {L1, L2, L3, power}): limit, minus the non-EV load a fresh meter
   shows (measured minus the managed chargers' own draw, clipped at 0); a stale meter: 0;
2. rank active chargers: class, urgency tier, waited, urgency (higher first), index;
3. admit in rank order at the minimum where every row on the path has room (1p fallback);
4. event-driven max-min water-filling from the minimums;
5. round down to the resolution, then one step back in rank order where every row has room.

Input validation here is minimal (the Rust side refuses bad input with named errors); this
module assumes valid input.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

NOMINAL_VOLTAGE_V: Final = 230.0
"""P = 230 V x I x phases (load-balancing.md section 1)."""
EPS: Final = 1e-9
"""Slack when comparing a load against a capacity (A or W): absorbs float rounding only."""
URGENCY_CAP: Final = 1000.0
"""Urgency is capped here (an overdue or hopeless car); keeps the order key finite."""
ROUND_EPS_STEPS: Final = 1e-6
"""Tolerance in resolution steps when rounding (absorbs float noise of the fill)."""
DEFAULT_URGENCY_TIER: Final = 0.1
DEFAULT_MIN_CURRENT_A: Final = 6.0
"""IEC 61851-1: the lowest current the control pilot can signal."""
INF: Final = math.inf

# Reason codes, as `Reason::code` in Rust.
INACTIVE: Final = 0
CAP_BELOW_MINIMUM: Final = 1
STALE_METER: Final = 2
PAUSED: Final = 3
AT_MAXIMUM: Final = 4
CAP: Final = 5
SATURATED: Final = 6

# Charger states in the fill.
_OUT, _WAITING, _RISING, _FROZEN = 0, 1, 2, 3


@dataclass(frozen=True)
class NodeSpec:
    id: str
    parent: str | None
    max_current: tuple[float, float, float] = (INF, INF, INF)
    """A per grid phase L1, L2, L3; inf = no limit."""
    max_power: float = INF
    """W at 230 V per phase; inf = none."""


@dataclass(frozen=True)
class ChargerSpec:
    id: str
    node: str
    phases: int = 3
    phase_map: tuple[int, int, int] = (0, 1, 2)
    """Grid phase index of the charger's L1, L2, L3."""
    min_current: float = DEFAULT_MIN_CURRENT_A
    max_current: float = 32.0
    resolution: float = 1.0
    can_switch_phases: bool = False


@dataclass(frozen=True)
class NodeInput:
    max_current: tuple[float, float, float] = (INF, INF, INF)
    max_power: float = INF
    meter: tuple[float, float, float] | None = None
    """Measured A per grid phase, or None for no meter."""
    stale: bool = False
    """The meter is stale: the node counts as fully loaded."""


@dataclass(frozen=True)
class ChargerInput:
    active: bool = False
    max_current: float = INF
    phases: int = 3
    allow_1p: bool = False
    priority_class: int = 0
    energy_needed_wh: float = math.nan
    departure_s: float = math.nan
    waited: int = 0
    measured: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ChargerResult:
    setpoint: float
    phases: int
    reason: int
    node: int
    """The node the reason names, or -1."""
    limit: int
    """0-2: phase L1-L3, 3: power, -1: none."""
    rank: int
    """Admission order position, -1 if not ranked."""
    urgency: float
    unrounded: float


def floor_to(value: float, res_ma: int) -> float:
    """`value` rounded down to a multiple of `res_ma` mA, in A."""
    steps = math.floor(value * 1000.0 / res_ma + ROUND_EPS_STEPS)
    if steps <= 0:
        return 0.0
    return (steps * res_ma) / 1000.0


def ceil_to(value: float, res_ma: int) -> float:
    """`value` rounded up to a multiple of `res_ma` mA, in A."""
    steps = math.ceil(value * 1000.0 / res_ma - ROUND_EPS_STEPS)
    if steps <= 0:
        return 0.0
    return (steps * res_ma) / 1000.0


def urgency(energy_needed_wh: float, departure_s: float, max_power_w: float) -> float:
    """Energy needed / (time to departure x max power); 0 if unknown, capped."""
    known = energy_needed_wh > 0.0 and math.isfinite(departure_s) and max_power_w > 0.0
    if not known:
        return 0.0
    if departure_s <= 0.0:
        return URGENCY_CAP
    u = energy_needed_wh * 3600.0 / (departure_s * max_power_w)
    return URGENCY_CAP if u > URGENCY_CAP else u


def _coef(slot: int, n: int) -> float:
    return NOMINAL_VOLTAGE_V * n if slot == 3 else 1.0


@dataclass
class _Charger:
    node: int
    phases: int
    phase_map: tuple[int, int, int]
    lo: float
    hi: float
    res_ma: int
    can_switch: bool
    path: list[int]


@dataclass
class _Work:
    state: int = _OUT
    mask: int = 0
    n: int = 3
    lo: float = 0.0
    hi: float = 0.0
    x: float = 0.0
    reason: int = INACTIVE
    node: int = -1
    limit: int = -1
    rank: int = -1
    urgency: float = 0.0
    capped: bool = False


@dataclass
class Site:
    """The compiled model; `solve` once per tick."""

    nodes: Sequence[NodeSpec]
    chargers: Sequence[ChargerSpec]
    urgency_tier: float = DEFAULT_URGENCY_TIER
    _parent: list[int] = field(init=False)
    _topo: list[int] = field(init=False)
    _models: list[_Charger] = field(init=False)
    _subtree: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        index = {node.id: k for k, node in enumerate(self.nodes)}
        if len(index) != len(self.nodes):
            raise ValueError("duplicate node id")
        self._parent = [-1 if n.parent is None else index[n.parent] for n in self.nodes]
        roots = [k for k, p in enumerate(self._parent) if p < 0]
        if len(roots) != 1:
            raise ValueError("the tree needs exactly one root")
        children: list[list[int]] = [[] for _ in self.nodes]
        for k, p in enumerate(self._parent):
            if p >= 0:
                children[p].append(k)
        self._topo = [roots[0]]
        head = 0
        while head < len(self._topo):
            self._topo.extend(children[self._topo[head]])
            head += 1
        if len(self._topo) != len(self.nodes):
            raise ValueError("a cycle of parents")
        self._models = []
        self._subtree = [[] for _ in self.nodes]
        for i, spec in enumerate(self.chargers):
            res_ma = round(spec.resolution * 1000.0)
            lo = ceil_to(spec.min_current, res_ma)
            hi = floor_to(spec.max_current, res_ma)
            if not 0.0 < lo <= hi:
                raise ValueError(f"charger {spec.id!r}: bad min/max/resolution")
            path = []
            k = index[spec.node]
            while k >= 0:
                path.append(k)
                self._subtree[k].append(i)
                k = self._parent[k]
            self._models.append(
                _Charger(
                    index[spec.node],
                    spec.phases,
                    spec.phase_map,
                    lo,
                    hi,
                    res_ma,
                    spec.can_switch_phases,
                    path,
                )
            )

    def _capacities(
        self, nodes: Sequence[NodeInput], chargers: Sequence[ChargerInput]
    ) -> tuple[list[float], list[int]]:
        n_nodes = len(self.nodes)
        managed = [0.0] * (n_nodes * 3)
        if any(n.meter is not None and not n.stale for n in nodes):
            for model, inp in zip(self._models, chargers, strict=True):
                for g, a in zip(model.phase_map, inp.measured, strict=True):
                    managed[model.node * 3 + g] += a
            for k in reversed(self._topo):
                parent = self._parent[k]
                if parent >= 0:
                    for p in range(3):
                        managed[parent * 3 + p] += managed[k * 3 + p]
        cap = [0.0] * (n_nodes * 4)
        stale = [False] * n_nodes
        for k, spec in enumerate(self.nodes):
            tick = nodes[k] if nodes else NodeInput()
            limit = [
                min(spec.max_current[0], tick.max_current[0]),
                min(spec.max_current[1], tick.max_current[1]),
                min(spec.max_current[2], tick.max_current[2]),
                min(spec.max_power, tick.max_power),
            ]
            if tick.stale:
                stale[k] = True
                row = [0.0, 0.0, 0.0, 0.0]
            elif tick.meter is not None:
                base = [max(tick.meter[p] - managed[k * 3 + p], 0.0) for p in range(3)]
                power_base = NOMINAL_VOLTAGE_V * (base[0] + base[1] + base[2])
                row = [
                    max(limit[0] - base[0], 0.0),
                    max(limit[1] - base[1], 0.0),
                    max(limit[2] - base[2], 0.0),
                    max(limit[3] - power_base, 0.0),
                ]
            else:
                row = limit
            cap[k * 4 : k * 4 + 4] = row
        stale_near = [-1] * n_nodes
        for k in self._topo:
            parent = self._parent[k]
            inherited = stale_near[parent] if parent >= 0 else -1
            stale_near[k] = k if stale[k] else inherited
        return cap, stale_near

    def solve(
        self, nodes: Sequence[NodeInput], chargers: Sequence[ChargerInput]
    ) -> list[ChargerResult]:
        """One tick; `nodes` may be empty (no meters, no extra limits)."""
        if nodes and len(nodes) != len(self.nodes):
            raise ValueError("one NodeInput per node")
        if len(chargers) != len(self._models):
            raise ValueError("one ChargerInput per charger")
        cap, stale_near = self._capacities(nodes, chargers)

        work: list[_Work] = []
        ranked: list[tuple[int, int, int, float, int]] = []
        for i, (model, inp) in enumerate(zip(self._models, chargers, strict=True)):
            n = inp.phases if model.phases == 3 else 1
            w = _Work(n=n, lo=model.lo, hi=model.hi)
            if inp.active:
                cap_q = floor_to(min(inp.max_current, model.hi), model.res_ma)
                if cap_q < model.hi:
                    w.hi = cap_q
                    w.capped = True
                if w.hi < w.lo:
                    w.reason = CAP_BELOW_MINIMUM
                else:
                    w.urgency = urgency(
                        inp.energy_needed_wh, inp.departure_s, w.hi * n * NOMINAL_VOLTAGE_V
                    )
                    tier = (
                        min(math.floor(w.urgency / self.urgency_tier), 0xFFFF_FFFF)
                        if self.urgency_tier > 0.0
                        else 0
                    )
                    ranked.append((-inp.priority_class, -tier, -inp.waited, -w.urgency, i))
            work.append(w)
        ranked.sort()

        used = [0.0] * (len(self.nodes) * 4)
        admitted: list[int] = []
        for rank, key in enumerate(ranked):
            i = key[4]
            model, inp, w = self._models[i], chargers[i], work[i]
            w.rank = rank
            if stale_near[model.node] >= 0:
                w.reason, w.node = STALE_METER, stale_near[model.node]
                continue
            mask3, mask1 = 0b111, 1 << model.phase_map[0]
            outcome = _fits(model.path, mask3 if w.n == 3 else mask1, w.n, w.lo, used, cap)
            if outcome is not None and w.n == 3 and model.can_switch and inp.allow_1p:
                single = _fits(model.path, mask1, 1, w.lo, used, cap)
                if single is None:
                    w.n = 1
                outcome = single
            if outcome is None:
                w.mask = mask3 if w.n == 3 else mask1
                w.state = _WAITING
                w.x = w.lo
                _take(model.path, w.mask, w.n, w.lo, used)
                admitted.append(i)
            else:
                w.reason, w.node, w.limit = PAUSED, outcome[0], outcome[1]

        self._fill(work, used, cap)

        load = [0.0] * (len(self.nodes) * 4)
        setpoints = [0.0] * len(work)
        for i, (model, w) in enumerate(zip(self._models, work, strict=True)):
            if w.state == _FROZEN:
                q = min(max(floor_to(w.x, model.res_ma), w.lo), w.hi)
                _take(model.path, w.mask, w.n, q, load)
                setpoints[i] = q
        for i in admitted:
            model, w = self._models[i], work[i]
            q = setpoints[i]
            step = model.res_ma / 1000.0
            if q >= w.x - EPS or q + step > w.hi + EPS:
                continue
            if _fits(model.path, w.mask, w.n, step, load, cap) is None:
                _take(model.path, w.mask, w.n, step, load)
                setpoints[i] = floor_to(q + step, model.res_ma)

        return [
            ChargerResult(
                setpoint=setpoints[i],
                phases=w.n,
                reason=w.reason,
                node=w.node,
                limit=w.limit,
                rank=w.rank,
                urgency=w.urgency,
                unrounded=w.x if w.state == _FROZEN else 0.0,
            )
            for i, w in enumerate(work)
        ]

    def _fill(self, work: list[_Work], k_row: list[float], cap: list[float]) -> None:
        """Event-driven progressive filling; see `fill` in rust/balancing/src/solve.rs."""
        d_row = [0.0] * len(k_row)
        saturated = [False] * len(k_row)
        dirty = [False] * len(k_row)
        dirty_list: list[int] = []
        unfrozen = 0
        starts: list[tuple[float, int]] = []
        maxes: list[tuple[float, int]] = []
        for i, w in enumerate(work):
            if w.state != _WAITING:
                continue
            if w.hi <= w.lo:
                w.state, w.x = _FROZEN, w.lo
                w.reason = CAP if w.capped else AT_MAXIMUM
            else:
                unfrozen += 1
                starts.append((w.lo, i))
                maxes.append((w.hi, i))
        starts.sort(key=lambda e: e[0])
        maxes.sort(key=lambda e: e[0])
        heap: list[tuple[float, int]] = []
        ps = pm = 0
        t = 0.0
        while unfrozen > 0:
            while pm < len(maxes) and work[maxes[pm][1]].state == _FROZEN:
                pm += 1
            while ps < len(starts) and work[starts[ps][1]].state != _WAITING:
                ps += 1
            t_max = maxes[pm][0] if pm < len(maxes) else INF
            t_start = starts[ps][0] if ps < len(starts) else INF
            t_sat = INF
            while heap:
                te, r = heap[0]
                d = d_row[r]
                if saturated[r] or d <= 0.0:
                    heapq.heappop(heap)
                    continue
                tr = max((cap[r] - k_row[r]) / d, t)
                if tr > te:
                    heapq.heapreplace(heap, (tr, r))
                    continue
                t_sat = te
                break
            if t_max <= t_sat and t_max <= t_start and math.isfinite(t_max):
                t = t_max
                hi, i = maxes[pm]
                pm += 1
                w = work[i]
                self._freeze(w, i, hi, CAP if w.capped else AT_MAXIMUM, -1, -1, k_row, d_row)
                unfrozen -= 1
            elif t_sat <= t_start and math.isfinite(t_sat):
                t = t_sat
                _, r = heapq.heappop(heap)
                saturated[r] = True
                node, slot = divmod(r, 4)
                for i in self._subtree[node]:
                    w = work[i]
                    if w.state == _RISING:
                        value = t
                    elif w.state == _WAITING:
                        value = w.lo
                    else:
                        continue
                    if slot == 3 or w.mask & (1 << slot):
                        self._freeze(w, i, value, SATURATED, node, slot, k_row, d_row)
                        unfrozen -= 1
            elif math.isfinite(t_start):
                t = t_start
                while ps < len(starts) and starts[ps][0] == t_start:
                    i = starts[ps][1]
                    ps += 1
                    w = work[i]
                    if w.state != _WAITING:
                        continue
                    w.state = _RISING
                    for k in self._models[i].path:
                        for slot in range(4):
                            if slot < 3 and not w.mask & (1 << slot):
                                continue
                            r = k * 4 + slot
                            c = _coef(slot, w.n)
                            k_row[r] += -c * w.lo
                            d_row[r] += c
                            if not dirty[r]:
                                dirty[r] = True
                                dirty_list.append(r)
                for r in dirty_list:
                    dirty[r] = False
                    c_r, d = cap[r], d_row[r]
                    if not math.isfinite(c_r) or saturated[r] or d <= 0.0:
                        continue
                    heapq.heappush(heap, (max((c_r - k_row[r]) / d, t), r))
                dirty_list.clear()
            else:
                break

    def _freeze(
        self,
        w: _Work,
        i: int,
        value: float,
        reason: int,
        node: int,
        limit: int,
        k_row: list[float],
        d_row: list[float],
    ) -> None:
        if w.state == _RISING:
            for k in self._models[i].path:
                for slot in range(4):
                    if slot < 3 and not w.mask & (1 << slot):
                        continue
                    r = k * 4 + slot
                    c = _coef(slot, w.n)
                    k_row[r] += c * value
                    d_row[r] += -c
        w.state, w.x = _FROZEN, value
        w.reason, w.node, w.limit = reason, node, limit


def _fits(
    path: list[int], mask: int, n: int, amount: float, used: list[float], cap: list[float]
) -> tuple[int, int] | None:
    """None if `amount` more fits under every node of `path`, else the first (node, slot)."""
    for k in path:
        for slot in range(4):
            if slot < 3 and not mask & (1 << slot):
                continue
            r = k * 4 + slot
            if used[r] + _coef(slot, n) * amount > cap[r] + EPS:
                return (k, slot)
    return None


def _take(path: list[int], mask: int, n: int, amount: float, used: list[float]) -> None:
    for k in path:
        for slot in range(4):
            if slot < 3 and not mask & (1 << slot):
                continue
            used[k * 4 + slot] += _coef(slot, n) * amount
