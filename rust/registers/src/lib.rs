//! Decoding of polled Modbus register blocks.
//!
//! A Modbus read returns a block of 16-bit words; a charger profile says which values sit
//! where in it (offset, type, word order, scale, hex formatting). [`Layout`] is that
//! description, checked and compiled once per read request; [`Layout::decode`] turns one
//! block into values and [`Layout::decode_many`] does the same for many blocks (many chargers
//! of one model) in one call.
//!
//! The semantics are those of `gateway.modbus.driver.scaled_value` over
//! `gateway.modbus.registers.decode_value`:
//!
//! * words are sent high byte first; a multi-word value's words are most significant first
//!   ([`WordOrder::Big`]) or least significant first ([`WordOrder::Little`]);
//! * strings hold two ASCII characters per word, high byte first, end at the first NUL and
//!   must be printable ASCII before it (word order does not apply);
//! * a float register holding NaN or an infinity is an error;
//! * a hex-formatted integer becomes lowercase hex zero-padded to 4 digits per register
//!   (`""` for 0; a negative number keeps its sign inside the width, as Python's `{:08x}`);
//! * otherwise the value is multiplied by its scale, unless the scale is exactly 1, in
//!   which case an integer stays an integer.
//!
//! Pure Rust and sans-I/O. Nothing here panics on any input: a bad layout or block is an
//! error naming the value.

mod error;

use std::str::FromStr;

pub use error::{BatchError, DecodeError, DecodeErrorKind, LayoutError};

/// Registers in the Modbus address space (addresses 0..=65535): no value of a layout may
/// reach past this offset.
pub const MAX_BLOCK_REGISTERS: usize = 65_536;

/// The data type of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// ASCII, two characters per register; the register count is given per value.
    String,
}

impl ValueType {
    /// Every type, in declaration order.
    pub const ALL: [ValueType; 9] = [
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::U64,
        ValueType::I64,
        ValueType::F32,
        ValueType::F64,
        ValueType::String,
    ];

    /// The name profiles use (`"u16"` … `"string"`).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F32 => "f32",
            ValueType::F64 => "f64",
            ValueType::String => "string",
        }
    }

    /// Registers one value occupies, or None for strings (the layout gives the count).
    pub fn fixed_registers(self) -> Option<usize> {
        match self {
            ValueType::U16 | ValueType::I16 => Some(1),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(2),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(4),
            ValueType::String => None,
        }
    }

    pub fn is_integer(self) -> bool {
        !matches!(self, ValueType::F32 | ValueType::F64 | ValueType::String)
    }
}

impl FromStr for ValueType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ValueType::ALL.into_iter().find(|t| t.name() == s).ok_or(())
    }
}

/// Order of the 16-bit words of a multi-register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WordOrder {
    /// Most significant word first (the Modbus convention).
    #[default]
    Big,
    /// Least significant word first (Schneider EVlink Pro).
    Little,
}

impl WordOrder {
    pub fn name(self) -> &'static str {
        match self {
            WordOrder::Big => "big",
            WordOrder::Little => "little",
        }
    }
}

impl FromStr for WordOrder {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "big" => Ok(WordOrder::Big),
            "little" => Ok(WordOrder::Little),
            _ => Err(()),
        }
    }
}

/// One value of a layout, as given by its caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    pub name: String,
    /// Offset of its first register in the block.
    pub offset: usize,
    pub value_type: ValueType,
    /// Registers it occupies: the type's width, or the string's length.
    pub count: usize,
    pub word_order: WordOrder,
    /// Engineering value = raw value × scale (not applied to strings and hex values).
    pub scale: f64,
    /// Show the integer as lowercase hex (RFID tags).
    pub hex: bool,
}

impl ValueSpec {
    /// A value of a fixed-width type, its count taken from the type (1 for strings).
    pub fn new(name: impl Into<String>, offset: usize, value_type: ValueType) -> ValueSpec {
        ValueSpec {
            name: name.into(),
            offset,
            value_type,
            count: value_type.fixed_registers().unwrap_or(1),
            word_order: WordOrder::Big,
            scale: 1.0,
            hex: false,
        }
    }

    /// The offset just past this value (checked against overflow when the layout is built).
    pub fn end(&self) -> usize {
        self.offset.saturating_add(self.count)
    }
}

/// One decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An unsigned integer (u16, u32, u64) at scale 1.
    Unsigned(u64),
    /// A signed integer (i16, i32, i64) at scale 1.
    Signed(i64),
    /// A float register, or an integer register with a scale other than 1.
    Float(f64),
    /// A string register, or a hex-formatted integer.
    Text(String),
}

/// What to do with a value's raw bits, fixed when the layout is built.
#[derive(Debug, Clone, Copy)]
enum Op {
    Unsigned,
    Signed,
    UnsignedScaled(f64),
    SignedScaled(f64),
    UnsignedHex,
    SignedHex,
    F32,
    F32Scaled(f64),
    F64,
    F64Scaled(f64),
    String,
}

/// A compiled value: where its words are, how to assemble and convert them.
#[derive(Debug, Clone)]
struct Slot {
    offset: usize,
    end: usize,
    /// Bits of the value (16, 32 or 64; 0 for strings), for sign extension.
    bits: u32,
    little: bool,
    op: Op,
}

/// A checked block layout: the values one read request returns, compiled once.
#[derive(Debug, Clone)]
pub struct Layout {
    specs: Vec<ValueSpec>,
    slots: Vec<Slot>,
    block_len: usize,
}

impl Layout {
    /// Check and compile `specs`. Values may overlap and leave gaps; their order is the order
    /// of the decoded values.
    pub fn new(specs: Vec<ValueSpec>) -> Result<Layout, LayoutError> {
        let mut slots = Vec::with_capacity(specs.len());
        let mut block_len = 0;
        let mut names = std::collections::HashSet::with_capacity(specs.len());
        for spec in &specs {
            let slot = compile(spec)?;
            if !names.insert(spec.name.as_str()) {
                return Err(LayoutError::DuplicateName {
                    name: spec.name.clone(),
                });
            }
            block_len = block_len.max(slot.end);
            slots.push(slot);
        }
        Ok(Layout {
            specs,
            slots,
            block_len,
        })
    }

    /// The values, in decoding order.
    pub fn specs(&self) -> &[ValueSpec] {
        &self.specs
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Registers a block needs: the end of the value reaching furthest.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// Decode one block; longer blocks are fine (the words past the layout are ignored).
    pub fn decode(&self, block: &[u16]) -> Result<Vec<Value>, DecodeError> {
        let mut values = Vec::with_capacity(self.slots.len());
        self.decode_into(block, &mut values)?;
        Ok(values)
    }

    /// Decode one block, appending the values to `values` (cleared first), so that a caller
    /// decoding many blocks can reuse one buffer. On error `values` holds the values before the
    /// failing one.
    pub fn decode_into(&self, block: &[u16], values: &mut Vec<Value>) -> Result<(), DecodeError> {
        values.clear();
        values.reserve(self.slots.len());
        for (slot, spec) in self.slots.iter().zip(&self.specs) {
            values.push(decode_slot(slot, spec, block)?);
        }
        Ok(())
    }

    /// Decode many blocks (the same request on many chargers of one model) with this layout.
    /// The first block that fails stops the batch; the error gives its index.
    pub fn decode_many<'a, I>(&self, blocks: I) -> Result<Vec<Vec<Value>>, BatchError>
    where
        I: IntoIterator<Item = &'a [u16]>,
    {
        blocks
            .into_iter()
            .enumerate()
            .map(|(index, block)| {
                self.decode(block)
                    .map_err(|error| BatchError { index, error })
            })
            .collect()
    }
}

fn compile(spec: &ValueSpec) -> Result<Slot, LayoutError> {
    let ValueSpec {
        name,
        offset,
        value_type,
        count,
        word_order,
        scale,
        hex,
    } = spec;
    let count_fits = match value_type.fixed_registers() {
        Some(width) => *count == width,
        None => *count >= 1,
    };
    if !count_fits {
        return Err(LayoutError::BadCount {
            name: name.clone(),
            type_name: value_type.name(),
            count: *count,
        });
    }
    let end = offset
        .checked_add(*count)
        .filter(|end| *end <= MAX_BLOCK_REGISTERS)
        .ok_or_else(|| LayoutError::OutOfRange {
            name: name.clone(),
            offset: *offset,
            count: *count,
        })?;
    if !scale.is_finite() {
        return Err(LayoutError::BadScale {
            name: name.clone(),
            scale: *scale,
        });
    }
    if *hex && !value_type.is_integer() {
        return Err(LayoutError::HexNotInteger {
            name: name.clone(),
            type_name: value_type.name(),
        });
    }
    let scaled = *scale != 1.0;
    let signed = matches!(value_type, ValueType::I16 | ValueType::I32 | ValueType::I64);
    let op = match value_type {
        ValueType::String => Op::String,
        ValueType::F32 if scaled => Op::F32Scaled(*scale),
        ValueType::F32 => Op::F32,
        ValueType::F64 if scaled => Op::F64Scaled(*scale),
        ValueType::F64 => Op::F64,
        _ if *hex && signed => Op::SignedHex,
        _ if *hex => Op::UnsignedHex,
        _ if signed && scaled => Op::SignedScaled(*scale),
        _ if signed => Op::Signed,
        _ if scaled => Op::UnsignedScaled(*scale),
        _ => Op::Unsigned,
    };
    let bits = match value_type.fixed_registers() {
        Some(width) => u32::try_from(width).map_or(0, |w| w * 16),
        None => 0,
    };
    Ok(Slot {
        offset: *offset,
        end,
        bits,
        little: *word_order == WordOrder::Little,
        op,
    })
}

fn decode_slot(slot: &Slot, spec: &ValueSpec, block: &[u16]) -> Result<Value, DecodeError> {
    let Some(words) = block.get(slot.offset..slot.end) else {
        return Err(DecodeError {
            name: spec.name.clone(),
            kind: DecodeErrorKind::BlockTooShort {
                offset: slot.offset,
                count: spec.count,
                block_len: block.len(),
            },
        });
    };
    if let Op::String = slot.op {
        return decode_string(words).map_err(|bytes| DecodeError {
            name: spec.name.clone(),
            kind: DecodeErrorKind::BadString { bytes },
        });
    }
    // At most four words: the raw bits, most significant word first.
    let raw = if slot.little {
        words
            .iter()
            .rev()
            .fold(0u64, |acc, w| (acc << 16) | u64::from(*w))
    } else {
        words
            .iter()
            .fold(0u64, |acc, w| (acc << 16) | u64::from(*w))
    };
    let signed = || sign_extend(raw, slot.bits);
    let value = match slot.op {
        Op::Unsigned => Value::Unsigned(raw),
        Op::Signed => Value::Signed(signed()),
        Op::UnsignedScaled(scale) => Value::Float(raw as f64 * scale),
        Op::SignedScaled(scale) => Value::Float(signed() as f64 * scale),
        Op::UnsignedHex => Value::Text(hex_unsigned(raw, spec.count)),
        Op::SignedHex => {
            let value = signed();
            if value < 0 {
                Value::Text(hex_negative(value, spec.count))
            } else {
                Value::Text(hex_unsigned(value.unsigned_abs(), spec.count))
            }
        }
        Op::F32 | Op::F32Scaled(_) => {
            let value = f64::from(f32::from_bits(raw as u32));
            finite(value, spec)?;
            match slot.op {
                Op::F32Scaled(scale) => Value::Float(value * scale),
                _ => Value::Float(value),
            }
        }
        Op::F64 | Op::F64Scaled(_) => {
            let value = f64::from_bits(raw);
            finite(value, spec)?;
            match slot.op {
                Op::F64Scaled(scale) => Value::Float(value * scale),
                _ => Value::Float(value),
            }
        }
        Op::String => Value::Text(String::new()),
    };
    Ok(value)
}

fn finite(value: f64, spec: &ValueSpec) -> Result<(), DecodeError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(DecodeError {
            name: spec.name.clone(),
            kind: DecodeErrorKind::NonFinite { value },
        })
    }
}

/// `raw`'s low `bits` bits as a two's complement number.
fn sign_extend(raw: u64, bits: u32) -> i64 {
    let unused = 64u32.saturating_sub(bits).min(63);
    ((raw << unused) as i64) >> unused
}

/// Python's `f"{value:0{count * 4}x}" if value else ""`.
fn hex_unsigned(value: u64, count: usize) -> String {
    if value == 0 {
        return String::new();
    }
    format!("{value:0width$x}", width = count.saturating_mul(4))
}

/// Python's `f"{value:0{count * 4}x}"` for a negative value: the sign counts in the width.
fn hex_negative(value: i64, count: usize) -> String {
    let width = count.saturating_mul(4).saturating_sub(1);
    format!("-{:0width$x}", value.unsigned_abs())
}

/// The text before the first NUL, if it is all printable ASCII; else every byte of the words.
fn decode_string(words: &[u16]) -> Result<Value, Vec<u8>> {
    let mut text = String::with_capacity(words.len() * 2);
    for byte in words.iter().flat_map(|w| w.to_be_bytes()) {
        if byte == 0 {
            break;
        }
        if !(0x20..=0x7E).contains(&byte) {
            return Err(words.iter().flat_map(|w| w.to_be_bytes()).collect());
        }
        text.push(char::from(byte));
    }
    Ok(Value::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, offset: usize, value_type: ValueType) -> ValueSpec {
        ValueSpec::new(name, offset, value_type)
    }

    fn one(spec: ValueSpec, block: &[u16]) -> Result<Value, DecodeError> {
        let layout = Layout::new(vec![spec]).map_err(|e| DecodeError {
            name: e.to_string(),
            kind: DecodeErrorKind::NonFinite { value: 0.0 },
        })?;
        let mut values = layout.decode(block)?;
        Ok(values.pop().unwrap_or(Value::Text("missing".into())))
    }

    #[test]
    fn integers_in_both_word_orders() {
        let big = spec("v", 0, ValueType::U32);
        assert_eq!(
            one(big.clone(), &[0x0001, 0x0002]),
            Ok(Value::Unsigned(0x1_0002))
        );
        let little = ValueSpec {
            word_order: WordOrder::Little,
            ..big
        };
        assert_eq!(
            one(little, &[0x0001, 0x0002]),
            Ok(Value::Unsigned(0x2_0001))
        );
        assert_eq!(
            one(spec("v", 0, ValueType::I16), &[0xFFFF]),
            Ok(Value::Signed(-1))
        );
        assert_eq!(
            one(spec("v", 0, ValueType::I32), &[0xFFFF, 0xFFFE]),
            Ok(Value::Signed(-2))
        );
        assert_eq!(
            one(spec("v", 0, ValueType::I64), &[0x8000, 0, 0, 0]),
            Ok(Value::Signed(i64::MIN))
        );
        assert_eq!(
            one(spec("v", 0, ValueType::U64), &[0xFFFF; 4]),
            Ok(Value::Unsigned(u64::MAX))
        );
    }

    #[test]
    fn floats_and_scale() {
        let bits = 230.5f32.to_bits();
        let words = [(bits >> 16) as u16, bits as u16];
        assert_eq!(
            one(spec("v", 0, ValueType::F32), &words),
            Ok(Value::Float(230.5))
        );
        let scaled = ValueSpec {
            scale: 0.001,
            ..spec("v", 0, ValueType::U32)
        };
        assert_eq!(
            one(scaled, &[0, 16_000]),
            Ok(Value::Float(16_000.0 * 0.001))
        );
        let nan = one(spec("v", 0, ValueType::F32), &[0x7FC0, 0]);
        assert!(matches!(
            nan,
            Err(DecodeError {
                kind: DecodeErrorKind::NonFinite { .. },
                ..
            })
        ));
        let inf = one(spec("v", 0, ValueType::F64), &[0x7FF0, 0, 0, 0]);
        assert!(inf.is_err());
    }

    #[test]
    fn hex_matches_python_formatting() {
        let rfid = ValueSpec {
            hex: true,
            ..spec("rfid", 0, ValueType::U32)
        };
        assert_eq!(
            one(rfid.clone(), &[0x00AB, 0x12CD]),
            Ok(Value::Text("00ab12cd".into()))
        );
        assert_eq!(one(rfid, &[0, 0]), Ok(Value::Text(String::new())));
        let signed = ValueSpec {
            hex: true,
            ..spec("v", 0, ValueType::I32)
        };
        // f"{-5:08x}" == "-0000005"
        assert_eq!(
            one(signed, &[0xFFFF, 0xFFFB]),
            Ok(Value::Text("-0000005".into()))
        );
    }

    #[test]
    fn strings() {
        let text = ValueSpec {
            count: 3,
            ..spec("s", 1, ValueType::String)
        };
        let block = [
            0xFFFF,
            u16::from_be_bytes(*b"AB"),
            u16::from_be_bytes(*b"C\0"),
            0xFFFF,
        ];
        assert_eq!(one(text.clone(), &block), Ok(Value::Text("ABC".into())));
        let bad = [0, u16::from_be_bytes(*b"A\x01"), 0, 0];
        let error = one(text, &bad);
        assert!(matches!(
            error,
            Err(DecodeError {
                kind: DecodeErrorKind::BadString { .. },
                ..
            })
        ));
        if let Err(error) = error {
            assert!(error.to_string().starts_with("s: string registers hold"));
        }
    }

    #[test]
    fn short_block_names_the_value() {
        let layout = Layout::new(vec![
            spec("a", 0, ValueType::U16),
            spec("b", 1, ValueType::U32),
        ]);
        let Ok(layout) = layout else {
            unreachable!("valid layout refused")
        };
        assert_eq!(layout.block_len(), 3);
        let error = layout.decode(&[1, 2]);
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("b: needs registers 1..3 of the block, which has 2".to_owned())
        );
        let batch = layout.decode_many([&[1u16, 2, 3][..], &[1, 2]]);
        assert_eq!(batch.map_err(|e| e.index), Err(1));
    }

    #[test]
    fn bad_layouts_are_errors() {
        let too_far = spec("far", MAX_BLOCK_REGISTERS - 1, ValueType::U32);
        assert!(matches!(
            Layout::new(vec![too_far]),
            Err(LayoutError::OutOfRange { .. })
        ));
        let overflow = spec("overflow", usize::MAX, ValueType::U16);
        assert!(Layout::new(vec![overflow]).is_err());
        let count = ValueSpec {
            count: 3,
            ..spec("c", 0, ValueType::U32)
        };
        assert!(matches!(
            Layout::new(vec![count]),
            Err(LayoutError::BadCount { .. })
        ));
        let empty_string = ValueSpec {
            count: 0,
            ..spec("s", 0, ValueType::String)
        };
        assert!(Layout::new(vec![empty_string]).is_err());
        let hex_float = ValueSpec {
            hex: true,
            ..spec("h", 0, ValueType::F32)
        };
        assert!(Layout::new(vec![hex_float]).is_err());
        let nan_scale = ValueSpec {
            scale: f64::NAN,
            ..spec("n", 0, ValueType::U16)
        };
        assert!(Layout::new(vec![nan_scale]).is_err());
        let twice = vec![spec("d", 0, ValueType::U16), spec("d", 1, ValueType::U16)];
        assert!(matches!(
            Layout::new(twice),
            Err(LayoutError::DuplicateName { .. })
        ));
        assert_eq!("f64".parse::<ValueType>(), Ok(ValueType::F64));
        assert!("f16".parse::<ValueType>().is_err());
        assert_eq!("little".parse::<WordOrder>(), Ok(WordOrder::Little));
    }

    #[test]
    fn empty_layout_decodes_anything() {
        let Ok(layout) = Layout::new(Vec::new()) else {
            unreachable!("empty layout refused")
        };
        assert!(layout.is_empty());
        assert_eq!(layout.decode(&[]), Ok(Vec::new()));
    }
}
