//! The `OcppError` exception hierarchy.
//!
//! `OcppError` is a pyo3 class extending `Exception` that keeps the Rust error: raising one
//! costs an allocation and a move, and the Python attributes (`code`, `message_id`,
//! `description`, `details`, `should_reply`) and `error_frame()` are built only when read —
//! most codec errors are answered (or dropped) without reading all of them. The per-kind
//! classes are pyo3 subclasses, so `except OcppError` and `except FormatViolation` both work,
//! and instances pickle (`__reduce__`) with their attributes.

use evgw_ocpp::{ErrorKind, OcppError as Error, Version};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

/// Where an exception's attributes come from.
enum Origin {
    /// Raised by the codec: the attributes are derived from the error on read.
    Codec { error: Error, version: Version },
    /// Built from Python (the constructor, unpickling): the values given.
    Python {
        description: String,
        code: String,
        message_id: String,
        should_reply: bool,
        frame: Option<String>,
    },
}

/// A frame or payload that violates OCPP-J. Never raised for a well-formed CALLERROR.
#[pyclass(
    extends = PyException,
    subclass,
    name = "OcppError",
    module = "gateway._core"
)]
pub(crate) struct PyOcppError {
    origin: Origin,
    /// `details`, made (empty, for codec errors) on first read.
    details: Option<Py<PyAny>>,
}

impl PyOcppError {
    fn from_python(
        description: String,
        code: String,
        message_id: String,
        details: Option<Py<PyAny>>,
        should_reply: bool,
        frame: Option<String>,
    ) -> PyOcppError {
        PyOcppError {
            origin: Origin::Python {
                description,
                code,
                message_id,
                should_reply,
                frame,
            },
            details,
        }
    }

    fn description_str(&self) -> &str {
        match &self.origin {
            Origin::Codec { error, .. } => &error.description,
            Origin::Python { description, .. } => description,
        }
    }
}

#[pymethods]
impl PyOcppError {
    #[new]
    #[pyo3(signature = (
        description = String::new(),
        code = "GenericError".to_owned(),
        message_id = "-1".to_owned(),
        details = None,
        should_reply = false,
        frame = None,
    ))]
    fn new(
        description: String,
        code: String,
        message_id: String,
        details: Option<Py<PyAny>>,
        should_reply: bool,
        frame: Option<String>,
    ) -> PyOcppError {
        PyOcppError::from_python(description, code, message_id, details, should_reply, frame)
    }

    /// Sets `args` to `(description,)`; the attributes were stored by `__new__`. (Without it,
    /// `BaseException.__init__` would refuse keyword arguments.)
    #[pyo3(signature = (description = None, *_args, **_kwargs))]
    fn __init__(
        slf: &Bound<'_, Self>,
        description: Option<Bound<'_, PyAny>>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let description = match description {
            Some(description) => description,
            None => PyString::new(py, "").into_any(),
        };
        slf.setattr(pyo3::intern!(py, "args"), (description,))
    }

    /// The CallError code, spelled for the codec's version.
    #[getter]
    fn code<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        match &self.origin {
            Origin::Codec { error, version } => code_string(py, error.kind, *version),
            Origin::Python { code, .. } => PyString::new(py, code),
        }
    }

    /// The id to answer with: the frame's own id, or "-1" when it could not be read.
    #[getter]
    fn message_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        match &self.origin {
            Origin::Codec { error, .. } => PyString::new(py, &error.message_id),
            Origin::Python { message_id, .. } => PyString::new(py, message_id),
        }
    }

    /// A short human-readable reason; at most 255 characters.
    #[getter]
    fn description<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.description_str())
    }

    #[getter]
    fn details<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.details {
            Some(details) => details.bind(py).clone(),
            None => {
                let details = PyDict::new(py).into_any();
                self.details = Some(details.clone().unbind());
                details
            }
        }
    }

    /// False where the spec says to ignore the frame: log it, send nothing.
    #[getter]
    fn should_reply(&self) -> bool {
        match &self.origin {
            Origin::Codec { error, .. } => error.should_reply,
            Origin::Python { should_reply, .. } => *should_reply,
        }
    }

    /// The CALLERROR (or 2.1 CALLRESULTERROR) frame to send back, or None when
    /// `should_reply` is False.
    fn error_frame(&self) -> Option<String> {
        match &self.origin {
            Origin::Codec { error, version } => error.error_frame(*version),
            Origin::Python {
                should_reply,
                frame,
                ..
            } => frame.clone().filter(|_| *should_reply),
        }
    }

    fn __str__<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.description(py)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let this = slf.try_borrow()?;
        Ok(format!(
            "{}(code={}, message_id={}, description={})",
            slf.get_type().name()?,
            this.code(py).repr()?,
            this.message_id(py).repr()?,
            this.description(py).repr()?,
        ))
    }

    /// `(type(self), (description, code, message_id, details, should_reply, frame))`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let mut this = slf.try_borrow_mut()?;
        let frame = match &this.origin {
            Origin::Codec { error, version } => error.error_frame(*version),
            Origin::Python { frame, .. } => frame.clone(),
        };
        let arguments = (
            this.description(py),
            this.code(py),
            this.message_id(py),
            this.details(py),
            this.should_reply(),
            frame,
        )
            .into_pyobject(py)?;
        PyTuple::new(py, [slf.get_type().into_any(), arguments.into_any()])
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(details) = &self.details {
            visit.call(details)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.details = None;
    }
}

/// Define the per-kind subclasses of `OcppError`, each constructible like it.
macro_rules! kinds {
    ($($(#[$doc:meta])* $class:ident,)+) => {
        $(
            $(#[$doc])*
            #[pyclass(extends = PyOcppError, subclass, module = "gateway._core")]
            pub(crate) struct $class;

            #[pymethods]
            impl $class {
                #[new]
                #[pyo3(signature = (
                    description = String::new(),
                    code = "GenericError".to_owned(),
                    message_id = "-1".to_owned(),
                    details = None,
                    should_reply = false,
                    frame = None,
                ))]
                fn new(
                    description: String,
                    code: String,
                    message_id: String,
                    details: Option<Py<PyAny>>,
                    should_reply: bool,
                    frame: Option<String>,
                ) -> PyClassInitializer<Self> {
                    PyClassInitializer::from(PyOcppError::from_python(
                        description, code, message_id, details, should_reply, frame,
                    ))
                    .add_subclass($class)
                }
            }
        )+

        /// Add the classes to the module.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<PyOcppError>()?;
            $(m.add_class::<$class>()?;)+
            Ok(())
        }
    };
}

kinds! {
    /// Syntactically bad payload or PDU: FormationViolation (1.6) / FormatViolation (2.x).
    FormatViolation,
    /// Incomplete frame or wrong frame structure.
    ProtocolError,
    /// Missing required field or wrong number of items.
    OccurrenceConstraintViolation,
    /// A field with a value outside its enum, length, range, format or multiple.
    PropertyConstraintViolation,
    /// A field of the wrong JSON type.
    TypeConstraintViolation,
    /// CALL of an action unknown to the version: NotImplemented.
    ActionNotImplemented,
    /// CALL of an action known to the version but not supported: NotSupported.
    ActionNotSupported,
    /// Frame that is not a valid RPC frame; FormationViolation on 1.6.
    RpcFrameworkError,
    /// Unknown message type number.
    MessageTypeNotSupported,
}

/// The Python exception instance for `error`, codes spelled for `version`.
pub(crate) fn to_exception(
    py: Python<'_>,
    error: Error,
    version: Version,
) -> PyResult<Bound<'_, PyAny>> {
    let kind = error.kind;
    let base = PyClassInitializer::from(PyOcppError {
        origin: Origin::Codec { error, version },
        details: None,
    });
    Ok(match kind {
        ErrorKind::FormatViolation => {
            Bound::new(py, base.add_subclass(FormatViolation))?.into_any()
        }
        ErrorKind::ProtocolError => Bound::new(py, base.add_subclass(ProtocolError))?.into_any(),
        ErrorKind::OccurrenceConstraintViolation => {
            Bound::new(py, base.add_subclass(OccurrenceConstraintViolation))?.into_any()
        }
        ErrorKind::PropertyConstraintViolation => {
            Bound::new(py, base.add_subclass(PropertyConstraintViolation))?.into_any()
        }
        ErrorKind::TypeConstraintViolation => {
            Bound::new(py, base.add_subclass(TypeConstraintViolation))?.into_any()
        }
        ErrorKind::NotImplemented => {
            Bound::new(py, base.add_subclass(ActionNotImplemented))?.into_any()
        }
        ErrorKind::NotSupported => {
            Bound::new(py, base.add_subclass(ActionNotSupported))?.into_any()
        }
        ErrorKind::RpcFrameworkError => {
            Bound::new(py, base.add_subclass(RpcFrameworkError))?.into_any()
        }
        ErrorKind::MessageTypeNotSupported => {
            Bound::new(py, base.add_subclass(MessageTypeNotSupported))?.into_any()
        }
        ErrorKind::InternalError | ErrorKind::SecurityError | ErrorKind::GenericError => {
            Bound::new(py, base)?.into_any()
        }
    })
}

/// The code strings, per kind (in [`ErrorKind::ALL`] order) and spelling (1.6, then 2.x),
/// made once: every error carries one.
static CODES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();

fn code_string(py: Python<'_>, kind: ErrorKind, version: Version) -> Bound<'_, PyString> {
    let codes = CODES.get_or_init(py, || {
        ErrorKind::ALL
            .iter()
            .flat_map(|kind| [kind.code(Version::V16), kind.code(Version::V201)])
            .map(|code| PyString::intern(py, code).unbind())
            .collect()
    });
    let position = ErrorKind::ALL
        .iter()
        .position(|k| *k == kind)
        .map(|i| 2 * i + usize::from(version != Version::V16));
    match position.and_then(|i| codes.get(i)) {
        Some(code) => code.bind(py).clone(),
        None => PyString::new(py, kind.code(version)),
    }
}

/// `error` as a raisable `PyErr`.
pub(crate) fn to_pyerr(py: Python<'_>, error: Error, version: Version) -> PyErr {
    match to_exception(py, error, version) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// `gateway.modbus.registers.RegisterDecodeError`, imported on first use (the Modbus package
/// pulls in pymodbus, which the codec alone should not pay for at import).
static REGISTER_DECODE_ERROR: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();

/// A `RegisterDecodeError` with `message`: the pure-Python class itself, so that the driver's
/// `except RegisterDecodeError` and the poller's `except ChargerUnavailable` catch it. Should
/// that module not import, a `ValueError` with the import error as its cause.
pub(crate) fn register_decode_error(py: Python<'_>, message: String) -> PyErr {
    match REGISTER_DECODE_ERROR.import(py, "gateway.modbus.registers", "RegisterDecodeError") {
        Ok(class) => PyErr::from_type(class.clone(), (message,)),
        Err(import_error) => {
            let error = pyo3::exceptions::PyValueError::new_err(message);
            error.set_cause(py, Some(import_error));
            error
        }
    }
}
