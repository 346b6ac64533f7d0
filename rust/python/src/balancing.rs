//! `BalancingSolver`: the load-balancing solver of `evgw_balancing`, shaped for a per-tick
//! call from Python with 10,000 chargers. The tree and the charger table are built once;
//! each tick passes flat per-charger columns (lists, tuples, or any buffer of float64 /
//! int64 such as `array.array('d')`) and gets flat lists back.

use evgw_balancing::{
    ChargerInput, ChargerSpec, Limit, Meter, NodeInput, NodeSpec, Phase, PhaseMap, Reason, Site,
};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

fn value_error(error: evgw_balancing::Error) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// A column of `n` floats: None → `default` everywhere. Lists and tuples are read item by
/// item through the fast paths; anything else must be a float64 buffer or a sequence.
fn f64_column(
    column: Option<&Bound<'_, PyAny>>,
    n: usize,
    default: f64,
    name: &str,
) -> PyResult<Vec<f64>> {
    let Some(obj) = column.filter(|c| !c.is_none()) else {
        return Ok(vec![default; n]);
    };
    let values: Vec<f64> = if let Ok(list) = obj.cast::<PyList>() {
        list.iter()
            .map(|item| item.extract::<f64>())
            .collect::<PyResult<_>>()?
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple
            .iter()
            .map(|item| item.extract::<f64>())
            .collect::<PyResult<_>>()?
    } else if let Ok(buffer) = PyBuffer::<f64>::get(obj) {
        buffer.to_vec(obj.py())?
    } else {
        obj.extract()?
    };
    if values.len() != n {
        return Err(PyValueError::new_err(format!(
            "{name}: {} values for {n}",
            values.len()
        )));
    }
    Ok(values)
}

/// A column of `n` integers (bools count as 0/1): None → `default` everywhere.
fn i64_column(
    column: Option<&Bound<'_, PyAny>>,
    n: usize,
    default: i64,
    name: &str,
) -> PyResult<Vec<i64>> {
    let Some(obj) = column.filter(|c| !c.is_none()) else {
        return Ok(vec![default; n]);
    };
    let values: Vec<i64> = if let Ok(list) = obj.cast::<PyList>() {
        list.iter()
            .map(|item| item.extract::<i64>())
            .collect::<PyResult<_>>()?
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple
            .iter()
            .map(|item| item.extract::<i64>())
            .collect::<PyResult<_>>()?
    } else if let Ok(buffer) = PyBuffer::<i64>::get(obj) {
        buffer.to_vec(obj.py())?
    } else if let Ok(buffer) = PyBuffer::<u8>::get(obj) {
        buffer
            .to_vec(obj.py())?
            .into_iter()
            .map(i64::from)
            .collect()
    } else {
        obj.extract()?
    };
    if values.len() != n {
        return Err(PyValueError::new_err(format!(
            "{name}: {} values for {n}",
            values.len()
        )));
    }
    Ok(values)
}

fn limit_code(limit: Option<Limit>) -> i64 {
    limit.map_or(-1, |l| l.slot() as i64)
}

fn three(v: &[f64], i: usize) -> [f64; 3] {
    let at = |j: usize| v.get(i * 3 + j).copied().unwrap_or(0.0);
    [at(0), at(1), at(2)]
}

/// (id, parent id or None, (A on L1, L2, L3), max power W).
type NodeRow = (String, Option<String>, (f64, f64, f64), f64);
/// (id, node id, phases, rotation, min A, max A, resolution A, can switch 1p/3p).
type ChargerRow = (String, String, u8, String, f64, f64, f64, bool);

/// The site solver: the tree and the chargers, compiled once.
#[pyclass(module = "gateway._core", frozen)]
pub struct BalancingSolver {
    site: Site,
}

/// One tick's columns, converted.
struct Tick {
    nodes: Vec<NodeInput>,
    chargers: Vec<ChargerInput>,
}

impl BalancingSolver {
    #[allow(clippy::too_many_arguments)]
    fn tick(
        &self,
        active: &Bound<'_, PyAny>,
        max_current: Option<&Bound<'_, PyAny>>,
        phases: Option<&Bound<'_, PyAny>>,
        allow_1p: Option<&Bound<'_, PyAny>>,
        priority: Option<&Bound<'_, PyAny>>,
        energy_needed_wh: Option<&Bound<'_, PyAny>>,
        departure_s: Option<&Bound<'_, PyAny>>,
        waited: Option<&Bound<'_, PyAny>>,
        measured: Option<&Bound<'_, PyAny>>,
        node_max_current: Option<&Bound<'_, PyAny>>,
        node_max_power: Option<&Bound<'_, PyAny>>,
        node_meter: Option<&Bound<'_, PyAny>>,
        node_meter_state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Tick> {
        let n = self.site.charger_count();
        let m = self.site.node_count();
        let active = i64_column(Some(active), n, 0, "active")?;
        let max_current = f64_column(max_current, n, f64::INFINITY, "max_current")?;
        let phases = i64_column(phases, n, 3, "phases")?;
        let allow_1p = i64_column(allow_1p, n, 0, "allow_1p")?;
        let priority = i64_column(priority, n, 0, "priority")?;
        let energy = f64_column(energy_needed_wh, n, f64::NAN, "energy_needed_wh")?;
        let departure = f64_column(departure_s, n, f64::NAN, "departure_s")?;
        let waited = i64_column(waited, n, 0, "waited")?;
        let measured = f64_column(measured, 3 * n, 0.0, "measured")?;
        let mut chargers = Vec::with_capacity(n);
        for i in 0..n {
            let at = |v: &[i64], default: i64| v.get(i).copied().unwrap_or(default);
            let atf = |v: &[f64], default: f64| v.get(i).copied().unwrap_or(default);
            let phase_count = at(&phases, 3);
            // Out-of-range values map to ones the solver refuses with a named error.
            chargers.push(ChargerInput {
                active: at(&active, 0) != 0,
                max_current: atf(&max_current, f64::INFINITY),
                phases: u8::try_from(phase_count).unwrap_or(0),
                allow_1p: at(&allow_1p, 0) != 0,
                class: at(&priority, 0),
                energy_needed_wh: atf(&energy, f64::NAN),
                departure_s: atf(&departure, f64::NAN),
                waited: u32::try_from(at(&waited, 0).max(0)).unwrap_or(u32::MAX),
                measured: three(&measured, i),
            });
        }
        let any_node_input = [
            node_max_current,
            node_max_power,
            node_meter,
            node_meter_state,
        ]
        .iter()
        .any(|c| c.is_some_and(|c| !c.is_none()));
        let mut nodes = Vec::new();
        if any_node_input {
            let limits = f64_column(node_max_current, 3 * m, f64::INFINITY, "node_max_current")?;
            let power = f64_column(node_max_power, m, f64::INFINITY, "node_max_power")?;
            let meter = f64_column(node_meter, 3 * m, 0.0, "node_meter")?;
            let state = i64_column(node_meter_state, m, 0, "node_meter_state")?;
            for k in 0..m {
                let meter = match state.get(k).copied().unwrap_or(0) {
                    0 => Meter::None,
                    1 => Meter::Fresh(three(&meter, k)),
                    2 => Meter::Stale,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "node_meter_state: node {:?}: {other} is not 0 (none), 1 (fresh) \
                             or 2 (stale)",
                            self.site.node_id(k).unwrap_or("?")
                        )))
                    }
                };
                nodes.push(NodeInput {
                    max_current: three(&limits, k),
                    max_power: power.get(k).copied().unwrap_or(f64::INFINITY),
                    meter,
                });
            }
        }
        Ok(Tick { nodes, chargers })
    }
}

#[pymethods]
impl BalancingSolver {
    /// `nodes`: (id, parent id or None, (A on L1, L2, L3), max power W); `chargers`: (id,
    /// node id, phases 1|3, rotation "RST".."TSR" or "R"/"S"/"T", min A, max A, resolution
    /// A, can switch 1p/3p). `inf` = no limit.
    #[new]
    #[pyo3(signature = (nodes, chargers, urgency_tier = evgw_balancing::DEFAULT_URGENCY_TIER))]
    fn new(nodes: Vec<NodeRow>, chargers: Vec<ChargerRow>, urgency_tier: f64) -> PyResult<Self> {
        let nodes: Vec<NodeSpec> = nodes
            .into_iter()
            .map(|(id, parent, (a, b, c), max_power)| NodeSpec {
                id,
                parent,
                max_current: [a, b, c],
                max_power,
            })
            .collect();
        let mut specs = Vec::with_capacity(chargers.len());
        for (id, node, phases, rotation, min_current, max_current, resolution, can_switch) in
            chargers
        {
            let Some(map) = PhaseMap::from_rotation(&rotation) else {
                return Err(PyValueError::new_err(format!(
                    "charger {id:?}: rotation {rotation:?} is not one of RST, RTS, SRT, STR, \
                     TRS, TSR (or R, S, T for the grid phase of a single-phase charger's L1)"
                )));
            };
            specs.push(ChargerSpec {
                id,
                node,
                phases,
                phase_map: map.as_array(),
                min_current,
                max_current,
                resolution,
                can_switch_phases: can_switch,
            });
        }
        let mut site = Site::new(&nodes, &specs).map_err(value_error)?;
        site.set_urgency_tier(urgency_tier).map_err(value_error)?;
        Ok(Self { site })
    }

    /// Node ids, in index order.
    #[getter]
    fn node_ids(&self) -> Vec<String> {
        (0..self.site.node_count())
            .filter_map(|k| self.site.node_id(k).map(str::to_owned))
            .collect()
    }

    /// Charger ids, in index order.
    #[getter]
    fn charger_ids(&self) -> Vec<String> {
        (0..self.site.charger_count())
            .filter_map(|i| self.site.charger_id(i).map(str::to_owned))
            .collect()
    }

    /// One tick. Returns (setpoints, phases, reason codes, reason nodes, reason limits).
    #[pyo3(signature = (
        active, *, max_current = None, phases = None, allow_1p = None, priority = None,
        energy_needed_wh = None, departure_s = None, waited = None, measured = None,
        node_max_current = None, node_max_power = None, node_meter = None,
        node_meter_state = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn solve<'py>(
        &self,
        py: Python<'py>,
        active: &Bound<'py, PyAny>,
        max_current: Option<&Bound<'py, PyAny>>,
        phases: Option<&Bound<'py, PyAny>>,
        allow_1p: Option<&Bound<'py, PyAny>>,
        priority: Option<&Bound<'py, PyAny>>,
        energy_needed_wh: Option<&Bound<'py, PyAny>>,
        departure_s: Option<&Bound<'py, PyAny>>,
        waited: Option<&Bound<'py, PyAny>>,
        measured: Option<&Bound<'py, PyAny>>,
        node_max_current: Option<&Bound<'py, PyAny>>,
        node_max_power: Option<&Bound<'py, PyAny>>,
        node_meter: Option<&Bound<'py, PyAny>>,
        node_meter_state: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let tick = self.tick(
            active,
            max_current,
            phases,
            allow_1p,
            priority,
            energy_needed_wh,
            departure_s,
            waited,
            measured,
            node_max_current,
            node_max_power,
            node_meter,
            node_meter_state,
        )?;
        let site = &self.site;
        // The solve itself does not touch Python objects: let other threads run.
        let out = py
            .detach(|| site.solve(&tick.nodes, &tick.chargers))
            .map_err(value_error)?;
        let r = &out.chargers;
        (
            PyList::new(py, r.iter().map(|c| c.setpoint))?,
            PyList::new(py, r.iter().map(|c| c.phases))?,
            PyList::new(py, r.iter().map(|c| c.reason.code()))?,
            PyList::new(py, r.iter().map(|c| reason_node(c.reason)))?,
            PyList::new(py, r.iter().map(|c| limit_code(c.reason.limit())))?,
        )
            .into_pyobject(py)
    }

    /// As `solve`, plus (ranks, urgencies, unrounded values, node capacities, node loads):
    /// rank -1 = not ranked; node rows flat, 4 per node (A on L1, L2, L3, then W).
    #[pyo3(signature = (
        active, *, max_current = None, phases = None, allow_1p = None, priority = None,
        energy_needed_wh = None, departure_s = None, waited = None, measured = None,
        node_max_current = None, node_max_power = None, node_meter = None,
        node_meter_state = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn solve_detailed<'py>(
        &self,
        py: Python<'py>,
        active: &Bound<'py, PyAny>,
        max_current: Option<&Bound<'py, PyAny>>,
        phases: Option<&Bound<'py, PyAny>>,
        allow_1p: Option<&Bound<'py, PyAny>>,
        priority: Option<&Bound<'py, PyAny>>,
        energy_needed_wh: Option<&Bound<'py, PyAny>>,
        departure_s: Option<&Bound<'py, PyAny>>,
        waited: Option<&Bound<'py, PyAny>>,
        measured: Option<&Bound<'py, PyAny>>,
        node_max_current: Option<&Bound<'py, PyAny>>,
        node_max_power: Option<&Bound<'py, PyAny>>,
        node_meter: Option<&Bound<'py, PyAny>>,
        node_meter_state: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let tick = self.tick(
            active,
            max_current,
            phases,
            allow_1p,
            priority,
            energy_needed_wh,
            departure_s,
            waited,
            measured,
            node_max_current,
            node_max_power,
            node_meter,
            node_meter_state,
        )?;
        let out = self
            .site
            .solve(&tick.nodes, &tick.chargers)
            .map_err(value_error)?;
        let r = &out.chargers;
        let items: Vec<Bound<'py, PyAny>> = vec![
            PyList::new(py, r.iter().map(|c| c.setpoint))?.into_any(),
            PyList::new(py, r.iter().map(|c| c.phases))?.into_any(),
            PyList::new(py, r.iter().map(|c| c.reason.code()))?.into_any(),
            PyList::new(py, r.iter().map(|c| reason_node(c.reason)))?.into_any(),
            PyList::new(py, r.iter().map(|c| limit_code(c.reason.limit())))?.into_any(),
            PyList::new(
                py,
                r.iter().map(|c| {
                    if c.rank == u32::MAX {
                        -1
                    } else {
                        i64::from(c.rank)
                    }
                }),
            )?
            .into_any(),
            PyList::new(py, r.iter().map(|c| c.urgency))?.into_any(),
            PyList::new(py, r.iter().map(|c| c.unrounded))?.into_any(),
            PyList::new(py, out.nodes.iter().flat_map(|k| k.capacity))?.into_any(),
            PyList::new(py, out.nodes.iter().flat_map(|k| k.load))?.into_any(),
        ];
        PyTuple::new(py, items)
    }

    /// The explanation of one result, naming the node by id (as the codes from `solve`).
    fn describe(&self, reason: i64, node: i64, limit: i64) -> PyResult<String> {
        let node_index = usize::try_from(node).ok();
        let limit = match limit {
            0..=2 => usize::try_from(limit)
                .ok()
                .and_then(Phase::from_index)
                .map(Limit::Phase),
            3 => Some(Limit::Power),
            _ => None,
        };
        let reason = match (reason, node_index, limit) {
            (0, _, _) => Reason::Inactive,
            (1, _, _) => Reason::CapBelowMinimum,
            (2, Some(node), _) => Reason::StaleMeter { node },
            (3, Some(node), Some(limit)) => Reason::Paused { node, limit },
            (4, _, _) => Reason::AtMaximum,
            (5, _, _) => Reason::Cap,
            (6, Some(node), Some(limit)) => Reason::Saturated { node, limit },
            _ => {
                return Err(PyValueError::new_err(format!(
                    "no such reason: code {reason}, node {node}, limit {limit:?}"
                )))
            }
        };
        if node_index.is_some_and(|k| k >= self.site.node_count()) {
            return Err(PyValueError::new_err(format!("no node with index {node}")));
        }
        Ok(self.site.describe(reason))
    }

    fn __repr__(&self) -> String {
        format!(
            "BalancingSolver({} nodes, {} chargers)",
            self.site.node_count(),
            self.site.charger_count()
        )
    }
}

fn reason_node(reason: Reason) -> i64 {
    reason
        .node()
        .and_then(|k| i64::try_from(k).ok())
        .unwrap_or(-1)
}

/// Adds `BalancingSolver` and the constants to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BalancingSolver>()?;
    m.add("NOMINAL_VOLTAGE_V", evgw_balancing::NOMINAL_VOLTAGE_V)?;
    m.add(
        "BALANCING_REASONS",
        (
            "Inactive",
            "CapBelowMinimum",
            "StaleMeter",
            "Paused",
            "AtMaximum",
            "Cap",
            "Saturated",
        ),
    )?;
    Ok(())
}
