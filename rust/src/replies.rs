//! XREADGROUP replies (as the RESP parser hands them over) into job tuples.
//!
//! Mirrors `reference_codec.decode_read_reply` check for check: a reply of the wrong shape
//! raises `CodecError`; an entry that is not a valid job comes back as
//! `(stream, entry_id, reason, raw_fields)` for the worker to dead-letter.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::{codec_error, type_name};
use crate::json_decode::{load_json, Parsed};

/// Longest decimal accepted for `attempt` and `enqueued_at`.
const MAX_DIGITS: usize = 18;

type Decoded<'py> = (Bound<'py, PyList>, Bound<'py, PyList>);

#[pyfunction]
pub fn decode_read_reply<'py>(py: Python<'py>, reply: &Bound<'py, PyAny>) -> PyResult<Decoded<'py>> {
    let jobs = PyList::empty(py);
    let malformed = PyList::empty(py);
    if reply.is_none() {
        return Ok((jobs, malformed));
    }
    let streams = reply
        .cast::<PyList>()
        .map_err(|_| codec_error(py, format!("read reply must be an array, got {}", type_name(reply))))?;
    for stream_reply in streams.iter() {
        let pair = pair_of(&stream_reply)
            .ok_or_else(|| codec_error(py, "each stream in a read reply must be a [name, entries] pair".into()))?;
        let (stream, entries) = pair;
        if !stream.is_instance_of::<PyBytes>() || !entries.is_instance_of::<PyList>() {
            return Err(codec_error(py, "stream name must be a bulk string and its entries an array".into()));
        }
        for entry in entries.cast::<PyList>()?.iter() {
            let (raw_id, fields) =
                pair_of(&entry).ok_or_else(|| codec_error(py, "each entry must be an [id, fields] pair".into()))?;
            let entry_id = entry_id(py, &raw_id)?;
            if fields.is_none() {
                let reason = PyString::new(py, "entry was deleted while pending");
                let item = PyTuple::new(py, [stream.clone(), entry_id.into_any(), reason.into_any(), PyList::empty(py).into_any()])?;
                malformed.append(item)?;
                continue;
            }
            let fields = fields
                .cast::<PyList>()
                .map_err(|_| codec_error(py, "entry fields must be an array or nil".into()))?;
            match decode_fields(py, fields)? {
                Ok(parts) => {
                    let mut items = vec![stream.clone(), entry_id.into_any()];
                    items.extend(parts);
                    jobs.append(PyTuple::new(py, items)?)?;
                }
                Err(reason) => {
                    let raw = PyList::new(py, fields.iter())?;
                    let item = PyTuple::new(py, [stream.clone(), entry_id.into_any(), PyString::new(py, &reason).into_any(), raw.into_any()])?;
                    malformed.append(item)?;
                }
            }
        }
    }
    Ok((jobs, malformed))
}

fn pair_of<'py>(value: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let list = value.cast::<PyList>().ok()?;
    if list.len() != 2 {
        return None;
    }
    Some((list.get_item(0).ok()?, list.get_item(1).ok()?))
}

fn entry_id<'py>(py: Python<'py>, raw: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let bytes = raw
        .cast::<PyBytes>()
        .map_err(|_| codec_error(py, format!("entry id must be a bulk string, got {}", type_name(raw))))?
        .as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.is_ascii() => Ok(PyString::new(py, text)),
        _ => Err(codec_error(py, "entry id is not ASCII".into())),
    }
}

/// The six known fields of an entry; a repeated field keeps its last value.
#[derive(Default)]
struct Fields<'py> {
    id: Option<Bound<'py, PyBytes>>,
    task: Option<Bound<'py, PyBytes>>,
    args: Option<Bound<'py, PyBytes>>,
    kwargs: Option<Bound<'py, PyBytes>>,
    attempt: Option<Bound<'py, PyBytes>>,
    enqueued_at: Option<Bound<'py, PyBytes>>,
}

fn collect_fields<'py>(fields: &Bound<'py, PyList>) -> Result<Fields<'py>, String> {
    if fields.len() % 2 == 1 {
        return Err("odd number of field names and values".into());
    }
    let mut found = Fields::default();
    let mut items = fields.iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        let (Ok(name), Ok(value)) = (name.cast_into::<PyBytes>(), value.cast_into::<PyBytes>()) else {
            return Err("field names and values must be strings".into());
        };
        let slot = match name.as_bytes() {
            b"id" => &mut found.id,
            b"task" => &mut found.task,
            b"args" => &mut found.args,
            b"kwargs" => &mut found.kwargs,
            b"attempt" => &mut found.attempt,
            b"enqueued_at" => &mut found.enqueued_at,
            _ => continue,
        };
        *slot = Some(value);
    }
    Ok(found)
}

type Parts<'py> = Vec<Bound<'py, PyAny>>;

/// `Ok(Ok(parts))` for a job, `Ok(Err(reason))` for a malformed entry.
fn decode_fields<'py>(py: Python<'py>, fields: &Bound<'py, PyList>) -> PyResult<Result<Parts<'py>, String>> {
    let found = match collect_fields(fields) {
        Ok(found) => found,
        Err(reason) => return Ok(Err(reason)),
    };
    let id = match required_text(py, "id", found.id.as_ref()) {
        Ok(text) => text,
        Err(reason) => return Ok(Err(reason)),
    };
    let task = match required_text(py, "task", found.task.as_ref()) {
        Ok(text) => text,
        Err(reason) => return Ok(Err(reason)),
    };
    let args = match json_field(py, found.args.as_ref(), b"[]")? {
        Parsed::Invalid => return Ok(Err("field 'args' is not valid JSON".into())),
        Parsed::Value(value) => match value.cast_into::<PyList>() {
            Ok(list) => list.to_tuple().into_any(),
            Err(_) => return Ok(Err("field 'args' is not a JSON array".into())),
        },
    };
    let kwargs = match json_field(py, found.kwargs.as_ref(), b"{}")? {
        Parsed::Invalid => return Ok(Err("field 'kwargs' is not valid JSON".into())),
        Parsed::Value(value) if value.is_instance_of::<PyDict>() => value,
        Parsed::Value(_) => return Ok(Err("field 'kwargs' is not a JSON object".into())),
    };
    let attempt = match found.attempt.as_ref().map_or(Some(1), |raw| parse_count(raw.as_bytes())) {
        Some(attempt) if attempt >= 1 => attempt,
        _ => return Ok(Err("field 'attempt' is not an integer >= 1".into())),
    };
    let Some(enqueued_at) = found.enqueued_at.as_ref().map_or(Some(0), |raw| parse_count(raw.as_bytes())) else {
        return Ok(Err("field 'enqueued_at' is not a non-negative integer".into()));
    };
    Ok(Ok(vec![
        id.into_any(),
        task.into_any(),
        args,
        kwargs,
        attempt.into_pyobject(py)?.into_any(),
        enqueued_at.into_pyobject(py)?.into_any(),
    ]))
}

fn required_text<'py>(py: Python<'py>, name: &str, raw: Option<&Bound<'py, PyBytes>>) -> Result<Bound<'py, PyString>, String> {
    let raw = raw.ok_or_else(|| format!("missing field '{name}'"))?;
    let text = std::str::from_utf8(raw.as_bytes()).map_err(|_| format!("field '{name}' is not valid UTF-8"))?;
    if text.is_empty() {
        return Err(format!("field '{name}' is empty"));
    }
    Ok(PyString::new(py, text))
}

fn json_field<'py>(py: Python<'py>, raw: Option<&Bound<'py, PyBytes>>, default: &[u8]) -> PyResult<Parsed<'py>> {
    match raw {
        Some(raw) => load_json(py, raw),
        None => load_json(py, &PyBytes::new(py, default)),
    }
}

/// A decimal of 1 to 18 ASCII digits, as `reference_codec._parse_count` accepts.
fn parse_count(raw: &[u8]) -> Option<i64> {
    if raw.is_empty() || raw.len() > MAX_DIGITS || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts_are_plain_ascii_digits_only() {
        assert_eq!(parse_count(b"1"), Some(1));
        assert_eq!(parse_count(b"007"), Some(7));
        assert_eq!(parse_count(b"999999999999999999"), Some(999_999_999_999_999_999));
        for bad in [&b""[..], b"+1", b"-1", b" 1", b"1_0", b"1.0", b"1234567890123456789", "١".as_bytes()] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }
}
