"""One run folder: the only module that names a run folder's files, writes them and reads them back.

A complete run (design §5, §8) holds ``cells.parquet``, ``summary.parquet``, ``members.parquet``
(per alliance × member state), ``manifest.json``, ``tallies.npz`` (the exact integer tallies,
per-member tallies and delay histograms, for merging), ``scenario.toml``
(the input, byte for byte), ``run.json`` (the options, so the run can be resumed) and, with
``--save-trials``, ``trials.parquet``.  Every file is written atomically (:mod:`engine.runs.io`);
``manifest.json`` is written last, so a folder with a manifest is a complete run.  While a run
goes, ``checkpoint.npz`` holds the tallies of the trials finished so far and ``.lock`` keeps a
second writer out.  A sharded run keeps each shard in ``shards/shard-IIII-of-KKKK/`` and an HPC
submission its job ids in ``submit.json``.

New outputs belong here: add the file name, its writer and its reader, and every command that
reads runs (``summarize``, ``compare``, ``plot``, ``report``, ``merge``) sees it.

Nothing read back is trusted (:mod:`engine.runs.io`, :mod:`engine.runs.integrity`):

* files are read without following symbolic links, must be regular files, and are parsed from
  the very bytes that were hashed; ``manifest.json`` records the SHA-256 of every output file
  (``files``) and the counts (``totals``), and every reader that has a manifest checks them;
* ``.npz`` arrays must have exactly the expected names, dtypes and shapes (checked from their
  headers before any is loaded; never pickles), and tallies the kernel's relations; tallies
  written by an older engine (without the per-member ``members`` array) are refused with a
  message that says so;
* ``run.json`` is validated by :class:`~engine.runs.options.RunOptions`; a checkpoint records
  the scenario hash, seed, trials, trial range and saved-trial count it belongs to, and a
  digest of its arrays;
* a shard folder (``shards/shard-I-of-K``) and the ``shards/`` folder above it must be real
  folders: a symbolic link there is refused (never resolved), so that ``--force`` or a run
  never deletes or writes files outside the run folder;
* ``.lock`` is opened with ``O_NOFOLLOW`` (a link or a hard-linked file is refused, never
  written through), and is removed only by its holder while it still holds it; a process that
  locked a file that was removed meanwhile notices it (the path no longer names the inode it
  locked) and tries again, so two processes never both hold the lock.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from kernels.layout import (
    N_ALLIANCE_COLUMNS,
    N_ALLIANCE_PERIOD_COLUMNS,
    N_CELL_COLUMNS,
    N_HIST_BINS,
    N_MEMBER_COLUMNS,
    N_PERIOD_COLUMNS,
    N_RECORD_COLUMNS,
)

from ..core.simulate import CampaignTallies, Tallies
from ..errors import UserError
from .integrity import checkpoint_digest, record_problems, tally_problems, totals
from .io import (
    npz_names,
    read_json_object,
    read_npz,
    read_regular,
    sha256_hex,
    write_bytes,
    write_json,
    write_npz,
    write_parquet,
)
from .options import RunOptions, options_json, parse_manifest, parse_options
from .options import shard_range as shard_range  # re-exported: shard folders and ranges
from .posterior import Posterior, read_posterior

if TYPE_CHECKING:
    from ..model.compile import CompiledScenario
    from ..model.config import Scenario

CELLS = "cells.parquet"
SUMMARY = "summary.parquet"
MEMBERS = "members.parquet"
TRIALS = "trials.parquet"
TALLIES = "tallies.npz"
SCENARIO = "scenario.toml"
MANIFEST = "manifest.json"
RUN_JSON = "run.json"
CHECKPOINT = "checkpoint.npz"
BLOCKS = "blocks.parquet"  # a posterior run's per-block summaries (engine.runs.posterior)
POSTERIOR = "posterior.parquet"  # a posterior run's copy of its posterior
CHECKPOINT_BLOCKS = "checkpoint-blocks.parquet"  # the blocks of a checkpoint of a posterior run
# a campaign run's tables (design §7): by period, by alliance × period, successes per trajectory
PERIODS = "periods.parquet"
ALLIANCE_PERIODS = "alliance_periods.parquet"
SUCCESSES = "successes.parquet"
CAMPAIGN_TABLES = (PERIODS, ALLIANCE_PERIODS, SUCCESSES)
SUBMIT_JSON = "submit.json"
LOCK = ".lock"
SHARDS = "shards"
SHARD_NAME = "shard-%04d-of-%04d"  # printf format: shard index, shard count (also in job scripts)
LOGS = "logs"  # job-array logs of a submitted run
STATUS = "status"  # ``shard-I.failed`` markers of a submitted run
NUMBA_CACHE = "numba-cache"  # a submitted run's compiled kernels (its compile job's Numba cache)
# the files a run writes, removed by --force before it starts again
RUN_FILES = (CELLS, SUMMARY, MEMBERS, TALLIES, SCENARIO, TRIALS, MANIFEST, RUN_JSON,
             CHECKPOINT, BLOCKS, POSTERIOR, CHECKPOINT_BLOCKS, *CAMPAIGN_TABLES)
# the arrays of tallies.npz (and of checkpoint.npz): the fields of Tallies, in order
TALLY_ARRAYS = tuple(f.name for f in fields(Tallies))
SHARD_FOLDER = re.compile(r"shard-\d{4,}-of-\d{4,}")  # SHARD_NAME's names
# dtype and shape of every array of tallies.npz and checkpoint.npz (C cells, A alliances,
# M memberships, R saved trial records)
TALLY_SPEC = {
    "cells": ("<i8", ("C", N_CELL_COLUMNS)),
    "cell_hist": ("<i8", ("C", N_HIST_BINS)),
    "alliances": ("<i8", ("A", N_ALLIANCE_COLUMNS)),
    "alliance_hist": ("<i8", ("A", N_HIST_BINS)),
    "members": ("<i8", ("M", N_MEMBER_COLUMNS)),
}
# a campaign run's tallies.npz and checkpoint also hold these (design §7; P periods, Q = P + 1;
# M counts the candidates' rows too)
CAMPAIGN_TALLY_SPEC = {
    **TALLY_SPEC,
    "period_cells": ("<i8", ("P", N_CELL_COLUMNS)),
    "period_hist": ("<i8", ("P", N_HIST_BINS)),
    "periods": ("<i8", ("P", N_PERIOD_COLUMNS)),
    "alliance_periods": ("<i8", ("A", "P", N_ALLIANCE_PERIOD_COLUMNS)),
    "successes": ("<i8", ("Q",)),
}
CAMPAIGN_TALLY_ARRAYS = tuple(f.name for f in fields(CampaignTallies))
# arrays added by later engines: a file without them was written by an older engine
NEWER_TALLY_ARRAYS = ("members",)
CHECKPOINT_SPEC = {
    **TALLY_SPEC,
    "position": ("<i8", ()),
    "records": ("<f8", ("R", N_RECORD_COLUMNS)),
    "scenario_hash": ("<U64", ()),
    "seed": ("<i8", ()),
    "trials": ("<i8", ()),
    "trial_range": ("<i8", (2,)),
    "save_trials": ("<i8", ()),
    "digest": ("<U64", ()),
}
# a posterior run's checkpoint also records the SHA-256 of its CHECKPOINT_BLOCKS
POSTERIOR_CHECKPOINT_SPEC = {**CHECKPOINT_SPEC, "blocks_sha256": ("<U64", ())}


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "scenario"


def default_out_dir(scenario_name: str, seed: int) -> Path:
    """``results/<scenario slug>-<seed>``: where a run goes without ``--out``."""
    return Path("results") / f"{slugify(scenario_name)}-{seed}"


def tallies_arrays(t: Tallies | CampaignTallies) -> dict[str, np.ndarray]:
    names = CAMPAIGN_TALLY_ARRAYS if isinstance(t, CampaignTallies) else TALLY_ARRAYS
    return dict(zip(names, t.arrays(), strict=True))


def tally_dims(compiled: CompiledScenario | None) -> dict[str, int] | None:
    """The sizes of the tally specs' named dimensions for ``compiled`` (None: only
    consistent)."""
    if compiled is None:
        return None
    dims = {"C": compiled.n_cells, "A": compiled.n_alliances, "M": compiled.n_memberships}
    if compiled.campaign is not None:
        dims.update(M=compiled.n_memberships + compiled.campaign.n_candidates,
                    P=compiled.campaign.steps, Q=compiled.campaign.steps + 1)
    return dims


def _is_campaign(data: bytes, compiled: CompiledScenario | None) -> bool:
    """Whether tally bytes are a campaign run's: by the scenario when known, else by the
    arrays the file holds."""
    if compiled is not None:
        return compiled.campaign is not None
    return "periods" in (npz_names(data) or ())


def _tallies_from(arrays: dict[str, np.ndarray], campaign: bool,
                  path: Path) -> Tallies | CampaignTallies:
    if not campaign:
        return Tallies(*(arrays[k] for k in TALLY_ARRAYS))
    if arrays["successes"].shape[0] != arrays["periods"].shape[0] + 1:
        raise UserError(f"{path}: unreadable tallies (successes has "
                        f"{arrays['successes'].shape[0]} entries for "
                        f"{arrays['periods'].shape[0]} periods)")
    return CampaignTallies(*(arrays[k] for k in CAMPAIGN_TALLY_ARRAYS))


def _refuse_older(data: bytes, path: Path, what: str, again: str) -> None:
    """A :class:`UserError` when the ``.npz`` bytes are a tally file of an older engine (its
    tallies, without the arrays added since): say so and what to do, rather than which array
    is missing."""
    names = npz_names(data)
    if names is None or "cells" not in names:
        return  # not tallies at all: read_npz says what is wrong
    missing = [name for name in NEWER_TALLY_ARRAYS if name not in names]
    if missing:
        raise UserError(f"{path}: {what} written by an older engine (no per-member tallies: "
                        f"{', '.join(missing)} missing); {again}")


@dataclass(frozen=True)
class RunFolder:
    """A run (or shard) folder on disk; every file name of a run is spelled here only."""

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ---- layout ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def scenario_path(self) -> Path:
        return self.path / SCENARIO

    @property
    def submit_path(self) -> Path:
        return self.path / SUBMIT_JSON

    @property
    def logs_dir(self) -> Path:
        return self.path / LOGS

    @property
    def status_dir(self) -> Path:
        return self.path / STATUS

    @property
    def numba_cache_dir(self) -> Path:
        return self.path / NUMBA_CACHE

    def failed_marker(self, index: int) -> Path:
        return self.status_dir / f"shard-{index}.failed"

    def job_script(self, kind: str, scheduler: str) -> Path:
        """``shards.sbatch`` / ``merge.sbatch`` / ``compile.sbatch`` (SLURM) or ``.pbs`` (PBS)."""
        return self.path / f"{kind}.{'sbatch' if scheduler == 'slurm' else 'pbs'}"

    @property
    def is_complete(self) -> bool:
        """A manifest is written last: with one, every other file of the run is in place."""
        return os.path.lexists(self.manifest_path)

    @property
    def has_checkpoint(self) -> bool:
        """There is a ``checkpoint.npz`` (a link counts: reading it refuses it)."""
        return os.path.lexists(self.path / CHECKPOINT)

    @property
    def has_options(self) -> bool:
        return os.path.lexists(self.path / RUN_JSON)

    def shard(self, index: int, count: int) -> RunFolder:
        return RunFolder(self.path / SHARDS / (SHARD_NAME % (index, count)))

    def shard_folders(self) -> list[RunFolder]:
        """Every ``shards/shard-*-of-*`` folder, in name (= shard) order; a symbolic link
        among them (or as ``shards/``) is refused."""
        shards = self.path / SHARDS
        _refuse_link(shards)
        try:
            entries = sorted(shards.glob("shard-*-of-*"))
        except OSError as err:
            raise UserError(f"{shards}: cannot list ({err.strerror or err})") from None
        for entry in entries:
            _refuse_link(entry)
        return [RunFolder(p) for p in entries if SHARD_FOLDER.fullmatch(p.name) and p.is_dir()]

    @property
    def is_shard(self) -> bool:
        """Named like a shard folder of a run: ``…/shards/shard-IIII-of-KKKK``."""
        path = Path(os.path.abspath(self.path))
        return path.parent.name == SHARDS and SHARD_FOLDER.fullmatch(path.name) is not None

    def fits_shard(self, shard: tuple[int, int] | None) -> bool:
        """Whether a run of ``shard`` (None: a whole run) belongs in this folder: a shard in
        ``shards/shard-I-of-K``, a whole run anywhere else."""
        if shard is None:
            return not self.is_shard
        return self.is_shard and Path(os.path.abspath(self.path)).name == SHARD_NAME % shard

    def check_links(self) -> None:
        """A shard folder and the ``shards/`` folder above it must be real folders inside the
        run: a symbolic link there is refused (not resolved), so that ``--force`` never
        deletes, and a run never writes, files outside the run folder.  (The run folder
        itself, chosen by the user, may be reached through links.)"""
        if self.is_shard:
            path = Path(os.path.abspath(self.path))
            _refuse_link(path.parent)
            _refuse_link(path)

    @property
    def has_shards(self) -> bool:
        return (self.path / SHARDS).is_dir()

    # ---- preparing and locking ---------------------------------------------------------------
    def prepare(self, force: bool) -> None:
        """Refuse to overwrite a folder that holds anything unless forced; then clear our files."""
        out_dir = self.path
        self.check_links()
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir}: exists and is not a folder")
        if out_dir.is_dir():
            try:
                existing = sorted(p.name for p in out_dir.iterdir() if p.name != LOCK)
            except OSError as err:
                raise UserError(f"{out_dir}: cannot list ({err.strerror or err})") from None
            if existing and not force:
                hint = ("; `crisis run --resume` continues it" if CHECKPOINT in existing
                        and MANIFEST not in existing else "")
                raise UserError(
                    f"{out_dir}: folder is not empty ({', '.join(existing[:4])}"
                    f"{', …' if len(existing) > 4 else ''}); pass --force to overwrite the run "
                    f"there{hint}"
                )
            if force:
                for name in RUN_FILES:  # unlink removes a link itself, never its target
                    try:
                        (out_dir / name).unlink(missing_ok=True)
                    except OSError as err:
                        raise UserError(f"{out_dir / name}: cannot remove it "
                                        f"({err.strerror or err})") from None
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{out_dir}: cannot create the output folder: "
                            f"{err.strerror}") from None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on ``.lock`` while a run writes here: a second run aimed at
        the same folder stops at once with a clear error (the lock dies with the process, so a
        killed run never leaves a stale lock behind).

        ``.lock`` is opened with ``O_NOFOLLOW`` and must be a regular file with no other hard
        link, so nothing is ever written through it.  The holder removes it on release while it
        still holds it; a process that locked a file that was removed meanwhile sees that the
        path no longer names the inode it locked, and tries again."""
        import fcntl

        folder = self.path
        self.check_links()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{folder}: cannot create the output folder: "
                            f"{err.strerror or err}") from None
        self.check_links()
        path = folder / LOCK
        for _ in range(100):
            fd = _open_lock(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _lock_owner(fd)
                os.close(fd)
                raise UserError(f"{folder}: another run is writing there ({owner}); wait for "
                                f"it or choose another --out") from None
            except OSError as err:
                os.close(fd)
                raise UserError(f"{path}: cannot lock ({err.strerror or err})") from None
            if _names_inode(path, fd):
                break
            os.close(fd)  # its holder removed it after we opened it: lock the file there now
        else:
            raise UserError(f"{path}: cannot take the lock (the file keeps being replaced)")
        try:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
            except OSError as err:
                raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
            yield
        finally:
            # a finished (or refused) run leaves only its results: remove the lock file while
            # still holding it, and only if it is still ours
            if _names_inode(path, fd):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            os.close(fd)

    # ---- writers -----------------------------------------------------------------------------
    def write_scenario(self, text: bytes) -> None:
        write_bytes(self.scenario_path, text)

    def write_options(self, options: RunOptions | dict) -> None:
        """``run.json`` (a dict is validated first: nothing is written that resume refuses)."""
        path = self.path / RUN_JSON
        if not isinstance(options, RunOptions):
            options = parse_options(options, str(path))
        write_json(path, options_json(options))

    def write_posterior(self, data: bytes) -> None:
        """``posterior.parquet``: the bytes of the posterior a run takes its parameters from."""
        write_bytes(self.path / POSTERIOR, data)

    def write_checkpoint(self, tallies: Tallies | CampaignTallies, position: int,
                         records: np.ndarray,
                         options: RunOptions, blocks: pl.DataFrame | None = None) -> None:
        """The tallies of the trials before ``position`` and the records so far, with what
        they belong to (scenario hash, seed, trials, trial range, saved trials) and a digest
        of them all; a posterior run's finished block summaries go to
        ``checkpoint-blocks.parquet`` first, and the checkpoint records its SHA-256."""
        start, stop = options.trial_range
        arrays = {**tallies_arrays(tallies), "position": np.int64(position),
                  "records": records, "scenario_hash": np.array(options.scenario_hash),
                  "seed": np.int64(options.seed), "trials": np.int64(options.trials),
                  "trial_range": np.array([start, stop], dtype=np.int64),
                  "save_trials": np.int64(options.save_trials)}
        if blocks is not None:
            arrays["blocks_sha256"] = np.array(write_parquet(self.path / CHECKPOINT_BLOCKS,
                                                             blocks))
        arrays["digest"] = np.array(checkpoint_digest(arrays))
        write_npz(self.path / CHECKPOINT, arrays)

    def remove_checkpoint(self) -> None:
        (self.path / CHECKPOINT).unlink(missing_ok=True)
        (self.path / CHECKPOINT_BLOCKS).unlink(missing_ok=True)

    def write_tallies(self, tallies: Tallies | CampaignTallies) -> str:
        return write_npz(self.path / TALLIES, tallies_arrays(tallies))

    def write_tables(self, cells: pl.DataFrame, summary: pl.DataFrame,
                     members: pl.DataFrame) -> dict[str, str]:
        """``cells.parquet``, ``summary.parquet`` and ``members.parquet``; returns the
        SHA-256 of each by file name."""
        return {CELLS: write_parquet(self.path / CELLS, cells),
                SUMMARY: write_parquet(self.path / SUMMARY, summary),
                MEMBERS: write_parquet(self.path / MEMBERS, members)}

    def write_records(self, records: pl.DataFrame) -> str:
        return write_parquet(self.path / TRIALS, records)

    def write_manifest(self, manifest: dict) -> None:
        """Last: a folder with a manifest is a complete run."""
        write_json(self.manifest_path, manifest)

    def write_results(self, tallies: Tallies, cells: pl.DataFrame | None,
                      summary: pl.DataFrame | None, members: pl.DataFrame | None,
                      records: pl.DataFrame | None, manifest: dict,
                      blocks: pl.DataFrame | None = None,
                      campaign: dict[str, pl.DataFrame] | None = None) -> None:
        """Every result file of a finished run (tables are None for a shard; ``blocks``, a
        posterior run's block summaries), the manifest last — with the SHA-256 of every file
        (``files``, the run's copy of its posterior included) and the counts (``totals``),
        which it gains in place; then the checkpoint goes."""
        files = {TALLIES: self.write_tallies(tallies)}
        for name, frame in (campaign or {}).items():
            if name not in CAMPAIGN_TABLES:
                raise ValueError(f"{name} is not a campaign table")
            files[name] = write_parquet(self.path / name, frame)
        if blocks is not None:
            files[BLOCKS] = write_parquet(self.path / BLOCKS, blocks)
        if os.path.lexists(self.path / POSTERIOR):
            files[POSTERIOR] = sha256_hex(read_regular(self.path / POSTERIOR, "posterior"))
        if records is not None:
            files[TRIALS] = self.write_records(records)
        tables = (cells, summary, members)
        if any(t is not None for t in tables):
            if any(t is None for t in tables):
                raise ValueError("a whole run writes its cells, summary and members tables")
            files.update(self.write_tables(cells, summary, members))
        if os.path.lexists(self.scenario_path):
            files[SCENARIO] = sha256_hex(read_regular(self.scenario_path, "scenario file"))
        manifest["files"] = dict(sorted(files.items()))
        manifest["totals"] = totals(tallies)
        self.write_manifest(manifest)
        self.remove_checkpoint()

    def write_submission(self, record: dict) -> None:
        write_json(self.submit_path, record)

    # ---- readers ----------------------------------------------------------------------------
    def _verified(self, name: str, what: str, manifest: dict | None) -> bytes:
        """The bytes of the run file ``name`` (never through a link); with a ``manifest`` that
        lists the file's SHA-256, they must match it."""
        path = self.path / name
        data = read_regular(path, what)
        expected = (manifest or {}).get("files") or {}
        if name in expected and sha256_hex(data) != expected[name]:
            raise UserError(f"{path}: does not match the SHA-256 recorded for it in "
                            f"{self.manifest_path} (the file was changed or replaced after the "
                            f"run wrote it)")
        return data

    def read_manifest(self) -> dict:
        """The validated manifest (:class:`~engine.runs.options.RunManifest`), as written."""
        if not os.path.lexists(self.manifest_path):
            raise UserError(f"{self.path}: not a complete run (no {MANIFEST})")
        data = read_json_object(self.manifest_path, "manifest")
        parse_manifest(data, str(self.manifest_path))
        return data

    def read_options(self) -> RunOptions:
        """``run.json``, validated with the same bounds as the command line's options."""
        path = self.path / RUN_JSON
        return parse_options(read_json_object(path, "run options"), str(path))

    def read_submission(self) -> dict:
        return read_json_object(self.submit_path, SUBMIT_JSON)

    def read_tallies(self, manifest: dict | None = None,
                     compiled: CompiledScenario | None = None) -> Tallies:
        """``tallies.npz``: int64 arrays of consistent shapes (those of ``compiled`` when
        given).  With a ``manifest``: its SHA-256 and totals must match, and the tallies must
        satisfy every relation of :mod:`engine.runs.integrity` over its trial range."""
        path = self.path / TALLIES
        data = self._verified(TALLIES, "tallies", manifest)
        _refuse_older(data, path, "tallies", "run it again with this engine (a shard: run "
                      "that shard again, then merge)")
        campaign = _is_campaign(data, compiled)
        arrays = read_npz(data, path, "tallies", CAMPAIGN_TALLY_SPEC if campaign else TALLY_SPEC,
                          tally_dims(compiled))
        tallies = _tallies_from(arrays, campaign, path)
        if manifest is not None:
            low, high = manifest["trial_range"]
            problems = tally_problems(tallies, high - low, compiled)
            if problems:
                raise UserError(f"{path}: impossible tallies: " + "; ".join(problems))
            recorded = manifest.get("totals")
            if recorded is not None and recorded != totals(tallies):
                raise UserError(f"{path}: does not match the totals in {self.manifest_path}")
        return tallies

    def read_checkpoint(self, options: RunOptions, compiled: CompiledScenario
                        ) -> tuple[Tallies, int, np.ndarray, pl.DataFrame | None]:
        """The checkpoint of the run ``options`` describes: its arrays must have the shapes of
        ``compiled`` and the run's saved-trial count, belong to this run (scenario hash, seed,
        trials, trial range, saved trials), match their digest, and the tallies and records
        must be those of a real run of ``[start, position)``.  A posterior run's checkpoint
        also gives its block summaries (``checkpoint-blocks.parquet``, with the SHA-256 the
        checkpoint records; their content is checked by the caller); else None."""
        path = self.path / CHECKPOINT
        data = read_regular(path, "checkpoint")
        _refuse_older(data, path, "checkpoint", "it cannot be resumed; start the run again "
                      "(`crisis run … --force`)")
        start, stop = options.trial_range
        with_blocks = options.posterior_sha256 is not None
        campaign = compiled.campaign is not None
        spec = POSTERIOR_CHECKPOINT_SPEC if with_blocks else CHECKPOINT_SPEC
        if campaign:
            spec = {**spec, **CAMPAIGN_TALLY_SPEC}
        arrays = read_npz(data, path, "checkpoint", spec, tally_dims(compiled))
        run_json = self.path / RUN_JSON
        belongs = {"scenario_hash": options.scenario_hash, "seed": options.seed,
                   "trials": options.trials, "trial_range": [start, stop],
                   "save_trials": options.save_trials}
        for key, expected in belongs.items():
            found = arrays[key].tolist()
            if found != expected:
                raise UserError(f"{path}: belongs to another run ({key} {str(found)[:80]}, "
                                f"but {run_json} says {expected})")
        n_records = max(0, min(options.save_trials, stop - start))
        if len(arrays["records"]) != n_records:
            raise UserError(f"{path}: {len(arrays['records'])} saved trial records where the "
                            f"run keeps {n_records}")
        position = int(arrays["position"])
        if not start <= position <= stop:
            raise UserError(f"{path}: position {position} outside the run's trials "
                            f"[{start}, {stop})")
        tallies = _tallies_from(arrays, campaign, path)
        problems = tally_problems(tallies, position - start, compiled)
        records = arrays["records"]
        problems += record_problems(records, start, min(len(records), position - start),
                                    compiled)
        if problems:
            raise UserError(f"{path}: impossible checkpoint: " + "; ".join(problems))
        if str(arrays["digest"]) != checkpoint_digest(arrays):
            raise UserError(f"{path}: does not match its digest (damaged or edited after it "
                            f"was written)")
        blocks = None
        if with_blocks:
            blocks_path = self.path / CHECKPOINT_BLOCKS
            raw = read_regular(blocks_path, "checkpoint block summaries")
            if sha256_hex(raw) != str(arrays["blocks_sha256"]):
                raise UserError(f"{blocks_path}: does not match the SHA-256 in {path}")
            blocks = _parquet(raw, blocks_path)
        return tallies, position, records, blocks

    def read_posterior(self, sha256: str) -> Posterior:
        """The run's copy of its posterior (``posterior.parquet``), which must have the SHA-256
        that ``run.json`` records (:func:`engine.runs.posterior.read_posterior`)."""
        return read_posterior(self.path / POSTERIOR, sha256)

    def read_blocks(self, manifest: dict | None = None) -> pl.DataFrame | None:
        """``blocks.parquet`` of a posterior run (None when there is none)."""
        if not os.path.lexists(self.path / BLOCKS):
            return None
        return self.read_table(BLOCKS, manifest)

    def read_records(self, manifest: dict | None = None) -> pl.DataFrame | None:
        """``trials.parquet`` (None when the run saved no trials)."""
        if not os.path.lexists(self.path / TRIALS):
            return None
        return self.read_table(TRIALS, manifest)

    def read_table(self, name: str, manifest: dict | None = None) -> pl.DataFrame:
        path = self.path / name
        return _parquet(self._verified(name, "table", manifest), path)

    def read_scenario(self, manifest: dict | None = None) -> Scenario:
        """The run's ``scenario.toml`` (never through a link; with a ``manifest``, its
        SHA-256 must match)."""
        from ..model.config import load_scenario

        data = self._verified(SCENARIO, "scenario file", manifest)
        scenario = load_scenario(self.scenario_path)
        if scenario.source_text() != data:
            raise UserError(f"{self.scenario_path}: changed while it was read")
        return scenario

    def read_scenario_text(self) -> str | None:
        """The run's ``scenario.toml`` as text (None when missing or not a regular file)."""
        try:
            return read_regular(self.scenario_path, "scenario file").decode(
                "utf-8", errors="replace")
        except UserError:
            return None

    def load(self) -> RunData:
        """Read a complete run: the manifest and summary must be there, readable and (where
        the manifest records their SHA-256) unchanged; the cells and members tables and the
        tallies are read when present, unchanged and consistent, else a note says why (a run
        of an older engine has no members table)."""
        path = self.path
        if not path.exists():
            raise UserError(f"{path}: no such folder (so not a complete run)")
        if not path.is_dir():
            raise UserError(f"{path}: not a folder")
        manifest = self.read_manifest()
        if not os.path.lexists(path / SUMMARY):
            hint = " (a shard? `crisis merge` combines shards)" if manifest.get("shard") else ""
            raise UserError(f"{path}: no {SUMMARY}{hint}")
        summary = self.read_table(SUMMARY, manifest)
        if not {"scope", "key"} <= set(summary.columns):
            raise UserError(f"{path / SUMMARY}: not a summary table (no scope/key)")
        run = RunData(self, manifest, summary)
        if os.path.lexists(path / CELLS):
            try:
                run.cells = self.read_table(CELLS, manifest)
            except UserError as err:
                run.notes.append(str(err))
        else:
            run.notes.append(f"{path}: no {CELLS}")
        if os.path.lexists(path / TALLIES):
            try:
                tallies = self.read_tallies(manifest)
            except UserError as err:
                run.notes.append(f"{err}; no delay tests")
            else:
                if run.cells is not None and not np.array_equal(
                        run.cells.get_column("trials").to_numpy(), tallies.cells[:, 0]):
                    run.notes.append(f"{path}: {CELLS} does not match {TALLIES}")
                else:
                    run.tallies = tallies
        else:
            run.notes.append(f"{path}: no {TALLIES}")
        if os.path.lexists(path / MEMBERS):
            try:
                members = self.read_table(MEMBERS, manifest)
            except UserError as err:
                run.notes.append(str(err))
            else:
                if run.tallies is not None and (
                        "pledged" not in members.columns or not np.array_equal(
                            members.get_column("pledged").to_numpy(),
                            run.tallies.members[:, 0])):
                    run.notes.append(f"{path}: {MEMBERS} does not match {TALLIES}")
                else:
                    run.members = members
        else:
            run.notes.append(f"{path}: no {MEMBERS} (a run of an older engine?): no "
                             f"per-member results")
        if os.path.lexists(path / BLOCKS):
            try:
                run.blocks = self.read_blocks(manifest)
            except UserError as err:
                run.notes.append(str(err))
        for name in CAMPAIGN_TABLES:
            if os.path.lexists(path / name):
                try:
                    run.campaign[name] = self.read_table(name, manifest)
                except UserError as err:
                    run.notes.append(str(err))
        if os.path.lexists(self.scenario_path):
            try:
                run.alliance_ids = [al.id for al in self.read_scenario(manifest).alliances]
            except UserError as err:  # labels only: say why they are missing
                run.notes.append(f"{err}; alliances are not labelled")
        return run


def _parquet(data: bytes, path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path}: unreadable ({str(err).splitlines()[0][:200]})") from None


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise UserError(f"{path}: is a symbolic link; a run's shard folders must be real "
                        f"folders inside it (refused, so that nothing outside the run folder is "
                        f"written or deleted)")


def _open_lock(path: Path) -> int:
    """Open (or create) ``.lock`` for locking: never through a symbolic link, and only a
    regular file with no other hard link (so that writing the owner's pid harms nothing)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"{path}: is a symbolic link; refusing to use it as the run's "
                            f"lock (remove it)") from None
        raise UserError(f"{path.parent}: cannot create the lock file {LOCK} "
                        f"({err.strerror or err})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else "has other hard links"
        raise UserError(f"{path}: {what}; refusing to use it as the run's lock (remove it)")
    return fd


def _names_inode(path: Path, fd: int) -> bool:
    """Whether ``path`` (not followed) is still the file open as ``fd``."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _lock_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", errors="replace")
    except OSError:
        text = ""
    text = "".join(ch for ch in text.strip() if ch.isprintable())
    return text[:60] or "another process"


@dataclass
class RunData:
    """What a complete run folder holds, read back once for every command that reads runs."""

    folder: RunFolder
    manifest: dict
    summary: pl.DataFrame
    cells: pl.DataFrame | None = None
    tallies: Tallies | None = None
    members: pl.DataFrame | None = None  # members.parquet: per alliance × member state
    blocks: pl.DataFrame | None = None  # blocks.parquet: a posterior run's block summaries
    # a campaign run's tables (design §7): file name → table
    campaign: dict[str, pl.DataFrame] = field(default_factory=dict)
    alliance_ids: list[str] | None = None  # in tally order; None when scenario.toml is unreadable
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def cell_hist(self) -> np.ndarray | None:
        return None if self.tallies is None else self.tallies.cell_hist

    @property
    def alliance_hist(self) -> np.ndarray | None:
        return None if self.tallies is None else self.tallies.alliance_hist

    @property
    def alliance_rows(self) -> dict[str, int]:
        """Alliance id → row of the per-alliance tallies (empty when the ids are unknown)."""
        return {aid: i for i, aid in enumerate(self.alliance_ids or [])}

    def require(self, *parts: str) -> None:
        """Raise a :class:`UserError` (with the reasons noted) unless ``parts`` were read."""
        missing = [p for p in parts if getattr(self, p) is None]
        if missing:
            why = "; ".join(self.notes) or "missing"
            raise UserError(f"{self.path}: cannot read the run's {', '.join(missing)}: {why}")
