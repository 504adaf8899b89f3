"""The Rust codec and the reference codec agree byte for byte, and fail the same way.

``qrun.reference_codec`` defines the wire format; ``qrun._codec`` is its fast twin. On
generated inputs (valid, hostile and malformed) both must return identical results or raise
the same error class with the same message, path and job index. A malformed read reply must
raise ``CodecError`` (never crash the interpreter). Skipped when the extension is not built,
unless ``QRUN_REQUIRE_NATIVE=1`` (CI), where a missing extension fails instead.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrun import reference_codec
from qrun.errors import CodecError, PayloadError

try:
    from qrun import _codec as native
except ImportError:  # pragma: no cover - depends on the build
    if os.environ.get("QRUN_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("the Rust extension qrun._codec is not built", allow_module_level=True)

SHA = b"0123456789abcdef0123456789abcdef01234567"
KEYS = [b"{qrun:q}:stream", b"{qrun:q}:stats"]
PARITY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- comparing outcomes -------------------------------------------------------------------


def outcome(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """What a call returned (as a type-exact repr) or which error it raised, comparably."""
    try:
        return "ok", repr(function(*args))
    except (PayloadError, CodecError) as error:
        return "error", (type(error).__name__, str(error), getattr(error, "path", None), getattr(error, "job_index", None))


def assert_same(name: str, *args: Any) -> tuple[str, Any]:
    expected = outcome(getattr(reference_codec, name), *args)
    assert outcome(getattr(native, name), *args) == expected
    return expected


# -- values a caller might pass -----------------------------------------------------------


class Opaque:
    """Not JSON: the codecs must refuse it with the same message."""


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


class MyDict(dict):  # type: ignore[type-arg]
    pass


surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
texts = st.one_of(st.text(max_size=20), st.text(st.characters(max_codepoint=0x7F), max_size=8))
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(),  # past 64 bits too
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
hostile_leaves = st.one_of(
    st.floats(),  # NaN and infinities
    surrogates,
    st.binary(max_size=4),
    st.sets(st.integers(), max_size=2),
    st.builds(Opaque),
    st.builds(MyInt, st.integers()),
    st.builds(MyStr, texts),
    st.just(1j),
)


def values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(texts, children, max_size=4),
            st.lists(children, max_size=3).map(MyList),
            st.dictionaries(texts, children, max_size=3).map(MyDict),
            st.dictionaries(st.integers(), children, min_size=1, max_size=2),  # non-string keys
        ),
        max_leaves=12,
    )


good_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)),
    max_leaves=12,
)
any_values = values(st.one_of(json_leaves, hostile_leaves))
kwargs_dicts = st.dictionaries(texts, any_values, max_size=4)
good_kwargs = st.dictionaries(texts, good_values, max_size=4)


# -- encoding -------------------------------------------------------------------------------


@PARITY
@given(st.lists(good_values, max_size=4), good_kwargs)
def test_valid_payloads_encode_identically(args: list[Any], kwargs: dict[str, Any]) -> None:
    kind, _ = assert_same("encode_payload", args, kwargs)
    assert kind == "ok"


@PARITY
@given(st.one_of(st.lists(any_values, max_size=4), st.lists(any_values, max_size=4).map(tuple), any_values), st.one_of(kwargs_dicts, any_values))
def test_any_payload_encodes_or_fails_identically(args: Any, kwargs: Any) -> None:
    assert_same("encode_payload", args, kwargs)


job_ids = st.one_of(st.uuids().map(lambda u: u.hex), texts)
good_jobs = st.tuples(job_ids, texts, st.lists(good_values, max_size=3), good_kwargs)
any_jobs = st.tuples(job_ids, texts, st.lists(any_values, max_size=3), kwargs_dicts)


@PARITY
@given(st.lists(good_jobs, max_size=5), st.integers(1, 10**6), st.integers(0, 2**62))
def test_valid_batches_pack_into_identical_resp(jobs: list[Any], attempt: int, enqueued_at: int) -> None:
    kind, _ = assert_same("pack_enqueue", SHA, KEYS, jobs, attempt, enqueued_at)
    assert kind == "ok"


@PARITY
@given(st.lists(any_jobs, max_size=5))
def test_a_bad_job_in_a_batch_fails_identically_and_names_its_index(jobs: list[Any]) -> None:
    assert_same("pack_enqueue", SHA, KEYS, jobs, 1, 0)


@pytest.mark.parametrize(
    "args",
    [
        [[]] * 0,
        [0.1, 1e16, 1e-7, -0.0, 5e-324, 1.7976931348623157e308, 2**64, -(2**63) - 1],
        ["\u2028 \x00 \x1f \x7f é \U0001f600 \" \\ /"],
        [OrderedDict(b=1, a=2)],
        [True, False, None],
    ],
)
def test_edge_values_encode_identically(args: list[Any]) -> None:
    kind, _ = assert_same("encode_payload", args, {})
    assert kind == "ok"


@pytest.mark.parametrize("depth", [reference_codec.MAX_DEPTH - 1, reference_codec.MAX_DEPTH, reference_codec.MAX_DEPTH + 1, 5000])
def test_nesting_at_and_past_the_limit_behaves_identically(depth: int) -> None:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    assert_same("encode_payload", nested, {})


def test_a_circular_list_is_refused_identically() -> None:
    circular: list[Any] = []
    circular.append(circular)
    kind, (error_type, message, path, _) = assert_same("encode_payload", [circular], {})
    assert (kind, error_type) == ("error", "PayloadError")
    assert "circular" in message and path.startswith("args[0]")


# -- decoding ---------------------------------------------------------------------------------

json_texts = st.one_of(
    st.sampled_from(
        [b"[]", b"{}", b"[1e400]", b"[-0.0]", b"[1E2]", b"[NaN]", b"[Infinity]", b'["\\ud800"]', b"[1,]",
         b"[123456789012345678901234567890]", b'{"a":1,"a":2}', b"\xff", b"[" * 300 + b"]" * 300, b" [ 1 ] ",
         b'"text"', b"null", b'{"k":[true,false,null]}', b"[0.30000000000000004]"]
    ),
    good_values.map(lambda value: reference_codec.dump_json(value, "v").encode()),
    st.binary(max_size=12),
)
counts = st.one_of(st.sampled_from([b"1", b"0", b"007", b"-1", b"+1", b"1.0", b"", b"9" * 18, b"9" * 19, b"\xd9\xa1"]), st.binary(max_size=3))
field_names = st.sampled_from(reference_codec.FIELDS + (b"extra",))


@st.composite
def entry_fields(draw: st.DrawFn) -> list[Any]:
    """Fields of one stream entry: usually close to a valid job, often subtly broken."""
    fields: list[Any] = [b"id", draw(st.one_of(st.just(b"job-1"), st.binary(max_size=4))),
                         b"task", draw(st.one_of(st.just(b"app.t"), st.binary(max_size=4)))]
    for name in draw(st.lists(field_names, max_size=6)):
        if name in (b"args", b"kwargs"):
            fields += [name, draw(json_texts)]
        elif name in (b"attempt", b"enqueued_at"):
            fields += [name, draw(counts)]
        else:
            fields += [name, draw(st.binary(max_size=4))]
    if draw(st.integers(0, 9)) == 0:
        fields = draw(st.permutations(fields))
    if draw(st.integers(0, 19)) == 0:
        fields.append(draw(st.one_of(st.binary(max_size=2), st.integers(), st.none())))
    return fields


entry_ids = st.one_of(st.just(b"1-0"), st.just(b"1700000000000-12"), st.binary(max_size=3), st.integers(), st.none())
entries = st.one_of(
    st.tuples(entry_ids, st.one_of(entry_fields(), st.none())).map(list),
    st.lists(st.binary(max_size=2), max_size=3),
    st.binary(max_size=2),
    st.none(),
)
stream_names = st.one_of(st.just(b"{qrun:q}:stream"), st.binary(max_size=3), st.integers(), st.none())
replies = st.one_of(
    st.none(),
    st.lists(st.tuples(stream_names, st.one_of(st.lists(entries, max_size=4), st.none(), st.binary(max_size=2))).map(list), max_size=3),
    st.lists(st.one_of(st.none(), st.binary(max_size=2), st.integers()), max_size=3),
    st.binary(max_size=4),
    st.integers(),
    st.text(max_size=3),
)


@PARITY
@given(replies)
def test_any_read_reply_decodes_or_fails_identically(reply: Any) -> None:
    assert_same("decode_read_reply", reply)


@PARITY
@given(st.lists(good_jobs, min_size=1, max_size=4), st.integers(1, 99), st.integers(0, 2**62))
def test_what_the_producer_writes_the_worker_decodes_identically(jobs: list[Any], attempt: int, enqueued_at: int) -> None:
    entries = []
    for index, (job_id, task, args, kwargs) in enumerate(jobs):
        args_json, kwargs_json = reference_codec.encode_payload(args, kwargs)
        values = [job_id.encode(), task.encode(), args_json, kwargs_json, b"%d" % attempt, b"%d" % enqueued_at]
        fields = [part for pair in zip(reference_codec.FIELDS, values, strict=True) for part in pair]
        entries.append([b"%d-0" % (index + 1), fields])
    kind, _ = assert_same("decode_read_reply", [[b"{qrun:q}:stream", entries]])
    assert kind == "ok"


@PARITY
@given(st.lists(st.one_of(st.binary(max_size=6), st.integers(), st.none(), st.lists(st.binary(max_size=2), max_size=2)), max_size=8))
def test_garbage_fields_never_crash_either_codec(fields: list[Any]) -> None:
    kind, result = assert_same("decode_read_reply", [[b"s", [[b"1-0", fields]]]])
    if kind == "error":
        assert result[0] == "CodecError"


def test_a_deleted_entry_is_reported_as_malformed_by_both() -> None:
    kind, result = assert_same("decode_read_reply", [[b"s", [[b"1-0", None]]]])
    assert kind == "ok" and "deleted while pending" in result
