//! Conversion between jiter's `JsonValue` trees and Python objects.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use evgw_ocpp::JsonValue;
use num_bigint::BigInt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

/// Keys longer than this are not cached: they are compared as four machine words, and OCPP
/// property names are shorter (the few longer ones just get a fresh string).
const MAX_CACHED_KEY_BYTES: usize = 32;

/// Slots of the key cache: a power of two comfortably above the few hundred distinct
/// property names one version's schemas use, so real keys rarely evict each other, yet small
/// enough (48 KiB) to stay in the CPU caches.
const KEY_SLOTS: usize = 1024;

/// A cached key: its bytes packed into words for a branch-light comparison, and the string.
struct Slot {
    len: usize,
    words: [u64; 4],
    string: Py<PyString>,
}

/// Python strings for object keys, reused across frames: no allocation per key, and the
/// string's hash is computed once, which makes dict building much cheaper.
///
/// Direct-mapped: a key's slot is a multiplicative hash of its packed bytes; a miss
/// overwrites the slot. Memory stays bounded whatever keys a peer sends, and a hit costs one
/// hash and four word comparisons, no call.
pub(crate) struct KeyCache(Vec<Option<Slot>>);

static KEY_CACHE: Mutex<Option<KeyCache>> = Mutex::new(None);

/// Lock the process-wide key cache (once per call, not per key), or None if it is in use.
///
/// Never blocks: building Python objects can run arbitrary Python (a garbage collection
/// calling `__del__`), which may switch threads or re-enter the codec while the lock is
/// held; waiting here then could deadlock. A caller that finds the cache busy decodes with
/// [`KeyCache::uncached`] instead.
pub(crate) fn key_cache() -> Option<MutexGuard<'static, Option<KeyCache>>> {
    match KEY_CACHE.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// `key` zero-padded into four little-endian words (callers ensure it fits). Whole words are
/// loaded directly and the tail assembled bytewise: a variable-length copy into a stack buffer
/// followed by word loads stalls on store forwarding.
fn pack(key: &[u8]) -> [u64; 4] {
    let mut words = [0u64; 4];
    let mut chunks = key.chunks(8);
    for word in &mut words {
        match chunks.next() {
            Some(chunk) => {
                if let Ok(full) = <[u8; 8]>::try_from(chunk) {
                    *word = u64::from_le_bytes(full);
                } else {
                    *word = chunk
                        .iter()
                        .rev()
                        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                }
            }
            None => break,
        }
    }
    words
}

/// FxHash's multiplier (rustc-hash): an odd constant with well-spread bits.
const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

fn slot_of(words: &[u64; 4], len: usize) -> usize {
    let [a, b, c, d] = *words;
    let mixed = (a ^ b.rotate_left(16) ^ c.rotate_left(32) ^ d.rotate_left(48) ^ len as u64)
        .wrapping_mul(FX_SEED);
    // The high bits of a multiplicative hash are the well-mixed ones.
    (mixed >> (64 - KEY_SLOTS.trailing_zeros())) as usize
}

impl KeyCache {
    /// A cache without slots: every key becomes a fresh string.
    pub(crate) fn uncached() -> KeyCache {
        KeyCache(Vec::new())
    }

    pub(crate) fn key<'py>(&mut self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        if key.len() > MAX_CACHED_KEY_BYTES {
            return PyString::new(py, key);
        }
        let words = pack(key.as_bytes());
        let Some(slot) = self.0.get_mut(slot_of(&words, key.len())) else {
            return PyString::new(py, key);
        };
        if let Some(cached) = slot {
            // Scalar XORs: the words sit in registers, whereas an array comparison reloads
            // them from the stack as vectors and stalls on store forwarding.
            let [a, b, c, d] = words;
            let [e, f, g, h] = cached.words;
            if cached.len == key.len() && ((a ^ e) | (b ^ f) | (c ^ g) | (d ^ h)) == 0 {
                return cached.string.bind(py).clone();
            }
        }
        let string = PyString::new(py, key);
        // Hash now, so every dict using the key finds it precomputed.
        let _ = string.hash();
        *slot = Some(Slot {
            len: key.len(),
            words,
            string: string.clone().unbind(),
        });
        string
    }
}

/// Get (creating on first use) the cache inside a locked guard.
pub(crate) fn cache<'a>(
    guard: &'a mut Option<MutexGuard<'static, Option<KeyCache>>>,
    uncached: &'a mut KeyCache,
) -> &'a mut KeyCache {
    match guard {
        Some(guard) => shared(guard),
        None => uncached,
    }
}

fn shared(guard: &mut Option<KeyCache>) -> &mut KeyCache {
    guard.get_or_insert_with(|| KeyCache((0..KEY_SLOTS).map(|_| None).collect()))
}

/// A Python `str` holding `s`. ASCII text (nearly every OCPP value) is copied straight into
/// a new compact ASCII string, as orjson does; `PyString::new` would run CPython's UTF-8
/// decoder over it. Anything else takes that decoder.
#[allow(unsafe_code)]
pub(crate) fn new_string<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    let len = match ffi::Py_ssize_t::try_from(s.len()) {
        Ok(len) if s.is_ascii() => len,
        _ => return Ok(PyString::new(py, s)),
    };
    // SAFETY:
    // - `py` proves this thread is attached to the interpreter, as every C API call needs.
    // - `PyUnicode_New(len, 127)` returns a new (owned) reference to a compact ASCII `str`
    //   with a buffer of `len` bytes (it writes the terminating NUL itself), or NULL with an
    //   exception set, which `from_owned_ptr_or_err` turns into `Err` before any write.
    // - `PyUnicode_1BYTE_DATA` of that object is the start of its buffer; we write exactly
    //   `s.len() == len` bytes into it, from `s`, which cannot overlap the new object.
    // - Every byte is ASCII (checked above), so the string's declared maximum character,
    //   127, holds, as CPython requires of a compact ASCII string.
    // - Nothing else sees the object before it is filled in, and it is a `str`, so the
    //   unchecked cast to `PyString` is sound.
    unsafe {
        let string = Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_New(len, 127))?;
        std::ptr::copy_nonoverlapping(
            s.as_ptr(),
            ffi::PyUnicode_1BYTE_DATA(string.as_ptr()),
            s.len(),
        );
        Ok(string.cast_into_unchecked())
    }
}

/// Build the Python object of a parsed value. Recursion is bounded by the codec's depth
/// limit, checked before conversion.
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    value: &JsonValue<'_>,
    keys: &mut KeyCache,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        JsonValue::Null => py.None().into_bound(py),
        JsonValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        JsonValue::Int(i) => i.into_pyobject(py)?.into_any(),
        JsonValue::BigInt(b) => b.into_pyobject(py)?.into_any(),
        JsonValue::Float(f) => PyFloat::new(py, *f).into_any(),
        JsonValue::Str(s) => new_string(py, s)?.into_any(),
        JsonValue::Array(items) => {
            let converted = items
                .iter()
                .map(|item| to_py(py, item, keys))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, converted)?.into_any()
        }
        JsonValue::Object(members) => dict_to_py(py, members, keys)?.into_any(),
    })
}

/// Build the dict of a parsed object (duplicate keys: the last wins, as in `json.loads`).
pub(crate) fn dict_to_py<'py>(
    py: Python<'py>,
    members: &[(Cow<'_, str>, JsonValue<'_>)],
    keys: &mut KeyCache,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in members {
        dict.set_item(keys.key(py, key), to_py(py, value, keys)?)?;
    }
    Ok(dict)
}

/// Convert a Python value (dict/list/str/int/float/bool/None) into a JSON tree; anything
/// else is a TypeError. `depth` is the nesting still allowed (ValueError beyond it), which
/// also stops self-referencing containers.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<JsonValue<'static>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(JsonValue::Str(Cow::Owned(s.to_str()?.to_owned())));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let depth = deeper(depth)?;
        let mut members = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let key = key.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("dict keys must be str, not {}", type_name(&key)))
            })?;
            members.push((
                Cow::Owned(key.to_str()?.to_owned()),
                from_py(&value, depth)?,
            ));
        }
        return Ok(JsonValue::Object(Arc::new(members)));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let depth = deeper(depth)?;
        let mut items = Vec::with_capacity(list.len());
        for item in list.iter() {
            items.push(from_py(&item, depth)?);
        }
        return Ok(JsonValue::Array(Arc::new(items)));
    }
    // bool before int: bool is a subclass of int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(JsonValue::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => JsonValue::Int(i),
            Err(_) => JsonValue::BigInt(obj.extract::<BigInt>()?),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let f = f.value();
        if !f.is_finite() {
            return Err(PyValueError::new_err(format!(
                "{f} cannot be written as JSON"
            )));
        }
        return Ok(JsonValue::Float(f));
    }
    if obj.is_none() {
        return Ok(JsonValue::Null);
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON serializable (expected dict, list, str, int, float, bool or None)",
        type_name(obj)
    )))
}

fn deeper(depth: usize) -> PyResult<usize> {
    depth
        .checked_sub(1)
        .ok_or_else(|| PyValueError::new_err("value nested deeper than the codec's max_depth"))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// Builds Python objects for the codec's single-pass CALL decoder.
pub(crate) struct PySink<'a, 'py> {
    pub(crate) py: Python<'py>,
    pub(crate) keys: &'a mut KeyCache,
    /// The caller's `pending` mapping (message id -> action of our CALL).
    pub(crate) pending: Option<&'a Bound<'py, PyAny>>,
}

impl<'py> evgw_ocpp::Sink for PySink<'_, 'py> {
    type Value = Bound<'py, PyAny>;
    type Key = Bound<'py, PyString>;
    type Object = Bound<'py, PyDict>;
    type Array = Vec<Bound<'py, PyAny>>;
    type Error = PyErr;

    fn null(&mut self) -> PyResult<Self::Value> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn bool(&mut self, b: bool) -> PyResult<Self::Value> {
        Ok(PyBool::new(self.py, b).to_owned().into_any())
    }
    fn int(&mut self, i: i64) -> PyResult<Self::Value> {
        Ok(i.into_pyobject(self.py)?.into_any())
    }
    fn float(&mut self, f: f64) -> PyResult<Self::Value> {
        Ok(PyFloat::new(self.py, f).into_any())
    }
    fn str(&mut self, s: &str) -> PyResult<Self::Value> {
        Ok(new_string(self.py, s)?.into_any())
    }
    fn enum_str(&mut self, s: &str) -> PyResult<Self::Value> {
        // Enum members (measurands, units, statuses...) repeat in every frame; the key
        // cache serves them as well as keys.
        Ok(self.keys.key(self.py, s).into_any())
    }
    fn key(&mut self, k: &str) -> PyResult<Self::Key> {
        Ok(self.keys.key(self.py, k))
    }
    fn new_object(&mut self) -> PyResult<Self::Object> {
        Ok(PyDict::new(self.py))
    }
    fn set(
        &mut self,
        object: &mut Self::Object,
        key: Self::Key,
        value: Self::Value,
    ) -> PyResult<()> {
        object.set_item(key, value)
    }
    fn object(&mut self, object: Self::Object) -> PyResult<Self::Value> {
        Ok(object.into_any())
    }
    fn new_array(&mut self) -> PyResult<Self::Array> {
        Ok(Vec::new())
    }
    fn push(&mut self, array: &mut Self::Array, value: Self::Value) -> PyResult<()> {
        array.push(value);
        Ok(())
    }
    fn array(&mut self, array: Self::Array) -> PyResult<Self::Value> {
        Ok(PyList::new(self.py, array)?.into_any())
    }
    fn with_pending_action<R>(
        &mut self,
        id_value: &Self::Value,
        message_id: &str,
        f: impl FnOnce(Option<&str>) -> R,
    ) -> PyResult<R> {
        // A dict is asked with the id string just built (its hash is then cached for the
        // message), and a str action is borrowed; anything else takes the general path.
        if let Some(pending) = self.pending.and_then(|p| p.cast::<PyDict>().ok()) {
            if let Some(action) = pending.get_item(id_value)? {
                if let Ok(action) = action.cast::<PyString>() {
                    return Ok(f(Some(action.to_str()?)));
                }
                return Ok(f(Some(&action.extract::<String>()?)));
            }
            return Ok(f(None));
        }
        let action = self.pending_action(message_id)?;
        Ok(f(action.as_deref()))
    }
    fn pending_action(&mut self, message_id: &str) -> PyResult<Option<String>> {
        match self.pending {
            Some(pending) => crate::ocpp::pending_action(pending, message_id),
            None => Ok(None),
        }
    }
}
