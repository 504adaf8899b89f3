//! Job payloads and the RESP command that enqueues a batch of jobs in one round trip.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::reference;
use crate::json_encode::{write_value, Unsupported};

/// `(args JSON, kwargs JSON)` of one job, as `reference_codec.encode_payload` returns them.
#[pyfunction]
pub fn encode_payload<'py>(
    py: Python<'py>,
    args: &Bound<'py, PyAny>,
    kwargs: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut args_json = Vec::new();
    let mut kwargs_json = Vec::new();
    match write_payload(&mut args_json, &mut kwargs_json, args, kwargs) {
        Ok(()) => PyTuple::new(py, [PyBytes::new(py, &args_json), PyBytes::new(py, &kwargs_json)]),
        Err(Unsupported) => reference(py)?
            .getattr("encode_payload")?
            .call1((args, kwargs))?
            .cast_into::<PyTuple>()
            .map_err(PyErr::from),
    }
}

fn write_payload(
    args_out: &mut Vec<u8>,
    kwargs_out: &mut Vec<u8>,
    args: &Bound<'_, PyAny>,
    kwargs: &Bound<'_, PyAny>,
) -> Result<(), Unsupported> {
    let is_sequence = args.is_exact_instance_of::<PyTuple>() || args.is_exact_instance_of::<PyList>();
    if !is_sequence || !kwargs.is_exact_instance_of::<PyDict>() {
        return Err(Unsupported);
    }
    write_value(args_out, args, 0)?;
    write_value(kwargs_out, kwargs, 0)
}

/// One RESP `EVALSHA sha numkeys keys... <6 values per job>`, as
/// `reference_codec.pack_enqueue` builds it.
#[pyfunction]
pub fn pack_enqueue<'py>(
    py: Python<'py>,
    sha: &Bound<'py, PyAny>,
    keys: &Bound<'py, PyAny>,
    jobs: &Bound<'py, PyAny>,
    attempt: i64,
    enqueued_at_ms: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    match pack_native(sha, keys, jobs, attempt, enqueued_at_ms) {
        Ok(buffer) => Ok(PyBytes::new(py, &buffer)),
        Err(Unsupported) => reference(py)?
            .getattr("pack_enqueue")?
            .call1((sha, keys, jobs, attempt, enqueued_at_ms))?
            .cast_into::<PyBytes>()
            .map_err(PyErr::from),
    }
}

fn pack_native(
    sha: &Bound<'_, PyAny>,
    keys: &Bound<'_, PyAny>,
    jobs: &Bound<'_, PyAny>,
    attempt: i64,
    enqueued_at_ms: i64,
) -> Result<Vec<u8>, Unsupported> {
    let sha = sha.cast::<PyBytes>().map_err(|_| Unsupported)?.as_bytes();
    let keys = exact_list(keys)?;
    let jobs = exact_list(jobs)?;
    let mut out = Vec::with_capacity(64 + jobs.len() * 160);
    write_array_header(&mut out, 3 + keys.len() + 6 * jobs.len());
    write_bulk(&mut out, b"EVALSHA");
    write_bulk(&mut out, sha);
    write_bulk(&mut out, itoa::Buffer::new().format(keys.len()).as_bytes());
    for key in &keys {
        write_bulk(&mut out, key.cast::<PyBytes>().map_err(|_| Unsupported)?.as_bytes());
    }
    let mut attempt_buffer = itoa::Buffer::new();
    let attempt_text = attempt_buffer.format(attempt).as_bytes();
    let mut enqueued_buffer = itoa::Buffer::new();
    let enqueued_text = enqueued_buffer.format(enqueued_at_ms).as_bytes();
    let mut json = Vec::new();
    for job in &jobs {
        let job = job.cast::<PyTuple>().map_err(|_| Unsupported)?;
        if job.len() != 4 {
            return Err(Unsupported);
        }
        let part = |index: usize| job.get_item(index).map_err(|_| Unsupported);
        write_bulk(&mut out, text(&part(0)?)?.as_bytes());
        write_bulk(&mut out, text(&part(1)?)?.as_bytes());
        json.clear();
        let (args, kwargs) = (part(2)?, part(3)?);
        let mut kwargs_json = Vec::new();
        write_payload(&mut json, &mut kwargs_json, &args, &kwargs)?;
        write_bulk(&mut out, &json);
        write_bulk(&mut out, &kwargs_json);
        write_bulk(&mut out, attempt_text);
        write_bulk(&mut out, enqueued_text);
    }
    Ok(out)
}

/// The items of a list or tuple (exact types: a subclass may iterate differently).
fn exact_list<'py>(value: &Bound<'py, PyAny>) -> Result<Vec<Bound<'py, PyAny>>, Unsupported> {
    if value.is_exact_instance_of::<PyList>() || value.is_exact_instance_of::<PyTuple>() {
        value.try_iter().map_err(|_| Unsupported)?.map(|item| item.map_err(|_| Unsupported)).collect()
    } else {
        Err(Unsupported)
    }
}

fn text<'a>(value: &'a Bound<'_, PyAny>) -> Result<&'a str, Unsupported> {
    value.cast::<PyString>().map_err(|_| Unsupported)?.to_str().map_err(|_| Unsupported)
}

fn write_array_header(out: &mut Vec<u8>, length: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A RESP bulk string: `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(value.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::{write_array_header, write_bulk};

    #[test]
    fn bulk_strings_carry_their_length() {
        let mut out = Vec::new();
        write_array_header(&mut out, 2);
        write_bulk(&mut out, b"PING");
        write_bulk(&mut out, b"");
        assert_eq!(out, b"*2\r\n$4\r\nPING\r\n$0\r\n\r\n");
    }
}
