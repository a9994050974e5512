"""Run-folder file I/O: atomic writes (temporary name in the same folder, flush, fsync, rename)
and careful reads (never through a symbolic link, only regular files, size-capped, ``.npz``
arrays checked against the expected dtype and shape before any is loaded)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import UserError
from ..fs import fsync_dir

# JSON files of a run (manifest.json, run.json, submit.json) are small; a larger one is not ours
MAX_JSON_BYTES = 64 * 2**20


def atomic_write(path: Path, write: Callable[[Path], None]) -> str:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then rename it into place;
    return the SHA-256 (hex) of the bytes written.

    A crash leaves either the old file or the new one, never a half-written file.  The rename
    replaces whatever ``path`` was (a symbolic link included) and never writes through it.
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
        digest = hashlib.sha256()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
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
    fsync_dir(path.parent)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(path: Path, frame: pl.DataFrame) -> str:
    return atomic_write(path, lambda tmp: frame.write_parquet(tmp, statistics=False))


def write_json(path: Path, data: dict) -> str:
    def dump(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")

    return atomic_write(path, dump)


def write_bytes(path: Path, data: bytes) -> str:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> str:
    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(path, dump)


# ---- reading ---------------------------------------------------------------------------------
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_regular(path: Path, what: str, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; a :class:`UserError` naming it when it is
    missing, a symbolic link (never followed: ``O_NOFOLLOW``), not a regular file, larger than
    ``max_bytes`` or unreadable."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UserError(f"{path}: missing ({what})") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"{path}: is a symbolic link; a run's files are never read "
                            f"through links") from None
        raise UserError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path}: not a regular file ({what})")
        if max_bytes is not None and info.st_size > max_bytes:
            raise UserError(f"{path}: {info.st_size:,} bytes is too large for {what} (at most "
                            f"{max_bytes:,})")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 24):
            chunks.append(chunk)
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:  # it grew while we read
                raise UserError(f"{path}: too large for {what}")
        return b"".join(chunks)
    except OSError as err:
        raise UserError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    finally:
        os.close(fd)


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from ``path`` (:func:`read_regular`; NaN and infinities refused)."""
    data = read_regular(path, what, MAX_JSON_BYTES)

    def no_constants(name: str):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}: unreadable {what} ({str(err)[:200]})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: unreadable {what} (not a JSON object)")
    return value


def npz_names(data: bytes) -> set[str] | None:
    """The array names in an ``.npz`` file's bytes (None when they are not a zip archive)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name.removesuffix(".npy") for name in archive.namelist()}
    except Exception:  # noqa: BLE001 - whatever the bytes are, they are not an npz
        return None


# An array's expected dtype and shape: each dimension a number, or a name that must take the
# same value in every array where it appears (and the value given in ``dims`` if given).
ArraySpec = tuple[str, tuple[int | str, ...]]


def read_npz(data: bytes, path: Path, what: str, spec: Mapping[str, ArraySpec],
             dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file's bytes, exactly the names of ``spec`` (none missing,
    none extra), each with the expected dtype and shape — checked from the ``.npy`` headers
    before any array is read; pickled (object) arrays are refused.  Arrays come back
    C-contiguous and writable.  Any problem is a :class:`UserError` naming the file."""
    bound = dict(dims or {})

    def refuse(problem: str) -> UserError:
        return UserError(f"{path}: unreadable {what} ({problem})")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except Exception as err:  # noqa: BLE001 - whatever the bytes are, they are not an npz
        raise refuse(f"not an .npz archive: {type(err).__name__}") from None
    names = {name.removesuffix(".npy") for name in members}
    if len(names) != len(members) or any(not n.endswith(".npy") for n in members):
        raise refuse("it holds entries that are not arrays")
    missing, extra = sorted(set(spec) - names), sorted(names - set(spec))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(repr(e)[:40] for e in extra[:5])}"] if extra else [])
        raise refuse("; ".join(parts))
    arrays = {}
    try:
        for name, (dtype, shape) in spec.items():
            info = members[f"{name}.npy"]
            with archive.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    got_shape, _, got_dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    got_shape, _, got_dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise refuse(f"array {name}: unsupported .npy version {version}")
            if got_dtype.hasobject or got_dtype != np.dtype(dtype):
                raise refuse(f"array {name}: dtype {got_dtype.str}, expected "
                             f"{np.dtype(dtype).str}")
            if len(got_shape) != len(shape):
                raise refuse(f"array {name}: shape {got_shape}, expected {len(shape)} "
                             f"dimensions")
            for axis, (want, got) in enumerate(zip(shape, got_shape, strict=True)):
                if isinstance(want, str):
                    want = bound.setdefault(want, got)
                if got != want:
                    raise refuse(f"array {name}: shape {got_shape}, axis {axis} should be "
                                 f"{want}")
            if int(np.prod(got_shape, dtype=object)) * got_dtype.itemsize > info.file_size:
                raise refuse(f"array {name}: shorter than its shape {got_shape}")
        for name in spec:
            with archive.open(members[f"{name}.npy"]) as fh:
                array = np.lib.format.read_array(fh, allow_pickle=False)
            if not array.flags.c_contiguous or not array.flags.writeable:
                array = array.copy(order="C")  # (not ascontiguousarray: it makes 0-d 1-d)
            arrays[name] = array
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - truncated, corrupt, encrypted, …
        raise refuse(f"{type(err).__name__}: {str(err)[:120]}") from None
    return arrays
