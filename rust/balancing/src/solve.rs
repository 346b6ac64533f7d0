//! One tick: capacities from limits and meters, admission by rank, event-driven water-filling,
//! rounding down, then handing out the rounding remainder.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::error::Error;
use crate::model::{Phase, Site, NONE};
use crate::NOMINAL_VOLTAGE_V;

/// Slack allowed when comparing a load against a capacity (A, or W for power rows): float
/// sums of a few thousand terms err by ~1e-12, so 1e-9 only absorbs rounding, never a real
/// overload.
pub const EPS: f64 = 1e-9;

/// Urgency is capped here: a car that needs 1000× its full rate (or whose departure has
/// passed) is simply overdue; the cap keeps the order key finite.
pub const URGENCY_CAP: f64 = 1000.0;

/// A node's meter reading this tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Meter {
    /// No meter at this node: its limit applies to the managed chargers' setpoints alone.
    None,
    /// Measured current per grid phase, in A (negative = export, counted as 0 load).
    Fresh([f64; 3]),
    /// The meter's reading is too old: the node counts as fully loaded (no headroom).
    Stale,
}

/// Per-tick input of a node: time-varying limits (OCPP composite schedule, OCPI, local API,
/// EMS/§14a dimming…) on top of the static ones, and the meter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeInput {
    /// Per grid phase, in A; `INFINITY` = no extra limit this tick.
    pub max_current: [f64; 3],
    /// In W; `INFINITY` = none.
    pub max_power: f64,
    /// The node's meter.
    pub meter: Meter,
}

impl Default for NodeInput {
    fn default() -> Self {
        Self {
            max_current: [f64::INFINITY; 3],
            max_power: f64::INFINITY,
            meter: Meter::None,
        }
    }
}

/// Per-tick input of a charger.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChargerInput {
    /// A session wants current. Inactive chargers get 0 ([`Reason::Inactive`]).
    pub active: bool,
    /// This tick's cap in A per phase: the least of EV, cable, OCPP Tx/TxDefault profile,
    /// OCPI and local-API caps; `INFINITY` = only the charger's own maximum.
    pub max_current: f64,
    /// Phases the session uses: 3 (three-phase charger and EV) or 1 (single-phase charger,
    /// a single-phase EV on a three-phase charger, or a session switched to 1p).
    pub phases: u8,
    /// A three-phase session may be switched to 1p when 3p cannot be admitted (the control
    /// loop clears it during its switching hysteresis). Needs `can_switch_phases`.
    pub allow_1p: bool,
    /// Priority class: higher classes are admitted first.
    pub class: i64,
    /// Energy still needed, in Wh; `NAN` = unknown (urgency 0).
    pub energy_needed_wh: f64,
    /// Seconds until the planned departure; `NAN` or `INFINITY` = unknown (urgency 0);
    /// <= 0 = overdue.
    pub departure_s: f64,
    /// How long the session has been paused by the balancer, in the control loop's rotation
    /// periods (0 while charging): among equals, longer waiting is admitted first.
    pub waited: u32,
    /// The current the charger counts as drawing on its own L1, L2, L3 (measured, or its
    /// setpoint during the grace period), in A; used to separate the non-EV load at meters.
    pub measured: [f64; 3],
}

impl Default for ChargerInput {
    fn default() -> Self {
        Self {
            active: false,
            max_current: f64::INFINITY,
            phases: 3,
            allow_1p: false,
            class: 0,
            energy_needed_wh: f64::NAN,
            departure_s: f64::NAN,
            waited: 0,
            measured: [0.0; 3],
        }
    }
}

/// Which limit of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The current on one grid phase.
    Phase(Phase),
    /// The node's power limit.
    Power,
}

impl Limit {
    fn from_slot(slot: usize) -> Limit {
        Phase::from_index(slot).map_or(Limit::Power, Limit::Phase)
    }

    /// 0, 1, 2 for L1–L3, 3 for power.
    pub fn slot(self) -> usize {
        match self {
            Limit::Phase(p) => p.index(),
            Limit::Power => 3,
        }
    }
}

/// Why a charger got what it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No session wants current.
    Inactive,
    /// This tick's cap ([`ChargerInput::max_current`]) is below the charger's minimum: 0 A.
    CapBelowMinimum,
    /// A meter at `node` (the nearest stale one above the charger) is stale, so the node
    /// counts as fully loaded: 0 A. The failsafe choice (load-balancing.md §6).
    StaleMeter {
        /// The node index.
        node: usize,
    },
    /// Not admitted: its minimum did not fit under `node`'s `limit` after the chargers
    /// ranked before it were admitted: 0 A (OCPP SuspendedEVSE).
    Paused {
        /// The node index (nearest to the charger among those lacking headroom).
        node: usize,
        /// The limit lacking headroom.
        limit: Limit,
    },
    /// At its own maximum.
    AtMaximum,
    /// At this tick's cap ([`ChargerInput::max_current`]).
    Cap,
    /// Held by `node`'s `limit`, which the fill saturated.
    Saturated {
        /// The node index.
        node: usize,
        /// The saturated limit.
        limit: Limit,
    },
}

impl Reason {
    /// A small code for compact transfer: 0 Inactive, 1 CapBelowMinimum, 2 StaleMeter,
    /// 3 Paused, 4 AtMaximum, 5 Cap, 6 Saturated.
    pub fn code(self) -> u8 {
        match self {
            Reason::Inactive => 0,
            Reason::CapBelowMinimum => 1,
            Reason::StaleMeter { .. } => 2,
            Reason::Paused { .. } => 3,
            Reason::AtMaximum => 4,
            Reason::Cap => 5,
            Reason::Saturated { .. } => 6,
        }
    }

    /// The node the reason names, if any.
    pub fn node(self) -> Option<usize> {
        match self {
            Reason::StaleMeter { node }
            | Reason::Paused { node, .. }
            | Reason::Saturated { node, .. } => Some(node),
            _ => None,
        }
    }

    /// The limit the reason names, if any.
    pub fn limit(self) -> Option<Limit> {
        match self {
            Reason::Paused { limit, .. } | Reason::Saturated { limit, .. } => Some(limit),
            _ => None,
        }
    }
}

/// The result for one charger.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChargerResult {
    /// The setpoint in A per phase: 0 or within [min, max], a multiple of the resolution.
    pub setpoint: f64,
    /// The phases the setpoint applies to (1 after a 1p fallback).
    pub phases: u8,
    /// Which node or rule bound it.
    pub reason: Reason,
    /// Position in the admission order (0 = first); `u32::MAX` if not ranked (inactive,
    /// cap below minimum).
    pub rank: u32,
    /// The urgency used for ranking (energy needed ÷ (time to departure × max power)).
    pub urgency: f64,
    /// The exact max-min fair value before rounding (0 when not admitted).
    pub unrounded: f64,
}

/// Per-node figures of the result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeResult {
    /// What the managed chargers may use: L1, L2, L3 in A, then power in W (after limits,
    /// meter and stale flag; `INFINITY` = unlimited).
    pub capacity: [f64; 4],
    /// What the setpoints use: L1, L2, L3 in A, then power in W.
    pub load: [f64; 4],
}

/// The outcome of one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// One per charger, in the site's order.
    pub chargers: Vec<ChargerResult>,
    /// One per node, in the site's order.
    pub nodes: Vec<NodeResult>,
}

impl Allocation {
    /// An empty allocation, to be filled by [`Site::solve_into`].
    pub fn new() -> Allocation {
        Allocation {
            chargers: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

impl Default for Allocation {
    fn default() -> Self {
        Allocation::new()
    }
}

/// A charger's state in the fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not admitted (0 A).
    Out,
    /// Admitted, held at its minimum until the water level reaches it.
    Waiting,
    /// Following the water level.
    Rising,
    /// Done.
    Frozen,
}

/// f64 with a total order, for the heap (no NaN reaches it).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Time(f64);

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Per-charger working data of one tick.
#[derive(Clone, Copy, Debug)]
struct Work {
    state: State,
    /// Grid-phase bit mask of the phases used this tick.
    mask: u8,
    /// Phases used (1 or 3).
    n: u8,
    /// Ranked this tick (active, cap not below the minimum); its key is in `Scratch::keys`.
    keyed: bool,
    /// `hi` comes from this tick's cap rather than the charger's maximum.
    capped: bool,
    rank: u32,
    lo: f64,
    hi: f64,
    x: f64,
    urgency: f64,
    /// What one ampere of setpoint adds to the rows L1, L2, L3, power of each node on the
    /// path: 1 on the grid phases in `mask`, 0 on the others, 230 V × n on power.
    coef: [f64; 4],
    reason: Reason,
}

/// Rows of one node: L1, L2, L3 in A, power in W.
type Rows = [f64; 4];

/// Reusable working memory for [`Site::solve_into`]: keep one per site and pass it every
/// tick, and a solve allocates nothing once the buffers have grown to the site's size. It
/// also remembers the last admission order, which makes ranking a nearly unchanged fleet a
/// linear pass. The result never depends on what a scratch held before.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    work: Vec<Work>,
    /// Packed ranking keys per charger (valid where `Work::keyed`).
    keys: Vec<(u64, u128)>,
    ranked: Vec<(u64, u128, u32)>,
    /// The previous tick's admission order (charger indices).
    order: Vec<u32>,
    managed: Vec<[f64; 3]>,
    cap: Vec<Rows>,
    stale: Vec<bool>,
    stale_near: Vec<u32>,
    /// Admission load, then the fill's constant terms `k`.
    used: Vec<Rows>,
    admitted: Vec<u32>,
    d_row: Vec<Rows>,
    saturated: Vec<bool>,
    /// Per node: the rows (bit mask) whose rate changed in the current batch of starts.
    dirty: Vec<u8>,
    dirty_list: Vec<u32>,
    starts: Vec<(f64, u32)>,
    maxes: Vec<(f64, u32)>,
    heap: BinaryHeap<Reverse<(Time, usize)>>,
    load: Vec<Rows>,
    results: Vec<f64>,
}

impl Scratch {
    /// An empty scratch (buffers grow on the first solve).
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

fn bit(p: u8) -> u8 {
    1u8 << (p % 3)
}

/// The per-row coefficients ([`Work::coef`]) of a three-phase session.
const COEF_3P: Rows = [1.0, 1.0, 1.0, 3.0 * NOMINAL_VOLTAGE_V];

/// The per-row coefficients of a single-phase session on grid phase 0, 1, 2.
const COEF_1P: [Rows; 3] = [
    [1.0, 0.0, 0.0, NOMINAL_VOLTAGE_V],
    [0.0, 1.0, 0.0, NOMINAL_VOLTAGE_V],
    [0.0, 0.0, 1.0, NOMINAL_VOLTAGE_V],
];

/// The grid-phase mask and the coefficients of a session on `n` phases of a charger whose
/// L1 is on grid phase `l1`.
fn usage(n: u8, l1: u8) -> (u8, &'static Rows) {
    if n == 3 {
        (0b111, &COEF_3P)
    } else {
        let g = l1 % 3;
        (bit(g), COEF_1P.get(usize::from(g)).unwrap_or(&COEF_3P))
    }
}

/// Refills `v` with `len` copies of `value`, keeping its allocation.
fn reset<T: Clone>(v: &mut Vec<T>, len: usize, value: T) {
    v.clear();
    v.resize(len, value);
}

/// The urgency of a session: energy needed ÷ (time to departure × maximum power), i.e. the
/// fraction of the remaining time it must charge at full rate (SAP's ranking,
/// load-balancing.md §3). >= 1: it cannot finish even at full rate.
pub fn urgency(energy_needed_wh: f64, departure_s: f64, max_power_w: f64) -> f64 {
    // NaN energy (unknown) fails `> 0` too.
    let known = energy_needed_wh > 0.0 && departure_s.is_finite() && max_power_w > 0.0;
    if !known {
        return 0.0;
    }
    if departure_s <= 0.0 {
        return URGENCY_CAP;
    }
    // Wh × 3600 s/h = J; J ÷ (s × W) is dimensionless.
    let u = energy_needed_wh * 3600.0 / (departure_s * max_power_w);
    if u > URGENCY_CAP {
        URGENCY_CAP
    } else {
        u
    }
}

impl Site {
    /// Solves one tick. `nodes` is one [`NodeInput`] per node, or empty for "no meters, no
    /// extra limits"; `chargers` is one [`ChargerInput`] per charger. Errors name the node
    /// or charger with a bad input (wrong lengths, NaN or negative limits and currents,
    /// phases not 1 or 3, 1p on a three-phase-only rule…).
    ///
    /// Allocates its working memory afresh; a control loop solving every tick should keep a
    /// [`Scratch`] and an [`Allocation`] and call [`Site::solve_into`] (same result).
    pub fn solve(
        &self,
        nodes: &[NodeInput],
        chargers: &[ChargerInput],
    ) -> Result<Allocation, Error> {
        let mut out = Allocation::new();
        self.solve_into(nodes, chargers, &mut Scratch::new(), &mut out)?;
        Ok(out)
    }

    /// As [`Site::solve`], writing the result into `out` and working in `scratch`, both
    /// reused from earlier ticks (their previous contents do not matter). On error `out` is
    /// unspecified.
    pub fn solve_into(
        &self,
        nodes: &[NodeInput],
        chargers: &[ChargerInput],
        scratch: &mut Scratch,
        out: &mut Allocation,
    ) -> Result<(), Error> {
        let n_nodes = self.node_ids.len();
        let n_chargers = self.chargers.len();
        if !nodes.is_empty() && nodes.len() != n_nodes {
            return Err(Error::Site(format!(
                "{} node inputs for {n_nodes} nodes",
                nodes.len()
            )));
        }
        if chargers.len() != n_chargers {
            return Err(Error::Site(format!(
                "{} charger inputs for {n_chargers} chargers",
                chargers.len()
            )));
        }
        self.check_inputs(nodes, chargers)?;
        let s = scratch;

        // 1. Capacity of every row (node × {L1, L2, L3, power}) for the managed chargers.
        self.capacities(nodes, chargers, s);

        // 2. Per-charger bounds, mode and ranking key.
        s.work.clear();
        s.keys.clear();
        for (model, input) in self.chargers.iter().zip(chargers) {
            let n = if model.phases == 3 { input.phases } else { 1 };
            let mut w = Work {
                state: State::Out,
                mask: 0,
                n,
                keyed: false,
                capped: false,
                rank: u32::MAX,
                lo: model.min,
                hi: model.max,
                x: 0.0,
                urgency: 0.0,
                coef: [0.0; 4],
                reason: Reason::Inactive,
            };
            let mut key = (0u64, 0u128);
            if input.active {
                // A cap at or above an on-grid maximum leaves it as it is (no rounding).
                let cap_q = if model.max_on_grid && input.max_current >= model.max {
                    model.max
                } else {
                    model.floor(input.max_current.min(model.max))
                };
                if cap_q < model.max {
                    w.hi = cap_q;
                    w.capped = true;
                }
                if w.hi < w.lo {
                    w.reason = Reason::CapBelowMinimum;
                } else {
                    w.urgency = urgency(
                        input.energy_needed_wh,
                        input.departure_s,
                        w.hi * f64::from(n) * NOMINAL_VOLTAGE_V,
                    );
                    // Saturates at u32::MAX: only a tier width below 1000 / 2^32 could get there.
                    // The quotient is >= 0, so the conversion's truncation is the floor.
                    let tier = if self.urgency_tier > 0.0 {
                        (w.urgency / self.urgency_tier) as u32
                    } else {
                        0
                    };
                    // Class is checked to fit i32; flipping the sign bit orders it unsigned.
                    let class = (input.class as i32 as u32) ^ 0x8000_0000;
                    let k1 = (u64::from(!class) << 32) | u64::from(!tier);
                    // Urgency is >= 0, whose IEEE bits order like the values.
                    let k2 = (u128::from(!input.waited) << 64) | u128::from(!w.urgency.to_bits());
                    key = (k1, k2);
                    w.keyed = true;
                }
            }
            s.work.push(w);
            s.keys.push(key);
        }
        // Higher class, then higher urgency tier, then longer waiting, then higher exact
        // urgency, then lower index: a total, deterministic order (the keys are distinct).
        // The entries go in last tick's order first: a fleet whose order did not change is
        // then already sorted, which the (run-detecting) stable sort checks in one pass.
        s.ranked.clear();
        for &i in &s.order {
            if let (Some(w), Some(&(k1, k2))) = (s.work.get_mut(i as usize), s.keys.get(i as usize))
            {
                if w.keyed {
                    w.keyed = false;
                    s.ranked.push((k1, k2, i));
                }
            }
        }
        for (i, (w, &(k1, k2))) in s.work.iter_mut().zip(&s.keys).enumerate() {
            if w.keyed {
                w.keyed = false;
                s.ranked.push((k1, k2, i as u32));
            }
        }
        s.ranked.sort();
        s.order.clear();
        s.order.extend(s.ranked.iter().map(|e| e.2));

        // 3. Admission at the minimum, in rank order.
        reset(&mut s.used, n_nodes, [0.0; 4]);
        s.admitted.clear();
        for (rank, &(_, _, i)) in s.ranked.iter().enumerate() {
            let (Some(model), Some(input), Some(w)) = (
                self.chargers.get(i as usize),
                chargers.get(i as usize),
                s.work.get_mut(i as usize),
            ) else {
                continue;
            };
            w.rank = rank as u32;
            let path = self.path(model.path_start, model.path_len);
            let stale = s
                .stale_near
                .get(model.node as usize)
                .copied()
                .unwrap_or(NONE);
            if stale != NONE {
                w.reason = Reason::StaleMeter {
                    node: stale as usize,
                };
                continue;
            }
            let (mask, coef) = usage(w.n, model.map[0]);
            let mut outcome = fits(path, mask, coef, w.lo, &s.used, &s.cap);
            if outcome.is_err() && w.n == 3 && model.can_switch && input.allow_1p {
                let (mask, coef) = usage(1, model.map[0]);
                let single = fits(path, mask, coef, w.lo, &s.used, &s.cap);
                if single.is_ok() {
                    w.n = 1;
                }
                outcome = single;
            }
            match outcome {
                Ok(()) => {
                    let (mask, coef) = usage(w.n, model.map[0]);
                    w.mask = mask;
                    w.coef = *coef;
                    w.state = State::Waiting;
                    w.x = w.lo;
                    take(path, &w.coef, w.lo, &mut s.used);
                    s.admitted.push(i);
                }
                Err((node, slot)) => {
                    w.reason = Reason::Paused {
                        node: node as usize,
                        limit: Limit::from_slot(slot),
                    };
                }
            }
        }

        // 4. Max-min fair water-filling from the minimums.
        self.fill(s)?;

        // 5. Round down, then hand the rounding remainder out in rank order.
        reset(&mut s.load, n_nodes, [0.0; 4]);
        s.results.clear();
        for (model, w) in self.chargers.iter().zip(s.work.iter_mut()) {
            if w.state == State::Frozen {
                let q = model.floor(w.x);
                // Never below the minimum: `lo` is on the grid, so only float noise could.
                let q = q.max(w.lo).min(w.hi);
                let path = self.path(model.path_start, model.path_len);
                take(path, &w.coef, q, &mut s.load);
                s.results.push(q);
            } else {
                s.results.push(0.0);
            }
        }
        for &i in &s.admitted {
            let (Some(model), Some(w), Some(q)) = (
                self.chargers.get(i as usize),
                s.work.get(i as usize),
                s.results.get_mut(i as usize),
            ) else {
                continue;
            };
            let step = model.step;
            // Only chargers that lost something to rounding get a step back; one step is all
            // any of them lost.
            if *q >= w.x - EPS || *q + step > w.hi + EPS {
                continue;
            }
            let path = self.path(model.path_start, model.path_len);
            if fits(path, w.mask, &w.coef, step, &s.load, &s.cap).is_ok() {
                take(path, &w.coef, step, &mut s.load);
                *q = model.floor(*q + step);
            }
        }

        out.chargers.clear();
        out.chargers.extend(
            s.work
                .iter()
                .zip(&s.results)
                .map(|(w, &setpoint)| ChargerResult {
                    setpoint,
                    phases: w.n,
                    reason: w.reason,
                    rank: w.rank,
                    urgency: w.urgency,
                    unrounded: if w.state == State::Frozen { w.x } else { 0.0 },
                }),
        );
        out.nodes.clear();
        out.nodes.extend(
            s.cap
                .iter()
                .zip(&s.load)
                .map(|(&capacity, &load)| NodeResult { capacity, load }),
        );
        Ok(())
    }

    /// A human-readable explanation of a reason, naming the node by id.
    pub fn describe(&self, reason: Reason) -> String {
        let node = |k: usize| self.node_id(k).unwrap_or("?").to_owned();
        let limit = |l: Limit| match l {
            Limit::Phase(p) => format!("phase {p}"),
            Limit::Power => "power".to_owned(),
        };
        match reason {
            Reason::Inactive => "inactive: no session wants current".into(),
            Reason::CapBelowMinimum => "paused: this tick's cap is below the minimum".into(),
            Reason::StaleMeter { node: k } => {
                format!(
                    "paused: meter at node {:?} is stale (counted as fully loaded)",
                    node(k)
                )
            }
            Reason::Paused { node: k, limit: l } => {
                format!("paused: no headroom at node {:?} {}", node(k), limit(l))
            }
            Reason::AtMaximum => "at its maximum".into(),
            Reason::Cap => "at this tick's cap".into(),
            Reason::Saturated { node: k, limit: l } => {
                format!("saturated: node {:?} {}", node(k), limit(l))
            }
        }
    }

    fn path(&self, start: u32, len: u32) -> &[u32] {
        let start = start as usize;
        self.paths.get(start..start + len as usize).unwrap_or(&[])
    }

    fn check_inputs(&self, nodes: &[NodeInput], chargers: &[ChargerInput]) -> Result<(), Error> {
        for (id, input) in self.node_ids.iter().zip(nodes) {
            for (p, &v) in Phase::ALL.iter().zip(&input.max_current) {
                if v.is_nan() || v < 0.0 {
                    return Err(Error::node(
                        id,
                        format!("tick max_current on {p} must be >= 0 (or infinity), got {v}"),
                    ));
                }
            }
            if input.max_power.is_nan() || input.max_power < 0.0 {
                return Err(Error::node(
                    id,
                    format!(
                        "tick max_power must be >= 0 (or infinity), got {}",
                        input.max_power
                    ),
                ));
            }
            if let Meter::Fresh(m) = input.meter {
                for (p, &v) in Phase::ALL.iter().zip(&m) {
                    if !v.is_finite() {
                        return Err(Error::node(
                            id,
                            format!("meter current on {p} must be finite, got {v}"),
                        ));
                    }
                }
            }
        }
        // Nearly always valid: one branch-free pass, and the named error only when not.
        if chargers.iter().all(charger_ok) {
            return Ok(());
        }
        for (id, input) in self.charger_ids.iter().zip(chargers) {
            let id = id.as_str();
            if input.max_current.is_nan() || input.max_current < 0.0 {
                return Err(Error::charger(
                    id,
                    format!(
                        "tick max_current must be >= 0 (or infinity), got {}",
                        input.max_current
                    ),
                ));
            }
            if i32::try_from(input.class).is_err() {
                return Err(Error::charger(
                    id,
                    format!(
                        "class must fit a 32-bit signed integer, got {}",
                        input.class
                    ),
                ));
            }
            if input.phases != 1 && input.phases != 3 {
                return Err(Error::charger(
                    id,
                    format!("tick phases must be 1 or 3, got {}", input.phases),
                ));
            }
            if input.energy_needed_wh < 0.0 {
                return Err(Error::charger(
                    id,
                    format!(
                        "energy_needed_wh must be >= 0 (or NaN = unknown), got {}",
                        input.energy_needed_wh
                    ),
                ));
            }
            for (p, &v) in Phase::ALL.iter().zip(&input.measured) {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::charger(
                        id,
                        format!("measured current on its {p} must be finite and >= 0, got {v}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Row capacities for the managed chargers (`s.cap`) and, per node, the nearest stale
    /// meter at or above it (`s.stale_near`, `NONE` if none).
    fn capacities(&self, nodes: &[NodeInput], chargers: &[ChargerInput], s: &mut Scratch) {
        let n_nodes = self.node_ids.len();
        let metered = nodes.iter().any(|n| matches!(n.meter, Meter::Fresh(_)));
        // The managed chargers' own draw per node and grid phase: summed at each charger's
        // node, then pushed up children-before-parents.
        reset(&mut s.managed, if metered { n_nodes } else { 0 }, [0.0; 3]);
        if metered {
            for (model, input) in self.chargers.iter().zip(chargers) {
                if let Some(row) = s.managed.get_mut(model.node as usize) {
                    for (&g, &a) in model.map.iter().zip(&input.measured) {
                        if let Some(slot) = row.get_mut(usize::from(g)) {
                            *slot += a;
                        }
                    }
                }
            }
            for &k in self.topo.iter().rev() {
                let parent = self.node_parent.get(k as usize).copied().unwrap_or(NONE);
                let Some(&child) = s.managed.get(k as usize) else {
                    continue;
                };
                if let Some(row) = s.managed.get_mut(parent as usize) {
                    for (slot, &v) in row.iter_mut().zip(&child) {
                        *slot += v;
                    }
                }
            }
        }
        s.cap.clear();
        reset(&mut s.stale, n_nodes, false);
        let default = NodeInput::default();
        for k in 0..n_nodes {
            let input = nodes.get(k).unwrap_or(&default);
            let [s1, s2, s3, s4] = self.node_limit.get(k).copied().unwrap_or([0.0; 4]);
            let [t1, t2, t3] = input.max_current;
            let limit = [s1.min(t1), s2.min(t2), s3.min(t3), s4.min(input.max_power)];
            let row = match input.meter {
                Meter::None => limit,
                Meter::Stale => {
                    if let Some(flag) = s.stale.get_mut(k) {
                        *flag = true;
                    }
                    [0.0; 4]
                }
                Meter::Fresh(m) => {
                    // Non-EV load = measured − our chargers' draw; clipped at 0, so neither
                    // export nor a meter lagging the chargers' readings is taken as extra
                    // capacity.
                    let own = s.managed.get(k).copied().unwrap_or([0.0; 3]);
                    let [b1, b2, b3] = [
                        (m[0] - own[0]).max(0.0),
                        (m[1] - own[1]).max(0.0),
                        (m[2] - own[2]).max(0.0),
                    ];
                    let power_base = NOMINAL_VOLTAGE_V * (b1 + b2 + b3);
                    let [l1, l2, l3, l4] = limit;
                    [
                        (l1 - b1).max(0.0),
                        (l2 - b2).max(0.0),
                        (l3 - b3).max(0.0),
                        (l4 - power_base).max(0.0),
                    ]
                }
            };
            s.cap.push(row);
        }
        // Nearest stale meter at or above each node, parents first.
        reset(&mut s.stale_near, n_nodes, NONE);
        for &k in &self.topo {
            let parent = self.node_parent.get(k as usize).copied().unwrap_or(NONE);
            let inherited = if parent == NONE {
                NONE
            } else {
                s.stale_near.get(parent as usize).copied().unwrap_or(NONE)
            };
            let own = s.stale.get(k as usize).copied().unwrap_or(false);
            if let Some(near) = s.stale_near.get_mut(k as usize) {
                *near = if own { k } else { inherited };
            }
        }
    }

    /// Event-driven progressive filling. The water level `t` rises from 0; an admitted
    /// charger sits at `lo` until `t` reaches it, then follows `t` until `t` reaches `hi`
    /// (frozen: AtMaximum/Cap) or a row it loads saturates (frozen with every other member
    /// of that row: Saturated). A row's load is `k + d·t` (`d` = summed coefficients of its
    /// rising members), so it saturates at `(cap − k) / d`. Rows are kept in a heap with
    /// lazy keys: a key only moves later when members stop rising, so a stale (early) key is
    /// recomputed and pushed back when it surfaces; members starting to rise move it earlier,
    /// so those rows are pushed afresh (once per batch of equal minimums). `k` starts as the
    /// admission load `s.used`. Row `r` is slot `r % 4` of node `r / 4`.
    fn fill(&self, s: &mut Scratch) -> Result<(), Error> {
        let n_nodes = s.used.len();
        let n_admitted = s.admitted.len();
        let Scratch {
            work,
            used: k_row,
            d_row,
            saturated,
            dirty,
            dirty_list,
            starts,
            maxes,
            heap,
            cap,
            ..
        } = s;
        reset(d_row, n_nodes, [0.0; 4]);
        reset(saturated, n_nodes * 4, false);
        reset(dirty, n_nodes, 0);
        dirty_list.clear();
        starts.clear();
        maxes.clear();
        heap.clear();
        let mut unfrozen = 0usize;
        // In index order, so that a stable sort by value gives (value, index) order.
        for (i, w) in work.iter_mut().enumerate() {
            if w.state != State::Waiting {
                continue;
            }
            let i = i as u32;
            if w.hi <= w.lo {
                w.state = State::Frozen;
                w.x = w.lo;
                w.reason = if w.capped {
                    Reason::Cap
                } else {
                    Reason::AtMaximum
                };
            } else {
                unfrozen += 1;
                starts.push((w.lo, i));
                maxes.push((w.hi, i));
            }
        }
        // Stable: equal values keep index order. Few distinct values (6 A, 16 A, 32 A…) make
        // this much cheaper than a full comparison sort.
        starts.sort_by(|a, b| a.0.total_cmp(&b.0));
        maxes.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut ps, mut pm) = (0usize, 0usize);
        let mut t = 0.0f64;
        let row = |v: &[Rows], r: usize| {
            v.get(r / 4)
                .and_then(|rows| rows.get(r % 4))
                .copied()
                .unwrap_or(0.0)
        };
        // Every iteration retires a start, a maximum, a row or a heap entry; heap entries
        // are pushed at most once per row per event, so this bound is never reached.
        let mut budget = 64usize
            .saturating_mul(self.paths.len() + n_admitted + 1)
            .saturating_mul(4);
        while unfrozen > 0 {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return Err(Error::Site(
                    "internal: the fill did not converge (please report)".into(),
                ));
            }
            while let Some(&(_, i)) = maxes.get(pm) {
                if work
                    .get(i as usize)
                    .is_some_and(|w| w.state == State::Frozen)
                {
                    pm += 1;
                } else {
                    break;
                }
            }
            while let Some(&(_, i)) = starts.get(ps) {
                if work
                    .get(i as usize)
                    .is_some_and(|w| w.state != State::Waiting)
                {
                    ps += 1;
                } else {
                    break;
                }
            }
            let t_max = maxes.get(pm).map_or(f64::INFINITY, |e| e.0);
            let t_start = starts.get(ps).map_or(f64::INFINITY, |e| e.0);
            // Validate the heap top: drop dead rows, push back keys that moved later.
            let mut t_sat = f64::INFINITY;
            while let Some(&Reverse((Time(te), r))) = heap.peek() {
                let d = row(d_row, r);
                if saturated.get(r).copied().unwrap_or(true) || d <= 0.0 {
                    heap.pop();
                    continue;
                }
                let tr = ((row(cap, r) - row(k_row, r)) / d).max(t);
                if tr > te {
                    heap.pop();
                    heap.push(Reverse((Time(tr), r)));
                    continue;
                }
                t_sat = te;
                break;
            }
            // Ties: maximum first (the more telling reason), then saturation, then starts
            // (a start into a saturated row is frozen by the saturation instead).
            if t_max <= t_sat && t_max <= t_start && t_max.is_finite() {
                t = t_max;
                if let Some(&(hi, i)) = maxes.get(pm) {
                    pm += 1;
                    if let Some(w) = work.get_mut(i as usize) {
                        let reason = if w.capped {
                            Reason::Cap
                        } else {
                            Reason::AtMaximum
                        };
                        self.freeze(w, i, hi, reason, k_row, d_row);
                        unfrozen -= 1;
                    }
                }
            } else if t_sat <= t_start && t_sat.is_finite() {
                t = t_sat;
                let Some(Reverse((_, r))) = heap.pop() else {
                    continue;
                };
                if let Some(flag) = saturated.get_mut(r) {
                    *flag = true;
                }
                let node = r / 4;
                let slot = r % 4;
                let reason = Reason::Saturated {
                    node,
                    limit: Limit::from_slot(slot),
                };
                let from = self.subtree_start.get(node).copied().unwrap_or(0) as usize;
                let to = self.subtree_start.get(node + 1).copied().unwrap_or(0) as usize;
                for &i in self.subtree.get(from..to).unwrap_or(&[]) {
                    let Some(w) = work.get_mut(i as usize) else {
                        continue;
                    };
                    let member = slot == 3 || w.mask & (1 << slot) != 0;
                    let value = match w.state {
                        State::Rising => t,
                        State::Waiting => w.lo,
                        State::Out | State::Frozen => continue,
                    };
                    if member {
                        self.freeze(w, i, value, reason, k_row, d_row);
                        unfrozen -= 1;
                    }
                }
            } else if t_start.is_finite() {
                t = t_start;
                // Every charger whose minimum is this level starts rising together.
                while let Some(&(lo, i)) = starts.get(ps) {
                    if lo != t_start {
                        break;
                    }
                    ps += 1;
                    let Some(w) = work.get_mut(i as usize) else {
                        continue;
                    };
                    if w.state != State::Waiting {
                        continue;
                    }
                    w.state = State::Rising;
                    let Some(model) = self.chargers.get(i as usize) else {
                        continue;
                    };
                    // Rows off the mask get exactly +0 (their coefficient is 0).
                    let rows = w.mask | 0b1000;
                    for &k in self.path(model.path_start, model.path_len) {
                        let k = k as usize;
                        if let (Some(kr), Some(dr)) = (k_row.get_mut(k), d_row.get_mut(k)) {
                            for ((kv, dv), &c) in kr.iter_mut().zip(dr.iter_mut()).zip(&w.coef) {
                                *kv += -c * w.lo;
                                *dv += c;
                            }
                        }
                        if let Some(flags) = dirty.get_mut(k) {
                            if *flags == 0 {
                                dirty_list.push(k as u32);
                            }
                            *flags |= rows;
                        }
                    }
                }
                for k in dirty_list.drain(..) {
                    let k = k as usize;
                    let Some(flags) = dirty.get_mut(k) else {
                        continue;
                    };
                    let rows = std::mem::take(flags);
                    for slot in 0..4 {
                        if rows & (1 << slot) == 0 {
                            continue;
                        }
                        let r = k * 4 + slot;
                        let c = row(cap, r);
                        let d = row(d_row, r);
                        if !c.is_finite() || saturated.get(r).copied().unwrap_or(true) || d <= 0.0 {
                            continue;
                        }
                        let tr = ((c - row(k_row, r)) / d).max(t);
                        heap.push(Reverse((Time(tr), r)));
                    }
                }
            } else {
                // Unreachable: a waiting charger has a start, a rising one a maximum.
                break;
            }
        }
        Ok(())
    }

    /// Fixes a charger at `value` and takes it out of its rows' rates.
    fn freeze(
        &self,
        w: &mut Work,
        i: u32,
        value: f64,
        reason: Reason,
        k_row: &mut [Rows],
        d_row: &mut [Rows],
    ) {
        if w.state == State::Rising {
            if let Some(model) = self.chargers.get(i as usize) {
                // Rows off the mask get exactly +0 (their coefficient is 0).
                for &k in self.path(model.path_start, model.path_len) {
                    let k = k as usize;
                    if let (Some(kr), Some(dr)) = (k_row.get_mut(k), d_row.get_mut(k)) {
                        for ((kv, dv), &c) in kr.iter_mut().zip(dr.iter_mut()).zip(&w.coef) {
                            *kv += c * value;
                            *dv += -c;
                        }
                    }
                }
            }
        }
        w.state = State::Frozen;
        w.x = value;
        w.reason = reason;
    }
}

/// The charger checks of `Site::check_inputs` in one expression (`&`, not `&&`: no
/// branches).
fn charger_ok(input: &ChargerInput) -> bool {
    let [a, b, c] = input.measured;
    let finite_non_negative = |v: f64| (0.0..f64::INFINITY).contains(&v);
    (input.max_current >= 0.0)
        & (i32::try_from(input.class).is_ok())
        & ((input.phases == 1) | (input.phases == 3))
        & ((input.energy_needed_wh >= 0.0) | input.energy_needed_wh.is_nan())
        & finite_non_negative(a)
        & finite_non_negative(b)
        & finite_non_negative(c)
}

/// Whether `amount` more per phase on `mask` fits under every node of `path`; otherwise the
/// first (nearest) node and slot lacking headroom. Rows off the mask are not checked.
fn fits(
    path: &[u32],
    mask: u8,
    coef: &Rows,
    amount: f64,
    used: &[Rows],
    cap: &[Rows],
) -> Result<(), (u32, usize)> {
    let rows = mask | 0b1000;
    for &k in path {
        let (Some(u), Some(c)) = (used.get(k as usize), cap.get(k as usize)) else {
            continue;
        };
        let mut over = 0u8;
        for (slot, ((&u, &c), &a)) in u.iter().zip(c).zip(coef).enumerate() {
            over |= u8::from(u + a * amount > c + EPS) << slot;
        }
        let over = over & rows;
        if over != 0 {
            return Err((k, over.trailing_zeros() as usize));
        }
    }
    Ok(())
}

/// Adds `amount` per phase to every node of `path`, weighted by `coef` (rows off the mask
/// get exactly +0).
fn take(path: &[u32], coef: &Rows, amount: f64, used: &mut [Rows]) {
    for &k in path {
        if let Some(u) = used.get_mut(k as usize) {
            for (u, &c) in u.iter_mut().zip(coef) {
                *u += c * amount;
            }
        }
    }
}
