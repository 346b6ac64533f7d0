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
    use std::borrow::Cow;

    use jiter::{Jiter, JsonValue, NumberAny, NumberInt, Peek};

    use super::scan::{array_violation, enum_violation, skip, type_violation, ObjectScan};
    use super::{
        check_number, check_string, fast_eq, Node, Schema, T_ARRAY, T_BOOLEAN, T_NULL, T_OBJECT,
        T_STRING,
    };
    use super::{Segment, Violation};
    use crate::stream::{sink, Sink, Stop};

    /// The violation a scan of the rest found, or the fast path's doubt.
    fn scanned<E>(r: Result<Result<(), Violation>, super::scan::NotSure>) -> Stop<E> {
        match r {
            Ok(Err(v)) => Stop::Invalid(v),
            Ok(Ok(())) | Err(_) => Stop::Fallback,
        }
    }

    /// A member of an object being built.
    enum Member<'n, K> {
        /// Declared (or the node is open): its schema, required bit and name, and the key.
        Known(Option<&'n Node>, Option<u32>, &'n str, K),
        /// Not declared in a closed object: the key as quoted in the error, required bit.
        Undeclared(String, Option<u32>),
    }

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
                        return Err(self.doubt(node, jiter, peek, check_formats, depth_left));
                    }
                    let object = self.build_object(node, jiter, s, check_formats, depth_left)?;
                    sink(s.object(object))
                }
                Peek::Array => {
                    if !allows(node, T_ARRAY) || !enum_free(node) {
                        return Err(self.doubt(node, jiter, peek, check_formats, depth_left));
                    }
                    self.build_array(node, jiter, s, check_formats, depth_left)
                }
                Peek::String => {
                    if !allows(node, T_STRING) {
                        return Err(self.doubt(node, jiter, peek, check_formats, depth_left));
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
                    match (&node.string_enumeration, listed) {
                        (None, Some(false)) => return Err(Stop::Fallback),
                        (_, Some(false)) => {
                            return Err(Stop::Invalid(enum_violation(&JsonValue::Str(
                                Cow::Borrowed(text),
                            ))))
                        }
                        _ => check_string(node, text, check_formats).map_err(Stop::Invalid)?,
                    }
                    if listed.is_some() {
                        sink(s.enum_str(text))
                    } else {
                        sink(s.str(text))
                    }
                }
                Peek::Null => {
                    if !allows(node, T_NULL) || !enum_free(node) {
                        return Err(self.doubt(node, jiter, peek, check_formats, depth_left));
                    }
                    jiter.known_null()?;
                    sink(s.null())
                }
                Peek::True | Peek::False => {
                    if !allows(node, T_BOOLEAN) || !enum_free(node) {
                        return Err(self.doubt(node, jiter, peek, check_formats, depth_left));
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
                        if node.enumeration.is_some() && node.string_enumeration.is_none() {
                            return Err(Stop::Fallback);
                        }
                        if node.types != 0 && !self.type_matches(node.types, &value) {
                            let got = if int.is_some() { "integer" } else { "number" };
                            return Err(Stop::Invalid(type_violation(node, got)));
                        }
                        if node.enumeration.is_some() {
                            return Err(Stop::Invalid(enum_violation(&value)));
                        }
                        check_number(node, &value, f, int).map_err(Stop::Invalid)?;
                    }
                    match int {
                        Some(i) => sink(s.int(i)),
                        None => sink(s.float(f)),
                    }
                }
            }
        }

        /// The violation of the value `peek` starts (not yet read), as the tree path
        /// reports it; the fast path found something wrong with it.
        fn doubt<E>(
            &self,
            node: Option<&Node>,
            jiter: &mut Jiter<'_>,
            peek: Peek,
            check_formats: bool,
            depth_left: usize,
        ) -> Stop<E> {
            match node {
                Some(node) => scanned(self.scan_node(node, jiter, peek, check_formats, depth_left)),
                None => Stop::Fallback,
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
            while let Some(member) = next {
                let (child, name, key) = match member {
                    Member::Known(child, bit, name, key) => {
                        if let Some(bit) = bit {
                            seen |= 1 << bit;
                        }
                        (child, name, key)
                    }
                    Member::Undeclared(key, bit) => {
                        // A closed object with an undeclared member: the rest is only
                        // checked, for the violation the tree path reports first.
                        let node = node.ok_or(Stop::Fallback)?;
                        if let Some(bit) = bit {
                            seen |= 1 << bit;
                        }
                        let peek = jiter.peek()?;
                        skip(jiter, peek, inner).map_err(|_| Stop::Fallback)?;
                        let state = ObjectScan {
                            seen,
                            undeclared: Some(key),
                            first_invalid: None,
                        };
                        return Err(scanned(self.scan_members(
                            node,
                            jiter,
                            state,
                            check_formats,
                            inner,
                        )));
                    }
                };
                let peek = jiter.peek()?;
                let value = match self.build_value(child, jiter, peek, s, check_formats, inner) {
                    Ok(value) => value,
                    Err(Stop::Invalid(v)) => {
                        let node = node.ok_or(Stop::Fallback)?;
                        let state = ObjectScan {
                            seen,
                            undeclared: None,
                            first_invalid: Some(v.at(Segment::Key(name.to_owned()))),
                        };
                        return Err(scanned(self.scan_members(
                            node,
                            jiter,
                            state,
                            check_formats,
                            inner,
                        )));
                    }
                    Err(e) => return Err(e),
                };
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
                    let state = ObjectScan {
                        seen,
                        undeclared: None,
                        first_invalid: None,
                    };
                    return Err(state
                        .finish(node)
                        .err()
                        .map_or(Stop::Fallback, Stop::Invalid));
                }
            }
            Ok(object)
        }

        /// The schema, required bit and name of member `key`, and the key built by the sink.
        fn member<'n, S: Sink>(
            &'n self,
            node: Option<&'n Node>,
            key: &str,
            s: &mut S,
        ) -> Built<Member<'n, S::Key>, S> {
            let (child, bit, name) = match node {
                None => (None, None, ""),
                Some(node) => {
                    let property = match &node.property_index {
                        Some(index) => index.get(key).and_then(|&i| node.properties.get(i)),
                        None => node.properties.iter().find(|p| fast_eq(&p.name, key)),
                    };
                    let bit = property.and_then(|p| p.required_bit);
                    match property.and_then(|p| p.schema.map(|id| (id, p))) {
                        Some((id, p)) => (
                            Some(self.node(id).ok_or(Stop::Fallback)?),
                            bit,
                            p.name.as_ref(),
                        ),
                        None if node.closed => {
                            return Ok(Member::Undeclared(key.chars().take(40).collect(), bit));
                        }
                        None => (None, bit, ""),
                    }
                }
            };
            Ok(Member::Known(child, bit, name, sink(s.key(key))?))
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
                let value = match self.build_value(items, jiter, p, s, check_formats, inner) {
                    Ok(value) => value,
                    Err(Stop::Invalid(v)) => {
                        // Only checked from here: the item counts take precedence.
                        let node = node.ok_or(Stop::Fallback)?;
                        let first_invalid = Some(v.at(Segment::Index(count)));
                        count += 1;
                        let mut rest = jiter.array_step()?;
                        while let Some(p) = rest {
                            skip(jiter, p, inner).map_err(|_| Stop::Fallback)?;
                            count += 1;
                            rest = jiter.array_step()?;
                        }
                        return Err(array_violation(node, count, first_invalid)
                            .err()
                            .map_or(Stop::Fallback, Stop::Invalid));
                    }
                    Err(e) => return Err(e),
                };
                sink(s.push(&mut array, value))?;
                count += 1;
                peek = jiter.array_step()?;
            }
            if let Some(node) = node {
                if let Err(v) = array_violation(node, count, None) {
                    return Err(Stop::Invalid(v));
                }
            }
            sink(s.array(array))
        }
    }
}

/// The single-pass diagnosis behind [`crate::Codec::diagnose`]: validates the token stream
/// without building anything and reports the violation [`Schema::validate`] would report on
/// the parsed tree (same precedence, message and path). Anything it cannot mirror exactly
/// (a non-string enum, a big integer where a schema applies, nesting beyond the limit, a
/// JSON error) stops with [`NotSure`].
mod scan {
    use std::borrow::Cow;

    use jiter::{Jiter, JiterError, JsonValue, NumberAny, NumberInt, Peek};

    use super::{
        check_number, check_string, fast_eq, type_names, Node, Schema, Segment, Violation, T_ARRAY,
        T_BOOLEAN, T_NULL, T_OBJECT, T_STRING,
    };
    use crate::error::ErrorKind;
    use crate::json::snippet;

    /// The scan cannot tell: leave the frame to the tree path.
    pub(crate) struct NotSure;

    impl From<JiterError> for NotSure {
        fn from(_: JiterError) -> Self {
            NotSure
        }
    }

    /// Ok(Ok(())): valid; Ok(Err(v)): the first violation (the value fully consumed).
    type Scanned = Result<Result<(), Violation>, NotSure>;

    /// Skip the value `peek` starts, checking nesting and JSON validity as the tree parse does.
    pub(crate) fn skip(
        jiter: &mut Jiter<'_>,
        peek: Peek,
        depth_left: usize,
    ) -> Result<(), NotSure> {
        match peek {
            Peek::Object => {
                let inner = depth_left.checked_sub(1).ok_or(NotSure)?;
                let mut key = jiter.known_object()?.is_some();
                while key {
                    let p = jiter.peek()?;
                    skip(jiter, p, inner)?;
                    key = jiter.next_key()?.is_some();
                }
            }
            Peek::Array => {
                let inner = depth_left.checked_sub(1).ok_or(NotSure)?;
                let mut next = jiter.known_array()?;
                while let Some(p) = next {
                    skip(jiter, p, inner)?;
                    next = jiter.array_step()?;
                }
            }
            Peek::String => {
                jiter.known_str()?;
            }
            Peek::Null => jiter.known_null()?,
            Peek::True | Peek::False => {
                jiter.known_bool(peek)?;
            }
            _ => {
                jiter.known_number(peek)?;
            }
        }
        Ok(())
    }

    pub(super) fn type_violation(node: &Node, got: &str) -> Violation {
        Violation::new(
            ErrorKind::TypeConstraintViolation,
            format!("expected {}, got {got}", type_names(node.types)),
        )
    }

    pub(super) fn enum_violation(value: &JsonValue<'_>) -> Violation {
        Violation::new(
            ErrorKind::PropertyConstraintViolation,
            format!("{} is not one of the allowed values", snippet(value)),
        )
    }

    /// What an object scan has seen so far.
    #[derive(Default)]
    pub(crate) struct ObjectScan {
        /// Required properties present (bits as in [`Node`]).
        pub(crate) seen: u64,
        /// The first member a closed object does not declare (cut to 40 characters).
        pub(crate) undeclared: Option<String>,
        /// The first invalid member value, with its path.
        pub(crate) first_invalid: Option<Violation>,
    }

    impl ObjectScan {
        /// The object's violation, in the precedence of `Schema::check_object`.
        pub(super) fn finish(self, node: &Node) -> Result<(), Violation> {
            let all_required = if node.required_count >= 64 {
                u64::MAX
            } else {
                (1u64 << node.required_count) - 1
            };
            if self.seen & all_required != all_required {
                let missing = node
                    .properties
                    .iter()
                    .find(|p| {
                        p.required_bit
                            .is_some_and(|bit| self.seen & (1 << bit) == 0)
                    })
                    .map(|p| p.name.as_ref())
                    .unwrap_or_default();
                return Err(Violation::new(
                    ErrorKind::OccurrenceConstraintViolation,
                    format!("required property \"{missing}\" is missing"),
                ));
            }
            if let Some(key) = self.undeclared {
                let mut quoted = String::new();
                crate::json::write_json_string(&key, &mut quoted);
                return Err(Violation::new(
                    ErrorKind::FormatViolation,
                    format!("property {quoted} is not allowed here"),
                ));
            }
            self.first_invalid.map_or(Ok(()), Err)
        }
    }

    /// An array's violation, in the precedence of `Schema::check_array`.
    pub(super) fn array_violation(
        node: &Node,
        count: usize,
        first_invalid: Option<Violation>,
    ) -> Result<(), Violation> {
        if let Some(min) = node.min_items {
            if count < min {
                return Err(Violation::new(
                    ErrorKind::OccurrenceConstraintViolation,
                    format!("{count} items, at least {min} required"),
                ));
            }
        }
        if let Some(max) = node.max_items {
            if count > max {
                return Err(Violation::new(
                    ErrorKind::OccurrenceConstraintViolation,
                    format!("{count} items, at most {max} allowed"),
                ));
            }
        }
        first_invalid.map_or(Ok(()), Err)
    }

    /// Note member `key` of `node` in `state`: its schema (None: not validated) and name.
    fn scan_key<'n>(node: &'n Node, key: &str, state: &mut ObjectScan) -> (Option<usize>, &'n str) {
        let property = match &node.property_index {
            Some(index) => index.get(key).and_then(|&i| node.properties.get(i)),
            None => node.properties.iter().find(|p| fast_eq(&p.name, key)),
        };
        if let Some(bit) = property.and_then(|p| p.required_bit) {
            state.seen |= 1 << bit;
        }
        let schema = property.and_then(|p| p.schema);
        if schema.is_none() && node.closed && state.undeclared.is_none() {
            state.undeclared = Some(key.chars().take(40).collect());
        }
        (schema, property.map_or("", |p| p.name.as_ref()))
    }

    impl Schema {
        /// Scan the payload (the next value of `jiter`, known to be an object).
        pub(crate) fn scan_payload(
            &self,
            jiter: &mut Jiter<'_>,
            check_formats: bool,
            depth_left: usize,
        ) -> Scanned {
            self.scan(self.root, jiter, Peek::Object, check_formats, depth_left)
        }

        fn scan(
            &self,
            id: usize,
            jiter: &mut Jiter<'_>,
            peek: Peek,
            check_formats: bool,
            depth_left: usize,
        ) -> Scanned {
            let mut node = self.nodes.get(id).ok_or(NotSure)?;
            if let Some(target) = node.reference {
                node = self.nodes.get(target).ok_or(NotSure)?;
            }
            self.scan_node(node, jiter, peek, check_formats, depth_left)
        }

        /// [`Schema::scan`] of a resolved node (not a reference).
        pub(super) fn scan_node(
            &self,
            node: &Node,
            jiter: &mut Jiter<'_>,
            peek: Peek,
            check_formats: bool,
            depth_left: usize,
        ) -> Scanned {
            if node.enumeration.is_some() && node.string_enumeration.is_none() {
                return Err(NotSure);
            }
            let enumerated = node.enumeration.is_some();
            let container = |bit: u8, got: &str, jiter: &mut Jiter<'_>| -> Scanned {
                if node.types != 0 && node.types & bit == 0 {
                    skip(jiter, peek, depth_left)?;
                    return Ok(Err(type_violation(node, got)));
                }
                if enumerated {
                    skip(jiter, peek, depth_left)?;
                    return Ok(Err(Violation::new(
                        ErrorKind::PropertyConstraintViolation,
                        format!(
                            "{} is not one of the allowed values",
                            if bit == T_OBJECT {
                                "an object"
                            } else {
                                "an array"
                            }
                        ),
                    )));
                }
                Ok(Ok(()))
            };
            match peek {
                Peek::Object => {
                    if let Err(v) = container(T_OBJECT, "object", jiter)? {
                        return Ok(Err(v));
                    }
                    self.scan_object(node, jiter, check_formats, depth_left)
                }
                Peek::Array => {
                    if let Err(v) = container(T_ARRAY, "array", jiter)? {
                        return Ok(Err(v));
                    }
                    self.scan_array(node, jiter, check_formats, depth_left)
                }
                Peek::String => {
                    let text = jiter.known_str()?;
                    if node.types != 0 && node.types & T_STRING == 0 {
                        return Ok(Err(type_violation(node, "string")));
                    }
                    if let Some(strings) = &node.string_enumeration {
                        if !strings.iter().any(|a| fast_eq(a, text)) {
                            return Ok(Err(enum_violation(&JsonValue::Str(Cow::Borrowed(text)))));
                        }
                    }
                    Ok(check_string(node, text, check_formats))
                }
                Peek::Null | Peek::True | Peek::False => {
                    let (value, bit, got) = if peek == Peek::Null {
                        jiter.known_null()?;
                        (JsonValue::Null, T_NULL, "null")
                    } else {
                        (
                            JsonValue::Bool(jiter.known_bool(peek)?),
                            T_BOOLEAN,
                            "boolean",
                        )
                    };
                    if node.types != 0 && node.types & bit == 0 {
                        return Ok(Err(type_violation(node, got)));
                    }
                    if enumerated {
                        return Ok(Err(enum_violation(&value)));
                    }
                    Ok(Ok(()))
                }
                _ => {
                    let (value, f, int) = match jiter.known_number(peek)? {
                        NumberAny::Int(NumberInt::Int(i)) => (JsonValue::Int(i), i as f64, Some(i)),
                        NumberAny::Float(f) => (JsonValue::Float(f), f, None),
                        NumberAny::Int(NumberInt::BigInt(_)) => return Err(NotSure),
                    };
                    if node.types != 0 && !self.type_matches(node.types, &value) {
                        let got = if int.is_some() { "integer" } else { "number" };
                        return Ok(Err(type_violation(node, got)));
                    }
                    if enumerated {
                        return Ok(Err(enum_violation(&value)));
                    }
                    Ok(check_number(node, &value, f, int))
                }
            }
        }

        fn scan_object(
            &self,
            node: &Node,
            jiter: &mut Jiter<'_>,
            check_formats: bool,
            depth_left: usize,
        ) -> Scanned {
            let inner = depth_left.checked_sub(1).ok_or(NotSure)?;
            let mut state = ObjectScan::default();
            let Some(key) = jiter.known_object()? else {
                return Ok(state.finish(node));
            };
            let (schema, name) = scan_key(node, key, &mut state);
            let peek = jiter.peek()?;
            self.scan_member_value(schema, name, jiter, peek, &mut state, check_formats, inner)?;
            self.scan_members(node, jiter, state, check_formats, inner)
        }

        /// Scan the members after the current one (the next call on `jiter` is `next_key`),
        /// then report the object's violation, `state` holding what was seen before.
        pub(super) fn scan_members(
            &self,
            node: &Node,
            jiter: &mut Jiter<'_>,
            mut state: ObjectScan,
            check_formats: bool,
            inner: usize,
        ) -> Scanned {
            while let Some(key) = jiter.next_key()? {
                let (schema, name) = scan_key(node, key, &mut state);
                let peek = jiter.peek()?;
                self.scan_member_value(
                    schema,
                    name,
                    jiter,
                    peek,
                    &mut state,
                    check_formats,
                    inner,
                )?;
            }
            Ok(state.finish(node))
        }

        #[allow(clippy::too_many_arguments)]
        fn scan_member_value(
            &self,
            schema: Option<usize>,
            name: &str,
            jiter: &mut Jiter<'_>,
            peek: Peek,
            state: &mut ObjectScan,
            check_formats: bool,
            inner: usize,
        ) -> Result<(), NotSure> {
            match schema {
                Some(schema) if state.first_invalid.is_none() => {
                    if let Err(v) = self.scan(schema, jiter, peek, check_formats, inner)? {
                        state.first_invalid = Some(v.at(Segment::Key(name.to_owned())));
                    }
                }
                _ => skip(jiter, peek, inner)?,
            }
            Ok(())
        }

        fn scan_array(
            &self,
            node: &Node,
            jiter: &mut Jiter<'_>,
            check_formats: bool,
            depth_left: usize,
        ) -> Scanned {
            let inner = depth_left.checked_sub(1).ok_or(NotSure)?;
            let mut count = 0usize;
            let mut first_invalid: Option<Violation> = None;
            let mut next = jiter.known_array()?;
            while let Some(p) = next {
                match node.items {
                    Some(items) if first_invalid.is_none() => {
                        if let Err(v) = self.scan(items, jiter, p, check_formats, inner)? {
                            first_invalid = Some(v.at(Segment::Index(count)));
                        }
                    }
                    _ => skip(jiter, p, inner)?,
                }
                count += 1;
                next = jiter.array_step()?;
            }
            Ok(array_violation(node, count, first_invalid))
        }
    }
}
