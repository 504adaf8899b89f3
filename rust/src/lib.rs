//! `qrun._codec`: the Rust twin of `qrun/reference_codec.py` (which defines the wire format).
//!
//! This file only wires functions into the Python module. Every function has a fast native
//! path for the inputs jobs actually carry; anything unusual (a subclass with its own
//! `__iter__`, an int past 64 bits, an error to report) is handed to the reference codec, so
//! output and errors match it by construction. Nothing here panics on input data.

mod errors;
mod json_decode;
mod json_encode;
mod replies;
mod resp;

use pyo3::prelude::*;

#[pymodule]
fn _codec(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(resp::encode_payload, module)?)?;
    module.add_function(wrap_pyfunction!(resp::pack_enqueue, module)?)?;
    module.add_function(wrap_pyfunction!(replies::decode_read_reply, module)?)?;
    Ok(())
}
