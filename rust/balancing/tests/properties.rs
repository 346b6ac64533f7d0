//! Property tests of the solver on random trees (1–4 levels) and fleets (1–200 chargers):
//! limits, bounds, max-min fairness, monotonicity in capacity, determinism. Each case is
//! built from a seed by a small PRNG, so proptest shrinks the sizes and the seed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use evgw_balancing::{
    Allocation, ChargerInput, ChargerSpec, Limit, Meter, NodeInput, NodeSpec, Reason, Site,
    NOMINAL_VOLTAGE_V,
};
use proptest::prelude::*;

/// splitmix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A multiple of `step` in [lo, hi].
    fn grid(&mut self, lo: f64, hi: f64, step: f64) -> f64 {
        let steps = ((hi - lo) / step).floor() as u64;
        lo + self.below(steps + 1) as f64 * step
    }
}

const ROTATIONS: [[u8; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];
const RESOLUTIONS: [f64; 4] = [1.0, 0.1, 0.5, 0.001];

#[derive(Clone, Debug)]
struct Case {
    nodes: Vec<NodeSpec>,
    chargers: Vec<ChargerSpec>,
    node_inputs: Vec<NodeInput>,
    inputs: Vec<ChargerInput>,
}

fn build(seed: u64, n_nodes: usize, n_chargers: usize) -> Case {
    let mut rng = Rng(seed);
    let mut nodes = Vec::new();
    let mut depth = Vec::new();
    for k in 0..n_nodes {
        let parent = if k == 0 {
            None
        } else {
            // Parents at depth < 3 keep the tree within 4 levels of nodes.
            let candidates: Vec<usize> = (0..k).filter(|&p| depth[p] < 3).collect();
            Some(candidates[rng.below(candidates.len() as u64) as usize])
        };
        depth.push(parent.map_or(0, |p| depth[p] + 1));
        let scale = if k == 0 { 400.0 } else { 120.0 };
        let mut limit = || {
            if rng.chance(10) {
                f64::INFINITY
            } else {
                rng.grid(0.0, scale, 0.5)
            }
        };
        let max_current = [limit(), limit(), limit()];
        let max_power = if rng.chance(30) {
            rng.grid(0.0, scale * 3.0 * NOMINAL_VOLTAGE_V, 230.0)
        } else {
            f64::INFINITY
        };
        nodes.push(NodeSpec {
            id: format!("n{k}"),
            parent: parent.map(|p| format!("n{p}")),
            max_current,
            max_power,
        });
    }
    let mut chargers = Vec::new();
    let mut inputs = Vec::new();
    while chargers.len() < n_chargers {
        let node = rng.below(n_nodes as u64) as usize;
        let phases = if rng.chance(60) { 3 } else { 1 };
        let resolution = RESOLUTIONS[rng.below(4) as usize];
        let min_current = if rng.chance(70) {
            6.0
        } else {
            rng.grid(5.0, 10.0, 0.25)
        };
        let max_current = rng.grid(min_current + 1.0, 32.0, 0.5);
        let spec = ChargerSpec {
            id: String::new(),
            node: format!("n{node}"),
            phases,
            phase_map: ROTATIONS[rng.below(6) as usize],
            min_current,
            max_current,
            resolution,
            can_switch_phases: phases == 3 && rng.chance(40),
        };
        let input = ChargerInput {
            active: rng.chance(85),
            max_current: if rng.chance(70) {
                f64::INFINITY
            } else {
                rng.grid(0.0, 32.0, 0.5)
            },
            phases: if phases == 3 && rng.chance(80) { 3 } else { 1 },
            allow_1p: rng.chance(50),
            class: rng.below(3) as i64,
            energy_needed_wh: if rng.chance(30) {
                f64::NAN
            } else {
                rng.grid(0.0, 60_000.0, 500.0)
            },
            departure_s: if rng.chance(30) {
                f64::NAN
            } else {
                rng.grid(-600.0, 36_000.0, 60.0)
            },
            waited: rng.below(3) as u32,
            measured: [
                rng.grid(0.0, 32.0, 0.5),
                rng.grid(0.0, 32.0, 0.5),
                rng.grid(0.0, 32.0, 0.5),
            ],
        };
        // Sometimes a twin: same spec and tick input under the same node.
        let copies = if rng.chance(25) { 2 } else { 1 };
        for _ in 0..copies {
            if chargers.len() < n_chargers {
                let mut spec = spec.clone();
                spec.id = format!("c{}", chargers.len());
                chargers.push(spec);
                inputs.push(input);
            }
        }
    }
    let node_inputs = (0..n_nodes)
        .map(|_| NodeInput {
            max_current: [0, 1, 2].map(|_| {
                if rng.chance(85) {
                    f64::INFINITY
                } else {
                    rng.grid(0.0, 150.0, 0.5)
                }
            }),
            max_power: f64::INFINITY,
            meter: match rng.below(10) {
                0 => Meter::Stale,
                1..=3 => Meter::Fresh([
                    rng.grid(-20.0, 300.0, 0.5),
                    rng.grid(-20.0, 300.0, 0.5),
                    rng.grid(-20.0, 300.0, 0.5),
                ]),
                _ => Meter::None,
            },
        })
        .collect();
    Case {
        nodes,
        chargers,
        node_inputs,
        inputs,
    }
}

/// An independent re-derivation of the rows' capacities (not the solver's code path).
fn capacities(case: &Case, site: &Site) -> Vec<[f64; 4]> {
    let n = case.nodes.len();
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let spec = &case.nodes[k];
        let input = &case.node_inputs[k];
        let mut cap = [
            spec.max_current[0].min(input.max_current[0]),
            spec.max_current[1].min(input.max_current[1]),
            spec.max_current[2].min(input.max_current[2]),
            spec.max_power.min(input.max_power),
        ];
        match input.meter {
            Meter::None => {}
            Meter::Stale => cap = [0.0; 4],
            Meter::Fresh(m) => {
                let mut managed = [0.0; 3];
                for (i, c) in case.chargers.iter().enumerate() {
                    if site.charger_path(i).contains(&k) {
                        for j in 0..3 {
                            managed[c.phase_map[j] as usize] += case.inputs[i].measured[j];
                        }
                    }
                }
                let base: Vec<f64> = (0..3).map(|p| (m[p] - managed[p]).max(0.0)).collect();
                for p in 0..3 {
                    cap[p] = (cap[p] - base[p]).max(0.0);
                }
                cap[3] = (cap[3] - NOMINAL_VOLTAGE_V * base.iter().sum::<f64>()).max(0.0);
            }
        }
        out.push(cap);
    }
    out
}

/// Grid phases (bit mask) and phase count the charger's result loads.
fn usage(case: &Case, i: usize, phases: u8) -> (u8, f64) {
    if phases == 3 {
        (0b111, 3.0)
    } else {
        (1 << case.chargers[i].phase_map[0], 1.0)
    }
}

fn loads(case: &Case, site: &Site, alloc: &Allocation, unrounded: bool) -> Vec<[f64; 4]> {
    let mut load = vec![[0.0; 4]; case.nodes.len()];
    for (i, r) in alloc.chargers.iter().enumerate() {
        let x = if unrounded { r.unrounded } else { r.setpoint };
        let (mask, n) = usage(case, i, r.phases);
        for k in site.charger_path(i) {
            for (p, slot) in load[k].iter_mut().take(3).enumerate() {
                if mask & (1 << p) != 0 {
                    *slot += x;
                }
            }
            load[k][3] += x * n * NOMINAL_VOLTAGE_V;
        }
    }
    load
}

fn admitted(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::AtMaximum | Reason::Cap | Reason::Saturated { .. }
    )
}

fn upper(case: &Case, site: &Site, i: usize) -> f64 {
    let (_, max) = site.charger_bounds(i).unwrap();
    let res = case.chargers[i].resolution;
    let cap = case.inputs[i].max_current;
    if cap.is_finite() {
        // The solver rounds the cap down with the same tolerance.
        let steps = (cap.min(max) / res + 1e-6).floor();
        (steps * res).min(max)
    } else {
        max
    }
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let site = Site::new(&case.nodes, &case.chargers).unwrap();
    let alloc = site.solve(&case.node_inputs, &case.inputs).unwrap();
    let again = site.solve(&case.node_inputs, &case.inputs).unwrap();
    prop_assert_eq!(&alloc, &again, "not deterministic");
    let n = case.chargers.len() as f64;
    let tol = 1e-6 * (1.0 + n);
    let cap = capacities(case, &site);

    // Limits, rounded and unrounded.
    for unrounded in [false, true] {
        let load = loads(case, &site, &alloc, unrounded);
        for (k, (l, c)) in load.iter().zip(&cap).enumerate() {
            for s in 0..4 {
                let t = if s == 3 { tol * NOMINAL_VOLTAGE_V } else { tol };
                prop_assert!(
                    l[s] <= c[s] + t,
                    "node {} slot {} load {} > capacity {} (unrounded {})",
                    k,
                    s,
                    l[s],
                    c[s],
                    unrounded
                );
            }
        }
    }

    // Bounds: 0 when not admitted, otherwise within [min, upper] on the resolution grid.
    for (i, r) in alloc.chargers.iter().enumerate() {
        let (min, _) = site.charger_bounds(i).unwrap();
        let hi = upper(case, &site, i);
        let res = case.chargers[i].resolution;
        if admitted(r.reason) {
            prop_assert!(case.inputs[i].active);
            prop_assert!(r.setpoint >= min - 1e-9, "charger {} below min: {:?}", i, r);
            prop_assert!(r.setpoint <= hi + 1e-9, "charger {} above max: {:?}", i, r);
            prop_assert!(r.unrounded >= min - 1e-9 && r.unrounded <= hi + 1e-9);
            let steps = r.setpoint / res;
            prop_assert!((steps - steps.round()).abs() < 1e-6, "off grid: {:?}", r);
            prop_assert!(r.setpoint <= r.unrounded + res + 1e-9);
        } else {
            prop_assert_eq!(r.setpoint, 0.0);
        }
        match r.reason {
            Reason::Inactive => prop_assert!(!case.inputs[i].active),
            Reason::CapBelowMinimum => prop_assert!(hi < min),
            Reason::StaleMeter { node } => {
                prop_assert!(site.charger_path(i).contains(&node));
                prop_assert_eq!(case.node_inputs[node].meter, Meter::Stale);
            }
            Reason::Paused { node, .. } => prop_assert!(site.charger_path(i).contains(&node)),
            Reason::AtMaximum | Reason::Cap => {
                prop_assert!((r.unrounded - hi).abs() < 1e-9, "not at its bound: {:?}", r)
            }
            Reason::Saturated { .. } => {}
        }
    }

    // Max-min fairness (bottleneck condition) on the unrounded values.
    let load = loads(case, &site, &alloc, true);
    for (i, r) in alloc.chargers.iter().enumerate() {
        let Reason::Saturated { node, limit } = r.reason else {
            continue;
        };
        prop_assert!(site.charger_path(i).contains(&node));
        let slot = limit.slot();
        let t = if slot == 3 {
            tol * NOMINAL_VOLTAGE_V
        } else {
            tol
        };
        prop_assert!(
            load[node][slot] >= cap[node][slot] - t,
            "charger {} says node {} slot {} saturated, load {} < capacity {}",
            i,
            node,
            slot,
            load[node][slot],
            cap[node][slot]
        );
        let (mask, _) = usage(case, i, r.phases);
        if let Limit::Phase(p) = limit {
            prop_assert!(
                mask & (1 << p.index()) != 0,
                "charger {} not on that phase",
                i
            );
        }
        for (j, other) in alloc.chargers.iter().enumerate() {
            if j == i || !admitted(other.reason) || !site.charger_path(j).contains(&node) {
                continue;
            }
            let (mask_j, _) = usage(case, j, other.phases);
            if slot < 3 && mask_j & (1 << slot) == 0 {
                continue;
            }
            let (min_j, _) = site.charger_bounds(j).unwrap();
            prop_assert!(
                other.unrounded <= r.unrounded + 1e-6 || other.unrounded <= min_j + 1e-9,
                "charger {} ({}) could rise at the expense of {} ({}) in node {} slot {}",
                i,
                r.unrounded,
                j,
                other.unrounded,
                node,
                slot
            );
        }
    }

    // Twins (same spec, same tick input, same node), both admitted: equal.
    let keys: Vec<String> = case.inputs.iter().map(|x| format!("{x:?}")).collect();
    for i in 0..case.chargers.len() {
        for j in i + 1..case.chargers.len() {
            let (a, b) = (&case.chargers[i], &case.chargers[j]);
            let same_spec = a.node == b.node
                && a.phases == b.phases
                && a.phase_map == b.phase_map
                && a.min_current == b.min_current
                && a.max_current == b.max_current
                && a.resolution == b.resolution
                && a.can_switch_phases == b.can_switch_phases;
            let same_input = keys[i] == keys[j];
            let (ri, rj) = (&alloc.chargers[i], &alloc.chargers[j]);
            let both = admitted(ri.reason) && admitted(rj.reason);
            if same_spec && same_input && both && ri.phases == rj.phases {
                prop_assert!((ri.unrounded - rj.unrounded).abs() < 1e-9);
                prop_assert!((ri.setpoint - rj.setpoint).abs() <= a.resolution + 1e-9);
            }
        }
    }
    Ok(())
}

/// Admission decision: 0 not admitted, 1 admitted after a 1p fallback, 2 admitted as asked.
fn decision(case: &Case, i: usize, alloc: &Allocation) -> u8 {
    let r = &alloc.chargers[i];
    if !admitted(r.reason) {
        0
    } else if r.phases == 1 && case.chargers[i].phases == 3 && case.inputs[i].phases == 3 {
        1
    } else {
        2
    }
}

fn check_monotone(case: &Case, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed ^ 0x5EED);
    let mut bigger = case.clone();
    let k = rng.below(case.nodes.len() as u64) as usize;
    match rng.below(4) {
        0 => {
            let p = rng.below(3) as usize;
            bigger.nodes[k].max_current[p] += rng.grid(0.5, 60.0, 0.5);
        }
        1 => bigger.nodes[k].max_power += rng.grid(230.0, 30_000.0, 230.0),
        2 => bigger.node_inputs[k].max_current = [f64::INFINITY; 3],
        _ => {
            if let Meter::Fresh(m) = bigger.node_inputs[k].meter {
                bigger.node_inputs[k].meter = Meter::Fresh(m.map(|v| v - rng.grid(0.0, 40.0, 0.5)));
            } else {
                bigger.nodes[0].max_current = [f64::INFINITY; 3];
            }
        }
    }
    let site_a = Site::new(&case.nodes, &case.chargers).unwrap();
    let site_b = Site::new(&bigger.nodes, &bigger.chargers).unwrap();
    let a = site_a.solve(&case.node_inputs, &case.inputs).unwrap();
    let b = site_b.solve(&bigger.node_inputs, &bigger.inputs).unwrap();

    // Rank does not depend on capacity.
    let mut order: Vec<usize> = (0..case.chargers.len())
        .filter(|&i| a.chargers[i].rank != u32::MAX)
        .collect();
    order.sort_by_key(|&i| a.chargers[i].rank);
    for &i in &order {
        prop_assert_eq!(a.chargers[i].rank, b.chargers[i].rank);
    }
    // Admission: lexicographically non-decreasing in rank order.
    let da: Vec<u8> = order.iter().map(|&i| decision(case, i, &a)).collect();
    let db: Vec<u8> = order.iter().map(|&i| decision(&bigger, i, &b)).collect();
    if let Some(pos) = da.iter().zip(&db).position(|(x, y)| x != y) {
        prop_assert!(
            db[pos] > da[pos],
            "more capacity lowered the admission of charger {} (rank {}): {} -> {}",
            order[pos],
            pos,
            da[pos],
            db[pos]
        );
        return Ok(());
    }
    // Same admission: the sorted unrounded values do not decrease (leximin).
    let mut va: Vec<f64> = order.iter().map(|&i| a.chargers[i].unrounded).collect();
    let mut vb: Vec<f64> = order.iter().map(|&i| b.chargers[i].unrounded).collect();
    va.sort_by(f64::total_cmp);
    vb.sort_by(f64::total_cmp);
    let tol = 1e-6;
    if let Some(pos) = va.iter().zip(&vb).position(|(x, y)| (x - y).abs() > tol) {
        prop_assert!(
            vb[pos] > va[pos],
            "more capacity lowered the leximin vector at {}: {} -> {}",
            pos,
            va[pos],
            vb[pos]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn solver_properties(seed in any::<u64>(), n_nodes in 1usize..=12, n_chargers in 1usize..=200) {
        check(&build(seed, n_nodes, n_chargers))?;
    }

    #[test]
    fn monotone_in_capacity(seed in any::<u64>(), n_nodes in 1usize..=12, n_chargers in 1usize..=200) {
        check_monotone(&build(seed, n_nodes, n_chargers), seed)?;
    }
}

#[test]
fn generator_covers_every_reason() {
    let mut counts = std::collections::BTreeMap::new();
    let mut fallback = 0;
    for seed in 0..300u64 {
        let case = build(
            seed,
            1 + (seed % 12) as usize,
            1 + (seed * 7 % 200) as usize,
        );
        let site = Site::new(&case.nodes, &case.chargers).unwrap();
        let alloc = site.solve(&case.node_inputs, &case.inputs).unwrap();
        for (i, r) in alloc.chargers.iter().enumerate() {
            let key = match r.reason {
                Reason::Saturated {
                    limit: Limit::Power,
                    ..
                } => 7,
                Reason::Paused {
                    limit: Limit::Power,
                    ..
                } => 8,
                other => other.code(),
            };
            *counts.entry(key).or_insert(0u32) += 1;
            if decision(&case, i, &alloc) == 1 {
                fallback += 1;
            }
        }
    }
    println!("reason counts {counts:?}, 1p fallbacks {fallback}");
    for code in 0..=8u8 {
        assert!(
            counts.get(&code).copied().unwrap_or(0) > 0,
            "reason {code} never produced"
        );
    }
    assert!(fallback > 0);
}
