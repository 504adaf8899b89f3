"""Options several commands share, defined once so their names and help never drift apart,
and the one place that turns a server qrun cannot use into a one-line message.

A command that talks to a server does not catch ``redis`` errors itself: the ``qrun`` group
(:meth:`qrun.cli._DefaultToRun.invoke`) passes any ``redis.RedisError`` to :func:`server_error`,
which names the server the command was using. ``--url`` (:data:`url_option`) records that
server as it is parsed; a command whose servers come from elsewhere (``run``: the app's
queues) calls :func:`remember_servers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

import click
import redis

from ..connection import redact, resolve_url
from ..checks import duration_s
from ..errors import ConfigurationError

#: Where, in the context's ``meta`` (shared by the group and its subcommand), the URLs of the
#: servers the running command uses are kept; None stands for ``$QRUN_URL`` or the default.
_SERVERS = "qrun.servers"


def _remember_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    ctx.meta[_SERVERS] = [value]
    return value


url_option = click.option(
    "--url", default=None, callback=_remember_url,
    help="Server URL (default: $QRUN_URL, else redis://127.0.0.1:6379/0).",
)


def remember_servers(urls: Iterable[str]) -> None:
    """Name these servers if talking to them fails (call inside a command)."""
    click.get_current_context().meta[_SERVERS] = list(urls)


class OneLineError(click.ClickException):
    """Input qrun cannot act on (an unknown queue or id, a bulk change nobody confirmed):
    printed as one line, ``qrun: <message>``, exit status ``exit_code`` (1 unless given)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"qrun: {self.format_message()}", file=file, err=file is None)


class ServerError(OneLineError):
    """A server qrun cannot use: printed as one line, ``qrun: <message>``, exit status 1."""


def server_error(meta: dict[str, Any], error: redis.RedisError) -> ServerError:
    """The one-line message for ``error``, naming the (redacted) servers in ``meta``."""
    where = ", ".join(sorted({_shown(url) for url in meta.get(_SERVERS) or [None]}))
    if isinstance(error, redis.AuthenticationError):  # a ConnectionError too: test it first
        return ServerError(f"authentication failed at the server at {where}: {error}")
    if isinstance(error, redis.TimeoutError):
        return ServerError(f"the server at {where} did not answer in time: {error}")
    if isinstance(error, redis.ConnectionError):
        return ServerError(f"cannot reach the server at {where}: {_cause(error)}")
    return ServerError(f"the server at {where} answered with an error: {type(error).__name__}: {error}")


def _shown(url: str | None) -> str:
    """The URL a command resolved from ``url``, redacted (the raw value if it does not resolve)."""
    try:
        return redact(resolve_url(url))
    except ConfigurationError:
        return redact(url or "?")


def _cause(error: redis.ConnectionError) -> str:
    """The operating system's reason (``Connection refused``) when there is one, else redis-py's text.

    redis-py raises its ConnectionError while handling the socket's OSError, so the OSError is
    its context; its text repeats the host and port the URL already names.
    """
    seen = error.__cause__ or error.__context__
    for _ in range(8):  # a chain is short; the bound keeps a cyclic one from looping
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(error)


class Duration(click.ParamType):
    """A duration option (``--since 1h``): ``30s``, ``15m``, ``1h``, ``7d``… as seconds
    (:func:`qrun.checks.duration_s`), with its error as a usage error."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return duration_s(value)
        except ConfigurationError as error:  # one line, exit 2 like click's usage errors
            option = param.opts[0] if param is not None and param.opts else "value"
            raise OneLineError(f"{option}: {error}", exit_code=2) from None


DURATION = Duration()
