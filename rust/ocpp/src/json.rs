//! Compact JSON serialization of [`JsonValue`] trees and small helpers over them.

use std::fmt::Write as _;

use jiter::JsonValue;

/// Nesting depth of a value: a scalar is 0, `[]` and `{}` are 1, `[[1]]` is 2.
///
/// Recursive; callers only pass trees from jiter (at most 200 deep) or trees they bounded
/// themselves.
pub fn depth(value: &JsonValue<'_>) -> usize {
    match value {
        JsonValue::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        JsonValue::Object(members) => 1 + members.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether `value` is nested deeper than `limit`, stopping early: cheaper than [`depth`] for
/// the common shallow frame.
pub(crate) fn deeper_than(value: &JsonValue<'_>, limit: usize) -> bool {
    match value {
        JsonValue::Array(items) => limit == 0 || items.iter().any(|v| deeper_than(v, limit - 1)),
        JsonValue::Object(members) => {
            limit == 0 || members.iter().any(|(_, v)| deeper_than(v, limit - 1))
        }
        _ => false,
    }
}

/// Append `value` as compact JSON (no spaces). Fails only on a non-finite float, which JSON
/// cannot express.
pub fn write_json(value: &JsonValue<'_>, out: &mut String) -> Result<(), NonFiniteFloat> {
    match value {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(true) => out.push_str("true"),
        JsonValue::Bool(false) => out.push_str("false"),
        JsonValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        JsonValue::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        JsonValue::Float(f) => write_float(*f, out)?,
        JsonValue::Str(s) => write_json_string(s, out),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        JsonValue::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A float that JSON cannot represent (NaN or ±infinity).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFiniteFloat(pub f64);

fn write_float(f: f64, out: &mut String) -> Result<(), NonFiniteFloat> {
    if !f.is_finite() {
        return Err(NonFiniteFloat(f));
    }
    // `Debug` prints the shortest text that round-trips and always marks a float as one
    // ("5.0", "1e300"), so a float stays a float after decoding; both forms are valid JSON.
    let _ = write!(out, "{f:?}");
    Ok(())
}

/// Append `s` as a JSON string literal. Non-ASCII text is written as UTF-8, not escaped.
pub fn write_json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Whole words without anything to escape are skipped at once.
        i += clean_words(bytes.get(i..).unwrap_or_default());
        let Some(&b) = bytes.get(i) else {
            break;
        };
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        i += 1;
        start = i;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Length of the longest prefix of `bytes` made of whole 8-byte words that need no escaping
/// (no '"', '\\' or control character).
fn clean_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut clean = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        // Some byte below 0x20, '"' or '\\' (exact on whether there is one).
        let special = (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')));
        if special != 0 {
            break;
        }
        clean += 8;
    }
    clean
}

/// A short rendering of `value` for error descriptions: scalars in JSON, long strings cut,
/// containers by type only (never the raw input).
pub(crate) fn snippet(value: &JsonValue<'_>) -> String {
    /// Characters of a string value quoted in a description.
    const MAX_QUOTED_CHARS: usize = 40;
    match value {
        JsonValue::Str(s) => {
            let mut cut: String = s.chars().take(MAX_QUOTED_CHARS).collect();
            let more = cut.len() < s.len();
            let mut out = String::new();
            if more {
                cut.push('…');
            }
            write_json_string(&cut, &mut out);
            out
        }
        JsonValue::Array(_) => "an array".to_owned(),
        JsonValue::Object(_) => "an object".to_owned(),
        other => {
            let mut out = String::new();
            if write_json(other, &mut out).is_err() {
                out = "a non-finite number".to_owned();
            }
            out
        }
    }
}

/// The JSON type name of `value`, for descriptions.
pub(crate) fn type_name(value: &JsonValue<'_>) -> &'static str {
    match value {
        JsonValue::Null => "null",
        JsonValue::Bool(_) => "boolean",
        JsonValue::Int(_) | JsonValue::BigInt(_) => "integer",
        JsonValue::Float(_) => "number",
        JsonValue::Str(_) => "string",
        JsonValue::Array(_) => "array",
        JsonValue::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        let mut out = String::new();
        write_json_string("a\"b\\c\n\u{1}é", &mut out);
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn escapes_after_clean_words() {
        for text in [
            "abcdefgh\"ijklmnop\\q",
            "0123456789abcdef\u{1f}x",
            "éééééééé\n",
        ] {
            let mut fast = String::new();
            write_json_string(text, &mut fast);
            let mut slow = String::from("\"");
            for c in text.chars() {
                match c {
                    '"' => slow.push_str("\\\""),
                    '\\' => slow.push_str("\\\\"),
                    '\n' => slow.push_str("\\n"),
                    '\u{1f}' => slow.push_str("\\u001f"),
                    c => slow.push(c),
                }
            }
            slow.push('"');
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn floats_stay_floats() {
        let mut out = String::new();
        assert!(write_json(&JsonValue::Float(5.0), &mut out).is_ok());
        assert_eq!(out, "5.0");
        assert!(write_json(&JsonValue::Float(f64::NAN), &mut out).is_err());
    }

    #[test]
    fn depth_counts_containers() {
        let v = JsonValue::parse(b"[1,{\"a\":[[]]}]", false);
        assert!(matches!(v.as_ref().map(depth), Ok(4)));
        let v = v.unwrap_or(JsonValue::Null);
        assert!(deeper_than(&v, 3));
        assert!(!deeper_than(&v, 4));
    }
}
