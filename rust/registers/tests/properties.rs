//! Property tests: random layouts over random blocks never panic, and every decoded value
//! (or the first error) agrees with a deliberately simple reference implementation written
//! from the Python semantics (`scaled_value` over `decode_value`), for every type and word
//! order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use evgw_registers::{
    DecodeErrorKind, Layout, LayoutError, Value, ValueSpec, ValueType, WordOrder,
    MAX_BLOCK_REGISTERS,
};
use proptest::prelude::*;

/// What the reference says one value decodes to.
#[derive(Debug, PartialEq)]
enum Expected {
    Value(Value),
    TooShort,
    BadString,
    NonFinite,
}

/// The value's bytes as Python's `_words_to_bytes` builds them: words in big-endian order
/// (reversed first for little), each high byte first.
fn byte_image(words: &[u16], order: WordOrder) -> Vec<u8> {
    let mut ordered = words.to_vec();
    if order == WordOrder::Little {
        ordered.reverse();
    }
    ordered.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn python_hex(value: i128, count: usize) -> String {
    if value == 0 {
        return String::new();
    }
    let width = count * 4;
    if value < 0 {
        format!("-{:0w$x}", -value, w = width - 1)
    } else {
        format!("{value:0width$x}")
    }
}

fn reference(spec: &ValueSpec, block: &[u16]) -> Expected {
    if spec.offset + spec.count > block.len() {
        return Expected::TooShort;
    }
    let words = &block[spec.offset..spec.offset + spec.count];
    if spec.value_type == ValueType::String {
        let raw = byte_image(words, WordOrder::Big);
        let text: Vec<u8> = raw.iter().copied().take_while(|b| *b != 0).collect();
        if text.iter().any(|b| !(0x20..=0x7E).contains(b)) {
            return Expected::BadString;
        }
        return Expected::Value(Value::Text(String::from_utf8(text).unwrap()));
    }
    let b = byte_image(words, spec.word_order);
    // (integer, float): exactly one is set.
    let (int, float): (Option<i128>, Option<f64>) = match spec.value_type {
        ValueType::U16 => (Some(u16::from_be_bytes([b[0], b[1]]).into()), None),
        ValueType::I16 => (Some(i16::from_be_bytes([b[0], b[1]]).into()), None),
        ValueType::U32 => (
            Some(u32::from_be_bytes(b[..4].try_into().unwrap()).into()),
            None,
        ),
        ValueType::I32 => (
            Some(i32::from_be_bytes(b[..4].try_into().unwrap()).into()),
            None,
        ),
        ValueType::U64 => (
            Some(u64::from_be_bytes(b[..8].try_into().unwrap()).into()),
            None,
        ),
        ValueType::I64 => (
            Some(i64::from_be_bytes(b[..8].try_into().unwrap()).into()),
            None,
        ),
        ValueType::F32 => (
            None,
            Some(f32::from_be_bytes(b[..4].try_into().unwrap()).into()),
        ),
        ValueType::F64 => (None, Some(f64::from_be_bytes(b[..8].try_into().unwrap()))),
        ValueType::String => unreachable!(),
    };
    if let Some(float) = float {
        if !float.is_finite() {
            return Expected::NonFinite;
        }
        return Expected::Value(Value::Float(if spec.scale == 1.0 {
            float
        } else {
            float * spec.scale
        }));
    }
    let int = int.unwrap();
    if spec.hex {
        return Expected::Value(Value::Text(python_hex(int, spec.count)));
    }
    if spec.scale != 1.0 {
        // Python: int * float converts the int to the nearest float first.
        let as_float = if int < 0 {
            i64::try_from(int).unwrap() as f64
        } else {
            u64::try_from(int).unwrap() as f64
        };
        return Expected::Value(Value::Float(as_float * spec.scale));
    }
    let signed = matches!(
        spec.value_type,
        ValueType::I16 | ValueType::I32 | ValueType::I64
    );
    Expected::Value(if signed {
        Value::Signed(i64::try_from(int).unwrap())
    } else {
        Value::Unsigned(u64::try_from(int).unwrap())
    })
}

fn kind_of(kind: &DecodeErrorKind) -> Expected {
    match kind {
        DecodeErrorKind::BlockTooShort { .. } => Expected::TooShort,
        DecodeErrorKind::BadString { .. } => Expected::BadString,
        DecodeErrorKind::NonFinite { .. } => Expected::NonFinite,
    }
}

/// Floats compared bit for bit (no NaN ever gets through).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn value_type() -> impl Strategy<Value = ValueType> {
    prop::sample::select(ValueType::ALL.to_vec())
}

fn word_order() -> impl Strategy<Value = WordOrder> {
    prop_oneof![Just(WordOrder::Big), Just(WordOrder::Little)]
}

fn scale() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1.0),
        Just(0.1),
        Just(0.001),
        Just(-2.5),
        Just(1e300),
        -1e6f64..1e6,
    ]
}

/// A valid value spec at offset < 40.
fn spec(index: usize) -> impl Strategy<Value = ValueSpec> {
    (
        0usize..40,
        value_type(),
        1usize..6,
        word_order(),
        scale(),
        any::<bool>(),
    )
        .prop_map(
            move |(offset, value_type, length, word_order, scale, hex)| {
                let count = value_type.fixed_registers().unwrap_or(length);
                ValueSpec {
                    name: format!("v{index}"),
                    offset,
                    value_type,
                    count,
                    word_order,
                    scale,
                    hex: hex && value_type.is_integer(),
                }
            },
        )
}

fn layout_specs() -> impl Strategy<Value = Vec<ValueSpec>> {
    (0usize..12).prop_flat_map(|n| (0..n).map(spec).collect::<Vec<_>>())
}

/// Words biased towards the interesting: printable ASCII pairs, NUL, all ones, NaN patterns.
fn word() -> impl Strategy<Value = u16> {
    prop_oneof![
        any::<u16>(),
        (0x20u16..0x7F, 0x20u16..0x7F).prop_map(|(hi, lo)| (hi << 8) | lo),
        Just(0),
        Just(0xFFFF),
        Just(0x7F80),
        Just(0x7FF0),
        Just(0x8000),
    ]
}

fn block() -> impl Strategy<Value = Vec<u16>> {
    prop::collection::vec(word(), 0..50)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decoding_agrees_with_the_reference(specs in layout_specs(), block in block()) {
        let layout = Layout::new(specs.clone()).unwrap();
        let expected: Vec<Expected> = specs.iter().map(|s| reference(s, &block)).collect();
        let first_error = expected.iter().position(|e| !matches!(e, Expected::Value(_)));
        match layout.decode(&block) {
            Ok(values) => {
                prop_assert_eq!(first_error, None);
                prop_assert_eq!(values.len(), specs.len());
                for (value, expected) in values.iter().zip(&expected) {
                    let Expected::Value(want) = expected else { unreachable!() };
                    prop_assert!(same(value, want), "{value:?} != {want:?}");
                }
            }
            Err(error) => {
                let index = first_error.expect("an error the reference does not see");
                prop_assert_eq!(&error.name, &specs[index].name);
                prop_assert_eq!(kind_of(&error.kind), expected.into_iter().nth(index).unwrap());
                let prefix = format!("{}: ", error.name);
                prop_assert!(error.to_string().starts_with(&prefix));
            }
        }
    }

    #[test]
    fn batches_agree_with_single_decodes(
        specs in layout_specs(),
        blocks in prop::collection::vec(block(), 0..8),
    ) {
        let layout = Layout::new(specs).unwrap();
        let singles: Vec<_> = blocks.iter().map(|b| layout.decode(b)).collect();
        match layout.decode_many(blocks.iter().map(Vec::as_slice)) {
            Ok(all) => {
                prop_assert_eq!(all.len(), blocks.len());
                for (batch, single) in all.iter().zip(&singles) {
                    prop_assert_eq!(Some(batch), single.as_ref().ok());
                }
            }
            Err(error) => {
                let first = singles.iter().position(Result::is_err).unwrap();
                prop_assert_eq!(error.index, first);
                let single = singles[first].as_ref().unwrap_err();
                // Compared as text: a NaN in the error is not equal to itself.
                prop_assert_eq!(error.error.to_string(), single.to_string());
            }
        }
    }

    /// Arbitrary (also invalid) layouts and blocks: an error or values, never a panic.
    #[test]
    fn arbitrary_input_never_panics(
        raw in prop::collection::vec(
            (any::<usize>(), value_type(), 0usize..200, word_order(), any::<f64>(), any::<bool>()),
            0..8,
        ),
        block in prop::collection::vec(any::<u16>(), 0..300),
    ) {
        let specs: Vec<ValueSpec> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (offset, value_type, count, word_order, scale, hex))| ValueSpec {
                name: format!("v{}", i % 5),
                offset: offset % (MAX_BLOCK_REGISTERS + 10),
                value_type,
                count,
                word_order,
                scale,
                hex,
            })
            .collect();
        match Layout::new(specs) {
            Ok(layout) => {
                let _ = layout.decode(&block);
                let _ = layout.decode_many([block.as_slice(), &block[..block.len() / 2]]);
            }
            Err(error) => {
                let is_known = matches!(
                    error,
                    LayoutError::BadCount { .. }
                        | LayoutError::OutOfRange { .. }
                        | LayoutError::BadScale { .. }
                        | LayoutError::HexNotInteger { .. }
                        | LayoutError::DuplicateName { .. }
                );
                prop_assert!(is_known);
                prop_assert!(error.to_string().starts_with('v'));
            }
        }
    }
}
