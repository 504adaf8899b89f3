"""The ``qrun`` command: ``qrun [run] [OPTIONS] module:queue`` and operator subcommands.

``qrun --workers 8 app:queue`` is short for ``qrun run --workers 8 app:queue``: arguments that
start with an option or an app path (``module:attribute``) are handed to ``run``; any other
word must name a subcommand, and an unknown one is refused with the closest names. The group's
own options (``--log-level``, ``--log-format``) found among ``run``'s arguments are moved ahead
of ``run``, so they work wherever they are written.
"""

from __future__ import annotations

from typing import Any

import click
import redis

from .. import __version__, logs
from .options import server_error


class _DefaultToRun(click.Group):
    """A group that treats ``qrun ARGS`` as ``qrun run ARGS`` when ARGS start with an option or an
    app path, and reports a server it cannot use in one line, whichever command used it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        own = self._options_with_values()
        position = 0
        while position < len(args) and _option_name(args[position]) in own:
            position += 1 if "=" in args[position] else 2  # the group's own option and its value
        rest = args[position:]
        if rest and rest[0] not in self.commands and rest[0] not in {"--help", "-h", "--version"}:
            if rest[0].startswith("-") or ":" in rest[0]:  # run's options, or module:attribute
                rest = ["run", *rest]
        if rest and rest[0] == "run":  # the group's options may come among run's too: moved ahead
            hoisted, kept = _split_options(rest[1:], own)
            rest = [*hoisted, "run", *kept]
        return super().parse_args(ctx, [*args[:position], *rest])

    def _options_with_values(self) -> frozenset[str]:
        """``--log-level``, ``--log-format``: the group's options that take a value."""
        return frozenset(
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        )

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            ctx.fail(self.unknown_command(ctx, name))
        return super().resolve_command(ctx, args)

    def unknown_command(self, ctx: click.Context, name: str) -> str:
        """``No such command 'purg'. Did you mean 'purge'?``, from the commands registered now."""
        import difflib  # only for a mistyped command, not on every start-up

        commands = self.list_commands(ctx)
        close = difflib.get_close_matches(name, commands, n=3)
        if close:
            return f"No such command {name!r}. Did you mean {' or '.join(map(repr, close))}?"
        return (
            f"No such command {name!r}. Commands: {', '.join(commands)}; "
            "to run workers, name the queue as MODULE:ATTRIBUTE (e.g. app:queue)."
        )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except redis.RedisError as error:
            raise server_error(ctx.meta, error) from None


def _option_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def _split_options(args: list[str], names: frozenset[str]) -> tuple[list[str], list[str]]:
    """(the options named ``names`` with their values, the other arguments), both in order;
    nothing after ``--`` is an option."""
    taken: list[str] = []
    kept: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            kept.extend(args[position:])
            break
        if _option_name(arg) in names:
            width = 1 if "=" in arg else 2
            taken.extend(args[position:position + width])
            position += width
        else:
            kept.append(arg)
            position += 1
    return taken, kept


@click.group(cls=_DefaultToRun, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qrun")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-format", default="text", show_default=True, envvar="QRUN_LOG_FORMAT", show_envvar=True,
              type=click.Choice(logs.FORMATS, case_sensitive=False),
              help="json: one JSON object per line, with the job's id, task, queue and attempt inside a job.")
def main(log_level: str, log_format: str) -> None:
    """qrun: a job queue and prefork worker runner on Redis/Valkey Streams.

    --log-level and --log-format apply to every command; with `run` they may also come among
    its options (qrun run --workers 2 --log-format json app:queue).
    """
    logs.configure(log_level, log_format.lower())


def _register(*commands: Any) -> None:
    for command in commands:
        main.add_command(command)


from .demo import demo  # noqa: E402
from .events import events  # noqa: E402
from .admin import ack, extend, health, pop, push, queue  # noqa: E402
from .jobs import cancel, job  # noqa: E402
from .top import top  # noqa: E402
from .dead import dead  # noqa: E402
from .queues import stats  # noqa: E402
from .run import run  # noqa: E402
from .workers import workers  # noqa: E402

_register(run, demo, stats, dead, workers, events, job, cancel, queue, push, pop, ack, extend, health, top)
