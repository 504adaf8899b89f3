"""Durations written for a person (`--since 1h`) and the one-line error a bad one gets."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from qrun.checks import duration_s
from qrun.cli import main
from qrun.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("7d", 604800.0), ("2w", 1209600.0),
     ("500ms", 0.5), ("1.5h", 5400.0), ("45", 45.0), ("0s", 0.0), (" 1H ", 3600.0)],
)
def test_a_duration_is_a_number_and_a_unit_in_seconds(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "-1h", "1 h", "1h30m", "nan", "inf", "1e3s", "1.h"])
def test_anything_else_is_refused_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        duration_s(text)
    assert str(caught.value) == (
        f"invalid duration {text!r}: use a number and a unit, ms, s, m, h, d or w (e.g. 30s, 15m, 1h, 7d)"
    )


def test_a_bad_since_is_one_line_and_exit_2_before_any_server_is_asked() -> None:
    result = CliRunner().invoke(main, ["dead", "list", "emails", "--since", "yesterday", "--url", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "qrun: --since: invalid duration 'yesterday': use a number and a unit, ms, s, m, h, d or w (e.g. 30s, 15m, 1h, 7d)"
    ]
