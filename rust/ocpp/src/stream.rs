//! Single-pass fast path for valid CALL, CALLRESULT and SEND frames: parse with jiter's iterator API,
//! validate against the compiled schema and build the caller's values (e.g. Python objects)
//! in one go, without an intermediate tree.
//!
//! It only ever answers "valid, here it is" or "not sure": anything unusual (an invalid
//! payload, another message type, a big integer, any JSON error) returns
//! [`Codec::decode_fast`]'s `Ok(None)`, and the caller runs [`Codec::decode`], which
//! produces the message or the precise error. So the error paths exist once, and a property
//! test checks that both paths agree.

use jiter::{Jiter, JiterError, NumberAny, NumberInt, Peek};

use crate::schema::Schema;

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
            Err(Stop::Fallback) => Ok(None),
            Err(Stop::Sink(e)) => Err(e),
        }
    }

    fn fast_message<S: Sink>(
        &self,
        frame: &[u8],
        s: &mut S,
    ) -> Result<FastMessageOf<S>, Stop<S::Error>> {
        // The frame array is level 1 and the payload level 2 of the depth limit.
        if frame.len() > self.max_frame_bytes() || self.max_depth() < 2 {
            return Err(Stop::Fallback);
        }
        let mut jiter = Jiter::new(frame);
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
        let (message_id, pending) = {
            let id = jiter.known_str()?;
            if !crate::codec::valid_id(id) {
                return Err(Stop::Fallback);
            }
            let pending = if message_type == 3 {
                sink(s.pending_action(id))?
            } else {
                None
            };
            (sink(s.str(id))?, pending)
        };
        let (action, schema) = if message_type == 3 {
            match pending {
                None => (None, None),
                Some(name) => {
                    // An action the version lacks is an error only the tree path describes.
                    let index = self.defined_action(&name).ok_or(Stop::Fallback)?;
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
                schema.build_payload(&mut jiter, s, self.check_formats(), depth_left)?
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
