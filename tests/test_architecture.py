"""The house rules, checked: the layer contract (import-linter), pure kernels, lint."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# typing only declares the NamedTuple argument packs (no behaviour at run time); threading runs
# the kernels' blocks on worker threads (kernels/threads.py)
KERNEL_IMPORTS = {"numpy", "numba", "math", "typing", "threading"}


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in the dev extra: pip install -e '.[dev]')")
    return found


def test_layer_contract_holds():
    """engine/ imports go down the layers of .importlinter; kernels import no engine code."""
    proc = subprocess.run([_tool("lint-imports"), "--config", str(ROOT / ".importlinter")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" in proc.stdout and " 0 broken" in proc.stdout


def test_every_engine_module_is_in_a_layer():
    """A module outside every layer would escape the contract: list them all."""
    config = (ROOT / ".importlinter").read_text()
    layers = set()
    section = config.split("[importlinter:contract:engine-layers]")[1].split("[importlinter")[0]
    for line in section.split("layers =")[1].strip().splitlines():
        layers.update(part.strip() for part in line.split("|"))
    engine_dir = ROOT / "engine"
    top = {p.stem if p.is_file() else p.name for p in engine_dir.iterdir()
           if (p.suffix == ".py" or (p / "__init__.py").exists()) and not p.name.startswith("__")}
    assert top <= layers, f"not in any layer: {sorted(top - layers)}"


def test_kernels_import_only_numpy_numba_math_and_threading():
    for path in sorted((ROOT / "kernels").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue  # kernels' own modules
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            for name in names:
                assert name in KERNEL_IMPORTS, f"{path.name}:{node.lineno} imports {name}"


def test_ruff_passes():
    proc = subprocess.run([_tool("ruff"), "check", "engine", "kernels", "tests", "bench"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
