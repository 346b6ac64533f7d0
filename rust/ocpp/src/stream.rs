//! Single-pass fast path for valid CALL, CALLRESULT and SEND frames: parse with jiter's iterator API,
//! validate against the compiled schema and build the caller's values (e.g. Python objects)
//! in one go, without an intermediate tree.
//!
//! [`Codec::decode_fast`] only ever answers "valid, here it is" or "not sure": anything
//! unusual (an invalid payload, another message type, a big integer, any JSON error) returns
//! `Ok(None)`, and the caller runs [`Codec::decode`], which produces the message or the
//! precise error. [`Codec::decode_single_pass`] also answers the commonest error, a schema
//! violation in an otherwise well-formed frame: once the builder meets a violation it stops
//! building and only checks the rest of the frame (`schema::scan`), so as to report the
//! violation the tree path's validator gives first (same precedence, message and path).
//! [`Codec::diagnose`] does that check alone, from the start of the frame. Property tests
//! check that every answer agrees with the tree path.

use jiter::{Jiter, JiterError, NumberAny, NumberInt, Peek};

use crate::error::OcppError;
use crate::schema::{Schema, Violation};

/// Builds values for [`Codec::decode_fast`].
pub trait Sink {
    /// Any JSON value.
    type Value;
    /// An object key.
    type Key;
    /// An object under construction (also the payload's type).
    type Object;
    /// An array under construction.
    type Array;
    /// A failure of the sink itself (e.g. out of memory); aborts decoding.
    type Error;

    /// JSON null.
    fn null(&mut self) -> Result<Self::Value, Self::Error>;
    /// JSON true/false.
    fn bool(&mut self, b: bool) -> Result<Self::Value, Self::Error>;
    /// An integer within i64.
    fn int(&mut self, i: i64) -> Result<Self::Value, Self::Error>;
    /// A number with a fraction or exponent.
    fn float(&mut self, f: f64) -> Result<Self::Value, Self::Error>;
    /// A string value.
    fn str(&mut self, s: &str) -> Result<Self::Value, Self::Error>;
    /// A string value validated against a schema `enum`: one of a small fixed set, so worth
    /// caching (unlike arbitrary strings, which a peer controls).
    fn enum_str(&mut self, s: &str) -> Result<Self::Value, Self::Error> {
        self.str(s)
    }
    /// An object key.
    fn key(&mut self, k: &str) -> Result<Self::Key, Self::Error>;
    /// Start an object.
    fn new_object(&mut self) -> Result<Self::Object, Self::Error>;
    /// Add a member (a repeated key replaces the earlier value, as in the tree path).
    fn set(
        &mut self,
        object: &mut Self::Object,
        key: Self::Key,
        value: Self::Value,
    ) -> Result<(), Self::Error>;
    /// Finish an object nested in the payload.
    fn object(&mut self, object: Self::Object) -> Result<Self::Value, Self::Error>;
    /// Start an array.
    fn new_array(&mut self) -> Result<Self::Array, Self::Error>;
    /// Append to an array.
    fn push(&mut self, array: &mut Self::Array, value: Self::Value) -> Result<(), Self::Error>;
    /// Finish an array.
    fn array(&mut self, array: Self::Array) -> Result<Self::Value, Self::Error>;
    /// The action of our pending CALL with this id, if any (asked for CALLRESULTs).
    fn pending_action(&mut self, _message_id: &str) -> Result<Option<String>, Self::Error> {
        Ok(None)
    }
    /// [`Sink::pending_action`] handed to `f`, given also the id as this sink built it (a
    /// sink may look it up without converting the text again, or borrow the action).
    fn with_pending_action<R>(
        &mut self,
        _id_value: &Self::Value,
        message_id: &str,
        f: impl FnOnce(Option<&str>) -> R,
    ) -> Result<R, Self::Error> {
        let action = self.pending_action(message_id)?;
        Ok(f(action.as_deref()))
    }
}

/// A valid CALL, CALLRESULT or (2.1) SEND decoded by the fast path.
pub struct FastMessage<V, O> {
    /// 2 (CALL), 3 (CALLRESULT) or 6 (SEND).
    pub message_type: i64,
    /// The message id, built as a string value.
    pub message_id: V,
    /// The action; for a CALLRESULT the pending CALL's, None when nobody waits for it (then
    /// the payload is unvalidated).
    pub action: Option<&'static str>,
    /// The payload, valid against the action's request (or response) schema.
    pub payload: O,
}

/// The [`FastMessage`] a sink builds.
pub type FastMessageOf<S> = FastMessage<<S as Sink>::Value, <S as Sink>::Object>;

/// Why the fast path stopped.
pub(crate) enum Stop<E> {
    /// Not a frame the fast path accepts: use the tree path.
    Fallback,
    /// The sink failed.
    Sink(E),
    /// The payload violates its schema: the violation the tree path reports.
    Invalid(Violation),
    /// The frame's error, as the tree path gives it.
    Refused(OcppError),
}

/// What [`Codec::decode_single_pass`] made of a frame.
pub enum FastOutcome<S: Sink> {
    /// A valid CALL, CALLRESULT or SEND.
    Message(FastMessageOf<S>),
    /// A well-formed frame whose payload violates its schema: the error to report.
    Invalid(OcppError),
    /// Anything else: use [`Codec::decode`].
    Unsure,
}

impl<E> From<JiterError> for Stop<E> {
    fn from(_: JiterError) -> Self {
        Stop::Fallback
    }
}

/// Lift a sink result into the fast path's error type.
pub(crate) fn sink<T, E>(r: Result<T, E>) -> Result<T, Stop<E>> {
    r.map_err(Stop::Sink)
}

use crate::codec::Codec;

impl Codec {
    /// Decode a valid CALL, CALLRESULT or (2.1) SEND in one pass, building its id and payload
    /// with `sink`. A CALLRESULT asks [`Sink::pending_action`] for the action of the CALL it
    /// answers and is validated against that action's response schema. `Ok(None)`: the frame
    /// is something else or invalid; call [`Codec::decode`] (and [`Codec::bind_result`]) for
    /// the message or its error. `Err`: the sink failed.
    pub fn decode_fast<S: Sink>(
        &self,
        frame: &[u8],
        sink: &mut S,
    ) -> Result<Option<FastMessageOf<S>>, S::Error> {
        match self.fast_message(frame, sink) {
            Ok(message) => Ok(Some(message)),
            Err(Stop::Fallback | Stop::Invalid(_) | Stop::Refused(_)) => Ok(None),
            Err(Stop::Sink(e)) => Err(e),
        }
    }

    /// [`Codec::decode_fast`], and when the frame is a well-formed CALL, CALLRESULT or SEND
    /// whose payload violates its schema, the error [`Codec::decode`] (then
    /// [`Codec::bind_result`]) gives for it, found in the same single pass.
    pub fn decode_single_pass<S: Sink>(
        &self,
        frame: &[u8],
        sink: &mut S,
    ) -> Result<FastOutcome<S>, S::Error> {
        match self.fast_message(frame, sink) {
            Ok(message) => Ok(FastOutcome::Message(message)),
            Err(Stop::Fallback) => Ok(FastOutcome::Unsure),
            // A violation escaping `fast_message` lacked the frame's context.
            Err(Stop::Invalid(_)) => Ok(FastOutcome::Unsure),
            Err(Stop::Refused(error)) => Ok(FastOutcome::Invalid(error)),
            Err(Stop::Sink(e)) => Err(e),
        }
    }

    /// Read a frame's head up to its message id: within the size limit, an array whose first
    /// element is a message type the single pass handles (2, 3, or 6 where the version has
    /// SEND), followed by a string. Returns the message type with `jiter` at the id; anything
    /// else is `Stop::Fallback`, left to the tree path, which names the exact error.
    fn frame_head<E>(&self, frame: &[u8], jiter: &mut Jiter<'_>) -> Result<i64, Stop<E>> {
        // The frame array is level 1 and the payload level 2 of the depth limit.
        if frame.len() > self.max_frame_bytes() || self.max_depth() < 2 {
            return Err(Stop::Fallback);
        }
        if jiter.peek()? != Peek::Array {
            return Err(Stop::Fallback);
        }
        let Some(first) = jiter.known_array()? else {
            return Err(Stop::Fallback);
        };
        if !first.is_num() {
            return Err(Stop::Fallback);
        }
        let message_type = match jiter.known_number(first)? {
            NumberAny::Int(NumberInt::Int(t @ (2 | 3))) => t,
            NumberAny::Int(NumberInt::Int(6)) if self.version().has_send() => 6,
            _ => return Err(Stop::Fallback),
        };
        if jiter.array_step()? != Some(Peek::String) {
            return Err(Stop::Fallback);
        }
        Ok(message_type)
    }

    fn fast_message<S: Sink>(
        &self,
        frame: &[u8],
        s: &mut S,
    ) -> Result<FastMessageOf<S>, Stop<S::Error>> {
        let mut jiter = Jiter::new(frame);
        let message_type = self.frame_head(frame, &mut jiter)?;
        let id_start = jiter.current_index();
        let (message_id, pending) = {
            let id = jiter.known_str()?;
            if !crate::codec::valid_id(id) {
                return Err(Stop::Fallback);
            }
            let value = sink(s.str(id))?;
            let pending = if message_type == 3 {
                // An action the version lacks is an error only the tree path describes.
                sink(s.with_pending_action(&value, id, |name| {
                    name.map(|name| self.defined_action(name).ok_or(()))
                }))?
            } else {
                None
            };
            (value, pending)
        };
        let (action, schema) = if message_type == 3 {
            match pending {
                None => (None, None),
                Some(Err(())) => return Err(Stop::Fallback),
                Some(Ok(index)) => {
                    let (action, schema) = self.schema_of(index, true).ok_or(Stop::Fallback)?;
                    (Some(action), schema)
                }
            }
        } else {
            if jiter.array_step()? != Some(Peek::String) {
                return Err(Stop::Fallback);
            }
            let index = {
                let action = jiter.known_str()?;
                self.accepted_action(action).ok_or(Stop::Fallback)?
            };
            let (action, schema) = self.schema_of(index, false).ok_or(Stop::Fallback)?;
            (Some(action), schema)
        };
        if jiter.array_step()? != Some(Peek::Object) {
            return Err(Stop::Fallback);
        }
        let depth_left = self.max_depth() - 1;
        let payload = match schema {
            Some(schema) => {
                match schema.build_payload(&mut jiter, s, self.check_formats(), depth_left) {
                    Ok(payload) => payload,
                    Err(Stop::Invalid(violation)) => {
                        // The rest of the frame must be as the tree path wants it, or its
                        // error comes first.
                        if jiter.array_step()?.is_some() {
                            return Err(Stop::Fallback);
                        }
                        jiter.finish()?;
                        // The id as written (one without escapes: else not worth it).
                        let raw = frame.get(id_start.saturating_add(1)..).unwrap_or_default();
                        let end = raw
                            .iter()
                            .position(|&b| b == b'"' || b == b'\\')
                            .filter(|&end| raw.get(end) == Some(&b'"'))
                            .ok_or(Stop::Fallback)?;
                        let id = raw.get(..end).ok_or(Stop::Fallback)?;
                        let id = std::str::from_utf8(id).map_err(|_| Stop::Fallback)?;
                        return Err(Stop::Refused(self.violation_error(
                            violation,
                            message_type,
                            id,
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
            // A result nobody waits for (or an action without response schema): unvalidated.
            None => Schema::build_unconstrained(&mut jiter, s, depth_left)?,
        };
        if jiter.array_step()?.is_some() {
            return Err(Stop::Fallback);
        }
        jiter.finish()?;
        Ok(FastMessage {
            message_type,
            message_id,
            action,
            payload,
        })
    }
}

impl Codec {
    /// The error [`Codec::decode`] (then [`Codec::bind_result`] with the action
    /// [`Sink::pending_action`] gives) returns for a CALL, CALLRESULT or SEND whose frame is
    /// well formed but whose payload violates its schema, found in one pass over the frame
    /// without building anything. `Ok(None)`: something else or not sure; use the tree path.
    /// Meant for frames [`Codec::decode_fast`] refused.
    pub fn diagnose<S: Sink>(
        &self,
        frame: &[u8],
        sink: &mut S,
    ) -> Result<Option<OcppError>, S::Error> {
        match self.scan_frame(frame, sink) {
            Ok(error) | Err(Stop::Refused(error)) => Ok(Some(error)),
            Err(Stop::Fallback | Stop::Invalid(_)) => Ok(None),
            Err(Stop::Sink(e)) => Err(e),
        }
    }

    fn scan_frame<S: Sink>(&self, frame: &[u8], s: &mut S) -> Result<OcppError, Stop<S::Error>> {
        let mut jiter = Jiter::new(frame);
        let message_type = self.frame_head(frame, &mut jiter)?;
        let id = jiter.known_str()?;
        if !crate::codec::valid_id(id) {
            return Err(Stop::Fallback);
        }
        let id = id.to_owned();
        let schema = if message_type == 3 {
            let name = sink(s.pending_action(&id))?.ok_or(Stop::Fallback)?;
            let index = self.defined_action(&name).ok_or(Stop::Fallback)?;
            self.schema_of(index, true).ok_or(Stop::Fallback)?.1
        } else {
            if jiter.array_step()? != Some(Peek::String) {
                return Err(Stop::Fallback);
            }
            let index = {
                let action = jiter.known_str()?;
                self.accepted_action(action).ok_or(Stop::Fallback)?
            };
            self.schema_of(index, false).ok_or(Stop::Fallback)?.1
        };
        let schema = schema.ok_or(Stop::Fallback)?;
        if jiter.array_step()? != Some(Peek::Object) {
            return Err(Stop::Fallback);
        }
        let violation =
            match schema.scan_payload(&mut jiter, self.check_formats(), self.max_depth() - 1) {
                Ok(Err(violation)) => violation,
                Ok(Ok(())) | Err(_) => return Err(Stop::Fallback),
            };
        if jiter.array_step()?.is_some() {
            return Err(Stop::Fallback);
        }
        jiter.finish()?;
        Ok(self.violation_error(violation, message_type, &id))
    }

    /// The error of a payload violation in a frame of `message_type`, as the tree path
    /// gives it.
    fn violation_error(&self, violation: Violation, message_type: i64, id: &str) -> OcppError {
        let mut error = OcppError::new(violation.kind, id, violation.describe());
        match message_type {
            3 => {
                error.answers_result = true;
                error.should_reply = self.version().has_send();
            }
            6 => error.should_reply = false,
            _ => {}
        }
        error
    }
}
