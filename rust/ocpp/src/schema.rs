//! A validator compiled from the official OCPP JSON schemas.
//!
//! The OCA schemas (draft-04 for 1.6, draft-06 for 2.x) use a small fixed subset of JSON
//! Schema, so instead of a general validator we compile each schema into a flat arena of
//! nodes and check instances against it, reporting the first violation with the OCPP error
//! kind the specification assigns to it and the JSON path where it occurred. Any keyword
//! outside the known subset fails compilation, so a new schema set cannot be silently
//! half-validated.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use jiter::JsonValue;

use crate::error::ErrorKind;
use crate::format;
use crate::hash::FxBuildHasher;
use crate::json::{snippet, type_name};

/// A schema that uses something this validator does not implement, or is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

type NodeId = usize;

// JSON types as bits of `Node::types`.
const T_NULL: u8 = 1;
const T_BOOLEAN: u8 = 2;
const T_INTEGER: u8 = 4;
const T_NUMBER: u8 = 8;
const T_STRING: u8 = 16;
const T_ARRAY: u8 = 32;
const T_OBJECT: u8 = 64;

#[derive(Clone, Copy, Debug)]
enum Format {
    DateTime,
    Uri,
}

/// A declared (or merely required) property of an object node.
#[derive(Debug)]
struct Property {
    name: Box<str>,
    /// None for a name that is required but not declared in `properties` (any value).
    schema: Option<NodeId>,
    /// Bit of this property in the "required seen" mask, if required.
    required_bit: Option<u32>,
}

/// One compiled subschema. Keywords only constrain instances of their own JSON type.
#[derive(Debug, Default)]
struct Node {
    /// Allowed JSON types; 0 = any.
    types: u8,
    properties: Vec<Property>,
    /// Number of required properties (bits 0..n of the mask).
    required_count: u32,
    /// `additionalProperties: false`.
    closed: bool,
    enumeration: Option<Vec<JsonValue<'static>>>,
    /// The same when every allowed value is a string (all OCPP enums), compared by length
    /// and last byte before the full text.
    string_enumeration: Option<Vec<Box<str>>>,
    /// Property lookup by name, built for objects with many properties.
    property_index: Option<HashMap<Box<str>, usize, FxBuildHasher>>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    multiple_of: Option<f64>,
    items: Option<NodeId>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    format: Option<Format>,
    /// `$ref`, resolved to the final non-reference node; siblings are ignored (draft-04/06).
    reference: Option<NodeId>,
}

/// A compiled schema document.
#[derive(Debug)]
pub(crate) struct Schema {
    nodes: Vec<Node>,
    root: NodeId,
    /// Draft-06 counts 5.0 as an integer; draft-04 (OCPP 1.6) does not.
    integral_floats_are_integers: bool,
}

/// One step of the path to a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// The first violation found in an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub kind: ErrorKind,
    /// From the violation up to the root (built while unwinding).
    pub reversed_path: Vec<Segment>,
    pub message: String,
}

impl Violation {
    fn new(kind: ErrorKind, message: String) -> Violation {
        Violation {
            kind,
            reversed_path: Vec::new(),
            message,
        }
    }

    fn at(mut self, segment: Segment) -> Violation {
        self.reversed_path.push(segment);
        self
    }

    /// `meterValue[0].sampledValue[2].measurand: "Foo" is not one of the allowed values`.
    pub fn describe(&self) -> String {
        /// Characters of one key quoted in a path.
        const MAX_KEY_CHARS: usize = 40;
        let mut out = String::new();
        for segment in self.reversed_path.iter().rev() {
            match segment {
                Segment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.extend(key.chars().take(MAX_KEY_CHARS));
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

/// Keywords that carry no validation in the OCPP schemas.
const ANNOTATIONS: [&str; 10] = [
    "$schema",
    "$id",
    "id",
    "title",
    "description",
    "javaType",
    "comment",
    "$comment",
    "default",
    "examples",
];

impl Schema {
    /// Compile a schema document.
    pub(crate) fn compile(text: &'static str) -> Result<Schema, SchemaError> {
        let root = JsonValue::parse(text.as_bytes(), false).map_err(|e| {
            SchemaError(format!("invalid JSON: {}", e.description(text.as_bytes())))
        })?;
        let JsonValue::Object(members) = &root else {
            return Err(SchemaError("schema is not an object".to_owned()));
        };
        let draft = members.iter().find(|(k, _)| k == "$schema").map(|(_, v)| v);
        let integral_floats_are_integers = match draft {
            Some(JsonValue::Str(s)) if s.contains("draft-04") => false,
            Some(JsonValue::Str(s)) if s.contains("draft-06") => true,
            other => return Err(SchemaError(format!("unsupported $schema {other:?}"))),
        };
        let definitions = match members.iter().find(|(k, _)| k == "definitions") {
            None => None,
            Some((_, JsonValue::Object(defs))) => Some(defs),
            Some(_) => return Err(SchemaError("definitions is not an object".to_owned())),
        };
        let mut compiler = Compiler {
            nodes: Vec::new(),
            definitions: definitions.map(|d| d.as_slice()).unwrap_or_default(),
            resolved: HashMap::new(),
        };
        let root_id = compiler.node(&root, "#")?;
        let mut nodes = compiler.nodes;
        resolve_references(&mut nodes)?;
        Ok(Schema {
            nodes,
            root: root_id,
            integral_floats_are_integers,
        })
    }

    /// Check `value`, returning the first violation.
    pub(crate) fn validate(
        &self,
        value: &JsonValue<'_>,
        check_formats: bool,
    ) -> Result<(), Violation> {
        self.check(self.root, value, check_formats)
    }

    fn check(
        &self,
        id: NodeId,
        value: &JsonValue<'_>,
        check_formats: bool,
    ) -> Result<(), Violation> {
        let Some(mut node) = self.nodes.get(id) else {
            return Err(internal());
        };
        if let Some(target) = node.reference {
            node = self.nodes.get(target).ok_or_else(internal)?;
        }
        if node.types != 0 && !self.type_matches(node.types, value) {
            return Err(Violation::new(
                ErrorKind::TypeConstraintViolation,
                format!(
                    "expected {}, got {}",
                    type_names(node.types),
                    type_name(value)
                ),
            ));
        }
        if let Some(allowed) = &node.enumeration {
            let ok = match (&node.string_enumeration, value) {
                (Some(strings), JsonValue::Str(s)) => strings.iter().any(|a| fast_eq(a, s)),
                (Some(_), _) => false,
                (None, _) => allowed.iter().any(|a| json_equal(a, value)),
            };
            if !ok {
                return Err(Violation::new(
                    ErrorKind::PropertyConstraintViolation,
                    format!("{} is not one of the allowed values", snippet(value)),
                ));
            }
        }
        match value {
            JsonValue::Object(members) => self.check_object(node, members, check_formats),
            JsonValue::Array(items) => self.check_array(node, items, check_formats),
            JsonValue::Str(s) => check_string(node, s, check_formats),
            JsonValue::Int(i) => check_number(node, value, *i as f64, Some(*i)),
            JsonValue::Float(f) => check_number(node, value, *f, None),
            JsonValue::BigInt(b) => {
                // Beyond i64: compare as a float, which is exact enough for any bound.
                let f = b.to_string().parse::<f64>().unwrap_or(f64::NAN);
                check_number(node, value, f, None)
            }
            JsonValue::Null | JsonValue::Bool(_) => Ok(()),
        }
    }

    fn type_matches(&self, types: u8, value: &JsonValue<'_>) -> bool {
        let bit = match value {
            JsonValue::Null => T_NULL,
            JsonValue::Bool(_) => T_BOOLEAN,
            JsonValue::Int(_) | JsonValue::BigInt(_) => T_INTEGER | T_NUMBER,
            JsonValue::Float(f) => {
                if self.integral_floats_are_integers && f.fract() == 0.0 {
                    T_INTEGER | T_NUMBER
                } else {
                    T_NUMBER
                }
            }
            JsonValue::Str(_) => T_STRING,
            JsonValue::Array(_) => T_ARRAY,
            JsonValue::Object(_) => T_OBJECT,
        };
        types & bit != 0
    }

    fn check_object(
        &self,
        node: &Node,
        members: &[(Cow<'_, str>, JsonValue<'_>)],
        check_formats: bool,
    ) -> Result<(), Violation> {
        // One pass: find each member's property, mark required ones seen, validate values.
        // Precedence of the reported error: missing required property, then an undeclared
        // property of a closed object, then the first invalid value.
        let mut seen: u64 = 0;
        let mut undeclared: Option<&str> = None;
        let mut first_invalid: Option<Violation> = None;
        for (key, value) in members.iter() {
            let property = match &node.property_index {
                Some(index) => index
                    .get(key.as_ref())
                    .and_then(|&i| node.properties.get(i)),
                None => node.properties.iter().find(|p| fast_eq(&p.name, key)),
            };
            if let Some(bit) = property.and_then(|p| p.required_bit) {
                seen |= 1 << bit;
            }
            match property.and_then(|p| p.schema) {
                Some(schema) => {
                    if first_invalid.is_none() {
                        if let Err(v) = self.check(schema, value, check_formats) {
                            first_invalid = Some(v.at(Segment::Key(key.to_string())));
                        }
                    }
                }
                // Not declared in `properties` (possibly only named in `required`).
                None => {
                    if node.closed && undeclared.is_none() {
                        undeclared = Some(key);
                    }
                }
            }
        }
        let all_required = if node.required_count >= 64 {
            u64::MAX
        } else {
            (1u64 << node.required_count) - 1
        };
        if seen & all_required != all_required {
            let missing = node
                .properties
                .iter()
                .find(|p| p.required_bit.is_some_and(|bit| seen & (1 << bit) == 0))
                .map(|p| p.name.as_ref())
                .unwrap_or_default();
            return Err(Violation::new(
                ErrorKind::OccurrenceConstraintViolation,
                format!("required property \"{missing}\" is missing"),
            ));
        }
        if let Some(key) = undeclared {
            let mut quoted = String::new();
            crate::json::write_json_string(&key.chars().take(40).collect::<String>(), &mut quoted);
            return Err(Violation::new(
                ErrorKind::FormatViolation,
                format!("property {quoted} is not allowed here"),
            ));
        }
        first_invalid.map_or(Ok(()), Err)
    }

    fn check_array(
        &self,
        node: &Node,
        items: &[JsonValue<'_>],
        check_formats: bool,
    ) -> Result<(), Violation> {
        if let Some(min) = node.min_items {
            if items.len() < min {
                return Err(Violation::new(
                    ErrorKind::OccurrenceConstraintViolation,
                    format!("{} items, at least {min} required", items.len()),
                ));
            }
        }
        if let Some(max) = node.max_items {
            if items.len() > max {
                return Err(Violation::new(
                    ErrorKind::OccurrenceConstraintViolation,
                    format!("{} items, at most {max} allowed", items.len()),
                ));
            }
        }
        if let Some(schema) = node.items {
            for (i, item) in items.iter().enumerate() {
                self.check(schema, item, check_formats)
                    .map_err(|v| v.at(Segment::Index(i)))?;
            }
        }
        Ok(())
    }
}

/// String equality tuned for short names that mostly differ: length, then the last byte
/// (enum values often share a prefix such as "Energy.Active."), then everything.
#[inline]
fn fast_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.last() == b.last() && a == b
}

fn internal() -> Violation {
    Violation::new(
        ErrorKind::InternalError,
        "schema node out of range".to_owned(),
    )
}

fn check_string(node: &Node, s: &str, check_formats: bool) -> Result<(), Violation> {
    // Lengths count characters (code points); the byte length bounds it from above.
    if let Some(max) = node.max_length {
        if s.len() > max {
            let n = s.chars().count();
            if n > max {
                return Err(Violation::new(
                    ErrorKind::PropertyConstraintViolation,
                    format!("string of {n} characters, at most {max} allowed"),
                ));
            }
        }
    }
    if let Some(min) = node.min_length {
        let n = s.chars().count();
        if n < min {
            return Err(Violation::new(
                ErrorKind::PropertyConstraintViolation,
                format!("string of {n} characters, at least {min} required"),
            ));
        }
    }
    if check_formats {
        let (ok, name) = match node.format {
            None => (true, ""),
            Some(Format::DateTime) => (format::is_date_time(s), "an RFC 3339 date-time"),
            Some(Format::Uri) => (format::is_uri(s), "a URI"),
        };
        if !ok {
            let mut quoted = String::new();
            crate::json::write_json_string(&s.chars().take(40).collect::<String>(), &mut quoted);
            return Err(Violation::new(
                ErrorKind::PropertyConstraintViolation,
                format!("{quoted} is not {name}"),
            ));
        }
    }
    Ok(())
}

/// Relative tolerance for `multipleOf` with a fractional divisor: 7.2 / 0.1 is
/// 71.99999999999999 in binary floating point, yet 7.2 is plainly a multiple of 0.1. A
/// quotient within 1e-9 (relative) of an integer counts as integral; meter readings carry far
/// fewer significant digits than the 15-16 of an f64, so no real violation hides in it.
const MULTIPLE_OF_TOLERANCE: f64 = 1e-9;

fn check_number(
    node: &Node,
    value: &JsonValue<'_>,
    f: f64,
    int: Option<i64>,
) -> Result<(), Violation> {
    if let Some(min) = node.minimum {
        if f < min {
            return Err(Violation::new(
                ErrorKind::PropertyConstraintViolation,
                format!("{} is less than the minimum {min}", snippet(value)),
            ));
        }
    }
    if let Some(max) = node.maximum {
        if f > max {
            return Err(Violation::new(
                ErrorKind::PropertyConstraintViolation,
                format!("{} is greater than the maximum {max}", snippet(value)),
            ));
        }
    }
    if let Some(m) = node.multiple_of {
        let ok = match int {
            // Exact for integers and integral divisors.
            Some(i) if m.fract() == 0.0 && m.abs() < 9.0e15 => i % (m as i64).max(1) == 0,
            _ => {
                let q = f / m;
                q.is_finite() && (q - q.round()).abs() <= MULTIPLE_OF_TOLERANCE * q.abs().max(1.0)
            }
        };
        if !ok {
            return Err(Violation::new(
                ErrorKind::PropertyConstraintViolation,
                format!("{} is not a multiple of {m}", snippet(value)),
            ));
        }
    }
    Ok(())
}

fn type_names(types: u8) -> String {
    let names = [
        (T_NULL, "null"),
        (T_BOOLEAN, "boolean"),
        (T_INTEGER, "integer"),
        (T_NUMBER, "number"),
        (T_STRING, "string"),
        (T_ARRAY, "array"),
        (T_OBJECT, "object"),
    ];
    let listed: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| types & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    listed.join(" or ")
}

/// JSON equality as JSON Schema's `enum` uses it: numbers by value, objects ignoring order.
fn json_equal(a: &JsonValue<'_>, b: &JsonValue<'_>) -> bool {
    use JsonValue as V;
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Int(x), V::Int(y)) => x == y,
        (V::BigInt(x), V::BigInt(y)) => x == y,
        (V::Int(x), V::Float(y)) | (V::Float(y), V::Int(x)) => (*x as f64) == *y,
        (V::Float(x), V::Float(y)) => x == y,
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| json_equal(p, q))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && json_equal(v, v2)))
        }
        _ => false,
    }
}

struct Compiler<'d> {
    nodes: Vec<Node>,
    definitions: &'d [(Cow<'static, str>, JsonValue<'static>)],
    resolved: HashMap<String, NodeId>,
}

impl Compiler<'_> {
    fn node(&mut self, schema: &JsonValue<'static>, path: &str) -> Result<NodeId, SchemaError> {
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.compile_into(id, schema, path)?;
        Ok(id)
    }

    fn compile_into(
        &mut self,
        id: NodeId,
        schema: &JsonValue<'static>,
        path: &str,
    ) -> Result<(), SchemaError> {
        let JsonValue::Object(members) = schema else {
            return Err(SchemaError(format!("{path}: subschema is not an object")));
        };
        let mut node = Node::default();
        let mut required: Vec<Box<str>> = Vec::new();
        for (key, value) in members.iter() {
            let here = || format!("{path}/{key}");
            match key.as_ref() {
                "type" => node.types = parse_types(value).ok_or_else(|| bad(&here(), value))?,
                "properties" => {
                    let JsonValue::Object(props) = value else {
                        return Err(bad(&here(), value));
                    };
                    for (name, sub) in props.iter() {
                        let child = self.node(sub, &format!("{}/{name}", here()))?;
                        node.properties.push(Property {
                            name: name.as_ref().into(),
                            schema: Some(child),
                            required_bit: None,
                        });
                    }
                }
                "required" => {
                    let JsonValue::Array(names) = value else {
                        return Err(bad(&here(), value));
                    };
                    for name in names.iter() {
                        let JsonValue::Str(name) = name else {
                            return Err(bad(&here(), value));
                        };
                        required.push(name.as_ref().into());
                    }
                }
                "additionalProperties" => match value {
                    JsonValue::Bool(allowed) => node.closed = !allowed,
                    _ => return Err(SchemaError(format!("{}: only booleans supported", here()))),
                },
                "enum" => {
                    let JsonValue::Array(values) = value else {
                        return Err(bad(&here(), value));
                    };
                    node.enumeration = Some(values.iter().cloned().collect());
                    node.string_enumeration = values
                        .iter()
                        .map(|v| match v {
                            JsonValue::Str(s) => Some(Box::<str>::from(s.as_ref())),
                            _ => None,
                        })
                        .collect();
                }
                "maxLength" => {
                    node.max_length = Some(count(value).ok_or_else(|| bad(&here(), value))?)
                }
                "minLength" => {
                    node.min_length = Some(count(value).ok_or_else(|| bad(&here(), value))?)
                }
                "minItems" => {
                    node.min_items = Some(count(value).ok_or_else(|| bad(&here(), value))?)
                }
                "maxItems" => {
                    node.max_items = Some(count(value).ok_or_else(|| bad(&here(), value))?)
                }
                "minimum" => node.minimum = Some(number(value).ok_or_else(|| bad(&here(), value))?),
                "maximum" => node.maximum = Some(number(value).ok_or_else(|| bad(&here(), value))?),
                "multipleOf" => {
                    let m = number(value).filter(|m| *m > 0.0);
                    node.multiple_of = Some(m.ok_or_else(|| bad(&here(), value))?);
                }
                "items" => {
                    if !matches!(value, JsonValue::Object(_)) {
                        return Err(SchemaError(format!(
                            "{}: only a single items schema is supported",
                            here()
                        )));
                    }
                    node.items = Some(self.node(value, &here())?);
                }
                // With `items` a single schema (the only form we accept), draft-04/06 ignore
                // `additionalItems`.
                "additionalItems" => {
                    if !matches!(value, JsonValue::Bool(_) | JsonValue::Object(_)) {
                        return Err(bad(&here(), value));
                    }
                }
                "format" => {
                    node.format = Some(match value {
                        JsonValue::Str(f) if f == "date-time" => Format::DateTime,
                        JsonValue::Str(f) if f == "uri" => Format::Uri,
                        _ => {
                            return Err(SchemaError(format!(
                                "{}: unknown format {value:?}",
                                here()
                            )))
                        }
                    });
                }
                "$ref" => {
                    let JsonValue::Str(target) = value else {
                        return Err(bad(&here(), value));
                    };
                    node.reference = Some(self.definition(target, &here())?);
                }
                // Nested `definitions` are only reachable through `$ref`, resolved against the
                // root's; the root's are compiled on first reference.
                "definitions" => {}
                other if ANNOTATIONS.contains(&other) => {}
                other => return Err(SchemaError(format!("{path}: unknown keyword {other:?}"))),
            }
        }
        for name in required {
            let bit = node.required_count;
            if bit >= 64 {
                return Err(SchemaError(format!(
                    "{path}: more than 64 required properties"
                )));
            }
            node.required_count += 1;
            match node.properties.iter_mut().find(|p| p.name == name) {
                Some(p) => p.required_bit = Some(bit),
                None => node.properties.push(Property {
                    name,
                    schema: None,
                    required_bit: Some(bit),
                }),
            }
        }
        // Beyond a handful of names a hash lookup beats comparing each name.
        const INDEX_FROM_PROPERTIES: usize = 24;
        if node.properties.len() >= INDEX_FROM_PROPERTIES {
            node.property_index = Some(
                node.properties
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.name.clone(), i))
                    .collect(),
            );
        }
        let slot = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| SchemaError("node out of range".to_owned()))?;
        *slot = node;
        Ok(())
    }

    /// The node of `#/definitions/<name>`, compiled on first use.
    fn definition(&mut self, target: &str, path: &str) -> Result<NodeId, SchemaError> {
        let Some(name) = target.strip_prefix("#/definitions/") else {
            return Err(SchemaError(format!("{path}: unsupported $ref {target:?}")));
        };
        if let Some(&id) = self.resolved.get(name) {
            return Ok(id);
        }
        let definitions = self.definitions;
        let Some((_, schema)) = definitions.iter().find(|(k, _)| k == name) else {
            return Err(SchemaError(format!(
                "{path}: $ref to missing definition {name:?}"
            )));
        };
        // Reserve the id before compiling, so a recursive definition refers to itself.
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.resolved.insert(name.to_owned(), id);
        self.compile_into(id, schema, target)?;
        Ok(id)
    }
}

/// Point every `$ref` straight at the first node along its chain that is not a reference, so
/// validation follows at most one hop; a cycle of pure references is an error.
fn resolve_references(nodes: &mut [Node]) -> Result<(), SchemaError> {
    for id in 0..nodes.len() {
        let mut target = nodes.get(id).and_then(|n| n.reference);
        let mut hops = 0;
        while let Some(t) = target {
            match nodes.get(t).and_then(|n| n.reference) {
                None => break,
                Some(next) => {
                    hops += 1;
                    if hops > nodes.len() {
                        return Err(SchemaError("cycle of $ref without a schema".to_owned()));
                    }
                    target = Some(next);
                }
            }
        }
        if let Some(node) = nodes.get_mut(id) {
            node.reference = target;
        }
    }
    Ok(())
}

fn bad(path: &str, value: &JsonValue<'_>) -> SchemaError {
    SchemaError(format!("{path}: invalid value {value:?}"))
}

fn parse_types(value: &JsonValue<'_>) -> Option<u8> {
    let one = |name: &str| -> Option<u8> {
        Some(match name {
            "null" => T_NULL,
            "boolean" => T_BOOLEAN,
            "integer" => T_INTEGER,
            "number" => T_NUMBER,
            "string" => T_STRING,
            "array" => T_ARRAY,
            "object" => T_OBJECT,
            _ => return None,
        })
    };
    match value {
        JsonValue::Str(s) => one(s),
        JsonValue::Array(names) => names.iter().try_fold(0, |acc, n| match n {
            JsonValue::Str(s) => Some(acc | one(s)?),
            _ => None,
        }),
        _ => None,
    }
}

fn count(value: &JsonValue<'_>) -> Option<usize> {
    match value {
        JsonValue::Int(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

fn number(value: &JsonValue<'_>) -> Option<f64> {
    match value {
        JsonValue::Int(i) => Some(*i as f64),
        JsonValue::Float(f) => Some(*f),
        _ => None,
    }
}

/// Compile every embedded schema of every version; returns how many compiled, or every
/// error (tests and a start-up self-check use this).
pub fn all_schemas_compile() -> Result<usize, Vec<SchemaError>> {
    let mut compiled = 0;
    let mut errors = Vec::new();
    for version in crate::Version::ALL {
        for (name, request, response) in crate::codec::schema_table(version) {
            for (kind, text) in [("request", request), ("response", response)] {
                if let Some(text) = text {
                    match Schema::compile(text) {
                        Ok(_) => compiled += 1,
                        Err(e) => errors.push(SchemaError(format!("{version} {name} {kind}: {e}"))),
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(compiled)
    } else {
        Err(errors)
    }
}

/// The single-pass builder behind [`crate::Codec::decode_fast`]: the same checks as
/// [`Schema::validate`], but on jiter's token stream, and any doubt stops with
/// [`Stop::Fallback`] instead of describing a violation.
mod build {
    use jiter::{Jiter, JsonValue, NumberAny, NumberInt, Peek};

    use super::{
        check_number, check_string, fast_eq, Node, Schema, T_ARRAY, T_BOOLEAN, T_NULL, T_OBJECT,
        T_STRING,
    };
    use crate::stream::{sink, Sink, Stop};

    type Built<T, S> = Result<T, Stop<<S as Sink>::Error>>;

    fn allows(node: Option<&Node>, bit: u8) -> bool {
        node.is_none_or(|n| n.types == 0 || n.types & bit != 0)
    }

    /// Non-string enums (none in the OCPP schemas) are left to the tree path.
    fn enum_free(node: Option<&Node>) -> bool {
        node.is_none_or(|n| n.enumeration.is_none())
    }

    impl Schema {
        fn node(&self, id: usize) -> Option<&Node> {
            let node = self.nodes.get(id)?;
            match node.reference {
                Some(target) => self.nodes.get(target),
                None => Some(node),
            }
        }

        /// Build the payload object (the next value of `jiter`, known to be an object).
        pub(crate) fn build_payload<S: Sink>(
            &self,
            jiter: &mut Jiter<'_>,
            s: &mut S,
            check_formats: bool,
            depth_left: usize,
        ) -> Built<S::Object, S> {
            let root = self.node(self.root).ok_or(Stop::Fallback)?;
            if !allows(Some(root), T_OBJECT) || !enum_free(Some(root)) {
                return Err(Stop::Fallback);
            }
            self.build_object(Some(root), jiter, s, check_formats, depth_left)
        }

        /// Build an object no schema constrains (a CALLRESULT nobody waits for).
        pub(crate) fn build_unconstrained<S: Sink>(
            jiter: &mut Jiter<'_>,
            s: &mut S,
            depth_left: usize,
        ) -> Built<S::Object, S> {
            // No schema: the nodes are never consulted, any schema value will do.
            let empty = Schema {
                nodes: Vec::new(),
                root: 0,
                integral_floats_are_integers: true,
            };
            empty.build_object(None, jiter, s, false, depth_left)
        }

        /// `node` None: unconstrained (e.g. the extra members of 2.x customData).
        fn build_value<S: Sink>(
            &self,
            node: Option<&Node>,
            jiter: &mut Jiter<'_>,
            peek: Peek,
            s: &mut S,
            check_formats: bool,
            depth_left: usize,
        ) -> Built<S::Value, S> {
            match peek {
                Peek::Object => {
                    if !allows(node, T_OBJECT) || !enum_free(node) {
                        return Err(Stop::Fallback);
                    }
                    let object = self.build_object(node, jiter, s, check_formats, depth_left)?;
                    sink(s.object(object))
                }
                Peek::Array => {
                    if !allows(node, T_ARRAY) || !enum_free(node) {
                        return Err(Stop::Fallback);
                    }
                    self.build_array(node, jiter, s, check_formats, depth_left)
                }
                Peek::String => {
                    if !allows(node, T_STRING) {
                        return Err(Stop::Fallback);
                    }
                    let text = jiter.known_str()?;
                    let Some(node) = node else {
                        return sink(s.str(text));
                    };
                    let listed = match (&node.enumeration, &node.string_enumeration) {
                        (None, _) => None,
                        (Some(_), Some(strings)) => Some(strings.iter().any(|a| fast_eq(a, text))),
                        (Some(_), None) => Some(false),
                    };
                    if listed == Some(false) || check_string(node, text, check_formats).is_err() {
                        return Err(Stop::Fallback);
                    }
                    if listed.is_some() {
                        sink(s.enum_str(text))
                    } else {
                        sink(s.str(text))
                    }
                }
                Peek::Null => {
                    if !allows(node, T_NULL) || !enum_free(node) {
                        return Err(Stop::Fallback);
                    }
                    jiter.known_null()?;
                    sink(s.null())
                }
                Peek::True | Peek::False => {
                    if !allows(node, T_BOOLEAN) || !enum_free(node) {
                        return Err(Stop::Fallback);
                    }
                    let b = jiter.known_bool(peek)?;
                    sink(s.bool(b))
                }
                _ => {
                    let (value, f, int) = match jiter.known_number(peek)? {
                        NumberAny::Int(NumberInt::Int(i)) => (JsonValue::Int(i), i as f64, Some(i)),
                        NumberAny::Float(f) => (JsonValue::Float(f), f, None),
                        NumberAny::Int(NumberInt::BigInt(_)) => return Err(Stop::Fallback),
                    };
                    if let Some(node) = node {
                        if (node.types != 0 && !self.type_matches(node.types, &value))
                            || node.enumeration.is_some()
                            || check_number(node, &value, f, int).is_err()
                        {
                            return Err(Stop::Fallback);
                        }
                    }
                    match int {
                        Some(i) => sink(s.int(i)),
                        None => sink(s.float(f)),
                    }
                }
            }
        }

        fn build_object<S: Sink>(
            &self,
            node: Option<&Node>,
            jiter: &mut Jiter<'_>,
            s: &mut S,
            check_formats: bool,
            depth_left: usize,
        ) -> Built<S::Object, S> {
            let Some(inner) = depth_left.checked_sub(1) else {
                return Err(Stop::Fallback);
            };
            let mut object = sink(s.new_object())?;
            let mut seen: u64 = 0;
            // The key borrows from jiter, so resolve everything it is needed for at once.
            let mut next = match jiter.known_object()? {
                Some(key) => Some(self.member(node, key, s)?),
                None => None,
            };
            while let Some((child, key)) = next {
                if let Some(bit) = child.1 {
                    seen |= 1 << bit;
                }
                let peek = jiter.peek()?;
                let value = self.build_value(child.0, jiter, peek, s, check_formats, inner)?;
                sink(s.set(&mut object, key, value))?;
                next = match jiter.next_key()? {
                    Some(key) => Some(self.member(node, key, s)?),
                    None => None,
                };
            }
            if let Some(node) = node {
                let all = if node.required_count >= 64 {
                    u64::MAX
                } else {
                    (1u64 << node.required_count) - 1
                };
                if seen & all != all {
                    return Err(Stop::Fallback);
                }
            }
            Ok(object)
        }

        /// The schema and required bit of member `key`, and the key built by the sink.
        #[allow(clippy::type_complexity)]
        fn member<S: Sink>(
            &self,
            node: Option<&Node>,
            key: &str,
            s: &mut S,
        ) -> Built<((Option<&Node>, Option<u32>), S::Key), S> {
            let child = match node {
                None => (None, None),
                Some(node) => {
                    let property = match &node.property_index {
                        Some(index) => index.get(key).and_then(|&i| node.properties.get(i)),
                        None => node.properties.iter().find(|p| fast_eq(&p.name, key)),
                    };
                    match property {
                        Some(p) => match p.schema {
                            Some(id) => {
                                (Some(self.node(id).ok_or(Stop::Fallback)?), p.required_bit)
                            }
                            None if node.closed => return Err(Stop::Fallback),
                            None => (None, p.required_bit),
                        },
                        None if node.closed => return Err(Stop::Fallback),
                        None => (None, None),
                    }
                }
            };

            Ok((child, sink(s.key(key))?))
        }

        fn build_array<S: Sink>(
            &self,
            node: Option<&Node>,
            jiter: &mut Jiter<'_>,
            s: &mut S,
            check_formats: bool,
            depth_left: usize,
        ) -> Built<S::Value, S> {
            let Some(inner) = depth_left.checked_sub(1) else {
                return Err(Stop::Fallback);
            };
            let items = match node.and_then(|n| n.items) {
                Some(id) => Some(self.node(id).ok_or(Stop::Fallback)?),
                None => None,
            };
            let mut array = sink(s.new_array())?;
            let mut count = 0usize;
            let mut peek = jiter.known_array()?;
            while let Some(p) = peek {
                let value = self.build_value(items, jiter, p, s, check_formats, inner)?;
                sink(s.push(&mut array, value))?;
                count += 1;
                peek = jiter.array_step()?;
            }
            if let Some(node) = node {
                if node.min_items.is_some_and(|min| count < min)
                    || node.max_items.is_some_and(|max| count > max)
                {
                    return Err(Stop::Fallback);
                }
            }
            sink(s.array(array))
        }
    }
}
