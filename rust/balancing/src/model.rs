//! The static model: the tree of limit nodes and the charger table, validated and compiled
//! once ([`Site::new`]); they change rarely (commissioning, a charger added).

use std::collections::HashMap;
use std::fmt;

use crate::error::Error;

/// A grid phase (or, in a [`PhaseMap`], a charger's own phase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// L1 (R)
    L1,
    /// L2 (S)
    L2,
    /// L3 (T)
    L3,
}

impl Phase {
    /// All three, in order.
    pub const ALL: [Phase; 3] = [Phase::L1, Phase::L2, Phase::L3];

    /// 0, 1 or 2.
    pub fn index(self) -> usize {
        match self {
            Phase::L1 => 0,
            Phase::L2 => 1,
            Phase::L3 => 2,
        }
    }

    /// The phase with index 0, 1 or 2; `None` for anything else.
    pub fn from_index(index: usize) -> Option<Phase> {
        Phase::ALL.get(index).copied()
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::L1 => "L1",
            Phase::L2 => "L2",
            Phase::L3 => "L3",
        })
    }
}

/// Where a charger's L1, L2, L3 land on the grid phases: `map[j]` is the grid phase index
/// (0..3) of the charger's phase j. Always a permutation of 0, 1, 2; a single-phase charger
/// uses only `map[0]` (the grid phase its L1 is wired to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhaseMap([u8; 3]);

impl PhaseMap {
    /// No rotation: charger L1/L2/L3 on grid L1/L2/L3 ("RST").
    pub const IDENTITY: PhaseMap = PhaseMap([0, 1, 2]);

    /// A map from grid phase indices; `None` unless it is a permutation of 0, 1, 2.
    pub fn new(map: [u8; 3]) -> Option<PhaseMap> {
        let mut seen = [false; 3];
        for &p in &map {
            match seen.get_mut(usize::from(p)) {
                Some(slot) if !*slot => *slot = true,
                _ => return None,
            }
        }
        Some(PhaseMap(map))
    }

    /// From the OCPP 1.6 `ConnectorPhaseRotation` spelling: "RST", "RTS", "SRT", "STR",
    /// "TRS" or "TSR" (R, S, T = grid L1, L2, L3, listed for the charger's L1, L2, L3). A
    /// single letter "R", "S" or "T" is the grid phase of a single-phase charger's L1 (the
    /// other two follow in rotation order). `None` for anything else.
    pub fn from_rotation(rotation: &str) -> Option<PhaseMap> {
        let letter = |c: u8| match c {
            b'R' => Some(0u8),
            b'S' => Some(1),
            b'T' => Some(2),
            _ => None,
        };
        match *rotation.as_bytes() {
            [a] => {
                let first = letter(a)?;
                Some(PhaseMap([first, (first + 1) % 3, (first + 2) % 3]))
            }
            [a, b, c] => PhaseMap::new([letter(a)?, letter(b)?, letter(c)?]),
            _ => None,
        }
    }

    /// The grid phase index of each charger phase.
    pub fn as_array(self) -> [u8; 3] {
        self.0
    }

    /// The grid phase the charger's `phase` is wired to.
    pub fn grid_phase(self, phase: Phase) -> Phase {
        let [a, b, c] = self.0;
        let index = match phase {
            Phase::L1 => a,
            Phase::L2 => b,
            Phase::L3 => c,
        };
        Phase::from_index(usize::from(index)).unwrap_or(Phase::L1)
    }

    /// The rotation spelled as OCPP 1.6 does ("RST"…).
    pub fn rotation(self) -> String {
        self.0
            .iter()
            .map(|&p| match p {
                0 => 'R',
                1 => 'S',
                _ => 'T',
            })
            .collect()
    }
}

/// A limit node of the tree as configured: the grid connection (the one node without a
/// parent), a feeder, a distribution board, or a virtual node carrying an external cap (an
/// OCPP station-wide composite schedule, an OCPI or local-API limit).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// Unique id, used in errors and explanations.
    pub id: String,
    /// The parent node's id; `None` for the root (exactly one).
    pub parent: Option<String>,
    /// Per grid phase L1, L2, L3, in A. `f64::INFINITY` = no limit on that phase.
    pub max_current: [f64; 3],
    /// Total over the phases, in W at [`crate::NOMINAL_VOLTAGE_V`] per phase;
    /// `f64::INFINITY` = none.
    pub max_power: f64,
}

/// A charger (one connector / EVSE) as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargerSpec {
    /// Unique id, used in errors and explanations.
    pub id: String,
    /// The id of the node it hangs under.
    pub node: String,
    /// 1 or 3: the phases it is wired with.
    pub phases: u8,
    /// Charger phase → grid phase index (a permutation of 0, 1, 2; see [`PhaseMap`]).
    pub phase_map: [u8; 3],
    /// Lowest current it may be given when charging, in A per phase (IEC 61851: 6 A).
    pub min_current: f64,
    /// Highest current, in A per phase: min(hardware, installer setting). Finite.
    pub max_current: f64,
    /// Setpoint step in A: 1, 0.1, 0.01 or 0.001 (any whole number of mA, at least 1 mA).
    pub resolution: f64,
    /// A three-phase charger that can switch a session to one phase.
    pub can_switch_phases: bool,
}

impl ChargerSpec {
    /// A three-phase charger without rotation, 6–`max_current` A, 1 A steps.
    pub fn three_phase(id: &str, node: &str, max_current: f64) -> ChargerSpec {
        ChargerSpec {
            id: id.to_owned(),
            node: node.to_owned(),
            phases: 3,
            phase_map: PhaseMap::IDENTITY.as_array(),
            min_current: DEFAULT_MIN_CURRENT_A,
            max_current,
            resolution: 1.0,
            can_switch_phases: false,
        }
    }
}

/// IEC 61851-1: the lowest current the control pilot can signal (duty cycle 10 %); below it
/// many chargers read the command as "off" (chargers.md §1).
pub const DEFAULT_MIN_CURRENT_A: f64 = 6.0;

/// Marks "no node" in compact index tables.
pub(crate) const NONE: u32 = u32::MAX;

/// A charger as the solver uses it.
#[derive(Clone, Debug)]
pub(crate) struct ChargerModel {
    pub node: u32,
    pub phases: u8,
    pub map: [u8; 3],
    /// The minimum rounded UP to the resolution: the lowest setpoint that is both allowed
    /// and representable.
    pub min: f64,
    /// The maximum rounded DOWN to the resolution.
    pub max: f64,
    /// The resolution in mA (whole numbers keep the rounding exact and identical in the
    /// Python baseline).
    pub res_ma: u64,
    /// `res_ma` as a float, and one step in A (`res_ma / 1000`): kept to spare the hot loops
    /// the integer conversions and the division.
    pub res_ma_f: f64,
    pub step: f64,
    /// `floor_to(max, res_ma) == max`: a tick cap at or above the maximum then leaves the
    /// maximum as it is without rounding it again.
    pub max_on_grid: bool,
    pub can_switch: bool,
    /// Ancestors (parent first, root last) in `Site::paths`.
    pub path_start: u32,
    pub path_len: u32,
}

/// The validated, compiled model: build once with [`Site::new`], then call
/// [`Site::solve`](crate::Site::solve) every tick.
#[derive(Clone, Debug)]
pub struct Site {
    pub(crate) node_ids: Vec<String>,
    pub(crate) node_parent: Vec<u32>,
    /// Static limits per node: L1, L2, L3 in A, then power in W (INFINITY = none).
    pub(crate) node_limit: Vec<[f64; 4]>,
    /// Nodes parents-first (the root first).
    pub(crate) topo: Vec<u32>,
    pub(crate) chargers: Vec<ChargerModel>,
    /// Kept apart from the hot per-charger data.
    pub(crate) charger_ids: Vec<String>,
    pub(crate) paths: Vec<u32>,
    /// Chargers in each node's subtree, ascending index: `subtree[subtree_start[k]..subtree_start[k + 1]]`.
    pub(crate) subtree_start: Vec<u32>,
    pub(crate) subtree: Vec<u32>,
    pub(crate) urgency_tier: f64,
}

/// Default width of an urgency tier; see [`Site::set_urgency_tier`].
pub const DEFAULT_URGENCY_TIER: f64 = 0.1;

/// Tolerance when rounding to a resolution, in steps: absorbs the float error of the fill
/// (~1e-12 A) so that an exact 7 A is not rounded down to 6 A, while never rounding up by
/// more than a millionth of a step.
pub(crate) const ROUND_EPS_STEPS: f64 = 1e-6;

/// `value` rounded down to a multiple of `res_ma` mA, in A.
pub(crate) fn floor_to(value: f64, res_ma: u64) -> f64 {
    // For a positive number the conversion truncates, which is the floor: no libm call on
    // the hot path. It saturates above u64::MAX (far beyond any current) and maps NaN to 0.
    let steps = value * 1000.0 / res_ma as f64 + ROUND_EPS_STEPS;
    let steps = if steps > 0.0 { steps as u64 } else { 0 };
    if steps == 0 {
        return 0.0;
    }
    steps.saturating_mul(res_ma) as f64 / 1000.0
}

impl ChargerModel {
    /// [`floor_to`] at this charger's resolution, bit for bit, with a fast path for the
    /// values a tick meets (below 10^12 A, where the step count and its product with the
    /// resolution fit an `i64` exactly; the conversions are then single instructions).
    #[inline]
    pub fn floor(&self, value: f64) -> f64 {
        if value.is_nan() || value >= 1e12 {
            return floor_to(value, self.res_ma);
        }
        let steps = value * 1000.0 / self.res_ma_f + ROUND_EPS_STEPS;
        // Truncation is the floor for a positive number; negatives give 0 as in `floor_to`.
        let steps = if steps > 0.0 { steps as i64 } else { 0 };
        if steps == 0 {
            return 0.0;
        }
        // res_ma <= 10^6 and steps <= 10^15 + 1: the product is far below 2^63.
        (steps * self.res_ma as i64) as f64 / 1000.0
    }
}

/// `value` rounded up to a multiple of `res_ma` mA, in A.
pub(crate) fn ceil_to(value: f64, res_ma: u64) -> f64 {
    let steps = (value * 1000.0 / res_ma as f64 - ROUND_EPS_STEPS).ceil();
    if steps <= 0.0 {
        return 0.0;
    }
    (steps as u64).saturating_mul(res_ma) as f64 / 1000.0
}

fn check_limit(id: &str, what: &str, value: f64) -> Result<(), Error> {
    if value.is_nan() || value < 0.0 {
        return Err(Error::node(
            id,
            format!("{what} must be a number >= 0 (infinity = no limit), got {value}"),
        ));
    }
    Ok(())
}

impl Site {
    /// Validates and compiles the model. Errors name the node or charger: duplicate id,
    /// unknown parent or node, no root or two roots, a cycle, a negative or NaN limit, a bad
    /// phase count or map, min <= 0, max < min or infinite, a resolution that is not a whole
    /// number of mA, no setpoint at that resolution between min and max, 1p/3p switching on
    /// a single-phase charger.
    pub fn new(nodes: &[NodeSpec], chargers: &[ChargerSpec]) -> Result<Site, Error> {
        if nodes.is_empty() {
            return Err(Error::Site(
                "the tree has no nodes (it needs a root)".into(),
            ));
        }
        if u32::try_from(nodes.len()).is_err() || u32::try_from(chargers.len()).is_err() {
            return Err(Error::Site("too many nodes or chargers".into()));
        }
        let mut index: HashMap<&str, u32> = HashMap::with_capacity(nodes.len());
        for (k, node) in nodes.iter().enumerate() {
            if index.insert(node.id.as_str(), k as u32).is_some() {
                return Err(Error::node(&node.id, "duplicate node id"));
            }
            for (phase, &limit) in Phase::ALL.iter().zip(&node.max_current) {
                check_limit(&node.id, &format!("max_current on {phase}"), limit)?;
            }
            check_limit(&node.id, "max_power", node.max_power)?;
        }
        let mut node_parent = Vec::with_capacity(nodes.len());
        let mut root = None;
        for node in nodes {
            match &node.parent {
                None => {
                    if let Some(first) = root {
                        return Err(Error::node(
                            &node.id,
                            format!(
                                "a second root (no parent) besides {first:?}: the tree has \
                                 exactly one root, the grid connection"
                            ),
                        ));
                    }
                    root = Some(node.id.as_str());
                    node_parent.push(NONE);
                }
                Some(parent) => match index.get(parent.as_str()) {
                    Some(&p) => node_parent.push(p),
                    None => {
                        return Err(Error::node(
                            &node.id,
                            format!("unknown parent node {parent:?}"),
                        ))
                    }
                },
            }
        }
        if root.is_none() {
            return Err(Error::Site(
                "no root: every node has a parent, so the parents form a cycle".into(),
            ));
        }
        // Children lists, then a breadth-first walk from the root: parents come first, and
        // any node it does not reach is on a cycle.
        let mut child_count = vec![0u32; nodes.len() + 1];
        for &p in &node_parent {
            if let Some(c) = child_count.get_mut(p as usize + 1) {
                *c += 1;
            }
        }
        for k in 1..child_count.len() {
            let prev = child_count.get(k - 1).copied().unwrap_or(0);
            if let Some(c) = child_count.get_mut(k) {
                *c += prev;
            }
        }
        let mut fill = child_count.clone();
        let mut children = vec![0u32; nodes.len()];
        for (k, &p) in node_parent.iter().enumerate() {
            if p == NONE {
                continue;
            }
            if let Some(pos) = fill.get_mut(p as usize) {
                if let Some(slot) = children.get_mut(*pos as usize) {
                    *slot = k as u32;
                }
                *pos += 1;
            }
        }
        let mut topo = Vec::with_capacity(nodes.len());
        if let Some(r) = node_parent.iter().position(|&p| p == NONE) {
            topo.push(r as u32);
        }
        let mut head = 0;
        while let Some(&k) = topo.get(head) {
            head += 1;
            let from = child_count.get(k as usize).copied().unwrap_or(0) as usize;
            let to = child_count.get(k as usize + 1).copied().unwrap_or(0) as usize;
            if let Some(kids) = children.get(from..to) {
                topo.extend_from_slice(kids);
            }
        }
        if topo.len() != nodes.len() {
            let mut reached = vec![false; nodes.len()];
            for &k in &topo {
                if let Some(r) = reached.get_mut(k as usize) {
                    *r = true;
                }
            }
            let lost = reached.iter().position(|&r| !r).unwrap_or(0);
            let id = nodes.get(lost).map_or("?", |n| n.id.as_str());
            return Err(Error::node(
                id,
                "is on a cycle of parents (not connected to the root)",
            ));
        }

        let mut models = Vec::with_capacity(chargers.len());
        let mut paths = Vec::new();
        let mut charger_ids: HashMap<&str, ()> = HashMap::with_capacity(chargers.len());
        for spec in chargers {
            if charger_ids.insert(spec.id.as_str(), ()).is_some() {
                return Err(Error::charger(&spec.id, "duplicate charger id"));
            }
            let Some(&node) = index.get(spec.node.as_str()) else {
                return Err(Error::charger(
                    &spec.id,
                    format!("unknown node {:?}", spec.node),
                ));
            };
            let model = compile_charger(spec, node)?;
            let path_start = paths.len() as u32;
            let mut k = node;
            while k != NONE {
                paths.push(k);
                k = node_parent.get(k as usize).copied().unwrap_or(NONE);
            }
            models.push(ChargerModel {
                path_start,
                path_len: paths.len() as u32 - path_start,
                ..model
            });
        }
        if u32::try_from(paths.len()).is_err() {
            return Err(Error::Site(
                "the tree is too deep for this many chargers".into(),
            ));
        }

        // Subtree lists in CSR form: each charger is listed under every node of its path.
        let mut subtree_start = vec![0u32; nodes.len() + 1];
        for &k in &paths {
            if let Some(c) = subtree_start.get_mut(k as usize + 1) {
                *c += 1;
            }
        }
        for k in 1..subtree_start.len() {
            let prev = subtree_start.get(k - 1).copied().unwrap_or(0);
            if let Some(c) = subtree_start.get_mut(k) {
                *c += prev;
            }
        }
        let mut pos = subtree_start.clone();
        let mut subtree = vec![0u32; paths.len()];
        for (i, model) in models.iter().enumerate() {
            let start = model.path_start as usize;
            let end = start + model.path_len as usize;
            for &k in paths.get(start..end).unwrap_or(&[]) {
                if let Some(p) = pos.get_mut(k as usize) {
                    if let Some(slot) = subtree.get_mut(*p as usize) {
                        *slot = i as u32;
                    }
                    *p += 1;
                }
            }
        }

        Ok(Site {
            node_ids: nodes.iter().map(|n| n.id.clone()).collect(),
            node_parent,
            node_limit: nodes
                .iter()
                .map(|n| {
                    let [a, b, c] = n.max_current;
                    [a, b, c, n.max_power]
                })
                .collect(),
            topo,
            chargers: models,
            charger_ids: chargers.iter().map(|c| c.id.clone()).collect(),
            paths,
            subtree_start,
            subtree,
            urgency_tier: DEFAULT_URGENCY_TIER,
        })
    }

    /// Sets the width of the urgency tiers used for admission order (default
    /// [`DEFAULT_URGENCY_TIER`]); 0 disables tiers (exact urgency, `waited` only breaks exact
    /// ties). Refuses negative, NaN or infinite widths.
    pub fn set_urgency_tier(&mut self, width: f64) -> Result<(), Error> {
        if !width.is_finite() || width < 0.0 {
            return Err(Error::Site(format!(
                "urgency tier width must be a finite number >= 0, got {width}"
            )));
        }
        self.urgency_tier = width;
        Ok(())
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.node_ids.len()
    }

    /// Number of chargers.
    pub fn charger_count(&self) -> usize {
        self.chargers.len()
    }

    /// A node's id by index (the order given to [`Site::new`]).
    pub fn node_id(&self, node: usize) -> Option<&str> {
        self.node_ids.get(node).map(String::as_str)
    }

    /// A charger's id by index.
    pub fn charger_id(&self, charger: usize) -> Option<&str> {
        self.charger_ids.get(charger).map(String::as_str)
    }

    /// A node's parent index (`None` for the root).
    pub fn node_parent(&self, node: usize) -> Option<usize> {
        match self.node_parent.get(node) {
            Some(&p) if p != NONE => Some(p as usize),
            _ => None,
        }
    }

    /// A charger's effective minimum and maximum (rounded to its resolution), in A.
    pub fn charger_bounds(&self, charger: usize) -> Option<(f64, f64)> {
        self.chargers.get(charger).map(|c| (c.min, c.max))
    }

    /// The nodes from the charger's node up to the root.
    pub fn charger_path(&self, charger: usize) -> Vec<usize> {
        self.chargers.get(charger).map_or_else(Vec::new, |c| {
            let start = c.path_start as usize;
            let end = start + c.path_len as usize;
            self.paths
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|&k| k as usize)
                .collect()
        })
    }
}

fn compile_charger(spec: &ChargerSpec, node: u32) -> Result<ChargerModel, Error> {
    let id = spec.id.as_str();
    if spec.phases != 1 && spec.phases != 3 {
        return Err(Error::charger(
            id,
            format!("phases must be 1 or 3, got {}", spec.phases),
        ));
    }
    let Some(map) = PhaseMap::new(spec.phase_map) else {
        return Err(Error::charger(
            id,
            format!(
                "phase map {:?} is not a permutation of the grid phases 0, 1, 2",
                spec.phase_map
            ),
        ));
    };
    if spec.can_switch_phases && spec.phases != 3 {
        return Err(Error::charger(
            id,
            "only a three-phase charger can switch between 1p and 3p",
        ));
    }
    if !(spec.min_current.is_finite() && spec.min_current > 0.0) {
        return Err(Error::charger(
            id,
            format!(
                "min_current must be a finite number > 0 A, got {}",
                spec.min_current
            ),
        ));
    }
    if !spec.max_current.is_finite() || spec.max_current < spec.min_current {
        return Err(Error::charger(
            id,
            format!(
                "max_current must be finite and >= min_current ({} A), got {}",
                spec.min_current, spec.max_current
            ),
        ));
    }
    let res_ma_f = spec.resolution * 1000.0;
    let res_ma = res_ma_f.round();
    // 1 mA is the finest step any charger protocol in chargers.md takes; 1000 A is far above
    // any charger and keeps the step count well inside u64/f64 precision.
    if !res_ma_f.is_finite()
        || !(1.0..=1_000_000.0).contains(&res_ma)
        || (res_ma_f - res_ma).abs() > 1e-6
    {
        return Err(Error::charger(
            id,
            format!(
                "resolution must be a whole number of mA between 0.001 A and 1000 A, got {}",
                spec.resolution
            ),
        ));
    }
    let res_ma = res_ma as u64;
    let min = ceil_to(spec.min_current, res_ma);
    let max = floor_to(spec.max_current, res_ma);
    if min > max {
        return Err(Error::charger(
            id,
            format!(
                "no setpoint at resolution {} A lies between min_current {} A and \
                 max_current {} A",
                spec.resolution, spec.min_current, spec.max_current
            ),
        ));
    }
    Ok(ChargerModel {
        node,
        phases: spec.phases,
        map: map.as_array(),
        min,
        max,
        res_ma,
        res_ma_f: res_ma as f64,
        step: res_ma as f64 / 1000.0,
        max_on_grid: floor_to(max, res_ma) == max,
        can_switch: spec.can_switch_phases,
        path_start: 0,
        path_len: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast [`ChargerModel::floor`] is bit for bit [`floor_to`].
    #[test]
    fn fast_floor_is_floor_to() {
        let values = [
            0.0,
            -0.0,
            -1.0,
            1e-9,
            0.0004,
            0.001,
            0.0999,
            0.1,
            5.3,
            6.0,
            6.3 - 1e-13,
            7.15,
            10.0,
            15.999_999_9,
            16.0,
            31.7,
            32.0,
            999.9,
            1e6,
            1e11,
            9.99e11,
            1e12,
            1e15,
            1e20,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for res_ma in [1u64, 10, 100, 250, 500, 1000, 7, 1_000_000] {
            let spec = ChargerSpec {
                resolution: res_ma as f64 / 1000.0,
                max_current: 2000.0,
                ..ChargerSpec::three_phase("c", "n", 32.0)
            };
            let model = compile_charger(&spec, 0).unwrap();
            let mut x = 0.0f64;
            while x < 40.0 {
                assert_eq!(
                    model.floor(x).to_bits(),
                    floor_to(x, res_ma).to_bits(),
                    "{x}"
                );
                x += 0.000_7;
            }
            for &v in &values {
                assert_eq!(
                    model.floor(v).to_bits(),
                    floor_to(v, res_ma).to_bits(),
                    "{v} at {res_ma} mA"
                );
            }
        }
    }
}
