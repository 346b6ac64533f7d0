//! Hand-worked cases: each result checked against arithmetic done by hand, and every bad
//! input refused with a message naming the culprit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use evgw_balancing::{
    ChargerInput, ChargerSpec, Error, Limit, Meter, NodeInput, NodeSpec, Phase, PhaseMap, Reason,
    Site,
};

fn node(id: &str, parent: Option<&str>, amps: f64) -> NodeSpec {
    NodeSpec {
        id: id.into(),
        parent: parent.map(Into::into),
        max_current: [amps; 3],
        max_power: f64::INFINITY,
    }
}

fn active() -> ChargerInput {
    ChargerInput {
        active: true,
        ..ChargerInput::default()
    }
}

#[test]
fn equal_share_then_remainder_in_rank_order() {
    let nodes = [node("grid", None, 32.0)];
    let chargers: Vec<_> = (0..3)
        .map(|i| ChargerSpec::three_phase(&format!("c{i}"), "grid", 16.0))
        .collect();
    let site = Site::new(&nodes, &chargers).unwrap();
    let out = site.solve(&[], &[active(); 3]).unwrap();
    // 32 / 3 = 10.67 each, rounded down to 10; the 2 A left go to the first two ranked.
    let setpoints: Vec<f64> = out.chargers.iter().map(|r| r.setpoint).collect();
    assert_eq!(setpoints, [11.0, 11.0, 10.0]);
    for r in &out.chargers {
        assert!((r.unrounded - 32.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            r.reason,
            Reason::Saturated {
                node: 0,
                limit: Limit::Phase(Phase::L1)
            }
        );
    }
    assert_eq!(out.nodes[0].load, [32.0, 32.0, 32.0, 32.0 * 3.0 * 230.0]);
}

#[test]
fn single_phase_chargers_count_on_their_own_phase() {
    let nodes = [NodeSpec {
        max_current: [20.0, 40.0, 40.0],
        ..node("grid", None, 0.0)
    }];
    let one = |id: &str, rotation: &str| ChargerSpec {
        phases: 1,
        phase_map: PhaseMap::from_rotation(rotation).unwrap().as_array(),
        ..ChargerSpec::three_phase(id, "grid", 32.0)
    };
    let chargers = [one("a", "R"), one("b", "R"), one("c", "S"), one("d", "TRS")];
    let site = Site::new(&nodes, &chargers).unwrap();
    let out = site.solve(&[], &[active(); 4]).unwrap();
    let setpoints: Vec<f64> = out.chargers.iter().map(|r| r.setpoint).collect();
    // a, b share L1 (20 A); c alone on L2 and d alone on L3 run to their maximum.
    assert_eq!(setpoints, [10.0, 10.0, 32.0, 32.0]);
    assert_eq!(out.chargers[2].reason, Reason::AtMaximum);
}

#[test]
fn priority_admits_first_and_rotation_follows_waiting() {
    // Room for two minimums (2 × 6 A of 13 A); three equal chargers of which one is urgent.
    let nodes = [node("grid", None, 13.0)];
    let chargers: Vec<_> = (0..3)
        .map(|i| ChargerSpec::three_phase(&format!("c{i}"), "grid", 32.0))
        .collect();
    let site = Site::new(&nodes, &chargers).unwrap();
    let mut inputs = [active(); 3];
    inputs[2].class = 1;
    let out = site.solve(&[], &inputs).unwrap();
    assert!(out.chargers[2].setpoint >= 6.0);
    assert!(out.chargers[0].setpoint >= 6.0);
    assert_eq!(out.chargers[1].setpoint, 0.0);
    assert_eq!(
        out.chargers[1].reason,
        Reason::Paused {
            node: 0,
            limit: Limit::Phase(Phase::L1)
        }
    );
    assert_eq!(
        site.describe(out.chargers[1].reason),
        "paused: no headroom at node \"grid\" phase L1"
    );
    // Next period c1 has waited one period and goes ahead of c0.
    inputs[1].waited = 1;
    let out = site.solve(&[], &inputs).unwrap();
    assert_eq!(out.chargers[0].setpoint, 0.0);
    assert!(out.chargers[1].setpoint >= 6.0);
}

#[test]
fn urgency_orders_within_a_class() {
    let nodes = [node("grid", None, 6.0)];
    let chargers: Vec<_> = (0..2)
        .map(|i| ChargerSpec::three_phase(&format!("c{i}"), "grid", 16.0))
        .collect();
    let site = Site::new(&nodes, &chargers).unwrap();
    let mut inputs = [active(); 2];
    // c1 needs 20 kWh in 2 h at 11 kW max: urgency 0.9; c0 needs 5 kWh in 8 h.
    inputs[0].energy_needed_wh = 5_000.0;
    inputs[0].departure_s = 8.0 * 3600.0;
    inputs[1].energy_needed_wh = 20_000.0;
    inputs[1].departure_s = 2.0 * 3600.0;
    let out = site.solve(&[], &inputs).unwrap();
    assert_eq!(out.chargers[1].setpoint, 6.0);
    assert_eq!(out.chargers[0].setpoint, 0.0);
    assert!((out.chargers[1].urgency - 20_000.0 / (2.0 * 16.0 * 3.0 * 230.0)).abs() < 1e-12);
}

#[test]
fn meter_headroom_adds_back_our_own_draw_and_stale_pauses() {
    let nodes = [node("grid", None, 63.0), node("board", Some("grid"), 40.0)];
    let chargers = [ChargerSpec::three_phase("c", "board", 32.0)];
    let site = Site::new(&nodes, &chargers).unwrap();
    let mut input = active();
    input.measured = [10.0; 3];
    // Site meter 50 A of which 10 A is ours: 40 A other load, 23 A left for the charger.
    let meters = [
        NodeInput {
            meter: Meter::Fresh([50.0; 3]),
            ..NodeInput::default()
        },
        NodeInput::default(),
    ];
    let out = site.solve(&meters, &[input]).unwrap();
    assert_eq!(out.chargers[0].setpoint, 23.0);
    assert_eq!(out.nodes[0].capacity[..3], [23.0; 3]);
    // Other load alone beyond the limit: no headroom, paused.
    let heavy = [
        NodeInput {
            meter: Meter::Fresh([80.0; 3]),
            ..NodeInput::default()
        },
        NodeInput::default(),
    ];
    let out = site.solve(&heavy, &[input]).unwrap();
    assert_eq!(out.chargers[0].setpoint, 0.0);
    // A stale meter on the board pauses its chargers, naming it.
    let stale = [
        NodeInput::default(),
        NodeInput {
            meter: Meter::Stale,
            ..NodeInput::default()
        },
    ];
    let out = site.solve(&stale, &[input]).unwrap();
    assert_eq!(out.chargers[0].setpoint, 0.0);
    assert_eq!(out.chargers[0].reason, Reason::StaleMeter { node: 1 });
    assert!(site
        .describe(out.chargers[0].reason)
        .contains("\"board\" is stale"));
}

#[test]
fn power_limit_and_one_phase_fallback() {
    // 11 A on L3 cannot take a 3p minimum next to another 6 A; the switchable one goes 1p.
    let nodes = [NodeSpec {
        max_current: [32.0, 32.0, 11.0],
        max_power: 9_000.0,
        ..node("grid", None, 0.0)
    }];
    let chargers = [
        ChargerSpec::three_phase("a", "grid", 16.0),
        ChargerSpec {
            can_switch_phases: true,
            ..ChargerSpec::three_phase("b", "grid", 16.0)
        },
    ];
    let site = Site::new(&nodes, &chargers).unwrap();
    let mut inputs = [active(); 2];
    inputs[1].allow_1p = true;
    let out = site.solve(&[], &inputs).unwrap();
    assert_eq!(out.chargers[1].phases, 1);
    // a: 3 × 230 × x, b: 230 × y; power 9 kW; L3 only a. Water level t: 920 t = 9000 →
    // t = 9.78 A, power saturates first (L3 would at 11 A).
    for r in &out.chargers {
        assert_eq!(
            r.reason,
            Reason::Saturated {
                node: 0,
                limit: Limit::Power
            }
        );
        assert!((r.unrounded - 9_000.0 / 920.0).abs() < 1e-9);
    }
    assert!(out.nodes[0].load[3] <= 9_000.0);
}

#[test]
fn setpoints_never_between_zero_and_minimum() {
    let nodes = [node("grid", None, 100.0)];
    let chargers = [ChargerSpec {
        min_current: 6.05,
        resolution: 0.1,
        ..ChargerSpec::three_phase("c", "grid", 7.0)
    }];
    let site = Site::new(&nodes, &chargers).unwrap();
    assert_eq!(site.charger_bounds(0), Some((6.1, 7.0)));
    let mut input = active();
    input.max_current = 6.0;
    let out = site.solve(&[], &[input]).unwrap();
    assert_eq!(out.chargers[0].setpoint, 0.0);
    assert_eq!(out.chargers[0].reason, Reason::CapBelowMinimum);
    input.max_current = 6.15;
    let out = site.solve(&[], &[input]).unwrap();
    assert_eq!(out.chargers[0].setpoint, 6.1);
    assert_eq!(out.chargers[0].reason, Reason::Cap);
}

fn err(nodes: &[NodeSpec], chargers: &[ChargerSpec]) -> String {
    Site::new(nodes, chargers).unwrap_err().to_string()
}

#[test]
fn bad_models_are_refused_by_name() {
    let grid = node("grid", None, 63.0);
    let c = ChargerSpec::three_phase("cp1", "grid", 32.0);
    assert_eq!(
        err(&[grid.clone(), node("b", Some("nowhere"), 1.0)], &[]),
        "node \"b\": unknown parent node \"nowhere\""
    );
    assert!(
        err(&[grid.clone(), node("x", None, 1.0)], &[]).starts_with("node \"x\": a second root")
    );
    let cyc = [
        grid.clone(),
        node("a", Some("b"), 1.0),
        node("b", Some("a"), 1.0),
    ];
    assert_eq!(
        err(&cyc, &[]),
        "node \"a\": is on a cycle of parents (not connected to the root)"
    );
    assert!(err(&[node("a", Some("a"), 1.0)], &[]).contains("no root"));
    assert!(err(&[], &[]).contains("no nodes"));
    assert!(err(&[grid.clone(), grid.clone()], &[]).contains("duplicate node id"));
    let nan = NodeSpec {
        max_current: [1.0, f64::NAN, 1.0],
        ..grid.clone()
    };
    assert_eq!(
        err(&[nan], &[]),
        "node \"grid\": max_current on L2 must be a number >= 0 (infinity = no limit), got NaN"
    );
    let neg = NodeSpec {
        max_power: -1.0,
        ..grid.clone()
    };
    assert!(err(&[neg], &[]).contains("max_power"));
    let g = [grid];
    let bad = |spec: ChargerSpec| err(&g, &[spec]);
    assert_eq!(
        bad(ChargerSpec {
            phase_map: [0, 0, 1],
            ..c.clone()
        }),
        "charger \"cp1\": phase map [0, 0, 1] is not a permutation of the grid phases 0, 1, 2"
    );
    assert!(bad(ChargerSpec {
        min_current: 10.0,
        max_current: 8.0,
        ..c.clone()
    })
    .contains("max_current must be finite and >= min_current"));
    assert!(bad(ChargerSpec {
        min_current: 0.0,
        ..c.clone()
    })
    .contains("min_current"));
    assert!(bad(ChargerSpec {
        phases: 2,
        ..c.clone()
    })
    .contains("phases must be 1 or 3"));
    assert!(bad(ChargerSpec {
        resolution: 0.0004,
        ..c.clone()
    })
    .contains("resolution"));
    assert!(bad(ChargerSpec {
        min_current: 6.2,
        max_current: 6.8,
        ..c.clone()
    })
    .contains("no setpoint at resolution 1 A"));
    assert!(bad(ChargerSpec {
        node: "attic".into(),
        ..c.clone()
    })
    .contains("unknown node \"attic\""));
    assert!(bad(ChargerSpec {
        phases: 1,
        can_switch_phases: true,
        ..c.clone()
    })
    .contains("only a three-phase charger"));
    assert!(err(&g, &[c.clone(), c]).contains("duplicate charger id"));
}

#[test]
fn bad_tick_inputs_are_refused_by_name() {
    let nodes = [node("grid", None, 63.0)];
    let site = Site::new(&nodes, &[ChargerSpec::three_phase("cp1", "grid", 32.0)]).unwrap();
    let solve_err = |n: &[NodeInput], c: &[ChargerInput]| site.solve(n, c).unwrap_err();
    assert_eq!(
        solve_err(&[], &[]),
        Error::Site("0 charger inputs for 1 chargers".into())
    );
    let mut input = active();
    input.max_current = f64::NAN;
    assert!(solve_err(&[], &[input])
        .to_string()
        .starts_with("charger \"cp1\": tick max_current"));
    let mut input = active();
    input.measured = [0.0, -1.0, 0.0];
    assert!(solve_err(&[], &[input])
        .to_string()
        .contains("measured current on its L2"));
    let mut input = active();
    input.phases = 2;
    assert!(solve_err(&[], &[input]).to_string().contains("tick phases"));
    let meter = NodeInput {
        meter: Meter::Fresh([0.0, f64::INFINITY, 0.0]),
        ..NodeInput::default()
    };
    assert!(solve_err(&[meter], &[active()])
        .to_string()
        .starts_with("node \"grid\": meter"));
    assert!(solve_err(&[NodeInput::default(); 2], &[active()])
        .to_string()
        .contains("2 node inputs for 1 nodes"));
}

#[test]
fn phase_map_spellings() {
    assert_eq!(PhaseMap::from_rotation("RST"), Some(PhaseMap::IDENTITY));
    assert_eq!(
        PhaseMap::from_rotation("TSR").unwrap().as_array(),
        [2, 1, 0]
    );
    assert_eq!(PhaseMap::from_rotation("S").unwrap().as_array(), [1, 2, 0]);
    assert_eq!(PhaseMap::from_rotation("RRS"), None);
    assert_eq!(PhaseMap::from_rotation("XYZ"), None);
    assert_eq!(PhaseMap::from_rotation(""), None);
    assert_eq!(PhaseMap::from_rotation("STR").unwrap().rotation(), "STR");
    assert_eq!(
        PhaseMap::from_rotation("TRS")
            .unwrap()
            .grid_phase(Phase::L1),
        Phase::L3
    );
}
