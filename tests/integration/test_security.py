"""ACL users and TLS: a queue and its workers work through both, and a refused login says so
without printing the password."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme

import qrun
from qrun.embedded import EmbeddedValkey

from .drain import drain
from .tls_proxy import TlsProxy


@pytest.fixture
def acl_user(client: redis.Redis) -> Iterator[tuple[str, str]]:
    client.acl_setuser("qrun-app", enabled=True, passwords=["+s3cret-pw"], keys=["*"], channels=["*"], commands=["+@all"])
    yield "qrun-app", "s3cret-pw"
    client.acl_deluser("qrun-app")


def test_an_acl_user_enqueues_and_works_jobs(valkey_server: EmbeddedValkey, url: str, acl_user: tuple[str, str]) -> None:
    user, password = acl_user
    seen = []
    with qrun.Queue("secure", f"redis://{user}:{password}@127.0.0.1:{valkey_server.port}/0") as queue:
        task = queue.task(name="t.secure")(seen.append)
        task.enqueue(1)
        queue.enqueue_many(task, [(2,), (3,)])
        drain(queue)
    assert sorted(seen) == [1, 2, 3]


def test_a_wrong_password_is_refused_without_echoing_it(valkey_server: EmbeddedValkey, url: str, acl_user: tuple[str, str]) -> None:
    with qrun.Queue("secure", f"redis://qrun-app:not-the-pw@127.0.0.1:{valkey_server.port}/0") as queue:
        with pytest.raises(redis.AuthenticationError) as refused:
            queue.enqueue("t.secure", 1)
    assert "not-the-pw" not in str(refused.value)


@pytest.fixture
def tls_url(valkey_server: EmbeddedValkey, url: str, tmp_path: Path) -> Iterator[str]:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    proxy = TlsProxy(context, valkey_server.port).start()
    yield f"rediss://127.0.0.1:{proxy.port}/0?ssl_ca_certs={ca_file}&ssl_cert_reqs=required"
    proxy.stop()


def test_a_queue_and_its_worker_speak_tls_with_certificate_checks(tls_url: str, client: redis.Redis) -> None:
    seen = []
    with qrun.Queue("tls", tls_url) as queue:
        task = queue.task(name="t.tls")(seen.append)
        task.enqueue("one")
        queue.enqueue_many(task, [("two",), ("three",)])
        drain(queue)  # the worker's own raw connection goes through TLS too
    assert sorted(seen) == ["one", "three", "two"]
    assert client.hget("{qrun:tls}:stats", "succeeded") == b"3"


def test_tls_refuses_a_server_whose_certificate_it_cannot_verify(tls_url: str) -> None:
    untrusted = tls_url.split("?")[0] + "?ssl_cert_reqs=required"  # no CA: the system store does not know ours
    with qrun.Queue("tls", untrusted) as queue, pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        queue.enqueue("t.tls", "x")
