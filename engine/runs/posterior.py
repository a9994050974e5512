"""Runs whose parameters come from a posterior (``crisis run --posterior``, issue 14, item 2).

The run's trials are cut into blocks of ``trials_per_draw(trials)`` consecutive trials (about
:data:`TARGET_BLOCKS` blocks, at least :data:`MIN_TRIALS_PER_DRAW` trials each).  Block ``b``
takes posterior draw ``⌊u · D⌋``, ``u = uniform(posterior_key(seed_base(seed), b), 0)``
(:mod:`kernels.rng`), ``D`` the number of draws: a pure function of the seed and the trial index,
so a run is the same whatever the thread count or block size.  Each block is simulated with the
scenario at its draw's parameters (:func:`engine.model.parameters.apply_values`) and the tallies
are summed exactly, so the point estimates are posterior means.  Every interval of the summary is
the 2.5–97.5% range, over the blocks, of the value each block gives on its own trials: the spread
of the measure over the posterior (parameter uncertainty) plus the Monte Carlo error of one
block's trials.

``posterior.parquet`` (as written by ``crisis calibrate --method mcmc``) is read like user
input: a regular file (no symbolic link), one float column per parameter (``walker``, ``step``
and ``log_posterior`` are ignored), finite values, 1 … :data:`MAX_DRAWS` rows; its SHA-256 ties
it to the run (``run.json`` and the manifest).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import UserError
from .io import read_regular

META_COLUMNS = ("walker", "step", "log_posterior")
MAX_DRAWS = 1_000_000
MAX_BYTES = 512 * 2**20
TARGET_BLOCKS = 200
MIN_TRIALS_PER_DRAW = 1000


@dataclass(frozen=True)
class Posterior:
    names: tuple[str, ...]
    draws: np.ndarray  # float64 (D, k)
    sha256: str
    source: str
    data: bytes = field(repr=False, default=b"")  # the file's bytes (a run folder keeps a copy)

    @property
    def n_draws(self) -> int:
        return int(self.draws.shape[0])

    def values(self, draw: int) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.draws[draw], strict=True)}

    def manifest(self, trials: int) -> dict:
        return {"file": self.source, "sha256": self.sha256, "draws": self.n_draws,
                "parameters": list(self.names), "trials_per_draw": trials_per_draw(trials),
                "interval": "2.5-97.5% over posterior draws of each draw's own estimate "
                            "(parameter and Monte Carlo uncertainty together)"}


def read_posterior(path: str | Path, sha256: str | None = None) -> Posterior:
    """The draws of ``path`` (module docstring); a bad file is a :class:`UserError` naming it.
    With ``sha256`` (a run folder's copy, read back), the file must have that hash."""
    path = Path(path)
    if path.is_symlink():
        raise UserError(f"{path}: is a symbolic link; give the posterior file itself")
    if not os.path.lexists(path):
        raise UserError(f"{path}: no such posterior file")
    data = read_regular(path, "posterior", MAX_BYTES)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"{path}: is not the posterior the run was started with (its SHA-256 "
                        f"differs from {sha256[:12]}…, recorded in run.json)")
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (OSError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{path}: not a readable Parquet file ({err})") from None
    names = [c for c in frame.columns if c not in META_COLUMNS]
    if not names:
        raise UserError(f"{path}: no parameter column (only {', '.join(frame.columns)})")
    for name in names:
        if not frame[name].dtype.is_numeric():
            raise UserError(f"{path}: column {name!r} is not numeric")
    if not 1 <= frame.height <= MAX_DRAWS:
        raise UserError(f"{path}: {frame.height} draws; a posterior has 1 … {MAX_DRAWS:,}")
    draws = frame.select(names).to_numpy().astype(np.float64)
    if not np.all(np.isfinite(draws)):
        bad = names[int(np.argwhere(~np.isfinite(draws))[0][1])]
        raise UserError(f"{path}: column {bad!r} has a missing or non-finite value")
    return Posterior(tuple(names), draws, hashlib.sha256(data).hexdigest(), str(path), data)


def trials_per_draw(trials: int) -> int:
    """Trials per posterior draw of a run of ``trials`` trials (module docstring)."""
    return max(MIN_TRIALS_PER_DRAW, math.ceil(trials / TARGET_BLOCKS))


def draw_of_block(seed: int, block: int, n_draws: int) -> int:
    """The posterior draw of trial block ``block`` (module docstring)."""
    from kernels.rng import posterior_key, seed_base, uniform

    base = np.uint64(seed_base(np.int64(seed)))
    u = uniform(np.uint64(posterior_key(base, np.int64(block))), np.int64(0))
    return min(n_draws - 1, int(u * n_draws))


def blocks(start: int, stop: int, trials: int) -> list[tuple[int, int, int]]:
    """(block, first trial, end) of the blocks that meet ``[start, stop)``."""
    size = trials_per_draw(trials)
    return [(b, max(start, b * size), min(stop, (b + 1) * size))
            for b in range(start // size, -(-stop // size))]


@dataclass(frozen=True)
class BlockJob:
    """One block's share of a range: its trials ``[lo, hi)`` go into the range's tallies; a
    range *owns* the blocks that start in it and gives their summary rows, simulating the
    trials ``[hi, end)`` past its own end when a block runs on (those count for the block's
    summary only).  Each block's summary is thus made by exactly one shard, from all of its
    trials, and a sharded run's ``blocks.parquet`` is the whole run's."""

    block: int
    draw: int
    lo: int
    hi: int
    end: int | None  # the block's end when this range owns it, else None


def plan(seed: int, start: int, stop: int, trials: int, n_draws: int) -> list[BlockJob]:
    """The jobs of the range ``[start, stop)`` of a run of ``trials`` trials, in trial order."""
    size = trials_per_draw(trials)
    return [BlockJob(b, draw_of_block(seed, b, n_draws), lo, hi,
                     min(trials, (b + 1) * size) if b * size >= start else None)
            for b, lo, hi in blocks(start, stop, trials)]


def owned_blocks(jobs: list[BlockJob], position: int | None = None) -> list[tuple[int, int]]:
    """(block, draw) of the blocks the jobs own (those finished before ``position``)."""
    return [(j.block, j.draw) for j in jobs
            if j.end is not None and (position is None or j.hi <= position)]


def block_frame(summary: pl.DataFrame, block: int, draw: int) -> pl.DataFrame:
    """One block's rows of ``blocks.parquet``: ``block``, ``draw``, then the block's own
    summary without its Monte Carlo bounds, every measure Int64 (counts) or Float64."""
    point = [c for c in summary.columns if not c.endswith(("_low", "_high"))]
    frame = summary.select(point).with_columns(
        pl.col(pl.Null).cast(pl.Float64), pl.col(pl.Float32).cast(pl.Float64))
    return frame.select(pl.lit(block, pl.Int64).alias("block"),
                        pl.lit(draw, pl.Int64).alias("draw"), pl.all())


def check_blocks(frame: pl.DataFrame, expected: list[tuple[int, int]], columns: list[str],
                 where: str) -> pl.DataFrame:
    """A ``blocks.parquet`` read back: the columns of :func:`block_frame` for this scenario's
    summary (``columns``, in order; ``block``/``draw`` Int64, ``scope``/``key`` String, measures
    numeric), and exactly the (block, draw) pairs ``expected``, in order; a
    :class:`UserError` naming ``where`` otherwise."""
    want = ["block", "draw", *columns]
    if frame.columns != want:
        raise UserError(f"{where}: not the block summaries of this run (columns differ)")
    for name, dtype in frame.schema.items():
        ok = (dtype == pl.String if name in ("scope", "key")
              else dtype == pl.Int64 if name in ("block", "draw") else dtype.is_numeric())
        if not ok:
            raise UserError(f"{where}: column {name!r} has type {dtype}")
    if not frame.get_column("block").is_sorted():
        raise UserError(f"{where}: blocks out of order")
    found = frame.select("block", "draw").unique(maintain_order=True).rows()
    if found != expected:
        raise UserError(f"{where}: holds blocks {_span(found)}, expected {_span(expected)} "
                        f"with their posterior draws")
    return frame


def _span(pairs: list[tuple[int, int]]) -> str:
    if not pairs:
        return "none"
    return f"{pairs[0][0]}…{pairs[-1][0]} ({len(pairs)})"


def run_job(compiled, step2, seed: int, job: BlockJob, *, block_size: int, progress=None,
            records: np.ndarray | None = None, record_start: int | None = None):
    """Simulate one job with its draw's compiled scenario and step 2: returns the tallies of
    ``[lo, hi)``, the tallies of the whole block when the job owns it (else None) and the
    records (rows of trials ``record_start + i``, as :func:`~engine.core.simulate.simulate`)."""
    from ..core.simulate import Tallies, simulate

    part, records = simulate(compiled, seed, job.lo, job.hi, block_size=block_size,
                             progress=progress, records=records, record_start=record_start,
                             deterrence=step2)
    own = None
    if job.end is not None:
        own = part
        if job.end > job.hi:  # the block runs on past this range: its summary needs it all
            extra, _ = simulate(compiled, seed, job.hi, job.end, block_size=block_size,
                                deterrence=step2)
            own = Tallies.zeros(compiled.n_cells, compiled.n_alliances,
                                compiled.n_memberships)
            own.add(part)
            own.add(extra)
    return part, own, records
