//! The Python exception classes the codec raises, and the reference codec it defers to.
//!
//! Both live in Python (`qrun.errors`, `qrun.reference_codec`) so the native and reference
//! codecs raise the very same classes; they are imported once, on first need.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyModule, PyType};

static CODEC_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static REFERENCE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `qrun.errors.CodecError(message)`.
pub fn codec_error(py: Python<'_>, message: String) -> PyErr {
    let class = CODEC_ERROR.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let class = py.import("qrun.errors")?.getattr("CodecError")?;
        Ok(class.cast_into::<PyType>()?.unbind())
    });
    match class {
        Ok(class) => PyErr::from_type(class.bind(py).clone(), (message,)),
        Err(error) => error,
    }
}

/// The `qrun.reference_codec` module, for inputs the native path leaves to it.
pub fn reference(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    let module = REFERENCE.get_or_try_init(py, || -> PyResult<Py<PyModule>> {
        Ok(py.import("qrun.reference_codec")?.unbind())
    })?;
    Ok(module.bind(py))
}

/// `type(value).__name__`, as the reference codec's messages print it.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .getattr("__name__")
        .and_then(|name| name.extract::<String>())
        .unwrap_or_else(|_| String::from("object"))
}
