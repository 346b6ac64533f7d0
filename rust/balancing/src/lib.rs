//! Site load-balancing solver for evgw: shares a grid connection among many chargers over a
//! tree of fuses so that no limit is exceeded on any phase, every charging vehicle gets at
//! least its minimum, and the rest is shared max-min fairly. Pure, sans-I/O Rust; the
//! Python binding lives in `rust/python/src/balancing.rs`, the plain-Python twin of the
//! same algorithm (the benchmark baseline and differential oracle) in
//! `benches/balancing_baseline.py`.
//!
//! # Model
//!
//! * A **tree of limit nodes** ([`NodeSpec`]): exactly one root (the grid connection), then
//!   feeders, boards, and virtual nodes for external caps (an OCPP station-wide composite
//!   schedule, OCPI or local-API limits). Each node has a current limit per **grid** phase
//!   (A) and an optional power limit (W); both can be tightened per tick ([`NodeInput`]).
//! * **Chargers** ([`ChargerSpec`]) hang under nodes: 1 or 3 phases, a [`PhaseMap`] (OCPP
//!   `ConnectorPhaseRotation`: the grid phase of each charger phase), minimum (6 A by
//!   default, [`DEFAULT_MIN_CURRENT_A`]) and maximum current, a setpoint resolution (a whole
//!   number of mA), and whether a three-phase charger can switch a session to 1p.
//! * Units: A per phase. A charger at setpoint `x` on `n` phases loads `x` on each grid phase
//!   it uses (a single-phase session only on the grid phase its L1 is wired to) and `x · n ·`
//!   [`NOMINAL_VOLTAGE_V`] on every power limit above it.
//!
//! # Capacity per tick
//!
//! For each node and each row (L1, L2, L3, power): the static limit, lowered by the tick's
//! limit. With a **fresh meter**: capacity = limit − non-EV load, where non-EV load =
//! measured − the managed chargers' own draw on that grid phase under that node (mapped
//! through the phase maps), clipped at 0 (openWB's method, load-balancing.md §2), and the
//! result clipped at 0. Clipping the non-EV load at 0 means neither export (PV) nor a meter
//! lagging the chargers' readings is ever counted as extra capacity. The power row uses the
//! non-EV load × 230 V summed over phases. A **stale meter** counts as fully loaded: every
//! row of that node has capacity 0, so every charger below it gets 0 A with
//! [`Reason::StaleMeter`] — the failsafe choice (§6; the opposite, evcc #22839, sent chargers
//! to full power). The control loop may instead replace a stale meter by a conservative
//! static tick limit; that is policy outside the solver.
//!
//! # Algorithm
//!
//! 1. **Bounds.** An active charger's range is [min ↑, min(max, tick cap) ↓] (↑/↓: rounded
//!    up/down to its resolution). If the tick cap leaves no setpoint ≥ min: 0 A
//!    ([`Reason::CapBelowMinimum`]).
//! 2. **Rank.** Key, first difference wins: priority class (higher first); urgency tier
//!    ⌊urgency / tier width⌋ (higher first; width [`DEFAULT_URGENCY_TIER`], settable);
//!    `waited` (higher first); exact urgency (higher first); charger index (lower first).
//!    Urgency = energy needed ÷ (time to departure × max power) ([`urgency`]), SAP's fleet
//!    ranking: 0 if unknown, capped at [`URGENCY_CAP`] (also for an overdue departure).
//!    Urgencies in the same tier count as equals, because the inputs (a driver's departure
//!    guess, an SoC estimate) are not more precise than that; among equals the one that has
//!    waited longer goes first. **Rotation:** the control loop counts, per paused session,
//!    the rotation periods it has waited (reset to 0 once charging); when capacity admits
//!    only some of a group of equals, those that waited a period are admitted ahead of those
//!    that charged, so paused vehicles take turns period by period, without flapping within
//!    a period (ties inside a period fall back to the index). Vehicles below a minimum SoC
//!    are given a higher class by the caller.
//! 3. **Admission** in rank order: a charger is admitted at its minimum if, at every node
//!    from its own up to the root, each row it loads still has room; otherwise it gets 0 A
//!    ([`Reason::Paused`], naming the nearest node and row lacking room). A three-phase
//!    session with `allow_1p` (and a charger that can switch) that does not fit on 3p is
//!    tried on 1p (its L1's grid phase). A charger under a stale meter is not tried. Later,
//!    smaller chargers may still fit where an earlier one did not (no head-of-line blocking).
//! 4. **Fill** (exact, event-driven water-filling): a level `t` rises from 0; each admitted
//!    charger's value is `max(min, t)` until it is frozen, either at its upper bound
//!    ([`Reason::AtMaximum`], or [`Reason::Cap`] when the tick cap set it) or when a row it
//!    loads saturates: then every unfrozen member of that row is frozen at its current value
//!    ([`Reason::Saturated`]). Events are processed in time order, ties: maximum, then
//!    saturation (lowest row index first), then starts. Equal weights for all admitted
//!    chargers, whatever their class (priority acts through admission).
//!    Cost: O(n·log n) sorting + O(Σ path lengths · 4) row updates + O(E · log R) heap work
//!    for R rows and E events.
//! 5. **Round down** each value to the charger's resolution (never below its minimum, which
//!    is on the grid). Then, in rank order, each charger that lost something to rounding gets
//!    one step back if every row on its path still has room and it stays within its bound:
//!    without this, 10,000 chargers at 1 A steps would leave up to ~5,000 A of a saturated
//!    root unused. Every constraint holds after each step.
//!
//! # Guarantees (checked by the property tests)
//!
//! * No row (node × phase, node power) is loaded beyond its capacity (within [`EPS`] plus a
//!   millionth of a step per charger from rounding float noise).
//! * Every setpoint is 0 or in [min, max ∧ cap], a multiple of the resolution: never in
//!   (0, min).
//! * Max-min fairness of the unrounded values among admitted chargers: each is at its upper
//!   bound, or the row named by its reason is saturated and no other member of that row
//!   above its own minimum has a larger value (the bottleneck condition, which characterises
//!   max-min fairness). Two chargers with identical parameters under the same node, both
//!   admitted, get equal unrounded values and setpoints within one step.
//! * Monotone in capacity: raising any limit (or lowering a measured load) changes the
//!   admission decisions only lexicographically upward in rank order — the first charger
//!   (by rank) whose decision changes goes from 0 to admitted (or from 1p to 3p); nobody is
//!   paused unless someone ranked above them was newly admitted. With unchanged admission,
//!   the sorted vector of unrounded values does not decrease lexicographically (leximin).
//!   (Neither the total current nor each single charger is monotone in general: a newly
//!   admitted three-phase charger can displace two single-phase ones.)
//! * Deterministic: the same input gives bit-identical output.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod error;
mod model;
mod solve;

pub use error::Error;
pub use model::{
    ChargerSpec, NodeSpec, Phase, PhaseMap, Site, DEFAULT_MIN_CURRENT_A, DEFAULT_URGENCY_TIER,
};
pub use solve::{
    urgency, Allocation, ChargerInput, ChargerResult, Limit, Meter, NodeInput, NodeResult, Reason,
    Scratch, EPS, URGENCY_CAP,
};

/// Nominal phase-to-neutral voltage for converting A to W: P = 230 V × I × phases
/// (load-balancing.md §1; the EU low-voltage nominal of EN 50160).
pub const NOMINAL_VOLTAGE_V: f64 = 230.0;
