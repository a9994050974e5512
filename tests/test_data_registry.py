"""``crisis data``: the real download path (pooch over HTTP) against a local server on
127.0.0.1 serving copies of ../shared/data (and corrupted ones); no test reaches the internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.data import registry
from engine.errors import UserError

DATA = Path(__file__).parent.parent.parent / "shared" / "data"
if not DATA.is_dir():
    pytest.skip(f"{DATA} (the real public data) is absent", allow_module_level=True)

CORRUPTED = "cow-war-inter-4.0.csv"  # a changed byte
TRUNCATED = "cinc-polity.csv"  # a partial file


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request lines in the test output
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server on 127.0.0.1 (port 0): ``good/`` has copies of every file, ``bad/`` a corrupted
    and a truncated one.  Yields the base URL and the served root."""
    root = tmp_path_factory.mktemp("mirror")
    good, bad = root / "good", root / "bad"
    good.mkdir()
    bad.mkdir()
    for entry in registry.DATASETS:
        shutil.copyfile(DATA / entry.file, good / entry.file)
    data = bytearray((DATA / CORRUPTED).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / CORRUPTED).write_bytes(bytes(data))
    (bad / TRUNCATED).write_bytes((DATA / TRUNCATED).read_bytes()[:100_000])
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder via $CRISIS_DATA_DIR; no mirror or proxy from the environment,
    and every outgoing connection except to 127.0.0.1 refused."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(registry.ENV_DATA_DIR, str(folder))
    monkeypatch.delenv(registry.ENV_MIRROR, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    connect = socket.socket.connect

    def local_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] != "127.0.0.1":
            raise AssertionError(f"a test tried to reach {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
    return folder


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_registry_pins_the_shared_files():
    """One entry per data file (README.md aside), pinned by its SHA-256 and size."""
    files = {p.name for p in DATA.iterdir() if p.name != "README.md"}
    assert {e.file for e in registry.DATASETS} == files
    for entry in registry.DATASETS:
        assert entry.sha256 == _sha256(DATA / entry.file), entry.name
        assert entry.size_bytes == (DATA / entry.file).stat().st_size, entry.name
        assert entry.citation and entry.terms and entry.source.startswith("http")


def test_fetch_all_then_list_shows_all_verified(served, cache):
    base, _ = served
    result = _run("data", "fetch", "--mirror", f"{base}/good/")
    assert result.exit_code == 0, result.output
    assert "8 dataset(s) verified" in result.output
    listed = _run("data", "list")
    assert listed.exit_code == 0, listed.output
    assert "8 of 8 verified" in listed.output
    for entry in registry.DATASETS:
        row = next(line for line in listed.output.splitlines() if line.startswith(entry.name))
        assert entry.file in row and row.split()[2:4] == ["yes", "yes"]
        assert _sha256(cache / entry.file) == entry.sha256
    # a second fetch keeps the verified files and needs no server
    again = _run("data", "fetch", "--mirror", "http://127.0.0.1:1", "cinc", "major-powers")
    assert again.exit_code == 0, again.output
    assert "already present" in again.output


@pytest.mark.parametrize("name", [CORRUPTED, TRUNCATED])
def test_corrupted_or_partial_download_is_an_error_and_leaves_nothing(served, cache, name):
    base, root = served
    entry = registry.dataset(name)
    result = _run("data", "fetch", entry.name, "--mirror", f"{base}/bad")
    assert result.exit_code == 2, result.output
    assert name in result.output
    assert entry.sha256 in result.output
    assert _sha256(root / "bad" / name) in result.output
    assert not (cache / name).exists()
    assert list(cache.iterdir()) == []  # no temporary file left behind either


def test_failed_refetch_drops_a_corrupted_cached_copy(served, cache):
    base, _ = served
    cache.mkdir()
    (cache / CORRUPTED).write_bytes(b"stale")
    assert _run("data", "fetch", "cow-wars", "--mirror", f"{base}/bad").exit_code == 2
    assert not (cache / CORRUPTED).exists()
    (cache / CORRUPTED).write_bytes(b"stale")
    assert _run("data", "fetch", "cow-wars", "--mirror", f"{base}/good").exit_code == 0
    assert _sha256(cache / CORRUPTED) == registry.dataset(CORRUPTED).sha256


def test_fetch_without_a_mirror_says_so(cache):
    result = _run("data", "fetch")
    assert result.exit_code == 2
    assert "--mirror URL" in result.output and registry.ENV_MIRROR in result.output


def test_library_fetch_with_progress_bar(served, cache):
    base, _ = served
    paths = registry.fetch(["major-powers"], f"{base}/good", progress=True)
    assert paths == [cache / "cow-major-powers-2016.csv"]


def test_add_installs_good_copies_and_refuses_bad_ones(served, cache, tmp_path):
    _, root = served
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copyfile(root / "bad" / CORRUPTED, bad / CORRUPTED)
    shutil.copyfile(root / "good" / "td-strategic-rivalries.csv",
                    bad / "td-strategic-rivalries.csv")
    result = _run("data", "add", str(bad))
    assert result.exit_code == 2, result.output
    assert CORRUPTED in result.output and "nothing was installed" in result.output
    assert registry.dataset(CORRUPTED).sha256 in result.output
    assert _sha256(bad / CORRUPTED) in result.output
    assert not cache.exists() or list(cache.iterdir()) == []

    link = tmp_path / "link"
    link.mkdir()
    (link / "cow-major-powers-2016.csv").symlink_to(root / "good" / "cow-major-powers-2016.csv")
    refused = _run("data", "add", str(link))
    assert refused.exit_code == 2 and "symbolic link" in refused.output

    good = _run("data", "add", str(root / "good"))
    assert good.exit_code == 0, good.output
    assert "8 of 8 verified" in _run("data", "list").output


def test_data_dir_falls_back_to_the_verified_cache(served, cache, tmp_path):
    _, root = served
    with pytest.raises(UserError, match="crisis data fetch --mirror URL"):
        registry.data_dir(None)
    assert registry.data_dir(tmp_path) == tmp_path
    registry.add(root / "good", folder=cache)
    assert registry.data_dir(None) == cache
    (cache / "cow-major-powers-2016.csv").write_bytes(b"ccode\n")
    with pytest.raises(UserError, match=registry.dataset("major-powers").sha256):
        registry.data_dir(None)
    assert registry.data_dir(None, names=["cinc"]) == cache


def test_import_atop_reads_the_cache(served, cache, tmp_path):
    _, root = served
    assert _run("data", "add", str(root / "good")).exit_code == 0
    out = tmp_path / "world.toml"
    result = _run("import", "atop", "--year", "1914", "--aggressor", "GMY", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "atop-alliance-level.csv" in text and "gml-ddy-disputes-2.03.csv" in text


def test_import_atop_without_data_says_how_to_get_it(cache, tmp_path):
    result = _run("import", "atop", "--year", "1914", "--out", str(tmp_path / "w.toml"))
    assert result.exit_code == 2
    assert "crisis data add DIR" in result.output


def test_similarity_and_calibrate_read_the_cache_or_data(served, cache, tmp_path):
    """`crisis similarity --year` and `crisis calibrate … =observed` take their files from
    --data DIR, else from the verified cache: the same output either way as with the files
    named one by one; without either they say how to get the data."""
    _, root = served
    explicit = _run("similarity", "--year", "1914", "--alliances",
                    str(DATA / "atop-alliance-level.csv"), "--members",
                    str(DATA / "atop-member-level.csv"), "--capabilities",
                    str(DATA / "cinc-polity.csv"), "--format", "csv")
    assert explicit.exit_code == 0, explicit.output
    missing = _run("similarity", "--year", "1914", "--format", "csv")
    assert missing.exit_code == 2 and "crisis data add DIR" in missing.output
    from_data = _run("similarity", "--year", "1914", "--data", str(DATA), "--format", "csv")
    assert from_data.exit_code == 0 and from_data.output == explicit.output
    assert _run("data", "add", str(root / "good")).exit_code == 0
    from_cache = _run("similarity", "--year", "1914", "--format", "csv")
    assert from_cache.exit_code == 0 and from_cache.output == explicit.output

    config = Path(__file__).parent.parent / "configs" / "nato-baltic-2024.toml"
    common = ["calibrate", str(config), "--target", "honor_rate=observed", "--trials", "1000",
              "--bounds", "0.5:4"]
    wars = DATA / "berkemeier-fuhrmann-2018-alliance-wars.csv"
    by_file = _run(*common, "--observations", str(wars))
    assert by_file.exit_code == 0, by_file.output
    by_cache = _run(*common)
    assert by_cache.exit_code == 0 and by_cache.output == by_file.output
    by_data = _run(*common, "--data", str(DATA))
    assert by_data.exit_code == 0 and by_data.output == by_file.output
