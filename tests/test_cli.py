"""The command line: help texts, the demo command, errors."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from rnnkit.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_demo_help_has_an_example():
    result = runner.invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    assert "Example: rnnkit demo" in result.output


def test_bad_option_value_is_a_clean_error():
    result = runner.invoke(app, ["demo", "--timestep", "1"])
    assert result.exit_code != 0
    assert "timestep must be >= 2" in result.output


def test_console_entry_point_runs_as_a_subprocess():
    result = subprocess.run([sys.executable, "-m", "rnnkit.cli", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout
