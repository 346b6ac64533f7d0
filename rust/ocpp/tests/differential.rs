//! Differential test: the hand-written validator against the `jsonschema` crate, for every
//! request and response schema of every version, on generated valid instances and mutations
//! of them.
//!
//! Intentional differences, kept out of the generated inputs:
//! * `multipleOf` with a fractional divisor: we accept quotients within a relative 1e-9 of
//!   an integer (7.2 is a multiple of 0.1); the oracle decides exactly. Generated numbers are
//!   exact multiples or plainly not multiples.
//! * Draft-04 (OCPP 1.6) `integer`: we reject 1.0 as draft-04 says; the oracle accepts any
//!   integral number. Mutations never produce integral floats.
//! * `format: uri`: we check scheme and allowed characters only; generated URIs are plain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

mod common;

use evgw_ocpp::{Codec, CodecOptions, JsonValue, Version};
use serde_json::{json, Map, Value};

/// xorshift64*: deterministic, dependency-free randomness for the generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn schema_dir(version: Version) -> PathBuf {
    let dir = match version {
        Version::V16 => "v16",
        Version::V201 => "v201",
        Version::V21 => "v21",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(dir)
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/definitions/");
            resolve(root, &root["definitions"][name])
        }
        None => node,
    }
}

/// A random instance valid against `node` (as far as we know the keyword semantics).
fn generate(root: &Value, node: &Value, rng: &mut Rng, depth: usize) -> Value {
    let node = resolve(root, node);
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        return values[rng.below(values.len() as u64) as usize].clone();
    }
    match node.get("type").and_then(Value::as_str).unwrap_or("object") {
        "object" => {
            let required: Vec<&str> = node
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if required.contains(&name.as_str()) || (depth < 6 && rng.chance(50)) {
                        out.insert(name.clone(), generate(root, sub, rng, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = node.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let max = node
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(3)
                .min(3)
                .max(min);
            let n = min + rng.below(max - min + 1);
            let items = node.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..n)
                    .map(|_| generate(root, &items, rng, depth + 1))
                    .collect(),
            )
        }
        "string" => match node.get("format").and_then(Value::as_str) {
            Some("date-time") => {
                let frac = if rng.chance(50) { ".123" } else { "" };
                let zone = if rng.chance(50) { "Z" } else { "+02:00" };
                json!(format!(
                    "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{zone}",
                    rng.below(40),
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60)
                ))
            }
            Some("uri") => json!("https://example.com/firmware.bin"),
            _ => {
                let max = node
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(20)
                    .min(20);
                let min = node
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(max);
                let n = min + rng.below(max - min + 1);
                let alphabet = ['a', 'Z', '0', ' ', 'é', '€', '"', '\\', '😀'];
                json!((0..n)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect::<String>())
            }
        },
        "integer" => {
            let lo = node
                .get("minimum")
                .and_then(Value::as_f64)
                .unwrap_or(-1000.0) as i64;
            let hi = node
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(1000.0) as i64;
            json!(lo.max(-1000) + rng.below((hi.min(1000) - lo.max(-1000) + 1) as u64) as i64)
        }
        "number" => {
            if node.get("multipleOf").is_some() {
                json!((rng.below(10_000) as f64) / 10.0)
            } else {
                let lo = node
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .unwrap_or(-1000.0)
                    .max(-1000.0);
                let hi = node
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .unwrap_or(1000.0)
                    .min(1000.0);
                let steps = ((hi - lo) * 4.0) as u64;
                json!(lo + rng.below(steps + 1) as f64 * 0.25)
            }
        }
        "boolean" => json!(rng.chance(50)),
        other => panic!("unexpected type {other}"),
    }
}

/// Every container (object or array) of `v`, addressed by path, for picking a mutation site.
fn containers(v: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            out.push(path.clone());
            for (k, c) in m {
                path.push(json!(k));
                containers(c, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            out.push(path.clone());
            for (i, c) in a.iter().enumerate() {
                path.push(json!(i));
                containers(c, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Value::String(k) => v.get_mut(k.as_str()).unwrap(),
        Value::Number(i) => v.get_mut(i.as_u64().unwrap() as usize).unwrap(),
        _ => unreachable!(),
    })
}

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => json!(null),
        1 => json!(true),
        2 => json!("Foo"),
        3 => json!(-1),
        4 => json!(1.5),
        5 => json!("x".repeat(1 + rng.below(600) as usize)),
        6 => json!([]),
        7 => json!({}),
        _ => json!(3.3e-7),
    }
}

/// Apply one random mutation somewhere in `v`.
fn mutate(v: &mut Value, rng: &mut Rng) {
    let mut sites = Vec::new();
    containers(v, &mut Vec::new(), &mut sites);
    let site = sites[rng.below(sites.len() as u64) as usize].clone();
    let target = at(v, &site);
    match target {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            match rng.below(3) {
                0 if !keys.is_empty() => {
                    m.remove(&keys[rng.below(keys.len() as u64) as usize]);
                }
                1 if !keys.is_empty() => {
                    let k = &keys[rng.below(keys.len() as u64) as usize];
                    m.insert(k.clone(), random_scalar(rng));
                }
                _ => {
                    m.insert("zzUnknown".to_owned(), json!(1));
                }
            }
        }
        Value::Array(a) => match rng.below(3) {
            0 => a.clear(),
            1 if !a.is_empty() => {
                let i = rng.below(a.len() as u64) as usize;
                a[i] = random_scalar(rng);
            }
            _ => {
                let extra: Vec<Value> = a.clone();
                a.extend(extra);
                a.extend(std::iter::repeat_n(json!({}), 5));
            }
        },
        _ => {}
    }
}

fn ours(codec: &Codec, action: &str, response: bool, instance: &Value) -> bool {
    let text = serde_json::to_string(instance).unwrap();
    let value = JsonValue::parse(text.as_bytes(), false).unwrap();
    codec.validate(action, &value, response).is_ok()
}

#[test]
fn validator_agrees_with_jsonschema() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut compared = 0usize;
    let mut invalid = 0usize;
    let mut disagreements = Vec::new();
    for version in Version::ALL {
        let codec = Codec::new(version, CodecOptions::default()).unwrap();
        let request_suffix = if version == Version::V16 {
            ""
        } else {
            "Request"
        };
        for action in codec.actions() {
            for response in [false, true] {
                let file = if response {
                    format!("{action}Response.json")
                } else if action == "NotifyPeriodicEventStream" {
                    format!("{action}.json")
                } else {
                    format!("{action}{request_suffix}.json")
                };
                let path = schema_dir(version).join(&file);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue; // SEND-only action without response schema
                };
                let schema: Value = serde_json::from_str(&text).unwrap();
                let oracle = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap();
                for round in 0..60 {
                    let mut instance = generate(&schema, &schema, &mut rng, 0);
                    if round % 4 != 0 {
                        for _ in 0..=rng.below(2) {
                            mutate(&mut instance, &mut rng);
                        }
                    }
                    let expected = oracle.is_valid(&instance);
                    let got = ours(&codec, action, response, &instance);
                    // The single-pass fast path must agree, on CALLs and on CALLRESULTs.
                    let (frame, mut sink) = if response {
                        let frame = serde_json::json!([3, "id", instance]).to_string();
                        (frame, common::TreeSink::waiting_for(&[("id", action)]))
                    } else {
                        let frame = serde_json::json!([2, "id", action, instance]).to_string();
                        (frame, common::TreeSink::default())
                    };
                    let fast = codec.decode_fast(frame.as_bytes(), &mut sink).unwrap();
                    if fast.is_some() != got {
                        disagreements
                            .push(format!("fast path {}, tree {got}: {frame}", fast.is_some()));
                    }
                    compared += 1;
                    invalid += usize::from(!expected);
                    if round % 4 == 0 {
                        assert!(
                            expected,
                            "generator made an invalid {version} {file}: {instance}"
                        );
                    }
                    if expected != got {
                        disagreements.push(format!(
                            "{version} {file}: oracle {expected}, ours {got}: {instance}"
                        ));
                    }
                }
            }
        }
    }
    assert!(compared > 20_000, "{compared}");
    assert!(
        invalid > compared / 3,
        "mutations should mostly break instances: {invalid}/{compared}"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(5)]
    );
}
