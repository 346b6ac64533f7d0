//! `BalancingSolver`: the load-balancing solver of `evgw_balancing`, shaped for a per-tick
//! call from Python with 10,000 chargers. The tree and the charger table are built once;
//! each tick passes flat per-charger columns (lists, tuples, or any buffer of float64 /
//! int64 such as `array.array('d')`) and gets flat lists back.
//!
//! `BalancingTick`: the same solve without per-tick Python objects. It owns one
//! `array.array` per input and per output column, allocated once; the caller writes the
//! inputs in place, `solve()` reads them and writes the results into the output arrays
//! (no result lists are built: those cost about as much as the solve itself at 10,000
//! chargers).

use std::sync::{Mutex, TryLockError};
use std::time::Instant;

use evgw_balancing::{
    Allocation, ChargerInput, ChargerResult, ChargerSpec, Limit, Meter, NodeInput, NodeSpec, Phase,
    PhaseMap, Reason, Scratch, Site,
};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyList, PyTuple};

fn value_error(error: evgw_balancing::Error) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// A float from a list or tuple item: the exact-float fast path, else any `__float__`.
fn item_f64(item: &Bound<'_, PyAny>) -> PyResult<f64> {
    match item.cast_exact::<PyFloat>() {
        Ok(float) => Ok(float.value()),
        Err(_) => item.extract(),
    }
}

/// An integer from a list or tuple item (bools count as 0/1).
fn item_i64(item: &Bound<'_, PyAny>) -> PyResult<i64> {
    if let Ok(flag) = item.cast_exact::<PyBool>() {
        return Ok(i64::from(flag.is_true()));
    }
    item.extract()
}

fn length_error(name: &str, got: usize, n: usize) -> PyErr {
    PyValueError::new_err(format!("{name}: {got} values for {n}"))
}

/// Reads a column of `n` floats into `values` (reused: no allocation once grown). Lists and
/// tuples are read item by item; anything else must be a float64 buffer (copied in one go)
/// or a sequence of floats. Returns false for None (the caller keeps its defaults).
fn f64_column(
    column: Option<&Bound<'_, PyAny>>,
    n: usize,
    name: &str,
    values: &mut Vec<f64>,
) -> PyResult<bool> {
    let Some(obj) = column.filter(|c| !c.is_none()) else {
        return Ok(false);
    };
    values.clear();
    if let Ok(list) = obj.cast::<PyList>() {
        values.reserve(list.len());
        for item in list.iter() {
            values.push(item_f64(&item)?);
        }
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        values.reserve(tuple.len());
        for item in tuple.iter() {
            values.push(item_f64(&item)?);
        }
    } else if let Ok(buffer) = PyBuffer::<f64>::get(obj) {
        if buffer.item_count() != n {
            return Err(length_error(name, buffer.item_count(), n));
        }
        values.resize(n, 0.0);
        buffer.copy_to_slice(obj.py(), values)?;
    } else {
        *values = obj.extract()?;
    }
    if values.len() != n {
        return Err(length_error(name, values.len(), n));
    }
    Ok(true)
}

/// As [`f64_column`] for integers (bools count as 0/1; buffers of int64 or uint8).
fn i64_column(
    column: Option<&Bound<'_, PyAny>>,
    n: usize,
    name: &str,
    values: &mut Vec<i64>,
) -> PyResult<bool> {
    let Some(obj) = column.filter(|c| !c.is_none()) else {
        return Ok(false);
    };
    values.clear();
    if let Ok(list) = obj.cast::<PyList>() {
        values.reserve(list.len());
        for item in list.iter() {
            values.push(item_i64(&item)?);
        }
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        values.reserve(tuple.len());
        for item in tuple.iter() {
            values.push(item_i64(&item)?);
        }
    } else if let Ok(buffer) = PyBuffer::<i64>::get(obj) {
        if buffer.item_count() != n {
            return Err(length_error(name, buffer.item_count(), n));
        }
        values.resize(n, 0);
        buffer.copy_to_slice(obj.py(), values)?;
    } else if let Ok(buffer) = PyBuffer::<u8>::get(obj) {
        values.extend(buffer.to_vec(obj.py())?.into_iter().map(i64::from));
    } else {
        *values = obj.extract()?;
    }
    if values.len() != n {
        return Err(length_error(name, values.len(), n));
    }
    Ok(true)
}

fn limit_code(limit: Option<Limit>) -> i64 {
    limit.map_or(-1, |l| l.slot() as i64)
}

/// (id, parent id or None, (A on L1, L2, L3), max power W).
type NodeRow = (String, Option<String>, (f64, f64, f64), f64);
/// (id, node id, phases, rotation, min A, max A, resolution A, can switch 1p/3p).
type ChargerRow = (String, String, u8, String, f64, f64, f64, bool);

/// The site solver: the tree and the chargers, compiled once.
#[pyclass(module = "gateway._core", frozen)]
pub struct BalancingSolver {
    site: Site,
    /// Working memory reused from tick to tick.
    buffers: Mutex<Buffers>,
}

/// Per-tick memory kept across calls: the converted columns, the solver's scratch and its
/// result, so that a tick allocates nothing once they have grown. Behind a mutex because the
/// class is frozen (shareable between threads); a call that finds it busy (another thread
/// mid-solve) works in fresh memory instead of waiting.
#[derive(Default)]
struct Buffers {
    columns: Columns,
    chargers: Vec<ChargerInput>,
    nodes: Vec<NodeInput>,
    floats: Vec<f64>,
    ints: Vec<i64>,
    scratch: Scratch,
    out: Allocation,
}

/// The per-charger input columns of one tick, converted (a column not given holds its
/// default), so that the charger inputs are then built in one pass.
#[derive(Default)]
struct Columns {
    active: Vec<i64>,
    max_current: Vec<f64>,
    phases: Vec<i64>,
    allow_1p: Vec<i64>,
    priority: Vec<i64>,
    energy_needed_wh: Vec<f64>,
    departure_s: Vec<f64>,
    waited: Vec<i64>,
    measured: Vec<f64>,
}

/// Reads column `name` (or, when it is None, `len` copies of `default`) into `values`.
fn f64_column_or(
    column: Option<&Bound<'_, PyAny>>,
    len: usize,
    name: &str,
    default: f64,
    values: &mut Vec<f64>,
) -> PyResult<()> {
    if !f64_column(column, len, name, values)? {
        values.clear();
        values.resize(len, default);
    }
    Ok(())
}

/// As [`f64_column_or`] for integers.
fn i64_column_or(
    column: Option<&Bound<'_, PyAny>>,
    len: usize,
    name: &str,
    default: i64,
    values: &mut Vec<i64>,
) -> PyResult<()> {
    if !i64_column(column, len, name, values)? {
        values.clear();
        values.resize(len, default);
    }
    Ok(())
}

/// Runs `f` on the solver's buffers, or on fresh ones when another thread holds them.
fn with_buffers<R>(buffers: &Mutex<Buffers>, f: impl FnOnce(&mut Buffers) -> R) -> R {
    match buffers.try_lock() {
        Ok(mut guard) => f(&mut guard),
        Err(TryLockError::Poisoned(poisoned)) => f(&mut poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => f(&mut Buffers::default()),
    }
}

fn triple(values: &[f64]) -> [f64; 3] {
    <[f64; 3]>::try_from(values).unwrap_or([0.0; 3])
}

impl BalancingSolver {
    /// Converts one tick's columns into `b.chargers` and `b.nodes`.
    #[allow(clippy::too_many_arguments)]
    fn tick(
        &self,
        b: &mut Buffers,
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
    ) -> PyResult<()> {
        let n = self.site.charger_count();
        let m = self.site.node_count();
        let Buffers {
            columns: c,
            chargers,
            nodes,
            floats,
            ints,
            ..
        } = b;
        // The defaults: inactive, no cap, 3p, class 0, unknown urgency, nothing measured.
        let d = ChargerInput::default();
        i64_column_or(Some(active), n, "active", 0, &mut c.active)?;
        f64_column_or(
            max_current,
            n,
            "max_current",
            d.max_current,
            &mut c.max_current,
        )?;
        i64_column_or(phases, n, "phases", i64::from(d.phases), &mut c.phases)?;
        i64_column_or(allow_1p, n, "allow_1p", 0, &mut c.allow_1p)?;
        i64_column_or(priority, n, "priority", d.class, &mut c.priority)?;
        let (energy, departure) = (d.energy_needed_wh, d.departure_s);
        f64_column_or(
            energy_needed_wh,
            n,
            "energy_needed_wh",
            energy,
            &mut c.energy_needed_wh,
        )?;
        f64_column_or(departure_s, n, "departure_s", departure, &mut c.departure_s)?;
        i64_column_or(waited, n, "waited", 0, &mut c.waited)?;
        f64_column_or(measured, 3 * n, "measured", 0.0, &mut c.measured)?;
        // One pass builds each input whole. Out-of-range values map to ones the solver
        // refuses with a named error.
        chargers.clear();
        chargers.extend(
            c.active
                .iter()
                .zip(&c.max_current)
                .zip(&c.phases)
                .zip(&c.allow_1p)
                .zip(&c.priority)
                .zip(&c.energy_needed_wh)
                .zip(&c.departure_s)
                .zip(&c.waited)
                .zip(c.measured.chunks_exact(3))
                .map(
                    |(
                        (
                            (
                                (
                                    ((((&active, &max_current), &phases), &allow_1p), &class),
                                    &energy,
                                ),
                                &departure,
                            ),
                            &waited,
                        ),
                        measured,
                    )| ChargerInput {
                        active: active != 0,
                        max_current,
                        phases: u8::try_from(phases).unwrap_or(0),
                        allow_1p: allow_1p != 0,
                        class,
                        energy_needed_wh: energy,
                        departure_s: departure,
                        waited: u32::try_from(waited.max(0)).unwrap_or(u32::MAX),
                        measured: triple(measured),
                    },
                ),
        );
        nodes.clear();
        let any_node_input = [
            node_max_current,
            node_max_power,
            node_meter,
            node_meter_state,
        ]
        .iter()
        .any(|c| c.is_some_and(|c| !c.is_none()));
        if !any_node_input {
            return Ok(());
        }
        nodes.resize(m, NodeInput::default());
        if f64_column(node_max_current, 3 * m, "node_max_current", floats)? {
            for (k, v) in nodes.iter_mut().zip(floats.chunks_exact(3)) {
                k.max_current = triple(v);
            }
        }
        if f64_column(node_max_power, m, "node_max_power", floats)? {
            for (k, &v) in nodes.iter_mut().zip(floats.iter()) {
                k.max_power = v;
            }
        }
        let metered = f64_column(node_meter, 3 * m, "node_meter", floats)?;
        if i64_column(node_meter_state, m, "node_meter_state", ints)? {
            for (k, (node, &state)) in nodes.iter_mut().zip(ints.iter()).enumerate() {
                node.meter = match state {
                    0 => Meter::None,
                    1 if metered => {
                        Meter::Fresh(triple(floats.get(3 * k..3 * k + 3).unwrap_or(&[])))
                    }
                    1 => Meter::Fresh([0.0; 3]),
                    2 => Meter::Stale,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "node_meter_state: node {:?}: {other} is not 0 (none), 1 (fresh) \
                             or 2 (stale)",
                            self.site.node_id(k).unwrap_or("?")
                        )))
                    }
                };
            }
        }
        Ok(())
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
        Ok(Self {
            site,
            buffers: Mutex::new(Buffers::default()),
        })
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
        let site = &self.site;
        with_buffers(&self.buffers, |b| {
            self.tick(
                b,
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
            let Buffers {
                chargers,
                nodes,
                scratch,
                out,
                ..
            } = b;
            // The solve itself does not touch Python objects: let other threads run.
            py.detach(|| site.solve_into(nodes, chargers, scratch, out))
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
        })
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
        let site = &self.site;
        let mut fresh = Buffers::default();
        self.tick(
            &mut fresh,
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
        let out = site
            .solve(&fresh.nodes, &fresh.chargers)
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

    /// A measurement aid for benchmarks: converts the columns once (as `solve`), then times
    /// `repeats` solves inside Rust, reusing the buffers as `solve` does; returns the time of
    /// each in ns. The Rust solver alone, without the per-call conversion.
    #[pyo3(signature = (
        active, *, repeats, max_current = None, phases = None, allow_1p = None,
        priority = None, energy_needed_wh = None, departure_s = None, waited = None,
        measured = None, node_max_current = None, node_max_power = None, node_meter = None,
        node_meter_state = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn time_solve(
        &self,
        py: Python<'_>,
        active: &Bound<'_, PyAny>,
        repeats: usize,
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
    ) -> PyResult<Vec<f64>> {
        let site = &self.site;
        let mut b = Buffers::default();
        self.tick(
            &mut b,
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
        let Buffers {
            chargers,
            nodes,
            scratch,
            out,
            ..
        } = &mut b;
        py.detach(|| {
            let mut times = Vec::with_capacity(repeats);
            for _ in 0..repeats {
                let start = Instant::now();
                site.solve_into(nodes, chargers, scratch, out)?;
                times.push(start.elapsed().as_nanos() as f64);
            }
            Ok(times)
        })
        .map_err(value_error)
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

/// One tick's columns, owned: `array.array` objects allocated once by the constructor and
/// written in place from tick to tick (inputs by the caller, outputs by `solve`).
#[pyclass(module = "gateway._core", frozen)]
pub struct BalancingTick {
    #[pyo3(get)]
    solver: Py<BalancingSolver>,
    #[pyo3(get)]
    active: Py<PyAny>,
    #[pyo3(get)]
    max_current: Py<PyAny>,
    #[pyo3(get)]
    phases: Py<PyAny>,
    #[pyo3(get)]
    allow_1p: Py<PyAny>,
    #[pyo3(get)]
    priority: Py<PyAny>,
    #[pyo3(get)]
    energy_needed_wh: Py<PyAny>,
    #[pyo3(get)]
    departure_s: Py<PyAny>,
    #[pyo3(get)]
    waited: Py<PyAny>,
    #[pyo3(get)]
    measured: Py<PyAny>,
    #[pyo3(get)]
    node_max_current: Py<PyAny>,
    #[pyo3(get)]
    node_max_power: Py<PyAny>,
    #[pyo3(get)]
    node_meter: Py<PyAny>,
    #[pyo3(get)]
    node_meter_state: Py<PyAny>,
    #[pyo3(get)]
    setpoints: Py<PyAny>,
    #[pyo3(get)]
    phases_used: Py<PyAny>,
    #[pyo3(get)]
    reasons: Py<PyAny>,
    #[pyo3(get)]
    reason_nodes: Py<PyAny>,
    #[pyo3(get)]
    reason_limits: Py<PyAny>,
    /// Working memory of this tick's solves (its own, so that ticks and `solve` calls on
    /// the same solver do not contend).
    buffers: Mutex<Buffers>,
}

/// Copies `values` into the output column `name` (an `array.array` the caller may have
/// replaced the contents of, so its length and type are checked).
fn write_column<T: pyo3::buffer::Element + Copy>(
    column: &Bound<'_, PyAny>,
    name: &str,
    values: &[T],
) -> PyResult<()> {
    let buffer = PyBuffer::<T>::get(column)
        .map_err(|e| PyValueError::new_err(format!("{name}: not a writable column: {e}")))?;
    if buffer.item_count() != values.len() {
        return Err(length_error(name, buffer.item_count(), values.len()));
    }
    buffer.copy_from_slice(column.py(), values)
}

#[pymethods]
impl BalancingTick {
    /// Allocates the columns for `solver`'s site, filled with the defaults of `solve`
    /// (inactive, no cap, 3p, no 1p fallback, class 0, unknown urgency, not waited,
    /// nothing measured; no node limits, no meters) and zero results.
    #[new]
    fn new(py: Python<'_>, solver: Bound<'_, BalancingSolver>) -> PyResult<Self> {
        let n = solver.get().site.charger_count();
        let m = solver.get().site.node_count();
        let array = py.import("array")?.getattr("array")?;
        let column = |code: &str, value: Bound<'_, PyAny>, len: usize| -> PyResult<Py<PyAny>> {
            Ok(array
                .call1((code, PyList::new(py, [value])?))?
                .mul(len)?
                .unbind())
        };
        let f = |v: f64, len: usize| column("d", PyFloat::new(py, v).into_any(), len);
        let i = |v: i64, len: usize| -> PyResult<Py<PyAny>> {
            column("q", v.into_pyobject(py)?.into_any(), len)
        };
        Ok(Self {
            active: i(0, n)?,
            max_current: f(f64::INFINITY, n)?,
            phases: i(3, n)?,
            allow_1p: i(0, n)?,
            priority: i(0, n)?,
            energy_needed_wh: f(f64::NAN, n)?,
            departure_s: f(f64::NAN, n)?,
            waited: i(0, n)?,
            measured: f(0.0, 3 * n)?,
            node_max_current: f(f64::INFINITY, 3 * m)?,
            node_max_power: f(f64::INFINITY, m)?,
            node_meter: f(0.0, 3 * m)?,
            node_meter_state: i(0, m)?,
            setpoints: f(0.0, n)?,
            phases_used: i(0, n)?,
            reasons: i(0, n)?,
            reason_nodes: i(-1, n)?,
            reason_limits: i(-1, n)?,
            solver: solver.unbind(),
            buffers: Mutex::new(Buffers::default()),
        })
    }

    /// Solves the tick from the input columns as they are now and writes the results into
    /// the output columns. The same results as `solver.solve(...)` with these columns.
    fn solve(&self, py: Python<'_>) -> PyResult<()> {
        let solver = self.solver.get();
        let site = &solver.site;
        let col = |c: &Py<PyAny>| c.bind(py).clone();
        with_buffers(&self.buffers, |b| {
            solver.tick(
                b,
                &col(&self.active),
                Some(&col(&self.max_current)),
                Some(&col(&self.phases)),
                Some(&col(&self.allow_1p)),
                Some(&col(&self.priority)),
                Some(&col(&self.energy_needed_wh)),
                Some(&col(&self.departure_s)),
                Some(&col(&self.waited)),
                Some(&col(&self.measured)),
                Some(&col(&self.node_max_current)),
                Some(&col(&self.node_max_power)),
                Some(&col(&self.node_meter)),
                Some(&col(&self.node_meter_state)),
            )?;
            let Buffers {
                chargers,
                nodes,
                floats,
                ints,
                scratch,
                out,
                ..
            } = b;
            py.detach(|| site.solve_into(nodes, chargers, scratch, out))
                .map_err(value_error)?;
            let r = &out.chargers;
            floats.clear();
            floats.extend(r.iter().map(|c| c.setpoint));
            write_column(&col(&self.setpoints), "setpoints", floats)?;
            let mut ints_of = |name: &str, column: &Py<PyAny>, f: fn(&ChargerResult) -> i64| {
                ints.clear();
                ints.extend(r.iter().map(f));
                write_column(&col(column), name, ints)
            };
            ints_of("phases_used", &self.phases_used, |c| i64::from(c.phases))?;
            ints_of("reasons", &self.reasons, |c| i64::from(c.reason.code()))?;
            ints_of("reason_nodes", &self.reason_nodes, |c| {
                reason_node(c.reason)
            })?;
            ints_of("reason_limits", &self.reason_limits, |c| {
                limit_code(c.reason.limit())
            })?;
            Ok(())
        })
    }

    fn __repr__(&self) -> String {
        let site = &self.solver.get().site;
        format!(
            "BalancingTick({} nodes, {} chargers)",
            site.node_count(),
            site.charger_count()
        )
    }
}

/// Adds `BalancingSolver`, `BalancingTick` and the constants to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BalancingSolver>()?;
    m.add_class::<BalancingTick>()?;
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
