"""Campaign runs in run folders (issue 15, item 2): the same files, byte for byte, whatever the
split — shards and merge, Dask, an interrupted run resumed — and read back like any run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from engine import api
from engine.errors import UserError
from engine.model.config import scenario_from_dict
from engine.runs.folder import ALLIANCE_PERIODS, PERIODS, SUCCESSES
from tests.oracle_scenarios import all_knobs
from tests.test_campaign_kernel import KNOBS, _with_candidates

TRIALS = 3001
FILES = ("cells.parquet", "summary.parquet", "members.parquet", PERIODS, ALLIANCE_PERIODS,
         SUCCESSES)


def _scenario():
    data = _with_candidates(all_knobs(name="campaign-runs"))
    data["campaign"] = dict(KNOBS)
    return scenario_from_dict(copy.deepcopy(data))


def _same(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    with np.load(a / "tallies.npz") as x, np.load(b / "tallies.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        assert all(np.array_equal(x[k], y[k]) for k in x.files)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign") / "whole"
    api.run(_scenario(), trials=TRIALS, seed=4, out=out, threads=2)
    return out


def test_a_campaign_run_folder_reads_back(whole):
    run = api.open_run(whole)
    assert not run.notes, run.notes
    assert set(run.campaign) == {PERIODS, ALLIANCE_PERIODS, SUCCESSES}
    periods = run.campaign[PERIODS]
    assert periods.height == KNOBS["steps"]
    assert run.campaign[SUCCESSES]["trajectories"].sum() == TRIALS
    m = run.manifest
    assert m["totals"]["trials"] == TRIALS
    assert m["totals"]["crises"] == periods["crises"].sum() == m["campaign"]["crises"]
    # the candidates have their rows in members.parquet, after the members
    assert {"SWE", "FIN"} <= set(run.members.filter(run.members["alliance"] == "NATO")["state"])


@pytest.mark.parametrize("count", [3, 7])
def test_shards_merge_to_the_whole_campaign(whole, tmp_path, count):
    for i in range(count):
        api.run(_scenario(), trials=TRIALS, seed=4, out=tmp_path / "sh", shard=(i, count),
                threads=1, block_size=17)
    api.merge(tmp_path / "sh")
    _same(whole, tmp_path / "sh")


def test_resume_gives_the_whole_campaign(whole, tmp_path, monkeypatch):
    """Stopped after its first wave (a checkpoint after each), resumed: the same files."""
    from engine.runs import runner

    class Stop(Exception):
        pass

    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 2:
            raise Stop

    monkeypatch.setenv("CRISIS_CHECKPOINT_SECONDS", "0")
    monkeypatch.setattr(runner, "_campaign_wave", lambda *_: 1000)
    out = tmp_path / "run"
    with pytest.raises(Stop):
        api.run(_scenario(), trials=TRIALS, seed=4, out=out, progress=progress,
                progress_total=lambda n: None)
    assert (out / "checkpoint.npz").is_file() and not (out / "manifest.json").exists()
    result = api.resume(out)
    assert result.manifest["resumed_at"] == 1000
    _same(whole, out)


def test_dask_gives_the_whole_campaign(whole, tmp_path):
    pytest.importorskip("dask.distributed")
    api.run(_scenario(), trials=TRIALS, seed=4, out=tmp_path / "d", executor="dask",
            dask_workers=2, threads=1)
    _same(whole, tmp_path / "d")


def test_merge_refuses_damaged_campaign_tallies(tmp_path):
    for i in range(2):
        api.run(_scenario(), trials=500, seed=4, out=tmp_path / "sh", shard=(i, 2))
    tallies = tmp_path / "sh" / "shards" / "shard-0001-of-0002" / "tallies.npz"
    with np.load(tallies) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["successes"][0] += 1  # one trajectory too many
    np.savez(tallies, **arrays)
    with pytest.raises(UserError, match="tallies.npz"):
        api.merge(tmp_path / "sh")


def test_what_campaigns_refuse(tmp_path):
    with pytest.raises(UserError, match="save-trials"):
        api.run(_scenario(), trials=100, save_trials=5)
    post = tmp_path / "p.parquet"
    import polars as pl

    pl.DataFrame({"commitment_scale": [1.0]}).write_parquet(post)
    with pytest.raises(UserError, match="posterior"):
        api.run(_scenario(), trials=100, posterior=post)


def test_one_neutral_period_writes_the_v1_run_files(tmp_path):
    """``steps = 1``, neutral knobs: cells.parquet, summary.parquet and members.parquet are a v1
    run's, byte for byte (issue 15: a one-period campaign is a v1 run)."""
    data = all_knobs(name="one-period", member_aggressor=True)
    v1 = scenario_from_dict(copy.deepcopy(data))
    data["campaign"] = {"steps": 1}
    one = scenario_from_dict(data)
    api.run(v1, trials=5000, seed=6, out=tmp_path / "v1")
    api.run(one, trials=5000, seed=6, out=tmp_path / "one")
    for name in ("cells.parquet", "summary.parquet", "members.parquet"):
        assert (tmp_path / "v1" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
