//! OCPP CallError codes and the error a bad frame or payload produces.

use std::fmt;

use crate::json::write_json_string;
use crate::version::Version;
use crate::MAX_DESCRIPTION_CHARS;

/// What went wrong, independent of the version's spelling of the CallError code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Syntactically bad payload or PDU: FormationViolation (1.6) / FormatViolation (2.x).
    FormatViolation,
    /// Incomplete frame or wrong frame structure.
    ProtocolError,
    /// Missing required field or wrong number of items: OccurenceConstraintViolation (1.6,
    /// misspelling frozen by the errata) / OccurrenceConstraintViolation (2.x).
    OccurrenceConstraintViolation,
    /// A value outside its enum, length, range, format or multiple.
    PropertyConstraintViolation,
    /// A value of the wrong JSON type.
    TypeConstraintViolation,
    /// Action unknown to the version.
    NotImplemented,
    /// Action known to the version but not supported here.
    NotSupported,
    /// Not a valid RPC frame. 1.6 has no such code and answers FormationViolation.
    RpcFrameworkError,
    /// Unknown message type number (2.x). 1.6 ignores such frames.
    MessageTypeNotSupported,
    /// The receiver failed while processing.
    InternalError,
    /// Security problem.
    SecurityError,
    /// Anything else.
    GenericError,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::FormatViolation,
        ErrorKind::ProtocolError,
        ErrorKind::OccurrenceConstraintViolation,
        ErrorKind::PropertyConstraintViolation,
        ErrorKind::TypeConstraintViolation,
        ErrorKind::NotImplemented,
        ErrorKind::NotSupported,
        ErrorKind::RpcFrameworkError,
        ErrorKind::MessageTypeNotSupported,
        ErrorKind::InternalError,
        ErrorKind::SecurityError,
        ErrorKind::GenericError,
    ];

    /// The CallError code as `version` spells it. For [`ErrorKind::MessageTypeNotSupported`]
    /// on 1.6, which defines no such code, this is "MessageTypeNotSupported" anyway: such an
    /// error is never sent (see [`ErrorKind::sendable`]).
    pub fn code(self, version: Version) -> &'static str {
        let v16 = version == Version::V16;
        match self {
            ErrorKind::FormatViolation if v16 => "FormationViolation",
            ErrorKind::FormatViolation => "FormatViolation",
            ErrorKind::ProtocolError => "ProtocolError",
            ErrorKind::OccurrenceConstraintViolation if v16 => "OccurenceConstraintViolation",
            ErrorKind::OccurrenceConstraintViolation => "OccurrenceConstraintViolation",
            ErrorKind::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorKind::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorKind::NotImplemented => "NotImplemented",
            ErrorKind::NotSupported => "NotSupported",
            ErrorKind::RpcFrameworkError if v16 => "FormationViolation",
            ErrorKind::RpcFrameworkError => "RpcFrameworkError",
            ErrorKind::MessageTypeNotSupported => "MessageTypeNotSupported",
            ErrorKind::InternalError => "InternalError",
            ErrorKind::SecurityError => "SecurityError",
            ErrorKind::GenericError => "GenericError",
        }
    }

    /// Whether `version` can put this kind on the wire (1.6 has no MessageTypeNotSupported).
    pub fn sendable(self, version: Version) -> bool {
        !(version == Version::V16 && self == ErrorKind::MessageTypeNotSupported)
    }

    /// The kind of a CallError code, accepting the spelling of every version
    /// ("FormationViolation" and "FormatViolation", "OccurenceConstraintViolation" and
    /// "OccurrenceConstraintViolation"). 1.6's "FormationViolation" maps to
    /// [`ErrorKind::FormatViolation`].
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        Some(match code {
            "FormationViolation" | "FormatViolation" => ErrorKind::FormatViolation,
            "ProtocolError" => ErrorKind::ProtocolError,
            "OccurenceConstraintViolation" | "OccurrenceConstraintViolation" => {
                ErrorKind::OccurrenceConstraintViolation
            }
            "PropertyConstraintViolation" => ErrorKind::PropertyConstraintViolation,
            "TypeConstraintViolation" => ErrorKind::TypeConstraintViolation,
            "NotImplemented" => ErrorKind::NotImplemented,
            "NotSupported" => ErrorKind::NotSupported,
            "RpcFrameworkError" => ErrorKind::RpcFrameworkError,
            "MessageTypeNotSupported" => ErrorKind::MessageTypeNotSupported,
            "InternalError" => ErrorKind::InternalError,
            "SecurityError" => ErrorKind::SecurityError,
            "GenericError" => ErrorKind::GenericError,
            _ => return None,
        })
    }
}

/// A frame or payload that violates OCPP-J, with everything needed to answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcppError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The id to answer with: the frame's own id, or "-1" when it could not be read.
    pub message_id: String,
    /// Human-readable reason, at most [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: String,
    /// False where the specification says to ignore the frame and send nothing.
    pub should_reply: bool,
    /// The error answers a CALLRESULT (2.1: sent as CALLRESULTERROR, type 5).
    pub answers_result: bool,
}

/// The id used when the frame's own id is unreadable (OCPP-J: reply with id "-1").
pub(crate) const UNKNOWN_ID: &str = "-1";

impl OcppError {
    /// A new error that should be answered, description cut to [`MAX_DESCRIPTION_CHARS`].
    pub fn new(kind: ErrorKind, message_id: &str, description: impl Into<String>) -> OcppError {
        let mut description = description.into();
        truncate_chars(&mut description, MAX_DESCRIPTION_CHARS);
        OcppError {
            kind,
            message_id: message_id.to_owned(),
            description,
            should_reply: true,
            answers_result: false,
        }
    }

    /// The same error, marked as not to be answered.
    pub fn silent(mut self) -> OcppError {
        self.should_reply = false;
        self
    }

    /// The CallError code as `version` spells it.
    pub fn code(&self, version: Version) -> &'static str {
        self.kind.code(version)
    }

    /// The frame to send back: `[4, id, code, description, {}]`, or type 5 for an invalid
    /// CALLRESULT on 2.1; None when the error is not to be answered.
    pub fn error_frame(&self, version: Version) -> Option<String> {
        if !self.should_reply || !self.kind.sendable(version) {
            return None;
        }
        let message_type = if self.answers_result { 5 } else { 4 };
        Some(error_frame(
            message_type,
            &self.message_id,
            self.code(version),
            &self.description,
            "{}",
        ))
    }
}

/// Serialize `[type, id, code, description, details]`; `details` is already JSON text.
pub(crate) fn error_frame(
    message_type: u8,
    message_id: &str,
    code: &str,
    description: &str,
    details: &str,
) -> String {
    let mut out = String::with_capacity(32 + message_id.len() + code.len() + description.len());
    out.push('[');
    out.push(char::from(b'0' + message_type % 10));
    out.push(',');
    write_json_string(message_id, &mut out);
    out.push(',');
    write_json_string(code, &mut out);
    out.push(',');
    write_json_string(description, &mut out);
    out.push(',');
    out.push_str(details);
    out.push(']');
    out
}

impl fmt::Display for OcppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.description)
    }
}

impl std::error::Error for OcppError {}

/// Cut `s` to at most `max` characters (not bytes), on a character boundary.
pub fn truncate_chars(s: &mut String, max: usize) {
    if s.len() <= max {
        return; // fewer bytes than the limit, so fewer characters too
    }
    if let Some((cut, _)) = s.char_indices().nth(max) {
        s.truncate(cut);
    }
}
