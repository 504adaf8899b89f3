"""`qrun ARGS` means `qrun run ARGS` unless ARGS names a subcommand."""

from __future__ import annotations

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
    result = CliRunner().invoke(main, ["app"])
    assert result.exit_code == 2
    assert "is not module:attribute" in result.output
