"""Atomic file output: write to a temporary name in the same folder, flush, fsync, rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import UserError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then rename it into place.

    A crash leaves either the old file or the new one, never a half-written file.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are normal files
        os.replace(tmp, path)
    except (OSError, pl.exceptions.PolarsError) as err:  # disk full, read-only, quota, …
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise UserError(f"{path}: cannot write ({reason}); nothing was written in its "
                        f"place") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_parquet(path: Path, frame: pl.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.write_parquet(tmp, statistics=False))


def write_json(path: Path, data: dict) -> None:
    def dump(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")

    atomic_write(path, dump)


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, dump)
