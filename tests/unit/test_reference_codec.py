"""The wire format by example: the exact bytes a job becomes, and what a worker refuses.

These pin docs/wire-format.md to the code: a producer in another language can copy them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qrun import codec, reference_codec
from qrun.errors import CodecError, PayloadError


def test_a_payload_is_compact_utf8_json_in_argument_order() -> None:
    args, kwargs = reference_codec.encode_payload(("a@b.c", 3, 0.5, None), {"subject": "héllo", "tags": ["x"]})
    assert args == b'["a@b.c",3,0.5,null]'
    assert kwargs == '{"subject":"héllo","tags":["x"]}'.encode()


def test_floats_keep_their_exact_repr_and_big_ints_their_digits() -> None:
    args, _ = reference_codec.encode_payload([0.1, 1e16, 2**70, -0.0], {})
    assert args == b"[0.1,1e+16,1180591620717411303424,-0.0]"
    assert json.loads(args) == [0.1, 1e16, 2**70, -0.0]


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ({1, 2}, "args[0]", "object of type set is not JSON-encodable"),
        (float("nan"), "args[0]", "nan is not allowed"),
        (b"raw", "args[0]", "object of type bytes"),
        ({1: "x"}, "args[0]", "dict key of type int is not a string"),
        ([["\ud800"]], "args[0][0][0]", "lone surrogate"),
    ],
)
def test_values_json_cannot_rebuild_are_refused_with_their_path(value: object, path: str, fragment: str) -> None:
    with pytest.raises(PayloadError) as caught:
        reference_codec.encode_payload([value], {})
    assert caught.value.path == path
    assert fragment in str(caught.value)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)


def test_pack_enqueue_builds_one_evalsha_with_six_values_per_job() -> None:
    command = reference_codec.pack_enqueue(b"sha", [b"k1", b"k2"], [("j1", "t", [1], {})], 2, 1700000000000)
    assert command == (
        b"*11\r\n$7\r\nEVALSHA\r\n$3\r\nsha\r\n$1\r\n2\r\n$2\r\nk1\r\n$2\r\nk2\r\n"
        b"$2\r\nj1\r\n$1\r\nt\r\n$3\r\n[1]\r\n$2\r\n{}\r\n$1\r\n2\r\n$13\r\n1700000000000\r\n"
    )


def test_a_bad_job_in_a_batch_names_its_index() -> None:
    jobs = [("j0", "t", [1], {}), ("j1", "t", [object()], {})]
    with pytest.raises(PayloadError) as caught:
        reference_codec.pack_enqueue(b"sha", [b"k"], jobs, 1, 0)
    assert caught.value.job_index == 1 and caught.value.path == "args[0]"


def fields(**values: bytes) -> list[bytes]:
    return [part for name, value in values.items() for part in (name.encode(), value)]


def test_a_read_reply_decodes_into_job_tuples() -> None:
    entry = fields(id=b"j1", task=b"app.t", args=b'[1,"x"]', kwargs=b'{"k":true}', attempt=b"2", enqueued_at=b"17")
    jobs, malformed = reference_codec.decode_read_reply([[b"s", [[b"5-0", entry]]]])
    assert jobs == [(b"s", "5-0", "j1", "app.t", (1, "x"), {"k": True}, 2, 17)]
    assert malformed == []


def test_only_id_and_task_are_required() -> None:
    jobs, _ = reference_codec.decode_read_reply([[b"s", [[b"5-0", fields(task=b"t", id=b"j")]]]])
    assert jobs == [(b"s", "5-0", "j", "t", (), {}, 1, 0)]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (fields(task=b"t"), "missing field 'id'"),
        (fields(id=b"j", task=b""), "field 'task' is empty"),
        (fields(id=b"j", task=b"t", args=b"{}"), "field 'args' is not a JSON array"),
        (fields(id=b"j", task=b"t", args=b"[NaN]"), "field 'args' is not valid JSON"),
        (fields(id=b"j", task=b"t", kwargs=b"[]"), "field 'kwargs' is not a JSON object"),
        (fields(id=b"j", task=b"t", attempt=b"0"), "field 'attempt' is not an integer >= 1"),
        (fields(id=b"j", task=b"t", enqueued_at=b"-5"), "field 'enqueued_at' is not a non-negative integer"),
        (fields(id=b"\xff", task=b"t"), "field 'id' is not valid UTF-8"),
        ([b"id"], "odd number of field names and values"),
        (None, "entry was deleted while pending"),
    ],
)
def test_an_entry_that_is_not_a_job_is_returned_with_the_reason(entry: list[bytes] | None, reason: str) -> None:
    jobs, malformed = reference_codec.decode_read_reply([[b"s", [[b"5-0", entry]]]])
    assert jobs == []
    assert [(stream, entry_id, why) for stream, entry_id, why, _raw in malformed] == [(b"s", "5-0", reason)]


@pytest.mark.parametrize("reply", [b"oops", [b"s"], [[b"s", b"entries"]], [[b"s", [[1, []]]]], [[b"s", [[b"1-0", 5]]]]])
def test_a_reply_of_the_wrong_shape_raises_codec_error(reply: object) -> None:
    with pytest.raises(CodecError):
        reference_codec.decode_read_reply(reply)


def test_a_delayed_member_is_a_json_array_of_the_six_field_values() -> None:
    member = codec.encode_delayed_member("j", "t", b"[1]", b"{}", 3, 17)
    assert json.loads(member) == ["j", "t", "[1]", "{}", "3", "17"]


def test_qrun_native_0_selects_the_reference_codec() -> None:
    probe = "import qrun.codec as c; print(c.NATIVE, c.decode_read_reply.__module__)"
    output = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, "QRUN_NATIVE": "0"},
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert output.split() == ["False", "qrun.reference_codec"]
