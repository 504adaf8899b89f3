"""The pieces of job tracking that need no server: result encoding, outcome JSON, key safety,
id validation, progress argument checks, the status value."""

from __future__ import annotations

import json
import math

import pytest
import qrun
from hypothesis import given
from hypothesis import strategies as st

from qrun.keys import QueueKeys, validate_job_id
from qrun.lifecycle import records
from qrun.lifecycle.status import JobStatus
from qrun.lifecycle.waiting import outcome_value

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_every_json_value_round_trips_through_a_succeeded_outcome(value: object) -> None:
    encoded = records.encode_result(value, 1_000_000)
    outcome = json.loads(records.succeeded_outcome(encoded, 2, 123, "app.t", 100, "w-1"))
    assert outcome == {"state": "succeeded", "result": value, "attempt": 2, "finished_at_ms": 123,
                       "task": "app.t", "started_at_ms": 100, "worker": "w-1"}
    assert outcome_value("j", outcome) == value


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", math.nan, {1: "int key"}, object()])
def test_a_value_json_cannot_carry_is_a_result_error_naming_the_result(value: object) -> None:
    with pytest.raises(qrun.ResultError, match="not JSON-encodable") as error:
        records.encode_result(value, 1_000_000)
    assert "result" in str(error.value)


def test_a_result_larger_than_the_maximum_is_refused_not_truncated() -> None:
    assert records.encode_result("x" * 8, 10) == b'"xxxxxxxx"'
    with pytest.raises(qrun.ResultError, match="11 bytes of JSON, more than max_result_bytes \\(10\\)"):
        records.encode_result("x" * 9, 10)


def test_dead_and_cancelled_outcomes_become_the_errors_a_waiter_gets() -> None:
    error = records.error_fields(ValueError("kaput"))
    dead = json.loads(records.dead_outcome("failed 1 time; no retries left", error, 1, 5))
    with pytest.raises(qrun.JobFailed) as failed:
        outcome_value("j1", dead)
    assert (failed.value.type, failed.value.message, failed.value.attempts) == ("ValueError", "kaput", 1)
    assert failed.value.reason == "failed 1 time; no retries left" and "j1" in str(failed.value)
    cancelled = json.loads(records.cancelled_outcome(1, 5, True))
    assert cancelled == {"state": "cancelled", "attempt": 1, "finished_at_ms": 5, "interrupted": True}
    with pytest.raises(qrun.JobCancelled):
        outcome_value("j1", cancelled)


@pytest.mark.parametrize("job_id", ["6f1c2d" * 5 + "ab", "go-job-1", "a.b:c_d-e", "x" * 128])
def test_valid_job_ids_are_their_own_keys(job_id: str) -> None:
    assert validate_job_id(job_id) == job_id
    assert QueueKeys("qrun", "q").job(job_id) == f"{{qrun:q}}:job:{job_id}"


@pytest.mark.parametrize("job_id", ["", "a b", "x}y", "{x}", "a*", "[a]", "x" * 129, "-lead", "é"])
def test_other_ids_are_refused_and_never_reach_outside_the_queues_slot(job_id: str) -> None:
    with pytest.raises(qrun.InvalidNameError):
        validate_job_id(job_id)
    key = QueueKeys("qrun", "q").done(job_id)
    assert key.startswith("{qrun:q}:done:sha1-") and key.count("{") == 1 and key.count("}") == 1


def test_a_task_keeps_results_only_when_asked() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")

    @queue.task
    def plain() -> int:
        return 1

    @queue.task(result_ttl=30)
    def kept() -> int:
        return 2

    assert plain.run is plain.func and plain.result_ttl_s is None  # nothing added to the hot path
    assert kept.run() == b"2" and kept.result_ttl_s == 30
    assert not qrun.Queue("r", "redis://127.0.0.1:1/0").keeps_results and queue.keeps_results
    defaulted = qrun.Queue("s", "redis://127.0.0.1:1/0", result_ttl=60)

    @defaulted.task(result_ttl=0)
    def opted_out() -> None: ...

    assert opted_out.result_ttl_s is None
    with pytest.raises(qrun.ConfigurationError):
        qrun.Queue("t", "redis://127.0.0.1:1/0", result_ttl=-1)


def test_progress_outside_a_worker_says_where_it_works() -> None:
    job = qrun.Job("q", "1-0", "j", "t", ())
    with pytest.raises(RuntimeError, match="only inside a job"):
        job.progress(0.5)


def test_a_status_serializes_to_json() -> None:
    status = JobStatus("j", "q", "succeeded", task="t", result={"a": [1]}, has_result=True)
    assert json.loads(json.dumps(status.to_dict()))["result"] == {"a": [1]}
    assert status.settled and not JobStatus("j", "q", "queued").settled
