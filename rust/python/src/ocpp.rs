//! `Codec` and the message classes.

use evgw_ocpp::{CodecOptions, EncodeError, FastOutcome, JsonValue, Message, OcppError, Version};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::convert::{cache, dict_to_py, from_py, key_cache, KeyCache, PySink};
use crate::errors::{to_exception, to_pyerr};

/// Define `__repr__` and `__eq__` for a frozen message class from its field names.
macro_rules! message_methods {
    ($class:ident, $($field:ident),+) => {
        #[pymethods]
        impl $class {
            #[new]
            fn new($($field: Bound<'_, PyAny>),+) -> PyResult<Self> {
                Ok($class { $($field: $field.extract()?),+ })
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let mut parts: Vec<String> = Vec::new();
                $(parts.push(format!(
                    "{}={}",
                    stringify!($field),
                    self.$field.bind(py).repr()?
                ));)+
                Ok(format!("{}({})", stringify!($class), parts.join(", ")))
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
                let py = other.py();
                let Ok(other) = other.cast::<$class>() else {
                    return Ok(false);
                };
                let other = other.get();
                $(if !PyAnyMethods::eq(self.$field.bind(py).as_any(), other.$field.bind(py))? {
                    return Ok(false);
                })+
                Ok(true)
            }
        }
    };
}

/// `[2, id, action, payload]`: a request.
#[pyclass(frozen, get_all, module = "gateway._core")]
pub(crate) struct Call {
    message_id: Py<PyString>,
    action: Py<PyString>,
    payload: Py<PyDict>,
}
message_methods!(Call, message_id, action, payload);

/// `[3, id, payload]`: a response; `action` is that of the CALL it answers, when known.
#[pyclass(frozen, get_all, module = "gateway._core")]
pub(crate) struct CallResult {
    message_id: Py<PyString>,
    action: Py<PyAny>,
    payload: Py<PyDict>,
}
message_methods!(CallResult, message_id, action, payload);

/// `[4, id, code, description, details]`: the peer's error answer to one of our CALLs.
#[pyclass(frozen, get_all, module = "gateway._core")]
pub(crate) struct CallError {
    message_id: Py<PyString>,
    code: Py<PyString>,
    description: Py<PyString>,
    details: Py<PyDict>,
}
message_methods!(CallError, message_id, code, description, details);

/// `[5, id, code, description, details]` (OCPP 2.1).
#[pyclass(frozen, get_all, module = "gateway._core")]
pub(crate) struct CallResultError {
    message_id: Py<PyString>,
    code: Py<PyString>,
    description: Py<PyString>,
    details: Py<PyDict>,
}
message_methods!(CallResultError, message_id, code, description, details);

/// `[6, id, action, payload]` (OCPP 2.1): a request that is never answered.
#[pyclass(frozen, get_all, module = "gateway._core")]
pub(crate) struct Send {
    message_id: Py<PyString>,
    action: Py<PyString>,
    payload: Py<PyDict>,
}
message_methods!(Send, message_id, action, payload);

/// An OCPP-J codec for one negotiated subprotocol.
#[pyclass(frozen, module = "gateway._core")]
pub(crate) struct Codec {
    inner: evgw_ocpp::Codec,
}

/// Why decoding one frame failed: an OCPP error (returned in place by `decode_many`) or a
/// Python error (bad argument types), which is always raised.
enum DecodeFailure {
    Ocpp(OcppError),
    Python(PyErr),
}

impl From<PyErr> for DecodeFailure {
    fn from(e: PyErr) -> Self {
        DecodeFailure::Python(e)
    }
}

fn positive(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be positive, got {value}")))
}

fn encode_error(py: Python<'_>, error: EncodeError, version: Version) -> PyErr {
    match error {
        EncodeError::Invalid(e) => to_pyerr(py, e, version),
        EncodeError::Argument(message) => PyValueError::new_err(message),
    }
}

#[pymethods]
impl Codec {
    #[new]
    #[pyo3(signature = (
        subprotocol,
        *,
        max_frame_bytes = evgw_ocpp::DEFAULT_MAX_FRAME_BYTES as i64,
        max_depth = evgw_ocpp::DEFAULT_MAX_DEPTH as i64,
        check_formats = true,
        supported_actions = None,
    ))]
    fn new(
        subprotocol: &str,
        max_frame_bytes: i64,
        max_depth: i64,
        check_formats: bool,
        supported_actions: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let version = Version::from_subprotocol(subprotocol).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown subprotocol {subprotocol:?} (expected ocpp1.6, ocpp2.0.1 or ocpp2.1)"
            ))
        })?;
        let supported_actions = match supported_actions {
            None => None,
            Some(actions) => {
                if actions.is_instance_of::<PyString>() {
                    return Err(PyTypeError::new_err(
                        "supported_actions must be an iterable of action names, not a str",
                    ));
                }
                let mut names = Vec::new();
                for action in actions.try_iter()? {
                    names.push(action?.extract::<String>()?);
                }
                Some(names)
            }
        };
        let options = CodecOptions {
            max_frame_bytes: positive("max_frame_bytes", max_frame_bytes)?,
            max_depth: positive("max_depth", max_depth)?,
            check_formats,
            supported_actions,
        };
        let inner = evgw_ocpp::Codec::new(version, options)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Codec { inner })
    }

    #[getter]
    fn subprotocol(&self) -> &'static str {
        self.inner.version().subprotocol()
    }

    #[getter]
    fn max_frame_bytes(&self) -> usize {
        self.inner.max_frame_bytes()
    }

    #[getter]
    fn max_depth(&self) -> usize {
        self.inner.max_depth()
    }

    fn actions(&self) -> Vec<&'static str> {
        self.inner.actions()
    }

    fn __repr__(&self) -> String {
        format!(
            "Codec({:?}, max_frame_bytes={}, max_depth={})",
            self.subprotocol(),
            self.max_frame_bytes(),
            self.max_depth()
        )
    }

    #[pyo3(signature = (frame, pending = None))]
    fn decode<'py>(
        &self,
        frame: &Bound<'py, PyAny>,
        pending: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = frame.py();
        let (mut guard, mut uncached) = (key_cache(), KeyCache::uncached());
        match self.decode_one(frame, pending, cache(&mut guard, &mut uncached)) {
            Ok(message) => Ok(message),
            Err(DecodeFailure::Ocpp(e)) => Err(to_pyerr(py, e, self.inner.version())),
            Err(DecodeFailure::Python(e)) => Err(e),
        }
    }

    #[pyo3(signature = (frames, pending = None))]
    fn decode_many<'py>(
        &self,
        frames: &Bound<'py, PyAny>,
        pending: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let py = frames.py();
        if frames.is_instance_of::<PyString>() || frames.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "decode_many takes a sequence of frames",
            ));
        }
        let out = PyList::empty(py);
        let (mut guard, mut uncached) = (key_cache(), KeyCache::uncached());
        let keys = cache(&mut guard, &mut uncached);
        for frame in frames.try_iter()? {
            let frame = frame?;
            match self.decode_one(&frame, pending, keys) {
                Ok(message) => out.append(message)?,
                Err(DecodeFailure::Ocpp(e)) => {
                    out.append(to_exception(py, e, self.inner.version())?)?
                }
                Err(DecodeFailure::Python(e)) => return Err(e),
            }
        }
        Ok(out)
    }

    #[pyo3(signature = (action, payload, *, response = false))]
    fn validate(&self, action: &str, payload: &Bound<'_, PyAny>, response: bool) -> PyResult<()> {
        let py = payload.py();
        let value = self.payload_from_py(payload)?;
        self.inner
            .validate(action, &value, response)
            .map_err(|e| to_pyerr(py, e, self.inner.version()))
    }

    fn encode_call(
        &self,
        message_id: &str,
        action: &str,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        self.encode_with(payload, |codec, value| {
            codec.encode_call(message_id, action, value)
        })
    }

    fn encode_result(
        &self,
        message_id: &str,
        action: &str,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        self.encode_with(payload, |codec, value| {
            codec.encode_result(message_id, action, value)
        })
    }

    fn encode_send(
        &self,
        message_id: &str,
        action: &str,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        self.encode_with(payload, |codec, value| {
            codec.encode_send(message_id, action, value)
        })
    }

    #[pyo3(signature = (message_id, code, description = "", details = None))]
    fn encode_error(
        &self,
        py: Python<'_>,
        message_id: &str,
        code: &str,
        description: &str,
        details: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let details = details.map(|d| self.payload_from_py(d)).transpose()?;
        self.inner
            .encode_error(message_id, code, description, details.as_ref())
            .map_err(|e| encode_error(py, e, self.inner.version()))
    }
}

impl Codec {
    /// Convert `payload` from Python, then serialize it with `encode` (which validates it),
    /// mapping the codec's errors to Python exceptions.
    fn encode_with(
        &self,
        payload: &Bound<'_, PyAny>,
        encode: impl FnOnce(&evgw_ocpp::Codec, &JsonValue<'static>) -> Result<String, EncodeError>,
    ) -> PyResult<String> {
        let value = self.payload_from_py(payload)?;
        encode(&self.inner, &value).map_err(|e| encode_error(payload.py(), e, self.inner.version()))
    }

    /// A payload (or details) object from Python; it sits at depth 2 of its frame.
    fn payload_from_py(&self, payload: &Bound<'_, PyAny>) -> PyResult<JsonValue<'static>> {
        if !payload.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err(format!(
                "payload must be a dict, not {}",
                payload.get_type().name()?
            )));
        }
        from_py(payload, self.inner.max_depth().saturating_sub(1))
    }

    fn decode_one<'py>(
        &self,
        frame: &Bound<'py, PyAny>,
        pending: Option<&Bound<'py, PyAny>>,
        keys: &mut KeyCache,
    ) -> Result<Bound<'py, PyAny>, DecodeFailure> {
        let py = frame.py();
        let bytes: &[u8] = if let Ok(s) = frame.cast::<PyString>() {
            match s.to_str() {
                Ok(text) => text.as_bytes(),
                // Lone surrogates: not encodable as UTF-8, so not a valid text frame.
                Err(_) => {
                    return Err(DecodeFailure::Ocpp(OcppError::new(
                        evgw_ocpp::ErrorKind::RpcFrameworkError,
                        "-1",
                        "frame is not valid Unicode text",
                    )))
                }
            }
        } else if let Ok(b) = frame.cast::<PyBytes>() {
            b.as_bytes()
        } else {
            return Err(PyTypeError::new_err(format!(
                "frame must be str or bytes, not {}",
                frame.get_type().name()?
            ))
            .into());
        };
        // Valid CALLs and CALLRESULTs (the bulk of traffic) take the single-pass path;
        // everything else, and every error, goes through the tree decoder.
        let mut sink = PySink { py, keys, pending };
        let fast = match self.inner.decode_single_pass(bytes, &mut sink)? {
            FastOutcome::Message(fast) => fast,
            // A schema violation in a well-formed frame, described by the same pass.
            FastOutcome::Invalid(error) => return Err(DecodeFailure::Ocpp(error)),
            FastOutcome::Unsure => return self.decode_tree(py, bytes, pending, keys),
        };
        let message_id = fast
            .message_id
            .cast_into::<PyString>()
            .map_err(PyErr::from)?
            .unbind();
        let payload = fast.payload.unbind();
        let action = fast.action.map(|a| keys.key(py, a).unbind());
        Ok(match (fast.message_type, action) {
            (2, Some(action)) => Bound::new(
                py,
                Call {
                    message_id,
                    action,
                    payload,
                },
            )?
            .into_any(),
            (6, Some(action)) => Bound::new(
                py,
                Send {
                    message_id,
                    action,
                    payload,
                },
            )?
            .into_any(),
            // Type 3: the action of the pending CALL, if any.
            (_, action) => Bound::new(
                py,
                CallResult {
                    message_id,
                    action: action.map_or_else(|| py.None(), Py::into_any),
                    payload,
                },
            )?
            .into_any(),
        })
    }

    /// The tree path: every frame the single pass does not take, and every error.
    fn decode_tree<'py>(
        &self,
        py: Python<'py>,
        bytes: &[u8],
        pending: Option<&Bound<'py, PyAny>>,
        keys: &mut KeyCache,
    ) -> Result<Bound<'py, PyAny>, DecodeFailure> {
        let mut message = self.inner.decode(bytes).map_err(DecodeFailure::Ocpp)?;
        if let (Message::CallResult { message_id, .. }, Some(pending)) = (&message, pending) {
            if let Some(action) = pending_action(pending, message_id)? {
                message = self
                    .inner
                    .bind_result(message, &action)
                    .map_err(DecodeFailure::Ocpp)?;
            }
        }
        Ok(message_to_py(py, message, keys)?)
    }
}

/// The action `pending` maps `id` to (dict fast path, else any Mapping's `__getitem__`).
pub(crate) fn pending_action(pending: &Bound<'_, PyAny>, id: &str) -> PyResult<Option<String>> {
    let value = if let Ok(dict) = pending.cast::<PyDict>() {
        dict.get_item(id)?
    } else {
        match pending.get_item(id) {
            Ok(v) => Some(v),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(pending.py()) => None,
            Err(e) => return Err(e),
        }
    };
    value.map(|v| v.extract::<String>()).transpose()
}

fn message_to_py<'py>(
    py: Python<'py>,
    message: Message<'_>,
    keys: &mut KeyCache,
) -> PyResult<Bound<'py, PyAny>> {
    let text = |s: &str| PyString::new(py, s).unbind();
    Ok(match message {
        Message::Call {
            message_id,
            action,
            payload,
        } => Bound::new(
            py,
            Call {
                message_id: text(&message_id),
                action: keys.key(py, action).unbind(),
                payload: dict_to_py(py, &payload, keys)?.unbind(),
            },
        )?
        .into_any(),
        Message::Send {
            message_id,
            action,
            payload,
        } => Bound::new(
            py,
            Send {
                message_id: text(&message_id),
                action: keys.key(py, action).unbind(),
                payload: dict_to_py(py, &payload, keys)?.unbind(),
            },
        )?
        .into_any(),
        Message::CallResult {
            message_id,
            action,
            payload,
        } => Bound::new(
            py,
            CallResult {
                message_id: text(&message_id),
                action: match action {
                    Some(a) => keys.key(py, a).into_any().unbind(),
                    None => py.None(),
                },
                payload: dict_to_py(py, &payload, keys)?.unbind(),
            },
        )?
        .into_any(),
        Message::CallError {
            message_id,
            code,
            description,
            details,
        } => Bound::new(
            py,
            CallError {
                message_id: text(&message_id),
                code: text(&code),
                description: text(&description),
                details: dict_to_py(py, &details, keys)?.unbind(),
            },
        )?
        .into_any(),
        Message::CallResultError {
            message_id,
            code,
            description,
            details,
        } => Bound::new(
            py,
            CallResultError {
                message_id: text(&message_id),
                code: text(&code),
                description: text(&description),
                details: dict_to_py(py, &details, keys)?.unbind(),
            },
        )?
        .into_any(),
    })
}

/// Add the codec classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Codec>()?;
    m.add_class::<Call>()?;
    m.add_class::<CallResult>()?;
    m.add_class::<CallError>()?;
    m.add_class::<CallResultError>()?;
    m.add_class::<Send>()?;
    Ok(())
}
