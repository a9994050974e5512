"""Shell completion for ``crisis`` (issue 17, item 5): the scripts click generates, and the
completions they ask the program for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main


@pytest.mark.parametrize("shell,marker", [("bash", "_crisis_completion"),
                                          ("zsh", "#compdef crisis"),
                                          ("fish", "complete --no-files --command crisis")])
def test_completion_script(shell, marker):
    res = CliRunner().invoke(main, ["completion", shell])
    assert res.exit_code == 0 and marker in res.output


def _complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_CRISIS_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    script = Path(sys.executable).parent / "crisis"
    command = str(script) if script.is_file() else shutil.which("crisis")
    if command is None:
        pytest.skip("the crisis console script is not installed")
    out = subprocess.run([command], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return [line.split(",", 1)[1] for line in out.splitlines() if "," in line]


def test_commands_and_options_complete():
    assert _complete("crisis ru", 1) == ["run"]
    assert {"backtest", "calibrate", "data", "completion"} <= set(_complete("crisis ", 1))
    assert "--posterior" in _complete("crisis run --post", 2)
