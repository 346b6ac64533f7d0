//! Framing: OCPP-J frames to [`Message`]s and back, with validation and error mapping.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use jiter::{JsonErrorType, JsonObject, JsonValue};

use crate::error::{error_frame, truncate_chars, ErrorKind, OcppError, UNKNOWN_ID};
use crate::hash::FxBuildHasher;
use crate::json::{deeper_than, snippet, type_name, write_json, write_json_string};
use crate::schema::{Schema, SchemaError};
use crate::version::Version;
use crate::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME_BYTES, HARD_MAX_DEPTH, MAX_DESCRIPTION_CHARS,
    MAX_MESSAGE_ID_LENGTH,
};

mod tables {
    include!(concat!(env!("OUT_DIR"), "/schemas.rs"));
}

/// Embedded schema texts of `version`: (name, request, response), sorted by name. A name with
/// a request schema is an action; a response-only name is not.
pub(crate) fn schema_table(
    version: Version,
) -> &'static [(&'static str, Option<&'static str>, Option<&'static str>)] {
    match version {
        Version::V16 => tables::V16,
        Version::V201 => tables::V201,
        Version::V21 => tables::V21,
    }
}

type Compiled = OnceLock<Result<Schema, SchemaError>>;

/// Lazily compiled schemas of one version, indexed like [`schema_table`].
struct VersionSchemas {
    version: Version,
    /// Action name -> table index, for names with a request schema.
    index: HashMap<&'static str, usize, FxBuildHasher>,
    requests: Vec<Compiled>,
    responses: Vec<Compiled>,
}

impl VersionSchemas {
    fn new(version: Version) -> VersionSchemas {
        let table = schema_table(version);
        let n = table.len();
        VersionSchemas {
            version,
            index: table
                .iter()
                .enumerate()
                .filter(|(_, (_, request, _))| request.is_some())
                .map(|(i, (name, _, _))| (*name, i))
                .collect(),
            requests: (0..n).map(|_| OnceLock::new()).collect(),
            responses: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Index of an action (a name with a request schema).
    fn action_index(&self, action: &str) -> Option<usize> {
        self.index.get(action).copied()
    }

    fn name(&self, index: usize) -> &'static str {
        schema_table(self.version)
            .get(index)
            .map_or("", |(name, _, _)| name)
    }

    /// The compiled request or response schema of an action, None if it has none.
    fn schema(&self, index: usize, response: bool) -> Option<&Result<Schema, SchemaError>> {
        let (_, request_text, response_text) = schema_table(self.version).get(index)?;
        let (text, slot) = if response {
            ((*response_text)?, self.responses.get(index)?)
        } else {
            ((*request_text)?, self.requests.get(index)?)
        };
        Some(slot.get_or_init(|| Schema::compile(text)))
    }
}

static SCHEMAS: [LazyLock<VersionSchemas>; 3] = [
    LazyLock::new(|| VersionSchemas::new(Version::V16)),
    LazyLock::new(|| VersionSchemas::new(Version::V201)),
    LazyLock::new(|| VersionSchemas::new(Version::V21)),
];

fn schemas(version: Version) -> &'static VersionSchemas {
    match version {
        Version::V16 => &SCHEMAS[0],
        Version::V201 => &SCHEMAS[1],
        Version::V21 => &SCHEMAS[2],
    }
}

/// A decoded frame. Strings and payloads borrow from the frame where it had no escapes.
#[derive(Clone, Debug, PartialEq)]
pub enum Message<'a> {
    /// `[2, id, action, payload]`, payload valid against the action's request schema.
    Call {
        message_id: Cow<'a, str>,
        action: &'static str,
        payload: JsonObject<'a>,
    },
    /// `[3, id, payload]`. `action` is set (and the payload validated against its response
    /// schema) once [`Codec::bind_result`] matched it to the CALL it answers.
    CallResult {
        message_id: Cow<'a, str>,
        action: Option<&'static str>,
        payload: JsonObject<'a>,
    },
    /// `[4, id, code, description, details]`, code as received.
    CallError {
        message_id: Cow<'a, str>,
        code: Cow<'a, str>,
        description: Cow<'a, str>,
        details: JsonObject<'a>,
    },
    /// `[5, id, code, description, details]` (2.1).
    CallResultError {
        message_id: Cow<'a, str>,
        code: Cow<'a, str>,
        description: Cow<'a, str>,
        details: JsonObject<'a>,
    },
    /// `[6, id, action, payload]` (2.1), payload valid against the request schema.
    Send {
        message_id: Cow<'a, str>,
        action: &'static str,
        payload: JsonObject<'a>,
    },
}

impl Message<'_> {
    /// The frame's message id.
    pub fn message_id(&self) -> &str {
        match self {
            Message::Call { message_id, .. }
            | Message::CallResult { message_id, .. }
            | Message::CallError { message_id, .. }
            | Message::CallResultError { message_id, .. }
            | Message::Send { message_id, .. } => message_id,
        }
    }
}

/// Settings of a [`Codec`].
#[derive(Clone, Debug)]
pub struct CodecOptions {
    /// Frames longer than this many bytes are refused before parsing.
    pub max_frame_bytes: usize,
    /// Frames nested deeper than this are refused; at most [`HARD_MAX_DEPTH`].
    pub max_depth: usize,
    /// Check `format` (date-time, uri) of strings.
    pub check_formats: bool,
    /// Actions we accept in CALL/SEND; None = every action of the version.
    pub supported_actions: Option<Vec<String>>,
}

impl Default for CodecOptions {
    fn default() -> CodecOptions {
        CodecOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            check_formats: true,
            supported_actions: None,
        }
    }
}

/// Invalid [`CodecOptions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A limit of zero.
    ZeroLimit(&'static str),
    /// `max_depth` above [`HARD_MAX_DEPTH`].
    DepthTooLarge(usize),
    /// A supported action the version does not define.
    UnknownAction(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroLimit(name) => write!(f, "{name} must be positive"),
            ConfigError::DepthTooLarge(d) => {
                write!(f, "max_depth {d} exceeds the hard limit {HARD_MAX_DEPTH}")
            }
            ConfigError::UnknownAction(a) => write!(f, "{a:?} is not an action of this version"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a frame could not be encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum EncodeError {
    /// The payload is invalid (or the action unknown): the error a peer would report.
    Invalid(OcppError),
    /// Bad arguments: empty or over-long message id, unknown error code, non-object payload
    /// or details, non-finite float, SEND before 2.1.
    Argument(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Invalid(e) => e.fmt(f),
            EncodeError::Argument(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for EncodeError {}

/// An OCPP-J codec for one version. Immutable and `Sync`; schemas compile lazily, once per
/// action, shared by every codec of the version.
#[derive(Clone, Debug)]
pub struct Codec {
    version: Version,
    max_frame_bytes: usize,
    max_depth: usize,
    check_formats: bool,
    /// Per schema-table index: accepted in CALL/SEND. None = all.
    supported: Option<Vec<bool>>,
}

impl Codec {
    /// A codec for `version`.
    pub fn new(version: Version, options: CodecOptions) -> Result<Codec, ConfigError> {
        if options.max_frame_bytes == 0 {
            return Err(ConfigError::ZeroLimit("max_frame_bytes"));
        }
        if options.max_depth == 0 {
            return Err(ConfigError::ZeroLimit("max_depth"));
        }
        if options.max_depth > HARD_MAX_DEPTH {
            return Err(ConfigError::DepthTooLarge(options.max_depth));
        }
        let table = schemas(version);
        let supported = match options.supported_actions {
            None => None,
            Some(actions) => {
                let mut mask = vec![false; schema_table(version).len()];
                for action in actions {
                    let index = table
                        .action_index(&action)
                        .ok_or(ConfigError::UnknownAction(action))?;
                    if let Some(slot) = mask.get_mut(index) {
                        *slot = true;
                    }
                }
                Some(mask)
            }
        };
        Ok(Codec {
            version,
            max_frame_bytes: options.max_frame_bytes,
            max_depth: options.max_depth,
            check_formats: options.check_formats,
            supported,
        })
    }

    /// The codec's version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Frame size limit in bytes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Nesting limit.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    pub(crate) fn check_formats(&self) -> bool {
        self.check_formats
    }

    /// Index of an action accepted in CALL/SEND (defined and supported).
    pub(crate) fn accepted_action(&self, action: &str) -> Option<usize> {
        let index = schemas(self.version).action_index(action)?;
        match &self.supported {
            Some(supported) if !supported.get(index).copied().unwrap_or(false) => None,
            _ => Some(index),
        }
    }

    /// Index of an action the version defines (supported or not).
    pub(crate) fn defined_action(&self, action: &str) -> Option<usize> {
        schemas(self.version).action_index(action)
    }

    /// Name and compiled request (or response) schema of an action; the schema is None when
    /// the action has none (a SEND-only action's response). None if it fails to compile.
    pub(crate) fn schema_of(
        &self,
        index: usize,
        response: bool,
    ) -> Option<(&'static str, Option<&'static Schema>)> {
        let table = schemas(self.version);
        match table.schema(index, response) {
            None => Some((table.name(index), None)),
            Some(Ok(schema)) => Some((table.name(index), Some(schema))),
            Some(Err(_)) => None,
        }
    }

    /// Every action the version defines (both directions), sorted.
    pub fn actions(&self) -> Vec<&'static str> {
        schema_table(self.version)
            .iter()
            .filter(|(_, request, _)| request.is_some())
            .map(|(name, _, _)| *name)
            .collect()
    }

    /// Parse and validate one frame. A CALLRESULT comes back unvalidated with `action` None;
    /// pass it to [`Codec::bind_result`] with the action of the pending CALL.
    pub fn decode<'a>(&self, frame: &'a [u8]) -> Result<Message<'a>, OcppError> {
        let rpc = |description: String| {
            OcppError::new(ErrorKind::RpcFrameworkError, UNKNOWN_ID, description)
        };
        if frame.len() > self.max_frame_bytes {
            return Err(rpc(format!(
                "frame of {} bytes exceeds max_frame_bytes ({})",
                frame.len(),
                self.max_frame_bytes
            )));
        }
        // jiter parses without recursion and stops at 200 levels, above HARD_MAX_DEPTH.
        let value = JsonValue::parse(frame, false).map_err(|e| {
            if e.error_type == JsonErrorType::RecursionLimitExceeded {
                rpc(self.depth_message())
            } else {
                rpc(format!("invalid JSON: {}", e.description(frame)))
            }
        })?;
        let JsonValue::Array(items) = value else {
            return Err(rpc(format!(
                "frame must be a JSON array, got {}",
                type_name(&value)
            )));
        };
        let message_type = match items.first() {
            Some(JsonValue::Int(t)) => *t,
            Some(other) => {
                return Err(rpc(format!(
                    "message type must be an integer, got {}",
                    type_name(other)
                )))
            }
            None => return Err(rpc("frame is an empty array".to_owned())),
        };
        let known = match message_type {
            2..=4 => true,
            5 | 6 => self.version.has_send(),
            _ => false,
        };
        let id = match items.get(1) {
            Some(JsonValue::Str(id)) if valid_id(id) => Some(id),
            _ => None,
        };
        if !known {
            let err = OcppError::new(
                ErrorKind::MessageTypeNotSupported,
                id.map_or(UNKNOWN_ID, |id| id.as_ref()),
                format!(
                    "message type {} is not supported by {}",
                    message_type, self.version
                ),
            );
            // OCPP-J 1.6 §4.1.3: a frame of unknown type is ignored.
            return Err(if self.version == Version::V16 {
                err.silent()
            } else {
                err
            });
        }
        let Some(id) = id else {
            return Err(rpc(match items.get(1) {
                Some(JsonValue::Str(id)) if id.is_empty() => "message id is empty".to_owned(),
                Some(JsonValue::Str(_)) => {
                    format!("message id longer than {MAX_MESSAGE_ID_LENGTH} characters")
                }
                Some(other) => format!("message id must be a string, got {}", type_name(other)),
                None => "message id missing".to_owned(),
            }));
        };
        let id_text = id.to_string();
        if deeper_than(&JsonValue::Array(items.clone()), self.max_depth) {
            return Err(rpc(self.depth_message()));
        }
        // SEND (2.1) is never answered, not even with an error; nor is a broken CALLERROR or
        // CALLRESULTERROR (an error about an error helps nobody, and no version defines one).
        let quiet = |e: OcppError| {
            if matches!(message_type, 4..=6) {
                e.silent()
            } else {
                e
            }
        };
        // A broken CALLRESULT is an invalid CALLRESULT: answered with CALLRESULTERROR on 2.1,
        // logged and not answered before (as for a schema failure, see `bind_result`).
        let bad_result = |mut e: OcppError| {
            e.answers_result = true;
            e.should_reply = self.version.has_send();
            e
        };
        let items: Vec<JsonValue<'a>> = Arc::unwrap_or_clone(items);
        match message_type {
            2 | 6 => {
                let name = if message_type == 2 { "CALL" } else { "SEND" };
                let [_, id, action, payload] =
                    self.shape::<4>(items, &id_text, name).map_err(quiet)?;
                let JsonValue::Str(action) = action else {
                    return Err(quiet(OcppError::new(
                        ErrorKind::ProtocolError,
                        &id_text,
                        format!("{name} action must be a string, got {}", type_name(&action)),
                    )));
                };
                let payload = payload_object(payload, &id_text).map_err(quiet)?;
                let action = self
                    .check_call(&action, &payload, &id_text)
                    .map_err(quiet)?;
                let message_id = into_str(id);
                Ok(if message_type == 2 {
                    Message::Call {
                        message_id,
                        action,
                        payload,
                    }
                } else {
                    Message::Send {
                        message_id,
                        action,
                        payload,
                    }
                })
            }
            3 => {
                let [_, id, payload] = self
                    .shape::<3>(items, &id_text, "CALLRESULT")
                    .map_err(bad_result)?;
                let payload = payload_object(payload, &id_text).map_err(bad_result)?;
                Ok(Message::CallResult {
                    message_id: into_str(id),
                    action: None,
                    payload,
                })
            }
            _ => {
                let name = if message_type == 4 {
                    "CALLERROR"
                } else {
                    "CALLRESULTERROR"
                };
                let [_, id, code, description, details] =
                    self.shape::<5>(items, &id_text, name).map_err(quiet)?;
                let protocol = |what: &str, v: &JsonValue<'_>| {
                    quiet(OcppError::new(
                        ErrorKind::ProtocolError,
                        &id_text,
                        format!("{name} {what}, got {}", type_name(v)),
                    ))
                };
                let JsonValue::Str(code) = code else {
                    return Err(protocol("error code must be a string", &code));
                };
                let JsonValue::Str(description) = description else {
                    return Err(protocol("error description must be a string", &description));
                };
                let JsonValue::Object(details) = details else {
                    return Err(protocol("error details must be an object", &details));
                };
                // The peer's code is data, kept as received (either spelling, or even a code
                // no version defines): rejecting it would only lose the peer's answer.
                let message_id = into_str(id);
                Ok(if message_type == 4 {
                    Message::CallError {
                        message_id,
                        code,
                        description,
                        details,
                    }
                } else {
                    Message::CallResultError {
                        message_id,
                        code,
                        description,
                        details,
                    }
                })
            }
        }
    }

    fn depth_message(&self) -> String {
        format!("frame nested deeper than max_depth ({})", self.max_depth)
    }

    /// The frame's elements as an array of exactly `N`, or ProtocolError.
    fn shape<'a, const N: usize>(
        &self,
        items: Vec<JsonValue<'a>>,
        id: &str,
        name: &str,
    ) -> Result<[JsonValue<'a>; N], OcppError> {
        <[JsonValue<'a>; N]>::try_from(items).map_err(|items| {
            OcppError::new(
                ErrorKind::ProtocolError,
                id,
                format!("{name} must have {N} elements, got {}", items.len()),
            )
        })
    }

    /// Check a CALL/SEND action and its payload; returns the action's static name.
    fn check_call(
        &self,
        action: &str,
        payload: &JsonObject<'_>,
        id: &str,
    ) -> Result<&'static str, OcppError> {
        let table = schemas(self.version);
        let Some(index) = table.action_index(action) else {
            return Err(OcppError::new(
                ErrorKind::NotImplemented,
                id,
                format!(
                    "action {} is not defined in {}",
                    quote(action),
                    self.version
                ),
            ));
        };
        if let Some(supported) = &self.supported {
            if !supported.get(index).copied().unwrap_or(false) {
                return Err(OcppError::new(
                    ErrorKind::NotSupported,
                    id,
                    format!("action {} is not supported", quote(action)),
                ));
            }
        }
        self.check_payload(index, payload, false, id)?;
        Ok(table.name(index))
    }

    fn check_payload(
        &self,
        index: usize,
        payload: &JsonObject<'_>,
        response: bool,
        id: &str,
    ) -> Result<(), OcppError> {
        let table = schemas(self.version);
        match table.schema(index, response) {
            // No schema (a SEND-only action has no response): nothing to check.
            None => Ok(()),
            Some(Err(e)) => Err(OcppError::new(
                ErrorKind::InternalError,
                id,
                format!("schema of {} failed to compile: {e}", table.name(index)),
            )),
            Some(Ok(schema)) => schema
                .validate(&JsonValue::Object(payload.clone()), self.check_formats)
                .map_err(|v| OcppError::new(v.kind, id, v.describe())),
        }
    }

    /// Validate a CALLRESULT against the response schema of `action`, the action of the
    /// pending CALL with the same id, and record the action in it. On failure the error is
    /// answered only on 2.1 (as CALLRESULTERROR); earlier versions log it and fail the call.
    /// Other messages pass through unchanged.
    pub fn bind_result<'a>(
        &self,
        message: Message<'a>,
        action: &str,
    ) -> Result<Message<'a>, OcppError> {
        let Message::CallResult {
            message_id,
            payload,
            ..
        } = message
        else {
            return Ok(message);
        };
        let table = schemas(self.version);
        let Some(index) = table.action_index(action) else {
            return Err(OcppError::new(
                ErrorKind::NotImplemented,
                &message_id,
                format!(
                    "pending action {} is not defined in {}",
                    quote(action),
                    self.version
                ),
            )
            .silent());
        };
        if let Err(mut e) = self.check_payload(index, &payload, true, &message_id) {
            e.answers_result = true;
            e.should_reply = self.version.has_send();
            return Err(e);
        }
        Ok(Message::CallResult {
            message_id,
            action: Some(table.name(index)),
            payload,
        })
    }

    /// Validate a payload against the request (or response) schema of `action`. Errors carry
    /// message id "-1" and are not to be answered.
    pub fn validate(
        &self,
        action: &str,
        payload: &JsonValue<'_>,
        response: bool,
    ) -> Result<(), OcppError> {
        self.validate_for(action, payload, response, UNKNOWN_ID)
            .map(|_| ())
    }

    fn validate_for(
        &self,
        action: &str,
        payload: &JsonValue<'_>,
        response: bool,
        id: &str,
    ) -> Result<&'static str, OcppError> {
        let silent = |e: OcppError| e.silent();
        let table = schemas(self.version);
        let Some(index) = table.action_index(action) else {
            return Err(silent(OcppError::new(
                ErrorKind::NotImplemented,
                id,
                format!(
                    "action {} is not defined in {}",
                    quote(action),
                    self.version
                ),
            )));
        };
        if self.deeper(payload) {
            return Err(silent(OcppError::new(
                ErrorKind::RpcFrameworkError,
                id,
                self.depth_message(),
            )));
        }
        let JsonValue::Object(payload) = payload else {
            return Err(silent(OcppError::new(
                ErrorKind::FormatViolation,
                id,
                format!("payload must be a JSON object, got {}", type_name(payload)),
            )));
        };
        self.check_payload(index, payload, response, id)
            .map_err(silent)?;
        Ok(table.name(index))
    }

    /// A payload sits at depth 2 of its frame.
    fn deeper(&self, payload: &JsonValue<'_>) -> bool {
        deeper_than(payload, self.max_depth.saturating_sub(1))
    }

    /// Serialize `[2, id, action, payload]` after validating the payload.
    pub fn encode_call(
        &self,
        message_id: &str,
        action: &str,
        payload: &JsonValue<'_>,
    ) -> Result<String, EncodeError> {
        self.encode_request(2, message_id, action, payload)
    }

    /// Serialize `[6, id, action, payload]` (2.1 only) after validating the payload.
    pub fn encode_send(
        &self,
        message_id: &str,
        action: &str,
        payload: &JsonValue<'_>,
    ) -> Result<String, EncodeError> {
        if !self.version.has_send() {
            return Err(EncodeError::Argument(format!(
                "SEND does not exist in {}",
                self.version
            )));
        }
        self.encode_request(6, message_id, action, payload)
    }

    fn encode_request(
        &self,
        message_type: u8,
        message_id: &str,
        action: &str,
        payload: &JsonValue<'_>,
    ) -> Result<String, EncodeError> {
        check_id(message_id)?;
        let action = self
            .validate_for(action, payload, false, message_id)
            .map_err(EncodeError::Invalid)?;
        let mut out = String::with_capacity(64);
        out.push('[');
        out.push(char::from(b'0' + message_type));
        out.push(',');
        write_json_string(message_id, &mut out);
        out.push(',');
        write_json_string(action, &mut out);
        out.push(',');
        write_payload(payload, &mut out)?;
        out.push(']');
        Ok(out)
    }

    /// Serialize `[3, id, payload]` after validating the payload against `action`'s
    /// response schema.
    pub fn encode_result(
        &self,
        message_id: &str,
        action: &str,
        payload: &JsonValue<'_>,
    ) -> Result<String, EncodeError> {
        check_id(message_id)?;
        self.validate_for(action, payload, true, message_id)
            .map_err(EncodeError::Invalid)?;
        let mut out = String::with_capacity(64);
        out.push_str("[3,");
        write_json_string(message_id, &mut out);
        out.push(',');
        write_payload(payload, &mut out)?;
        out.push(']');
        Ok(out)
    }

    /// Serialize `[4, id, code, description, details]`. `code` may be in either spelling and
    /// is written as this version spells it; 1.6 cannot send MessageTypeNotSupported. The
    /// description is cut to 255 characters.
    pub fn encode_error(
        &self,
        message_id: &str,
        code: &str,
        description: &str,
        details: Option<&JsonValue<'_>>,
    ) -> Result<String, EncodeError> {
        check_id(message_id)?;
        let kind = ErrorKind::from_code(code)
            .filter(|k| k.sendable(self.version))
            .ok_or_else(|| {
                EncodeError::Argument(format!(
                    "{} is not an error code of {}",
                    quote(code),
                    self.version
                ))
            })?;
        let mut description = description.to_owned();
        truncate_chars(&mut description, MAX_DESCRIPTION_CHARS);
        let mut details_text = String::new();
        match details {
            None => details_text.push_str("{}"),
            Some(d) => {
                if self.deeper(d) {
                    return Err(EncodeError::Argument(self.depth_message()));
                }
                write_payload(d, &mut details_text)?;
            }
        }
        Ok(error_frame(
            4,
            message_id,
            kind.code(self.version),
            &description,
            &details_text,
        ))
    }
}

fn write_payload(payload: &JsonValue<'_>, out: &mut String) -> Result<(), EncodeError> {
    if !matches!(payload, JsonValue::Object(_)) {
        return Err(EncodeError::Argument(format!(
            "expected a JSON object, got {}",
            type_name(payload)
        )));
    }
    write_json(payload, out)
        .map_err(|f| EncodeError::Argument(format!("{} cannot be written as JSON", f.0)))
}

pub(crate) fn valid_id(id: &str) -> bool {
    // Byte length bounds the character count from above; count only when it may matter.
    !id.is_empty()
        && (id.len() <= MAX_MESSAGE_ID_LENGTH || id.chars().count() <= MAX_MESSAGE_ID_LENGTH)
}

fn check_id(id: &str) -> Result<(), EncodeError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(EncodeError::Argument(format!(
            "message id must be 1 to {MAX_MESSAGE_ID_LENGTH} characters, got {}",
            id.chars().count()
        )))
    }
}

fn payload_object<'a>(payload: JsonValue<'a>, id: &str) -> Result<JsonObject<'a>, OcppError> {
    match payload {
        JsonValue::Object(members) => Ok(members),
        other => Err(OcppError::new(
            ErrorKind::FormatViolation,
            id,
            format!("payload must be a JSON object, got {}", type_name(&other)),
        )),
    }
}

fn into_str(value: JsonValue<'_>) -> Cow<'_, str> {
    match value {
        JsonValue::Str(s) => s,
        _ => Cow::Borrowed(""),
    }
}

/// A name from the input, quoted and cut for a description.
fn quote(s: &str) -> String {
    snippet(&JsonValue::Str(Cow::Borrowed(s)))
}
