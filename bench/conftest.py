"""Benchmarks: run with ``python -m pytest bench`` (plain ``pytest`` only collects ``tests/``).

Workloads are named (small: 3 members; nato: the shipped 32-member Baltic scenario;
nato-capability: the same in v1's deterrence mode; large: a synthetic 150-state, 40-alliance
world) and shared with ``crisis bench``.
"""

import pytest

from engine.perf.workloads import workload

_compiled = {}


@pytest.fixture(params=["small", "nato-capability", "nato", "large"])
def world(request):
    name = request.param
    if name not in _compiled:
        _compiled[name] = workload(name)
    return name, _compiled[name]


@pytest.fixture(scope="session")
def rates():
    """Trials/s measured in this session, so baselines can report ratios from the same run."""
    return {}
