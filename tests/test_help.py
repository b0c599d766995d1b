"""--help as a person reads it (issue 15): flags show no ``<bool>`` value type, and docstrings
flow to the terminal's width instead of breaking where the source lines break."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vbench.cli import app

COMMANDS = ["run", "layout", "models", "presets", "compare", "plot", "check", "calibrate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_bool_type_and_no_mid_sentence_break(command: str) -> None:
    r = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output
    assert "Show this message and exit." in r.output


def test_run_help_keeps_each_sentence_whole() -> None:
    r = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "Exit codes: 0 done;" in r.output  # once cut after "0"
    r = CliRunner().invoke(app, ["check", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "Exit codes: 0 no regression;" in r.output


def test_help_keeps_bracketed_words_rich_would_take_for_markup() -> None:
    """``[cluster]`` in a help text is rich markup to typer unless escaped: the install hint
    once read ``pip install -e '.'`` (the extra gone) and "despite a config's ." """
    r = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "pip install -e '.[cluster]'" in r.output
    assert r.output.count("[cluster]") == 2  # "despite a config's [cluster]" too
