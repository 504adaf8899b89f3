"""Names become keys, URLs become connections: both are checked before they reach a server."""

from __future__ import annotations

import pytest

import qrun
from qrun.connection import redact, resolve_url
from qrun.keys import QueueKeys, validate_name, validate_task_name


def test_every_key_of_a_queue_shares_one_hash_tag() -> None:
    keys = QueueKeys("qrun", "emails")
    assert [keys.stream, keys.delayed, keys.dead, keys.stats] == [
        "{qrun:emails}:stream", "{qrun:emails}:delayed", "{qrun:emails}:dead", "{qrun:emails}:stats",
    ]


@pytest.mark.parametrize("name", ["", "a b", "x{y}", "a:b", "-lead", "é", "x" * 101, None, 3])
def test_names_that_could_break_a_key_are_refused(name: object) -> None:
    with pytest.raises(qrun.InvalidNameError, match="not valid"):
        validate_name("queue", name)


@pytest.mark.parametrize("name", ["emails", "Emails-2", "a.b_c", "x" * 100])
def test_ordinary_queue_names_are_accepted(name: str) -> None:
    assert validate_name("queue", name) == name


def test_a_queue_refuses_a_bad_name_at_construction() -> None:
    with pytest.raises(qrun.InvalidNameError, match="queue name 'my queue'"):
        qrun.Queue("my queue", "redis://127.0.0.1:1/0")


@pytest.mark.parametrize("name", ["app.tasks.send_email", "_private", "mod:fn", "tests.<locals>.f"])
def test_task_names_from_modules_and_qualnames_are_accepted(name: str) -> None:
    assert validate_task_name(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "has space", "x" * 201])
def test_bad_task_names_are_refused(name: str) -> None:
    with pytest.raises(qrun.InvalidNameError):
        validate_task_name(name)


def test_the_url_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QRUN_URL", raising=False)
    assert resolve_url(None) == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("QRUN_URL", "rediss://user:pw@cache:6380/2")
    assert resolve_url(None) == "rediss://user:pw@cache:6380/2"
    assert resolve_url("unix:///run/valkey.sock") == "unix:///run/valkey.sock"


def test_an_unknown_url_scheme_is_refused_without_echoing_the_password() -> None:
    with pytest.raises(qrun.ConfigurationError) as caught:
        resolve_url("http://user:secret@host/")
    assert "secret" not in str(caught.value)


def test_redact_hides_only_the_password() -> None:
    assert redact("redis://app:s3cret@db:6379/1") == "redis://app:***@db:6379/1"
    assert redact("redis://db:6379/1") == "redis://db:6379/1"


def test_task_options_are_validated_when_the_task_is_declared() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")
    with pytest.raises(qrun.ConfigurationError, match="retries must be an integer >= 0"):
        queue.task(retries=-1)(lambda: None)
    with pytest.raises(qrun.ConfigurationError, match="backoff_cap"):
        queue.task(name="t.x", backoff_base=10, backoff_cap=1)(lambda: None)
    with pytest.raises(qrun.ConfigurationError, match="backoff_base must be > 0"):
        queue.task(name="t.y", backoff_base=0)(lambda: None)
    with pytest.raises(qrun.ConfigurationError, match="backoff_base must be a number of seconds"):
        queue.task(name="t.z", backoff_base="1s")(lambda: None)


def test_queue_defaults_are_validated_and_inherited_by_tasks() -> None:
    with pytest.raises(qrun.ConfigurationError, match="retries must be an integer"):
        qrun.Queue("q", "redis://127.0.0.1:1/0", retries=True)
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0", retries=5, backoff_base=2, backoff_cap=60)
    task = queue.task(name="t.inherits", backoff_cap=10)(lambda: None)
    assert (task.policy.retries, task.policy.backoff_base_s, task.policy.backoff_cap_s) == (5, 2.0, 10.0)


def test_two_functions_cannot_share_a_task_name() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")
    queue.task(name="t.same")(lambda: 1)
    with pytest.raises(qrun.ConfigurationError, match="already has a task named 't.same'"):
        queue.task(name="t.same")(lambda: 2)


def test_the_default_task_name_is_module_and_qualname() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")

    @queue.task
    def send() -> None: ...

    assert send.name == f"{__name__}.test_the_default_task_name_is_module_and_qualname.<locals>.send"


def test_argument_names_are_recovered_from_encoder_paths() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")

    @queue.task
    def send(to: str, subject: str, *rest: int) -> None: ...

    assert send.argument_name("args[1]") == "subject"
    assert send.argument_name("args[3][0]") == "positional argument 3"
    assert send.argument_name("kwargs['to']['x']") == "to"


def test_retry_refuses_a_negative_delay() -> None:
    with pytest.raises(qrun.ConfigurationError):
        qrun.Retry(delay=-1)


@pytest.mark.parametrize("delay", [float("inf"), float("nan"), -1, "5"])
def test_retry_refuses_a_delay_that_is_not_a_finite_number_of_seconds(delay: object) -> None:
    with pytest.raises(qrun.ConfigurationError, match="finite number of seconds"):
        qrun.Retry(delay=delay)  # type: ignore[arg-type]
