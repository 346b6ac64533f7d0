//! `RegisterLayout`: decoding of polled Modbus register blocks with `evgw_registers`. The
//! layout is built once per read request of a profile; each poll passes the block's words
//! (a list of ints, as the link returns them) and gets a dict of engineering values back.

use evgw_registers::{Layout, LayoutError, Value, ValueSpec, ValueType, WordOrder};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::register_decode_error;

/// One value of a layout as Python gives it: `(name, offset, type, count, word_order,
/// scale, hex)`.
type ValueTuple = (String, usize, String, usize, String, f64, bool);

/// A compiled block layout: which value sits where in the words of one read request.
#[pyclass(frozen, module = "gateway._core", name = "RegisterLayout")]
pub(crate) struct RegisterLayout {
    layout: Layout,
    /// The value names as interned Python strings, in layout order.
    names: Vec<Py<PyString>>,
}

#[pymethods]
impl RegisterLayout {
    /// `values`: an iterable of `(name, offset, type, count, word_order, scale, hex)` tuples.
    /// Raises `ValueError` for a bad layout (unknown type or word order, a count that does not
    /// fit the type, a value past the address space, a non-finite scale, hex on a non-integer
    /// type, a name given twice), `TypeError` for a malformed tuple.
    #[new]
    fn new(py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<RegisterLayout> {
        let mut specs = Vec::new();
        for item in values.try_iter()? {
            let (name, offset, type_name, count, order_name, scale, hex): ValueTuple =
                item?.extract()?;
            let value_type = type_name.parse::<ValueType>().map_err(|()| {
                layout_error(LayoutError::UnknownType {
                    name: name.clone(),
                    given: type_name.clone(),
                })
            })?;
            let word_order = order_name.parse::<WordOrder>().map_err(|()| {
                layout_error(LayoutError::UnknownWordOrder {
                    name: name.clone(),
                    given: order_name.clone(),
                })
            })?;
            specs.push(ValueSpec {
                name,
                offset,
                value_type,
                count,
                word_order,
                scale,
                hex,
            });
        }
        let layout = Layout::new(specs).map_err(layout_error)?;
        let names = layout
            .specs()
            .iter()
            .map(|spec| PyString::intern(py, &spec.name).unbind())
            .collect();
        Ok(RegisterLayout { layout, names })
    }

    /// Decode one block (a sequence of 16-bit ints) into `{name: value}`. Raises
    /// `gateway.modbus.registers.RegisterDecodeError` naming the value for a block too short,
    /// a string that is not printable ASCII, a NaN or infinite float, or a word outside
    /// 0..65535.
    fn decode<'py>(&self, words: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let py = words.py();
        let mut block = Vec::with_capacity(self.layout.block_len());
        read_words(words, &mut block, None)?;
        let values = self
            .layout
            .decode(&block)
            .map_err(|error| register_decode_error(py, error.to_string()))?;
        self.dict(py, &values)
    }

    /// Decode many blocks (the same request on many chargers) into a list of dicts. All or
    /// nothing: the first bad block raises `RegisterDecodeError` naming its index and value.
    fn decode_many<'py>(&self, blocks: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let py = blocks.py();
        let mut words = Vec::new();
        for (index, block) in blocks.try_iter()?.enumerate() {
            let mut buffer = Vec::with_capacity(self.layout.block_len());
            read_words(&block?, &mut buffer, Some(index))?;
            words.push(buffer);
        }
        let decoded = self
            .layout
            .decode_many(words.iter().map(Vec::as_slice))
            .map_err(|error| register_decode_error(py, error.to_string()))?;
        let dicts = decoded
            .iter()
            .map(|values| self.dict(py, values))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }

    /// The value names, in layout order.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.names.iter().map(|name| name.bind(py)))
    }

    /// Registers a block needs (the end of the value reaching furthest).
    #[getter]
    fn block_len(&self) -> usize {
        self.layout.block_len()
    }

    fn __len__(&self) -> usize {
        self.layout.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "RegisterLayout({} values, {} registers)",
            self.layout.len(),
            self.layout.block_len()
        )
    }
}

impl RegisterLayout {
    fn dict<'py>(&self, py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in self.names.iter().zip(values) {
            let object = match value {
                Value::Unsigned(v) => v.into_pyobject(py)?.into_any(),
                Value::Signed(v) => v.into_pyobject(py)?.into_any(),
                Value::Float(v) => PyFloat::new(py, *v).into_any(),
                Value::Text(v) => PyString::new(py, v).into_any(),
            };
            dict.set_item(name.bind(py), object)?;
        }
        Ok(dict)
    }
}

fn layout_error(error: LayoutError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// Append the words of `block` (a list, a tuple or any iterable of ints) to `out`. An int
/// outside 0..65535 is a `RegisterDecodeError`, as in `decode_value`; a non-int a `TypeError`.
fn read_words(block: &Bound<'_, PyAny>, out: &mut Vec<u16>, index: Option<usize>) -> PyResult<()> {
    let word = |item: Bound<'_, PyAny>| -> PyResult<u16> {
        match item.extract::<u16>() {
            Ok(word) => Ok(word),
            Err(error) if item.cast::<PyInt>().is_err() => Err(error),
            Err(_) => {
                let prefix = index.map_or(String::new(), |i| format!("block {i}: "));
                Err(register_decode_error(
                    item.py(),
                    format!("{prefix}register word {item} is not a 16-bit value"),
                ))
            }
        }
    };
    if let Ok(list) = block.cast::<PyList>() {
        for item in list.iter() {
            out.push(word(item)?);
        }
    } else if let Ok(tuple) = block.cast::<PyTuple>() {
        for item in tuple.iter() {
            out.push(word(item)?);
        }
    } else {
        for item in block.try_iter()? {
            out.push(word(item?)?);
        }
    }
    Ok(())
}

/// Add the class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RegisterLayout>()
}
