//! The `OcppError` exception hierarchy.
//!
//! The classes are written in Python (run once at import) rather than with
//! `create_exception!`, because they need a constructor that stores the OCPP attributes, an
//! `error_frame()` method and `__reduce__` so that instances pickle with their attributes.

use evgw_ocpp::{ErrorKind, OcppError, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyType};

const SOURCE: &std::ffi::CStr = cr#"
class OcppError(Exception):
    """A frame or payload that violates OCPP-J. Never raised for a well-formed CALLERROR."""

    def __init__(self, description="", code="GenericError", message_id="-1", details=None,
                 should_reply=False, frame=None):
        super().__init__(description)
        self.code = code
        self.message_id = message_id
        self.description = description
        self.details = {} if details is None else details
        self.should_reply = should_reply
        self._frame = frame

    def error_frame(self):
        """The CALLERROR (or 2.1 CALLRESULTERROR) frame to send back, or None when
        `should_reply` is False."""
        return self._frame if self.should_reply else None

    def __reduce__(self):
        return (type(self), (self.description, self.code, self.message_id, self.details,
                             self.should_reply, self._frame))

    def __repr__(self):
        return (f"{type(self).__name__}(code={self.code!r}, message_id={self.message_id!r}, "
                f"description={self.description!r})")


class FormatViolation(OcppError):
    """Syntactically bad payload or PDU: FormationViolation (1.6) / FormatViolation (2.x)."""


class ProtocolError(OcppError):
    """Incomplete frame or wrong frame structure."""


class OccurrenceConstraintViolation(OcppError):
    """Missing required field or wrong number of items."""


class PropertyConstraintViolation(OcppError):
    """A field with a value outside its enum, length, range, format or multiple."""


class TypeConstraintViolation(OcppError):
    """A field of the wrong JSON type."""


class ActionNotImplemented(OcppError):
    """CALL of an action unknown to the version: NotImplemented."""


class ActionNotSupported(OcppError):
    """CALL of an action known to the version but not supported: NotSupported."""


class RpcFrameworkError(OcppError):
    """Frame that is not a valid RPC frame; FormationViolation on 1.6."""


class MessageTypeNotSupported(OcppError):
    """Unknown message type number."""
"#;

/// Class names, in the order of [`class_index`].
const NAMES: [&str; 10] = [
    "OcppError",
    "FormatViolation",
    "ProtocolError",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
    "TypeConstraintViolation",
    "ActionNotImplemented",
    "ActionNotSupported",
    "RpcFrameworkError",
    "MessageTypeNotSupported",
];

static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();
/// `BaseException.__new__`: the codec builds instances through it and sets the attributes
/// itself, skipping the Python-level `__init__` (about twice as fast per error).
static NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The instance attributes `OcppError.__init__` sets, in its order.
const ATTRIBUTES: [&str; 6] = [
    "code",
    "message_id",
    "description",
    "details",
    "should_reply",
    "_frame",
];

/// An attribute dict holding [`ATTRIBUTES`], copied for each new instance.
static TEMPLATE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn class_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::FormatViolation => 1,
        ErrorKind::ProtocolError => 2,
        ErrorKind::OccurrenceConstraintViolation => 3,
        ErrorKind::PropertyConstraintViolation => 4,
        ErrorKind::TypeConstraintViolation => 5,
        ErrorKind::NotImplemented => 6,
        ErrorKind::NotSupported => 7,
        ErrorKind::RpcFrameworkError => 8,
        ErrorKind::MessageTypeNotSupported => 9,
        ErrorKind::InternalError | ErrorKind::SecurityError | ErrorKind::GenericError => 0,
    }
}

/// Define the classes and add them to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let namespace = PyDict::new(py);
    // Classes take `__module__` from the globals' `__name__`, so they pickle by reference.
    namespace.set_item("__name__", "gateway._core")?;
    py.run(SOURCE, Some(&namespace), None)?;
    let mut classes = Vec::with_capacity(NAMES.len());
    for name in NAMES {
        let class = namespace
            .get_item(name)?
            .ok_or_else(|| {
                pyo3::exceptions::PyRuntimeError::new_err(format!("{name} not defined"))
            })?
            .cast_into::<PyType>()?;
        m.add(name, &class)?;
        classes.push(class.unbind());
    }
    // A second import in the same interpreter finds the cell filled; the first classes stay.
    let _ = CLASSES.set(py, classes);
    let new = py
        .get_type::<pyo3::exceptions::PyBaseException>()
        .getattr("__new__")?;
    let _ = NEW.set(py, new.unbind());
    let template = PyDict::new(py);
    for key in ATTRIBUTES {
        template.set_item(PyString::intern(py, key), py.None())?;
    }
    let _ = TEMPLATE.set(py, template.unbind());
    Ok(())
}

/// The Python exception instance for `error`, codes spelled for `version`.
pub(crate) fn to_exception<'py>(
    py: Python<'py>,
    error: &OcppError,
    version: Version,
) -> PyResult<Bound<'py, PyAny>> {
    let classes = CLASSES.get(py).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("gateway._core not initialised")
    })?;
    let class = classes
        .get(class_index(error.kind))
        .or_else(|| classes.first())
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("exception classes missing"))?;
    let new = NEW.get(py).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("gateway._core not initialised")
    })?;
    let description = PyString::new(py, &error.description);
    let instance = new.bind(py).call1((class.bind(py), &description))?;
    // Same state as `OcppError.__init__` would set: args = (description,) plus the
    // attributes, stored as one fresh `__dict__` rather than six attribute assignments.
    // Copying a template with the six keys is cheaper than growing an empty dict past its
    // first size; the values below replace the template's in place.
    let attributes = TEMPLATE
        .get(py)
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("gateway._core not initialised"))?
        .bind(py)
        .copy()?;
    attributes.set_item(intern!(py, "code"), code_string(py, error, version))?;
    attributes.set_item(
        intern!(py, "message_id"),
        PyString::new(py, &error.message_id),
    )?;
    attributes.set_item(intern!(py, "description"), description)?;
    attributes.set_item(intern!(py, "details"), PyDict::new(py))?;
    attributes.set_item(
        intern!(py, "should_reply"),
        pyo3::types::PyBool::new(py, error.should_reply),
    )?;
    match error.error_frame(version) {
        Some(frame) => attributes.set_item(intern!(py, "_frame"), PyString::new(py, &frame))?,
        None => attributes.set_item(intern!(py, "_frame"), py.None())?,
    }
    instance.setattr(intern!(py, "__dict__"), attributes)?;
    Ok(instance)
}

/// The code strings, per kind (in [`ErrorKind::ALL`] order) and spelling (1.6, then 2.x),
/// made once: every error carries one.
static CODES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();

fn code_string<'py>(py: Python<'py>, error: &OcppError, version: Version) -> Bound<'py, PyString> {
    let codes = CODES.get_or_init(py, || {
        ErrorKind::ALL
            .iter()
            .flat_map(|kind| [kind.code(Version::V16), kind.code(Version::V201)])
            .map(|code| PyString::intern(py, code).unbind())
            .collect()
    });
    let position = ErrorKind::ALL
        .iter()
        .position(|kind| *kind == error.kind)
        .map(|i| 2 * i + usize::from(version != Version::V16));
    match position.and_then(|i| codes.get(i)) {
        Some(code) => code.bind(py).clone(),
        None => PyString::new(py, error.code(version)),
    }
}

/// `error` as a raisable `PyErr`.
pub(crate) fn to_pyerr(py: Python<'_>, error: &OcppError, version: Version) -> PyErr {
    match to_exception(py, error, version) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}
