//! `gateway._core`: the Python face of the evgw Rust crates.
//!
//! Thin on purpose: argument conversion, Python object building and exception mapping. All
//! protocol logic lives in `evgw_ocpp`, the solver in `evgw_balancing` and register decoding
//! in `evgw_registers`.

mod balancing;
mod convert;
mod errors;
mod ocpp;
mod registers;

use pyo3::prelude::*;

/// The extension module (`gateway._core`).
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add(
        "DEFAULT_MAX_FRAME_BYTES",
        evgw_ocpp::DEFAULT_MAX_FRAME_BYTES,
    )?;
    m.add("DEFAULT_MAX_DEPTH", evgw_ocpp::DEFAULT_MAX_DEPTH)?;
    m.add("MAX_MESSAGE_ID_LENGTH", evgw_ocpp::MAX_MESSAGE_ID_LENGTH)?;
    errors::register(m)?;
    ocpp::register(m)?;
    balancing::register(m)?;
    registers::register(m)?;
    Ok(())
}
