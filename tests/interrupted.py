"""A run stopped after its first checkpoint: the starting point of the resume tests."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from engine import api
from engine.core.simulate import set_threads, simulate
from engine.runs import runner
from engine.runs.folder import RunFolder


class Stop(Exception):
    pass


def interrupted_run(out: Path, *, config, trials=6000, seed=1, save_trials=40,
                    shard=None) -> Path:
    """The folder a run leaves when it is stopped after its first checkpoint (waves of 1,024
    trials, a checkpoint after each); returns the folder holding the checkpoint."""
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 2:
            raise Stop

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRISIS_CHECKPOINT_SECONDS", "0")
        mp.setattr(runner, "simulate", functools.partial(simulate, wave_trials=1024))
        with pytest.raises(Stop):
            api.run(config, trials=trials, seed=seed, save_trials=save_trials, out=out,
                    shard=shard, block_size=256, threads=1, progress=progress,
                    progress_total=lambda n: None)
    set_threads(None)
    folder = RunFolder(out).shard(*shard) if shard else RunFolder(out)
    assert (folder / "checkpoint.npz").is_file() and not folder.is_complete
    return folder.path
