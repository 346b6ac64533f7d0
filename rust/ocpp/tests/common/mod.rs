//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::sync::Arc;

use evgw_ocpp::{JsonValue, Sink};

/// Builds jiter trees through the fast path, to compare with the tree path.
#[derive(Default)]
pub struct TreeSink {
    /// Pending CALLs: (message id, action).
    pub pending: Vec<(String, String)>,
}

impl TreeSink {
    /// A sink waiting for results to the given (id, action) pairs.
    pub fn waiting_for(pending: &[(&str, &str)]) -> TreeSink {
        TreeSink {
            pending: pending
                .iter()
                .map(|(i, a)| ((*i).to_owned(), (*a).to_owned()))
                .collect(),
        }
    }

    /// The pending action of `id`.
    pub fn lookup(&self, id: &str) -> Option<&str> {
        self.pending
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, a)| a.as_str())
    }
}

impl Sink for TreeSink {
    type Value = JsonValue<'static>;
    type Key = String;
    type Object = Vec<(Cow<'static, str>, JsonValue<'static>)>;
    type Array = Vec<JsonValue<'static>>;
    type Error = ();

    fn null(&mut self) -> Result<Self::Value, ()> {
        Ok(JsonValue::Null)
    }
    fn bool(&mut self, b: bool) -> Result<Self::Value, ()> {
        Ok(JsonValue::Bool(b))
    }
    fn int(&mut self, i: i64) -> Result<Self::Value, ()> {
        Ok(JsonValue::Int(i))
    }
    fn float(&mut self, f: f64) -> Result<Self::Value, ()> {
        Ok(JsonValue::Float(f))
    }
    fn str(&mut self, s: &str) -> Result<Self::Value, ()> {
        Ok(JsonValue::Str(Cow::Owned(s.to_owned())))
    }
    fn key(&mut self, k: &str) -> Result<String, ()> {
        Ok(k.to_owned())
    }
    fn new_object(&mut self) -> Result<Self::Object, ()> {
        Ok(Vec::new())
    }
    fn set(
        &mut self,
        object: &mut Self::Object,
        key: String,
        value: Self::Value,
    ) -> Result<(), ()> {
        object.push((Cow::Owned(key), value));
        Ok(())
    }
    fn object(&mut self, object: Self::Object) -> Result<Self::Value, ()> {
        Ok(JsonValue::Object(Arc::new(object)))
    }
    fn new_array(&mut self) -> Result<Self::Array, ()> {
        Ok(Vec::new())
    }
    fn push(&mut self, array: &mut Self::Array, value: Self::Value) -> Result<(), ()> {
        array.push(value);
        Ok(())
    }
    fn array(&mut self, array: Self::Array) -> Result<Self::Value, ()> {
        Ok(JsonValue::Array(Arc::new(array)))
    }
    fn pending_action(&mut self, message_id: &str) -> Result<Option<String>, ()> {
        Ok(self.lookup(message_id).map(str::to_owned))
    }
}
