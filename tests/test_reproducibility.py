"""Design §3: same scenario + seed ⇒ bit-identical tables, whatever the threads or block size."""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import polars as pl
import pytest

from engine.core.simulate import Tallies, set_threads, simulate
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario
from engine.runs.runner import run_scenario

CONFIGS = Path(__file__).parent.parent / "configs"
NATO = CONFIGS / "nato-baltic-2024.toml"


@pytest.fixture(scope="module")
def nato():
    return compile_scenario(load_scenario(NATO))


def run_with(compiled, threads, block_size, start=0, stop=60_000, save=0, wave=None):
    set_threads(threads)
    try:
        return simulate(compiled, 11, start, stop, block_size=block_size, save_trials=save,
                        wave_trials=wave)
    finally:
        set_threads(None)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_threads_and_block_sizes_give_identical_tallies(path):
    compiled = compile_scenario(load_scenario(path))
    reference, _ = run_with(compiled, 1, 4096)
    for threads, block in [(2, 4096), (2, 1), (1, 777), (2, 100_003)]:
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        other, _ = run_with(compiled, threads, block)
        assert other.equals(reference), (threads, block)


def test_waves_and_splits_give_identical_tallies(nato):
    whole, records = run_with(nato, 2, 512, save=100)
    small_waves, records2 = run_with(nato, 2, 512, save=100, wave=1024)
    assert small_waves.equals(whole)
    np.testing.assert_array_equal(records, records2)
    # three uneven pieces of the trial range add up to the whole range exactly
    total = Tallies.zeros(nato.n_cells, nato.n_alliances, nato.n_memberships)
    for lo, hi in [(0, 12_345), (12_345, 40_001), (40_001, 60_000)]:
        part, _ = run_with(nato, 2, 1000, start=lo, stop=hi)
        total.add(part)
    assert total.equals(whole)


def test_saved_records_are_the_first_trials_of_the_range(nato):
    _, records = run_with(nato, 2, 64, start=500, stop=2000, save=50)
    assert records[:, 0].tolist() == list(range(500, 550))


def test_different_seeds_differ(nato):
    a, _ = simulate(nato, 1, 0, 20_000)
    b, _ = simulate(nato, 2, 0, 20_000)
    assert not a.equals(b)


def test_run_files_are_byte_identical_across_threads_and_blocks(tmp_path):
    one = run_scenario(NATO, trials=50_000, seed=5, threads=1, block_size=4096,
                       out_dir=tmp_path / "one")
    two = run_scenario(NATO, trials=50_000, seed=5, threads=2, block_size=333,
                       out_dir=tmp_path / "two")
    set_threads(None)
    for name in ("cells.parquet", "summary.parquet"):
        a = pl.read_parquet(one.out_dir / name)
        b = pl.read_parquet(two.out_dir / name)
        assert a.equals(b, null_equal=True), name
        assert (one.out_dir / name).read_bytes() == (two.out_dir / name).read_bytes(), name
    with np.load(one.out_dir / "tallies.npz") as x, np.load(two.out_dir / "tallies.npz") as y:
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])
