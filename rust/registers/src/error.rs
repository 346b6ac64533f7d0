//! Errors: a bad layout (refused when it is built) and a bad block (refused when decoded).
//! Every message names the value concerned.

use std::fmt;

/// Why a layout was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum LayoutError {
    /// An unknown type name.
    UnknownType { name: String, given: String },
    /// An unknown word order name.
    UnknownWordOrder { name: String, given: String },
    /// A register count that does not fit the type (or 0 for a string).
    BadCount {
        name: String,
        type_name: &'static str,
        count: usize,
    },
    /// A value reaching past the Modbus address space.
    OutOfRange {
        name: String,
        offset: usize,
        count: usize,
    },
    /// A scale that is NaN or infinite.
    BadScale { name: String, scale: f64 },
    /// Hex formatting asked of a type that is not an integer.
    HexNotInteger {
        name: String,
        type_name: &'static str,
    },
    /// Two values with one name (a dict would silently keep only one of them).
    DuplicateName { name: String },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::UnknownType { name, given } => write!(
                f,
                "{name}: unknown register type {given:?} (u16, i16, u32, i32, u64, i64, f32, \
                 f64, string)"
            ),
            LayoutError::UnknownWordOrder { name, given } => {
                write!(f, "{name}: unknown word order {given:?} (big, little)")
            }
            LayoutError::BadCount {
                name,
                type_name,
                count,
            } => write!(f, "{name}: {count} registers do not fit type {type_name}"),
            LayoutError::OutOfRange {
                name,
                offset,
                count,
            } => write!(
                f,
                "{name}: {count} registers at offset {offset} reach past the {} registers of \
                 the Modbus address space",
                crate::MAX_BLOCK_REGISTERS
            ),
            LayoutError::BadScale { name, scale } => {
                write!(f, "{name}: scale {scale} is not a finite number")
            }
            LayoutError::HexNotInteger { name, type_name } => {
                write!(
                    f,
                    "{name}: hex format needs an integer type, not {type_name}"
                )
            }
            LayoutError::DuplicateName { name } => write!(f, "{name}: two values with this name"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// What is wrong with a block.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeErrorKind {
    /// The block ends before the value does.
    BlockTooShort {
        offset: usize,
        count: usize,
        block_len: usize,
    },
    /// A string holding bytes other than printable ASCII before its first NUL.
    BadString { bytes: Vec<u8> },
    /// A float register holding NaN or an infinity.
    NonFinite { value: f64 },
}

/// A block that cannot be decoded, naming the value that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// The name of the value that failed.
    pub name: String,
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.kind {
            DecodeErrorKind::BlockTooShort {
                offset,
                count,
                block_len,
            } => write!(
                f,
                "{name}: needs registers {offset}..{} of the block, which has {block_len}",
                offset.saturating_add(*count)
            ),
            DecodeErrorKind::BadString { bytes } => {
                let shown: String = bytes
                    .iter()
                    .flat_map(|b| std::ascii::escape_default(*b))
                    .map(char::from)
                    .collect();
                write!(
                    f,
                    "{name}: string registers hold non-printable or non-ASCII bytes b\"{shown}\""
                )
            }
            DecodeErrorKind::NonFinite { value } => {
                write!(f, "{name}: value {value} is not a finite number")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A block of a batch that cannot be decoded: its position in the batch and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchError {
    pub index: usize,
    pub error: DecodeError,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block {}: {}", self.index, self.error)
    }
}

impl std::error::Error for BatchError {}
