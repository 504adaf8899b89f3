"""`qrun ARGS` means `qrun run ARGS` when ARGS start with an option or an app path; other words must be commands."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from qrun.cli import main


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0", "app:queue"],
        ["run", "--workers", "0", "app:queue"],
        ["--log-level", "DEBUG", "--workers", "0", "app:queue"],
        ["--log-level=DEBUG", "--workers", "0", "app:queue"],
    ],
)
def test_arguments_that_are_not_a_subcommand_go_to_run(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "Invalid value for '-w' / '--workers'" in result.output


def test_subcommands_are_still_reachable() -> None:
    result = CliRunner().invoke(main, ["stats", "--help"])
    assert result.exit_code == 0
    assert "Print job counts" in result.output


def test_a_target_that_is_not_module_colon_attribute_says_so() -> None:
    result = CliRunner().invoke(main, ["run", "app"])
    assert result.exit_code == 2
    assert "is not module:attribute" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["app:queue"],
        ["app.module:queue"],
        ["path/to/app:queue"],
        ["--workers", "2", "app:queue"],
        ["--log-level", "DEBUG", "app.module:queue"],
        ["-w", "2", "app:queue", "other:queue"],
    ],
)
def test_app_paths_and_options_still_go_to_run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, ...]] = []
    fake_run = click.Command(
        "run", params=[click.Option(["-w", "--workers"]), click.Argument(["targets"], nargs=-1)],
        callback=lambda workers, targets: seen.append(targets),
    )
    monkeypatch.setitem(main.commands, "run", fake_run)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert seen == [tuple(arg for arg in args if ":" in arg)]


@pytest.mark.parametrize("word", ["info", "purge", "app"])
def test_a_word_that_is_no_command_and_no_app_path_is_an_unknown_command(
    word: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(main.commands, word, raising=False)  # should it become a command one day
    result = CliRunner().invoke(main, [word, "emails"])
    assert result.exit_code == 2
    assert f"No such command '{word}'." in result.output
    assert "is not module:attribute" not in result.output  # not taken for an app path


def test_an_unknown_command_with_nothing_close_lists_the_commands_and_the_app_form() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert f"No such command 'frobnicate'. Commands: {', '.join(sorted(main.commands))};" in result.output
    assert "MODULE:ATTRIBUTE (e.g. app:queue)" in result.output


@pytest.mark.parametrize(
    ("typed", "meant"), [("stat", "stats"), ("wokers", "workers"), ("evnets", "events"), ("daed", "dead")]
)
def test_an_unknown_command_suggests_the_closest_one(typed: str, meant: str) -> None:
    result = CliRunner().invoke(main, [typed, "emails"])
    assert result.exit_code == 2
    assert f"No such command '{typed}'. Did you mean '{meant}'?" in result.output


def test_the_suggestion_comes_from_the_commands_registered_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(main.commands, "purge", click.Command("purge", callback=lambda: None))
    result = CliRunner().invoke(main, ["purg", "emails"])
    assert result.exit_code == 2
    assert "No such command 'purg'. Did you mean 'purge'?" in result.output


@pytest.mark.parametrize(
    ("args", "level", "log_format"),
    [
        (["--log-format", "json", "--workers", "2", "app:queue"], "INFO", "json"),
        (["--workers", "2", "--log-format", "json", "app:queue"], "INFO", "json"),
        (["--workers", "2", "app:queue", "--log-format=JSON"], "INFO", "json"),
        (["run", "--log-format", "json", "app:queue"], "INFO", "json"),
        (["--log-level", "DEBUG", "run", "-w", "2", "--log-format", "json", "app:queue"], "DEBUG", "json"),
        (["-w", "2", "--log-level=warning", "app:queue"], "WARNING", "text"),
        (["--log-format", "text", "run", "--log-format", "json", "app:queue"], "INFO", "json"),  # the last wins
        (["app:queue"], "INFO", "text"),
    ],
)
def test_the_logging_options_apply_wherever_they_are_written(
    args: list[str], level: str, log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured: list[tuple[str, str]] = []
    seen: list[tuple[str | None, tuple[str, ...]]] = []
    monkeypatch.setattr("qrun.cli.logs.configure", lambda *given: configured.append(given))
    monkeypatch.delenv("QRUN_LOG_FORMAT", raising=False)
    fake_run = click.Command(
        "run", params=[click.Option(["-w", "--workers"]), click.Argument(["targets"], nargs=-1)],
        callback=lambda workers, targets: seen.append((workers, targets)),
    )
    monkeypatch.setitem(main.commands, "run", fake_run)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert configured == [(level, log_format)]
    assert seen == [("2" if "2" in args else None, ("app:queue",))]


def test_the_log_format_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configured: list[tuple[str, str]] = []
    monkeypatch.setattr("qrun.cli.logs.configure", lambda *given: configured.append(given))
    monkeypatch.setitem(main.commands, "run", click.Command("run", callback=lambda: None))
    result = CliRunner().invoke(main, ["run"], env={"QRUN_LOG_FORMAT": "json"})
    assert result.exit_code == 0, result.output
    assert configured == [("INFO", "json")]


def test_an_unknown_log_format_is_refused_wherever_it_is_written() -> None:
    for args in (["--log-format", "xml", "app:queue"], ["-w", "2", "--log-format", "xml", "app:queue"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2
        assert "Invalid value for '--log-format'" in result.output


def test_a_target_after_double_dash_is_not_taken_for_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, ...]] = []
    monkeypatch.setattr("qrun.cli.logs.configure", lambda *given: None)
    fake_run = click.Command("run", params=[click.Argument(["targets"], nargs=-1)],
                             callback=lambda targets: seen.append(targets))
    monkeypatch.setitem(main.commands, "run", fake_run)
    result = CliRunner().invoke(main, ["run", "--", "--log-format", "app:queue"])
    assert result.exit_code == 0, result.output
    assert seen == [("--log-format", "app:queue")]
