"""Benchmarks: run with ``pytest bench`` (plain ``pytest`` only collects ``tests/``)."""

from pathlib import Path

import pytest

from engine.compile import compile_scenario
from engine.config import load_scenario

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.fixture(scope="session")
def nato():
    return compile_scenario(load_scenario(CONFIGS / "nato-baltic-2024.toml"))
