"""The compiled-kernel cache a submitted run shares: published by its compile job, copied by
each shard (see :mod:`engine.scale.hpc`).

Numba unpickles its cache, so nothing here trusts the run folder: ``numba-cache/`` and
everything in it is read with ``O_NOFOLLOW`` (a link is refused, never followed), must be a real
folder or regular file of ours that no one else can write, and only files that ``cache.json``
(validated, strict) lists are copied, each with its size and SHA-256.  A copy goes into an empty
private folder (the shard's own ``NUMBA_CACHE_DIR``), written with ``O_EXCL`` and private modes;
anything wrong and nothing is copied, so the shard compiles for itself (slower, still correct).

Numba keys a cache entry by its source file's path, modification time and size, its own
version, the interpreter and the CPU: ``cache.json`` records the first four, so ``--resume``
can tell whether a published cache still fits the installed kernels.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError
from ..runs.folder import NUMBA_CACHE, RunFolder
from ..runs.options import ScenarioHash
from ..version import __version__

CACHE_JSON = "cache.json"
MAX_CACHE_FILES = 10_000
MAX_CACHE_BYTES = 2**30
# Numba's layout under NUMBA_CACHE_DIR: <source folder>_<hash>/<module>.<function>-<line>.<tag>.nbi
# (the index) and …<tag>.<n>.nbc (the compiled code); nothing else is published or copied
_CACHE_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}/[A-Za-z0-9_][A-Za-z0-9_.+-]{0,250}"
                         r"\.nb[ci]")
CachePath = Annotated[str, Field(pattern=_CACHE_FILE.pattern.join("^$"))]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _path(path: str | Path) -> str:
    """A path for a message: as it is when printable, else escaped."""
    text = str(path)
    return text if text.isprintable() else ascii(text)[:200]


def _invalid(path: Path, err: ValidationError) -> UserError:
    problems = [f"{'.'.join(ascii(str(p))[1:-1][:40] for p in e['loc']) or '(file)'}: "
                f"{e['msg']}" for e in err.errors(include_url=False, include_input=False)]
    return UserError(f"{_path(path)}: " + "; ".join(problems[:5]))


class CacheFile(_Strict):
    path: CachePath
    size: Annotated[int, Field(ge=0, le=MAX_CACHE_BYTES)]
    sha256: Sha256


class SourceStamp(_Strict):
    """A kernel source file as Numba keys its cache entries: name, modification time, size."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,100}\.py$")]
    mtime_ns: Annotated[int, Field(ge=0)]
    size: Annotated[int, Field(ge=0)]


class CacheRecord(_Strict):
    """``numba-cache/cache.json``: what was compiled, with what, and every file's digest."""

    engine: Version
    numba: Version
    python: Version  # the interpreter's cache tag, e.g. cpython-311
    scenario_hash: ScenarioHash
    sources: Annotated[list[SourceStamp], Field(max_length=1000)]
    files: Annotated[list[CacheFile], Field(min_length=1, max_length=MAX_CACHE_FILES)]


def kernel_sources() -> list[dict]:
    """The stamps of the installed ``kernels/*.py`` (found without importing Numba)."""
    spec = importlib.util.find_spec("kernels")
    folder = Path(next(iter(spec.submodule_search_locations)))
    stamps = []
    for path in sorted(folder.glob("*.py")):
        st = path.stat()
        stamps.append({"name": path.name, "mtime_ns": st.st_mtime_ns, "size": st.st_size})
    return stamps


def _toolchain() -> dict:
    from importlib.metadata import version

    return {"engine": __version__, "numba": version("numba"),
            "python": sys.implementation.cache_tag or sys.implementation.name}


def _open_ours(name: str | Path, dir_fd: int | None, folder: bool, modes: bool = True) -> int:
    """An fd of ``name`` (relative to ``dir_fd``), opened without following a link, when it is
    a folder (or a regular file) owned by us that no one else can write (``modes=False``: inside
    a private folder, where group or world write bits, as a umask of 002 leaves, cannot be used);
    else a UserError."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags | (os.O_DIRECTORY if folder else 0), dir_fd=dir_fd)
    except FileNotFoundError:
        raise UserError(f"{_path(name)}: missing") from None
    except OSError as err:
        raise UserError(f"{_path(name)}: {err.strerror or err} (a link, or not a "
                        f"{'folder' if folder else 'file'})") from None
    st = os.fstat(fd)
    if not (stat.S_ISDIR if folder else stat.S_ISREG)(st.st_mode) or \
            st.st_uid != os.geteuid() or (modes and st.st_mode & 0o022):
        os.close(fd)
        raise UserError(f"{_path(name)}: not a {'folder' if folder else 'file'} of ours that "
                        "only we can write")
    return fd


def _read_ours(name: str, dir_fd: int, limit: int, modes: bool = True) -> bytes:
    fd = _open_ours(name, dir_fd, folder=False, modes=modes)
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UserError(f"{_path(name)}: larger than {limit:,} bytes")
    return data


def _cache_files(source: Path) -> list[tuple[str, bytes]]:
    """The Numba cache files in ``source`` (a private folder of ours: the compile job's cache),
    read without following links; other entries are left out."""
    top = _open_ours(source, None, folder=True)
    files, total = [], 0
    try:
        if os.fstat(top).st_mode & 0o077:
            raise UserError(f"{_path(source)}: not a folder only we can read")
        for sub in sorted(os.listdir(top)):
            if not stat.S_ISDIR(os.stat(sub, dir_fd=top, follow_symlinks=False).st_mode):
                continue
            sub_fd = _open_ours(sub, top, folder=True, modes=False)
            try:
                for name in sorted(os.listdir(sub_fd)):
                    if not _CACHE_FILE.fullmatch(f"{sub}/{name}"):
                        continue
                    data = _read_ours(name, sub_fd, MAX_CACHE_BYTES - total, modes=False)
                    total += len(data)
                    files.append((f"{sub}/{name}", data))
            finally:
                os.close(sub_fd)
    finally:
        os.close(top)
    if len(files) > MAX_CACHE_FILES:
        raise UserError(f"{_path(source)}: more than {MAX_CACHE_FILES:,} cache files")
    return files


def read_cache(run_dir: str | Path) -> tuple[dict, list[tuple[str, bytes]]]:
    """The published cache of a run folder, checked whole: ``numba-cache/`` and every file in it
    a real folder or file of ours that no one else can write (read without following links),
    ``cache.json`` valid, and each file it lists present with its size and SHA-256."""
    source = RunFolder(run_dir).numba_cache_dir
    top = _open_ours(source, None, folder=True)
    try:
        try:
            record = CacheRecord.model_validate(json.loads(_read_ours(CACHE_JSON, top, 2**24)))
        except ValidationError as err:
            raise _invalid(source / CACHE_JSON, err) from None
        except (ValueError, RecursionError) as err:
            raise UserError(f"{_path(source / CACHE_JSON)}: not JSON ({ascii(str(err))[:200]})"
                            ) from None
        paths = [f.path for f in record.files]
        if len(set(paths)) != len(paths) or sum(f.size for f in record.files) > MAX_CACHE_BYTES:
            raise UserError(f"{_path(source / CACHE_JSON)}: a file listed twice, or too large")
        files, folders = [], {}
        try:
            for entry in record.files:
                sub, name = entry.path.split("/")
                if sub not in folders:
                    folders[sub] = _open_ours(sub, top, folder=True)
                data = _read_ours(name, folders[sub], entry.size)
                if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
                    raise UserError(f"{_path(entry.path)}: not the file {CACHE_JSON} lists")
                files.append((entry.path, data))
        finally:
            for fd in folders.values():
                os.close(fd)
    finally:
        os.close(top)
    return record.model_dump(), files


def cache_mismatch(record: dict, scenario_hash: str | None = None) -> str | None:
    """Why a published cache would not serve the installed kernels (None: it would).  Numba
    keys each entry by its source file's modification time and size, its own version and the
    interpreter, so any difference there means every shard would compile again."""
    now = _toolchain()
    for key in ("engine", "numba", "python"):
        if record[key] != now[key]:
            return f"compiled with {key} {record[key]}, here {now[key]}"
    if record["sources"] != kernel_sources():
        return "the kernel sources changed since it was compiled"
    if scenario_hash is not None and record["scenario_hash"] != scenario_hash:
        return "compiled for another scenario"
    return None


def cache_problem(run_dir: str | Path, scenario_hash: str) -> str | None:
    """Why the run folder's published cache cannot serve this scenario (None: it can, and
    ``--resume`` submits no compile job)."""
    try:
        record, _ = read_cache(run_dir)
    except UserError as err:
        return str(err)
    return cache_mismatch(record, scenario_hash)


def _write_new(dir_fd: int, files: list[tuple[str, bytes]]) -> None:
    """Write ``files`` (``sub/name``, or ``name``) into an empty folder of ours, creating, never
    reusing; private modes (0700, 0600) whatever the umask."""
    folders: dict[str, int] = {"": dir_fd}
    try:
        for path, data in files:
            sub, _, name = path.rpartition("/")
            if sub not in folders:
                os.mkdir(sub, 0o700, dir_fd=dir_fd)
                folders[sub] = os.open(sub, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                       dir_fd=dir_fd)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                         dir_fd=folders[sub])
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        for sub, fd in folders.items():
            if sub:
                os.close(fd)


def _clear(folder: Path) -> None:
    """Empty a folder of ours (what a failed copy left); links are removed, never followed."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def copy_cache(run_dir: str | Path, dest: str | Path) -> int:
    """Copy the run folder's published cache into ``dest`` (an empty private folder of ours,
    the shard's own NUMBA_CACHE_DIR); the number of files.  Anything wrong (no cache yet, a
    link, a file not ours or writable by others, a digest that differs, kernels changed since):
    a UserError, and ``dest`` is left empty, so the shard compiles for itself."""
    dest = Path(dest)
    fd = _open_ours(dest, None, folder=True)
    try:
        if os.fstat(fd).st_mode & 0o077 or os.listdir(fd):
            raise UserError(f"{_path(dest)}: not an empty folder only we can read")
        record, files = read_cache(run_dir)
        if (why := cache_mismatch(record)) is not None:
            raise UserError(f"{_path(RunFolder(run_dir).numba_cache_dir)}: {why}")
        try:
            _write_new(fd, files)
        except OSError as err:
            _clear(dest)
            raise UserError(f"{_path(dest)}: cannot copy the cache ({err.strerror or err})"
                            ) from None
    finally:
        os.close(fd)
    return len(files)


def publish_cache(source: str | Path, run_dir: str | Path, scenario_hash: str) -> int:
    """Publish the compile job's private cache ``source`` as the run folder's ``numba-cache/``
    (written into a fresh folder, ``cache.json`` last, then renamed into place; an earlier one
    is moved aside and removed, a link there removed, never followed); the number of files."""
    files = _cache_files(Path(source))
    if not files:
        raise UserError(f"{_path(source)}: Numba wrote no cache files (caching disabled?)")
    record = {**_toolchain(), "scenario_hash": scenario_hash, "sources": kernel_sources(),
              "files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                        for p, d in files]}
    CacheRecord.model_validate(record)  # what shards will accept
    run_dir = Path(run_dir)
    target = RunFolder(run_dir).numba_cache_dir
    staging = Path(tempfile.mkdtemp(prefix=f".{NUMBA_CACHE}.new.", dir=run_dir))
    aside = None
    try:
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:  # cache.json last: a folder without it is refused
            _write_new(fd, [*files, (CACHE_JSON, json.dumps(record, indent=1).encode())])
        finally:
            os.close(fd)
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        elif target.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{NUMBA_CACHE}.old.", dir=run_dir))
            os.rename(target, aside / NUMBA_CACHE)
        os.rename(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"{_path(target)}: cannot publish the cache ({err.strerror or err})"
                        ) from None
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    return len(files)
