"""Turning a URL into Redis connections: one client per process, raw connections for hot paths.

``redis://``, ``rediss://`` (TLS) and ``unix://`` URLs with user, password and db are
supported through redis-py. Clients are never shared across ``fork()``: a client remembers
the pid that made it and is rebuilt in a child.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.connection import Connection

from .errors import ConfigurationError
from .settings import DEFAULT_URL, URL_ENV_VAR

T = TypeVar("T")

_SCHEMES = ("redis", "rediss", "unix")


def text(value: Any) -> str:
    """A reply value as text (bytes decoded as UTF-8, undecodable bytes replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def resolve_url(url: str | None) -> str:
    """The URL to use: the argument, else ``$QRUN_URL``, else the local default."""
    chosen = url or os.environ.get(URL_ENV_VAR) or DEFAULT_URL
    scheme = urlsplit(chosen).scheme
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"server URL {redact(chosen)!r} must start with redis://, rediss:// or unix://"
        )
    return chosen


def redact(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def make_client(url: str) -> redis.Redis:
    """A redis-py client with qrun's connection settings (RESP2, raw bytes, keepalive).

    RESP2 is pinned because the codec decodes XREADGROUP replies in their RESP2 shape.
    """
    return redis.Redis.from_url(url, protocol=2, socket_keepalive=True, health_check_interval=30)


def make_raw_connection(client: redis.Redis) -> Connection:
    """A connection to the client's server that the caller owns, for pipelined raw RESP.

    Built from the pool's settings but outside its accounting, so connections the caller
    discards never use up ``max_connections``. Workers keep their blocking XREADGROUP on
    such a connection so it never stalls the client's other commands.
    """
    pool = client.connection_pool
    connection: Connection = pool.connection_class(**pool.connection_kwargs)
    return connection


def _is_stale(connection: Connection) -> bool:
    """True when a kept connection must not carry a command: closed by the server (a
    restart, an idle timeout) or holding unread data."""
    try:
        return bool(connection.can_read())
    except (redis.ConnectionError, OSError):
        return True


class ProcessLocalClient:
    """A client made on first use and rebuilt after ``fork()``, so parent and child never
    share sockets; plus this process's spare raw connections for pipelined RESP.

    Without an explicit URL, ``$QRUN_URL`` is read on first use, not at import, so a queue
    declared at module level follows settings loaded after the import (Django, tests).
    """

    def __init__(self, url: str | None) -> None:
        self._explicit_url = resolve_url(url) if url else None
        self._client: redis.Redis | None = None
        self._pid = 0
        self._spare: deque[Connection] = deque()  # append/pop are atomic: safe across threads

    @property
    def url(self) -> str:
        return self._explicit_url or resolve_url(None)

    def get(self) -> redis.Redis:
        if self._client is None or self._pid != os.getpid():
            self._client = make_client(self.url)
            self._pid = os.getpid()
            self._spare = deque()  # the parent's sockets are the parent's
        return self._client

    def call(self, action: Callable[[Connection], T]) -> T:
        """Run ``action`` on a raw connection of this process, then keep it for the next call.

        Skips redis-py's pool bookkeeping on the enqueue hot path. A kept connection is
        checked first (as redis-py's pool does) and replaced if the server closed it. The
        action itself is never replayed: once a command may have reached the server, sending
        it again could enqueue its jobs twice, so a failure is raised to the caller.
        """
        client = self.get()
        connection = None
        while connection is None:
            try:
                candidate = self._spare.pop()
            except IndexError:  # pop, not a length check: another thread may take the last one
                break
            if _is_stale(candidate):
                candidate.disconnect()
            else:
                connection = candidate
        if connection is None:
            connection = make_raw_connection(client)
        try:
            result = action(connection)
        except BaseException:  # replies may be left unread: never reuse it
            connection.disconnect()
            raise
        self._spare.append(connection)
        return result

    def close(self) -> None:
        """Close this process's sockets; the next :meth:`get` opens new ones."""
        if self._client is not None and self._pid == os.getpid():
            while self._spare:
                self._spare.pop().disconnect()
            self._client.close()
            self._client.connection_pool.disconnect()
        self._client = None
