//! Rough solve time of the Rust solver alone (no Python), for the three-level depot the
//! benchmark uses (grid → boards of 10 sub-boards → sub-boards of 100 chargers):
//!
//!     cargo run -p evgw-balancing --release --example timing [chargers...]
//!
//! Prints the best and median time per solve. `benches/bench_balancing.py` is the real
//! benchmark (through the binding, against the Python baseline).

use std::time::Instant;

use evgw_balancing::{
    Allocation, ChargerInput, ChargerSpec, Error, Meter, NodeInput, NodeSpec, Scratch, Site,
};

const ROTATIONS: [[u8; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

fn depot(n: usize) -> Result<(Site, Vec<NodeInput>, Vec<ChargerInput>), Error> {
    let subs = n.div_ceil(100).max(1);
    let boards = subs.div_ceil(10).max(1);
    let mut nodes = vec![NodeSpec {
        id: "grid".into(),
        parent: None,
        // Binding at the root: room for about 7.5 A per charger.
        max_current: [7.5 * n as f64; 3],
        max_power: f64::INFINITY,
    }];
    for b in 0..boards {
        nodes.push(NodeSpec {
            id: format!("board{b}"),
            parent: Some("grid".into()),
            max_current: [8_000.0; 3],
            max_power: 5_000_000.0,
        });
    }
    for s in 0..subs {
        nodes.push(NodeSpec {
            id: format!("sub{s}"),
            parent: Some(format!("board{}", s / 10)),
            max_current: [if s % 3 == 0 { 700.0 } else { 1_200.0 }; 3],
            max_power: f64::INFINITY,
        });
    }
    let mut chargers = Vec::with_capacity(n);
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        let phases = if i % 5 == 4 { 1 } else { 3 };
        chargers.push(ChargerSpec {
            id: format!("cp{i}"),
            node: format!("sub{}", i / 100),
            phases,
            phase_map: ROTATIONS.get(i % 6).copied().unwrap_or([0, 1, 2]),
            min_current: 6.0,
            max_current: if i % 2 == 0 { 16.0 } else { 32.0 },
            resolution: if i % 7 == 0 { 0.1 } else { 1.0 },
            can_switch_phases: phases == 3 && i % 3 == 0,
        });
        inputs.push(ChargerInput {
            active: i % 10 != 9,
            max_current: if i % 11 == 0 { 10.0 } else { f64::INFINITY },
            phases,
            allow_1p: i % 3 == 0,
            class: (i % 4 == 0) as i64,
            energy_needed_wh: (i % 50) as f64 * 1_000.0,
            departure_s: 3_600.0 + (i % 13) as f64 * 1_800.0,
            waited: (i % 3) as u32,
            measured: [5.0, 5.0, 5.0],
        });
    }
    let mut node_inputs = vec![NodeInput::default(); nodes.len()];
    if let Some(grid) = node_inputs.first_mut() {
        grid.meter = Meter::Fresh([7.0 * n as f64; 3]);
    }
    let site = Site::new(&nodes, &chargers)?;
    Ok((site, node_inputs, inputs))
}

fn main() -> Result<(), Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1_000, 10_000, 100_000]
    } else {
        sizes
    };
    for n in sizes {
        let (site, node_inputs, inputs) = depot(n)?;
        let repeats = (2_000_000 / n).clamp(5, 2_000);
        let mut times = Vec::with_capacity(repeats);
        let mut total = 0.0;
        // As a control loop solves: the scratch and the result are kept across ticks.
        let mut scratch = Scratch::new();
        let mut out = Allocation::new();
        for _ in 0..repeats {
            let start = Instant::now();
            site.solve_into(&node_inputs, &inputs, &mut scratch, &mut out)?;
            times.push(start.elapsed().as_nanos() as f64);
            total = out.chargers.iter().map(|r| r.setpoint).sum::<f64>();
        }
        times.sort_by(f64::total_cmp);
        let best = times.first().copied().unwrap_or(0.0);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        println!(
            "{n:>7} chargers: best {:>9.1} µs, median {:>9.1} µs ({repeats} solves, Σ setpoints {total:.1} A)",
            best / 1e3,
            median / 1e3
        );
    }
    Ok(())
}
