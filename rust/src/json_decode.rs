//! Python values from job JSON, equal to what `reference_codec.load_json` returns.
//!
//! serde_json parses; anything it refuses or cannot represent exactly (a lone surrogate
//! escape, nesting past its limit, an integer past 64 bits) is handed to the reference
//! parser, whose verdict stands.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString};
use serde_json::Value;

use crate::errors::reference;

/// What a field's JSON turned out to be.
pub enum Parsed<'py> {
    Value(Bound<'py, PyAny>),
    Invalid,
}

pub fn load_json<'py>(py: Python<'py>, raw: &Bound<'py, PyBytes>) -> PyResult<Parsed<'py>> {
    if let Ok(value) = serde_json::from_slice::<Value>(raw.as_bytes()) {
        if let Some(object) = to_python(py, &value)? {
            return Ok(Parsed::Value(object));
        }
    }
    match reference(py)?.getattr("load_json")?.call1((raw,)) {
        Ok(object) => Ok(Parsed::Value(object)),
        Err(error) if error.is_instance_of::<pyo3::exceptions::PyValueError>(py) => Ok(Parsed::Invalid),
        Err(error) => Err(error),
    }
}

/// `None` when the value holds something only the reference parser renders exactly.
fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(Some(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => {
            let text = number.as_str();
            if text.contains(['.', 'e', 'E']) {
                match text.parse::<f64>() {
                    Ok(float) => PyFloat::new(py, float).into_any(),
                    Err(_) => return Ok(None),
                }
            } else {
                match text.parse::<i64>() {
                    Ok(integer) => integer.into_pyobject(py)?.into_any(),
                    Err(_) => return Ok(None),
                }
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                match to_python(py, item)? {
                    Some(object) => list.append(object)?,
                    None => return Ok(None),
                }
            }
            list.into_any()
        }
        Value::Object(members) => {
            let dict = PyDict::new(py);
            for (key, item) in members {
                match to_python(py, item)? {
                    Some(object) => dict.set_item(key, object)?,
                    None => return Ok(None),
                }
            }
            dict.into_any()
        }
    }))
}
