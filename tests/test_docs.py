"""The documentation builds with ``mkdocs build --strict``: no broken link, no missing page, no
docstring the API reference cannot render, and the CLI reference is generated from the code."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"


@pytest.mark.skipif(not MKDOCS.exists(), reason="mkdocs is not installed (pip install -e '.[dev]')")
def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("run", "sweep", "calibrate", "backtest", "data", "merge", "submit"):
        assert f"crisis {command}" in cli, command

    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("run", "calibrate_mcmc", "load_scenario", "open_run"):
        assert f'id="engine.api.{name}"' in api, name
