"""crisis-engine: Monte Carlo engine for collective-security crises in military alliances.

The Python API (:mod:`engine.api`)::

    from engine import load_scenario, run
    result = run(load_scenario("configs/nato-baltic-2024.toml"), trials=200_000, seed=7)
    result.summary, result.cells, result.members, result.manifest, result.save("results/nato")

Sub-packages, one job each, importing downward only (``.importlinter`` is the contract):
``cli`` (commands) → ``api`` → ``experiments`` · ``present`` · ``scale`` · ``perf`` →
``runs`` · ``data`` · ``oracles`` → ``core`` → ``model`` → ``errors``; the Numba kernels are
the top-level package ``kernels``.
"""

from .version import __version__

_API = ("ConfigError", "Result", "RunData", "Scenario", "UserError", "load_scenario", "merge",
        "open_run", "resume", "run")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # Lazy: `import engine.model.config` (or the CLI's `--help`) does not pay for the whole API.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
