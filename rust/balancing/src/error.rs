//! The one error type: every bad model or tick input, naming what is wrong and where.

use std::fmt;

/// A bad input. The solver never panics; it refuses the input with one of these instead.
/// `Display` gives a one-line message naming the node or charger (by its id) and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A node of the tree: bad limit, unknown parent, duplicate id, part of a cycle…
    Node {
        /// The node's id as given.
        node: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// A charger: bad minimum/maximum/resolution/phase map, unknown node, bad tick input…
    Charger {
        /// The charger's id as given.
        charger: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// The tree as a whole (no root, two roots, no nodes) or a tick input of the wrong length.
    Site(String),
}

impl Error {
    pub(crate) fn node(node: &str, problem: impl Into<String>) -> Self {
        Self::Node {
            node: node.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn charger(charger: &str, problem: impl Into<String>) -> Self {
        Self::Charger {
            charger: charger.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node { node, problem } => write!(f, "node {node:?}: {problem}"),
            Self::Charger { charger, problem } => write!(f, "charger {charger:?}: {problem}"),
            Self::Site(problem) => write!(f, "site: {problem}"),
        }
    }
}

impl std::error::Error for Error {}
