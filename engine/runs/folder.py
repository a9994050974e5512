"""One run folder: the only module that names a run folder's files, writes them and reads them back.

A complete run (design §5) holds ``cells.parquet``, ``summary.parquet``, ``manifest.json``,
``tallies.npz`` (the exact integer tallies and delay histograms, for merging), ``scenario.toml``
(the input, byte for byte), ``run.json`` (the options, so the run can be resumed) and, with
``--save-trials``, ``trials.parquet``.  Every file is written atomically (:mod:`engine.runs.io`);
``manifest.json`` is written last, so a folder with a manifest is a complete run.  While a run
goes, ``checkpoint.npz`` holds the tallies of the trials finished so far and ``.lock`` keeps a
second writer out.  A sharded run keeps each shard in ``shards/shard-IIII-of-KKKK/`` and an HPC
submission its job ids in ``submit.json``.

New outputs belong here: add the file name, its writer and its reader, and every command that
reads runs (``summarize``, ``compare``, ``plot``, ``report``, ``merge``) sees it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from kernels.layout import N_HIST_BINS

from ..core.simulate import Tallies
from ..errors import UserError
from .io import write_bytes, write_json, write_npz, write_parquet

CELLS = "cells.parquet"
SUMMARY = "summary.parquet"
TRIALS = "trials.parquet"
TALLIES = "tallies.npz"
SCENARIO = "scenario.toml"
MANIFEST = "manifest.json"
RUN_JSON = "run.json"
CHECKPOINT = "checkpoint.npz"
SUBMIT_JSON = "submit.json"
LOCK = ".lock"
SHARDS = "shards"
SHARD_NAME = "shard-%04d-of-%04d"  # printf format: shard index, shard count (also in job scripts)
LOGS = "logs"  # job-array logs of a submitted run
STATUS = "status"  # ``shard-I.failed`` markers of a submitted run
# the files a run writes, removed by --force before it starts again
RUN_FILES = (CELLS, SUMMARY, TALLIES, SCENARIO, TRIALS, MANIFEST, RUN_JSON, CHECKPOINT)
TALLY_ARRAYS = ("cells", "cell_hist", "alliances", "alliance_hist")


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "scenario"


def default_out_dir(scenario_name: str, seed: int) -> Path:
    """``results/<scenario slug>-<seed>``: where a run goes without ``--out``."""
    return Path("results") / f"{slugify(scenario_name)}-{seed}"


def shard_range(trials: int, index: int, count: int) -> tuple[int, int]:
    """Trials of shard ``index`` of ``count``: a contiguous, complete, non-overlapping split."""
    return trials * index // count, trials * (index + 1) // count


def tallies_arrays(t: Tallies) -> dict[str, np.ndarray]:
    return dict(zip(TALLY_ARRAYS, (t.cells, t.cell_hist, t.alliances, t.alliance_hist),
                    strict=True))


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

    def failed_marker(self, index: int) -> Path:
        return self.status_dir / f"shard-{index}.failed"

    def job_script(self, kind: str, scheduler: str) -> Path:
        """``shards.sbatch`` / ``merge.sbatch`` (SLURM) or ``shards.pbs`` / ``merge.pbs``."""
        return self.path / f"{kind}.{'sbatch' if scheduler == 'slurm' else 'pbs'}"

    @property
    def is_complete(self) -> bool:
        """A manifest is written last: with one, every other file of the run is in place."""
        return self.manifest_path.is_file()

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    @property
    def has_options(self) -> bool:
        return (self.path / RUN_JSON).is_file()

    def shard(self, index: int, count: int) -> RunFolder:
        return RunFolder(self.path / SHARDS / (SHARD_NAME % (index, count)))

    def shard_folders(self) -> list[RunFolder]:
        """Every ``shards/shard-*-of-*`` folder, in name (= shard) order."""
        return [RunFolder(p) for p in sorted((self.path / SHARDS).glob("shard-*-of-*"))]

    @property
    def has_shards(self) -> bool:
        return (self.path / SHARDS).is_dir()

    # ---- preparing and locking ---------------------------------------------------------------
    def prepare(self, force: bool) -> None:
        """Refuse to overwrite a folder that holds anything unless forced; then clear our files."""
        out_dir = self.path
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir}: exists and is not a folder")
        if out_dir.is_dir():
            existing = sorted(p.name for p in out_dir.iterdir() if p.name != LOCK)
            if existing and not force:
                hint = ("; `crisis run --resume` continues it" if CHECKPOINT in existing
                        and MANIFEST not in existing else "")
                raise UserError(
                    f"{out_dir}: folder is not empty ({', '.join(existing[:4])}"
                    f"{', …' if len(existing) > 4 else ''}); pass --force to overwrite the run "
                    f"there{hint}"
                )
            if force:
                for name in RUN_FILES:
                    (out_dir / name).unlink(missing_ok=True)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{out_dir}: cannot create the output folder: "
                            f"{err.strerror}") from None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on ``.lock`` while a run writes here: a second run aimed at
        the same folder stops at once with a clear error (the lock dies with the process, so a
        killed run never leaves a stale lock behind)."""
        import fcntl

        folder = self.path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / LOCK, "a+")  # noqa: SIM115 - held for the whole run
        except OSError as err:
            raise UserError(f"{folder}: cannot create the output folder: "
                            f"{err.strerror or err}") from None
        held = False
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                raise UserError(f"{folder}: another run is writing there ({owner}); wait for "
                                f"it or choose another --out") from None
            held = True
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            if held:  # a finished (or refused) run leaves only its results
                (folder / LOCK).unlink(missing_ok=True)
            handle.close()

    # ---- writers -----------------------------------------------------------------------------
    def write_scenario(self, text: bytes) -> None:
        write_bytes(self.scenario_path, text)

    def write_options(self, options: dict) -> None:
        write_json(self.path / RUN_JSON, options)

    def write_checkpoint(self, tallies: Tallies, position: int, records: np.ndarray) -> None:
        write_npz(self.path / CHECKPOINT, {**tallies_arrays(tallies),
                                           "position": np.int64(position), "records": records})

    def remove_checkpoint(self) -> None:
        (self.path / CHECKPOINT).unlink(missing_ok=True)

    def write_tallies(self, tallies: Tallies) -> None:
        write_npz(self.path / TALLIES, tallies_arrays(tallies))

    def write_tables(self, cells: pl.DataFrame, summary: pl.DataFrame) -> None:
        write_parquet(self.path / CELLS, cells)
        write_parquet(self.path / SUMMARY, summary)

    def write_records(self, records: pl.DataFrame) -> None:
        write_parquet(self.path / TRIALS, records)

    def write_manifest(self, manifest: dict) -> None:
        """Last: a folder with a manifest is a complete run."""
        write_json(self.manifest_path, manifest)

    def write_results(self, tallies: Tallies, cells: pl.DataFrame | None,
                      summary: pl.DataFrame | None, records: pl.DataFrame | None,
                      manifest: dict) -> None:
        """Every result file of a finished run (tables are None for a shard), the manifest
        last; then the checkpoint goes."""
        self.write_tallies(tallies)
        if records is not None:
            self.write_records(records)
        if cells is not None and summary is not None:
            self.write_tables(cells, summary)
        self.write_manifest(manifest)
        self.remove_checkpoint()

    def write_submission(self, record: dict) -> None:
        write_json(self.submit_path, record)

    # ---- readers -----------------------------------------------------------------------------
    def _json(self, path: Path, what: str) -> dict:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: unreadable {what} ({err})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: unreadable {what} (not a JSON object)")
        return data

    def read_manifest(self) -> dict:
        if not self.is_complete:
            raise UserError(f"{self.path}: not a complete run (no {MANIFEST})")
        return self._json(self.manifest_path, "manifest")

    def read_options(self) -> dict:
        return self._json(self.path / RUN_JSON, "run options")

    def read_submission(self) -> dict:
        return self._json(self.submit_path, SUBMIT_JSON)

    def read_tallies(self) -> Tallies:
        path = self.path / TALLIES
        try:
            with np.load(path) as data:
                return Tallies(*(np.asarray(data[k], dtype=np.int64) for k in TALLY_ARRAYS))
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: unreadable tallies ({err})") from None

    def read_checkpoint(self) -> tuple[Tallies, int, np.ndarray]:
        path = self.path / CHECKPOINT
        try:
            with np.load(path) as ck:
                tallies = Tallies(*(ck[k] for k in TALLY_ARRAYS))
                return tallies, int(ck["position"]), ck["records"]
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: unreadable checkpoint ({err})") from None

    def read_records(self) -> pl.DataFrame | None:
        path = self.path / TRIALS
        return pl.read_parquet(path) if path.exists() else None

    def read_table(self, name: str) -> pl.DataFrame:
        path = self.path / name
        try:
            return pl.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise UserError(f"{path}: unreadable ({str(err).splitlines()[0]})") from None

    def read_scenario_text(self) -> str | None:
        """The run's ``scenario.toml`` as text (None when missing)."""
        try:
            return self.scenario_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def alliance_ids(self) -> list[str] | None:
        """Alliance ids in tally order, from the run's ``scenario.toml`` (None if unreadable)."""
        if not self.scenario_path.is_file():
            return None
        from ..model.config import load_scenario

        try:
            return [al.id for al in load_scenario(self.scenario_path).alliances]
        except Exception:  # noqa: BLE001 - labels only: the caller falls back
            return None

    def load(self) -> RunData:
        """Read a complete run: the manifest and summary must be there and readable; the cells
        table and the tallies are read when present and consistent, else a note says why."""
        path = self.path
        if not path.exists():
            raise UserError(f"{path}: no such folder (so not a complete run)")
        if not path.is_dir():
            raise UserError(f"{path}: not a folder")
        manifest = self.read_manifest()
        if not (path / SUMMARY).is_file():
            hint = " (a shard? `crisis merge` combines shards)" if manifest.get("shard") else ""
            raise UserError(f"{path}: no {SUMMARY}{hint}")
        summary = self.read_table(SUMMARY)
        if not {"scope", "key"} <= set(summary.columns):
            raise UserError(f"{path / SUMMARY}: not a summary table (no scope/key)")
        run = RunData(self, manifest, summary)
        if (path / CELLS).is_file():
            try:
                run.cells = self.read_table(CELLS)
            except UserError as err:
                run.notes.append(str(err))
        else:
            run.notes.append(f"{path}: no {CELLS}")
        if (path / TALLIES).is_file():
            try:
                tallies = self.read_tallies()
            except UserError as err:
                run.notes.append(f"{err}; no delay tests")
            else:
                if tallies.cell_hist.shape[-1] != N_HIST_BINS:
                    run.notes.append(f"{path}: delay histograms have another binning; no delay "
                                     f"tests")
                elif run.cells is not None and not np.array_equal(
                        run.cells.get_column("trials").to_numpy(), tallies.cells[:, 0]):
                    run.notes.append(f"{path}: {CELLS} does not match {TALLIES}")
                else:
                    run.tallies = tallies
        else:
            run.notes.append(f"{path}: no {TALLIES}")
        run.alliance_ids = self.alliance_ids()
        return run


@dataclass
class RunData:
    """What a complete run folder holds, read back once for every command that reads runs."""

    folder: RunFolder
    manifest: dict
    summary: pl.DataFrame
    cells: pl.DataFrame | None = None
    tallies: Tallies | None = None
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
