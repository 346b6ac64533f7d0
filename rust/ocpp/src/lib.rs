//! Sans-I/O OCPP-J codec for OCPP 1.6J, 2.0.1 and 2.1.
//!
//! * [`Codec::decode`] parses one WebSocket text frame into a [`Message`], validating CALL
//!   payloads against the official OCA JSON schema of their action;
//!   [`Codec::bind_result`] validates a CALLRESULT against the response schema of the CALL it
//!   answers.
//! * Every bad input yields an [`OcppError`] carrying the [`ErrorKind`] the specification
//!   names for the case; [`ErrorKind::code`] spells it as the negotiated [`Version`] does.
//! * `Codec::encode_*` validate and serialize frames as compact JSON.
//! * [`Codec::decode_fast`] is a single-pass fast path for valid CALL/CALLRESULT/SEND frames that
//!   builds the caller's own values through a [`Sink`] (the Python binding builds dicts and
//!   lists directly); anything it is unsure about is left to [`Codec::decode`].
//!
//! The crate never panics on input: size and nesting are bounded before any recursion, and
//! every failure is a `Result`.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod codec;
mod error;
mod format;
pub mod hash;
mod json;
mod schema;
mod stream;
mod version;

pub use codec::{Codec, CodecOptions, ConfigError, EncodeError, Message};
pub use error::{truncate_chars, ErrorKind, OcppError};
pub use jiter::{JsonArray, JsonObject, JsonValue};
pub use json::{depth, write_json, write_json_string};
pub use schema::{all_schemas_compile, SchemaError};
pub use stream::{FastMessage, FastMessageOf, FastOutcome, Sink};
pub use version::Version;

/// Frames longer than this many bytes are refused before parsing. A full SendLocalList of a
/// large site runs to a few MiB; SteVe caps frames at 8 MB, so 4 MiB leaves headroom while
/// bounding memory per frame.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Frames nested deeper than this (arrays and objects; the frame array counts as 1) are
/// refused. The deepest official payload (2.x ReportChargingProfiles) is 13 levels, 14 in its
/// frame, before open-ended customData; 32 leaves room for vendor extensions.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Upper bound for a configured `max_depth`: jiter refuses input nested deeper than 200 on its
/// own, and every recursive walk in this crate and the binding stays far below stack limits
/// at this depth.
pub const HARD_MAX_DEPTH: usize = 200;

/// OCPP-J (1.6 §4.1.1, 2.0.1 Part 4 §4.1.3): a message id is a string of at most 36
/// characters (a UUID in its text form).
pub const MAX_MESSAGE_ID_LENGTH: usize = 36;

/// OCPP 2.0.1 Part 4 §4.2.3: an error description has at most 255 characters. Applied to
/// every version, since 1.6 peers gain nothing from longer texts.
pub const MAX_DESCRIPTION_CHARS: usize = 255;
