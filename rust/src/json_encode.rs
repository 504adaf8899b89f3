//! Compact JSON from Python values, byte-identical to `reference_codec.dump_json`.
//!
//! Returns `Err(Unsupported)` for anything it does not handle itself: the caller then asks
//! the reference codec, which either encodes the value or raises the exact `PayloadError`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Containers nested deeper than this go to the reference codec (same limit there).
pub const MAX_DEPTH: usize = 200;

/// The native path declines this value; the reference codec decides.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsupported;

pub fn write_value(out: &mut Vec<u8>, value: &Bound<'_, PyAny>, depth: usize) -> Result<(), Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported);
    }
    if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(flag) = value.cast::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"true" } else { b"false" });
    } else if let Ok(text) = value.cast::<PyString>() {
        write_str(out, text.to_str().map_err(|_| Unsupported)?);
    } else if value.is_exact_instance_of::<PyInt>() {
        let number: i64 = value.extract().map_err(|_| Unsupported)?;
        out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
    } else if value.is_exact_instance_of::<PyFloat>() {
        write_float(out, value)?;
    } else if let Ok(list) = exact::<PyList>(value) {
        out.push(b'[');
        for (index, item) in list.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_value(out, &item, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(tuple) = exact::<PyTuple>(value) {
        out.push(b'[');
        for (index, item) in tuple.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_value(out, &item, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(dict) = exact::<PyDict>(value) {
        write_dict(out, dict, depth)?;
    } else {
        return Err(Unsupported);
    }
    Ok(())
}

fn exact<'a, 'py, T: pyo3::PyTypeInfo + pyo3::type_object::PyTypeCheck>(
    value: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, T>, Unsupported> {
    if value.is_exact_instance_of::<T>() {
        value.cast::<T>().map_err(|_| Unsupported)
    } else {
        Err(Unsupported)
    }
}

fn write_dict(out: &mut Vec<u8>, dict: &Bound<'_, PyDict>, depth: usize) -> Result<(), Unsupported> {
    out.push(b'{');
    for (index, (key, item)) in dict.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let key = key.cast::<PyString>().map_err(|_| Unsupported)?;
        write_str(out, key.to_str().map_err(|_| Unsupported)?);
        out.push(b':');
        write_value(out, &item, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// Python's own `float.__repr__`, so digits and exponent style match exactly.
fn write_float(out: &mut Vec<u8>, value: &Bound<'_, PyAny>) -> Result<(), Unsupported> {
    let float = value.cast::<PyFloat>().map_err(|_| Unsupported)?;
    if !float.value().is_finite() {
        return Err(Unsupported);
    }
    let repr = value.repr().map_err(|_| Unsupported)?;
    out.extend_from_slice(repr.to_str().map_err(|_| Unsupported)?.as_bytes());
    Ok(())
}

/// A JSON string as `json.dumps(..., ensure_ascii=False)` writes it.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (position, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..position]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = position + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::write_str;

    fn encoded(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn plain_and_non_ascii_text_is_written_raw() {
        assert_eq!(encoded("héllo ✓"), "\"héllo ✓\"");
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped_like_python() {
        assert_eq!(encoded("a\"b\\c\n\r\t\u{8}\u{c}"), "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\"");
        assert_eq!(encoded("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
    }
}
