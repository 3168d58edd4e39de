"""Tests for genre.data.download against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import re
import shutil
import socket
import tarfile
import threading
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from genre.data import download
from genre.data.download import (
    MARKER_NAME,
    PART_NAME,
    DownloadError,
    download_gtzan,
)

GENRES = ("blues", "jazz", "rock")
FILES_PER_GENRE = 2
FILE_BYTES = 8_000  # Random bytes do not compress, so a cut lands mid-archive.


def _tar_gz(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def _dataset_files() -> dict[str, bytes]:
    rng = random.Random(6)
    return {f"{g}/{g}.{i:05d}.wav": rng.randbytes(FILE_BYTES) for g in GENRES for i in range(FILES_PER_GENRE)}


def _good_archive() -> bytes:
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [_dir("genres")]
    for g in GENRES:
        entries.append(_dir(f"genres/{g}"))
    entries += [_file(f"genres/{rel}", data) for rel, data in _dataset_files().items()]
    return _tar_gz(entries)


GOOD = _good_archive()
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()


@dataclass
class _State:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, str | None]] = field(default_factory=list)
    cut_after: list[int] = field(default_factory=list)  # one entry per request to cut short
    fail_on: dict[int, int] = field(default_factory=dict)  # request index -> HTTP error status
    ignore_range: bool = False
    no_length: bool = False  # send no Content-Length: the body ends when the connection closes
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def ranges(self) -> list[str | None]:
        return [r["range"] for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    """Serves State.files, honours "Range: bytes=N-[M]" and can drop a response early."""

    protocol_version = "HTTP/1.0"  # The connection closes after each response.

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        state: _State = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        state.requests.append({"path": self.path, "range": rng})
        body = state.files.get(self.path)
        status = state.fail_on.get(len(state.requests) - 1)
        if status is not None:
            self.send_error(status)
            return
        if body is None:
            self.send_error(404, "Not Found")
            return
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if match and not state.ignore_range:
            start = int(match[1])
            end = int(match[2]) if match[2] else len(body) - 1
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = body[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(payload) - 1}/{len(body)}")
        else:
            payload = body
            self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        if not state.no_length:
            self.send_header("Content-Length", str(len(payload)))  # Announces the full body even if cut.
        self.end_headers()
        if state.cut_after:
            payload = payload[: state.cut_after.pop(0)]
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GENRE_GTZAN_URL", "GENRE_GTZAN_MD5"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")  # Never send 127.0.0.1 traffic through a proxy.
    monkeypatch.setattr(download, "_RETRY_DELAY_S", 0.0)


@pytest.fixture
def server() -> Iterator[_State]:
    state = _State(files={"/genres.tar.gz": GOOD})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening, so connecting fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fetch(server: _State, to: Path, **kwargs: object) -> Path:
    kwargs.setdefault("url", server.url("/genres.tar.gz"))
    kwargs.setdefault("md5", GOOD_MD5)
    kwargs.setdefault("progress", False)
    return download_gtzan(to, **kwargs)  # type: ignore[arg-type]


def _assert_dataset(root: Path) -> None:
    expected = _dataset_files()
    found = {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != MARKER_NAME
    }
    assert found == expected
    assert (root / MARKER_NAME).is_file()


def _assert_clean(to: Path) -> None:
    """Nothing is left behind except the lock file."""
    leftovers = sorted(p.name for p in to.iterdir()) if to.exists() else []
    assert leftovers in ([], [download.LOCK_NAME]), leftovers


def test_complete_download_and_unpack(server: _State, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    to = tmp_path / "data"
    result = _fetch(server, to, on_progress=lambda done, total: calls.append((done, total)))
    assert result == to / "genres"
    _assert_dataset(result)
    assert not (to / PART_NAME).exists()
    assert not list(to.glob(download.UNPACK_PREFIX + "*"))
    assert calls[-1] == (len(GOOD), len(GOOD))
    assert server.ranges() == [None]


def test_progress_bar_and_messages(server: _State, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fetch(server, tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "GTZAN" in err and "Verifying checksum" in err and "Unpacked 6 files." in err


def test_defaults_come_from_environment(server: _State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENRE_GTZAN_URL", server.url("/genres.tar.gz"))
    monkeypatch.setenv("GENRE_GTZAN_MD5", GOOD_MD5.upper())
    _assert_dataset(download_gtzan(tmp_path, progress=False))


def test_dropped_connection_is_resumed_with_range(server: _State, tmp_path: Path) -> None:
    cut = len(GOOD) // 3
    server.cut_after = [cut]
    _assert_dataset(_fetch(server, tmp_path))
    assert server.ranges() == [None, f"bytes={cut}-"]


def test_failed_reconnect_after_a_drop_is_retried(server: _State, tmp_path: Path) -> None:
    cut = len(GOOD) // 3
    server.cut_after = [cut]
    server.fail_on = {1: 503}  # The first reconnect fails, the next one works.
    _assert_dataset(_fetch(server, tmp_path))
    assert server.ranges() == [None, f"bytes={cut}-", f"bytes={cut}-"]


def test_partial_file_from_an_earlier_run_is_resumed(server: _State, tmp_path: Path) -> None:
    cut = len(GOOD) // 2
    (tmp_path / PART_NAME).write_bytes(GOOD[:cut])
    _assert_dataset(_fetch(server, tmp_path))
    assert server.ranges() == [f"bytes={cut}-"]
    assert not (tmp_path / PART_NAME).exists()


def test_server_ignoring_range_restarts_cleanly(server: _State, tmp_path: Path) -> None:
    server.ignore_range = True
    (tmp_path / PART_NAME).write_bytes(b"x" * 1000)  # Wrong bytes: must not be kept.
    _assert_dataset(_fetch(server, tmp_path))
    assert server.ranges() == ["bytes=1000-"]


def test_complete_partial_file_is_not_downloaded_again(server: _State, tmp_path: Path) -> None:
    (tmp_path / PART_NAME).write_bytes(GOOD)
    _assert_dataset(_fetch(server, tmp_path))  # Size unknown: the server answers 416.
    assert server.ranges() == [f"bytes={len(GOOD)}-"]

    other = tmp_path / "other"
    other.mkdir()
    (other / PART_NAME).write_bytes(GOOD)
    server.requests.clear()
    _assert_dataset(_fetch(server, other, size=len(GOOD)))  # Size known: no request at all.
    assert server.requests == []


def test_connection_that_keeps_dropping_gives_up(server: _State, tmp_path: Path) -> None:
    server.cut_after = [0] * 10
    with pytest.raises(DownloadError, match="interrupted") as info:
        _fetch(server, tmp_path)
    assert "\n" not in str(info.value)
    assert len(server.requests) == download._RETRIES + 1


def test_checksum_mismatch_is_refused_and_cleaned(server: _State, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="checksum mismatch"):
        _fetch(server, tmp_path, md5="0" * 32)
    assert not (tmp_path / "genres").exists()
    _assert_clean(tmp_path)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "chardev", "fifo"])
def test_unsafe_archive_is_refused(server: _State, tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim.txt"
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        _dir("genres"),
        _dir("genres/blues"),
        _file("genres/blues/blues.00000.wav", b"RIFF fine"),
    ]
    if kind == "dotdot":
        entries.append(_file("genres/../../../victim.txt", b"pwned"))
    elif kind == "absolute":
        entries.append(_file(str(victim), b"pwned"))
    else:
        info = tarfile.TarInfo("genres/blues/evil")
        info.type = {
            "symlink": tarfile.SYMTYPE,
            "hardlink": tarfile.LNKTYPE,
            "chardev": tarfile.CHRTYPE,
            "fifo": tarfile.FIFOTYPE,
        }[kind]
        info.linkname = str(victim) if kind == "symlink" else "genres/blues/blues.00000.wav"
        entries.append((info, None))
        # A later entry that would write through the link if it had been created.
        entries.append(_file("genres/blues/evil", b"pwned"))
    evil = _tar_gz(entries)
    server.files["/evil.tar.gz"] = evil
    to = tmp_path / "data"

    with pytest.raises(DownloadError, match="refusing to unpack") as info_:
        _fetch(server, to, url=server.url("/evil.tar.gz"), md5=hashlib.md5(evil).hexdigest())
    assert "\n" not in str(info_.value)
    assert not victim.exists()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "data",
        f"data/{download.LOCK_NAME}",
    ]


def test_already_present_is_a_no_op(server: _State, tmp_path: Path) -> None:
    first = _fetch(server, tmp_path)
    marker = (first / MARKER_NAME).read_bytes()
    server.requests.clear()
    assert _fetch(server, tmp_path) == first
    assert server.requests == []
    assert (first / MARKER_NAME).read_bytes() == marker


def test_already_present_needs_no_network(tmp_path: Path) -> None:
    dest = tmp_path / "genres"
    dest.mkdir()
    (dest / MARKER_NAME).write_text(f'{{"md5": "{GOOD_MD5}"}}')
    url = f"http://127.0.0.1:{_closed_port()}/genres.tar.gz"  # Any request would fail.
    assert download_gtzan(tmp_path, url=url, md5=GOOD_MD5, progress=False) == dest


def test_existing_folder_without_marker_is_not_touched(server: _State, tmp_path: Path) -> None:
    (tmp_path / "genres").mkdir()
    (tmp_path / "genres" / "mine.txt").write_text("keep")
    with pytest.raises(DownloadError, match="not a complete GTZAN download"):
        _fetch(server, tmp_path)
    assert server.requests == []
    assert (tmp_path / "genres" / "mine.txt").read_text() == "keep"


def test_not_enough_disk_space_is_refused(server: _State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(DownloadError, match="not enough free disk space"):
        _fetch(server, tmp_path, size=len(GOOD))  # Size known: refused before any request.
    assert server.requests == []
    with pytest.raises(DownloadError, match="not enough free disk space"):
        _fetch(server, tmp_path)  # Size from Content-Length: refused before any byte is written.
    assert not (tmp_path / PART_NAME).exists()
    assert not (tmp_path / "genres").exists()


def test_http_error_is_reported_with_status(server: _State, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"HTTP 404") as info:
        _fetch(server, tmp_path, url=server.url("/missing.tar.gz"))
    assert "\n" not in str(info.value)
    assert not (tmp_path / PART_NAME).exists()


def test_no_network_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="cannot reach 127.0.0.1"):
        download_gtzan(tmp_path, url=f"http://127.0.0.1:{_closed_port()}/genres.tar.gz", md5=GOOD_MD5, progress=False)


def test_bad_md5_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="md5"):
        download_gtzan(tmp_path, url=f"http://127.0.0.1:{_closed_port()}/x", md5="abc", progress=False)


def test_a_refused_reconnect_says_to_run_the_same_command_again(server: _State, tmp_path: Path) -> None:
    cut = len(GOOD) // 3
    server.cut_after = [cut]
    server.fail_on = {n: 503 for n in range(1, 10)}  # the server never takes us back
    with pytest.raises(DownloadError, match="run the same command again to resume") as info:
        _fetch(server, tmp_path)
    assert "\n" not in str(info.value)
    assert (tmp_path / PART_NAME).stat().st_size == cut  # kept for the resume
    server.fail_on = {}
    _assert_dataset(_fetch(server, tmp_path))  # ... which works
    assert server.ranges()[-1] == f"bytes={cut}-"


class _Watched:
    """Records the largest size the partial file reached while the download ran."""

    def __init__(self, part: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.largest = 0
        real = download._stream

        def stream(response, part_, have, total, bar, report, limit):
            def watch(done, total_, force=False):
                self.largest = max(self.largest, part.stat().st_size if part.exists() else 0)
                report(done, total_, force)

            return real(response, part_, have, total, bar, watch, limit)

        monkeypatch.setattr(download, "_stream", stream)
        monkeypatch.setattr(download, "_PROGRESS_INTERVAL_S", 0.0)


def test_a_body_without_content_length_stops_at_the_expected_size(
    server: _State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/endless.tar.gz"] = GOOD + random.Random(1).randbytes(3 << 20)
    server.no_length = True
    watched = _Watched(tmp_path / PART_NAME, monkeypatch)
    with pytest.raises(DownloadError, match="the server sent more than the expected archive") as info:
        _fetch(server, tmp_path, url=server.url("/endless.tar.gz"), size=len(GOOD))
    assert "\n" not in str(info.value)
    assert watched.largest <= len(GOOD)
    _assert_clean(tmp_path)


def test_an_archive_of_unknown_size_is_capped(server: _State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "MAX_ARCHIVE_BYTES", 1 << 20)
    server.files["/huge.tar.gz"] = random.Random(2).randbytes(3 << 20)
    server.no_length = True
    watched = _Watched(tmp_path / PART_NAME, monkeypatch)
    with pytest.raises(DownloadError, match="sent more than the expected archive"):
        _fetch(server, tmp_path, url=server.url("/huge.tar.gz"))
    assert watched.largest <= 1 << 20
    _assert_clean(tmp_path)
    # A server that announces too much is refused before anything is written.
    server.no_length = False
    with pytest.raises(DownloadError, match="the server announces 3.0 MiB than"):
        _fetch(server, tmp_path, url=server.url("/huge.tar.gz"))
    assert watched.largest <= 1 << 20
    _assert_clean(tmp_path)


def test_a_decompression_bomb_is_refused_before_unpacking(
    server: _State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "EXPANSION_SLACK", 0)  # a small bomb stands for a big one
    bomb = _tar_gz([_dir("genres"), _dir("genres/blues"), _file("genres/blues/blues.00000.wav", bytes(32 << 20))])
    assert len(bomb) < 100_000  # 32 MiB of zeros compress to almost nothing
    server.files["/bomb.tar.gz"] = bomb
    to = tmp_path / "data"
    with pytest.raises(DownloadError, match="decompression bomb") as info:
        _fetch(server, to, url=server.url("/bomb.tar.gz"), md5=hashlib.md5(bomb).hexdigest())
    assert "\n" not in str(info.value)
    assert not (to / "genres").exists()
    _assert_clean(to)  # nothing unpacked, and the useless archive removed


def test_members_larger_than_the_free_space_are_refused_before_unpacking(
    server: _State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage

    def little_left(path):
        # Room for the download itself, but not for what its entries declare.
        return (
            usage(10**12, 0, 2 * len(GOOD) + int(len(GOOD) * download.UNPACKED_FACTOR))
            if Path(path).is_dir()
            else real(path)
        )

    monkeypatch.setattr(shutil, "disk_usage", little_left)
    monkeypatch.setattr(download, "UNPACKED_FACTOR", 0.0)  # the download's own estimate is fooled
    to = tmp_path / "data"
    big = _tar_gz([_dir("genres"), _dir("genres/blues"), _file("genres/blues/a.wav", bytes(4 * len(GOOD)))])
    server.files["/big.tar.gz"] = big
    with pytest.raises(DownloadError, match="not enough free disk space in .* to unpack"):
        _fetch(server, to, url=server.url("/big.tar.gz"), md5=hashlib.md5(big).hexdigest())
    assert not (to / "genres").exists() and not list(to.glob(download.UNPACK_PREFIX + "*"))


def _sparse_entry(name: str, real_size: int) -> bytes:
    """A GNU sparse member header declaring ``real_size`` bytes with no data stored (Python's
    tarfile cannot write one)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)  # the "realsize" field
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header[:512])
    return bytes(header)


def test_a_sparse_entry_is_refused(server: _State, tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, _data in [_dir("genres"), _dir("genres/blues")]:
            tar.addfile(info, None)
    body = raw.getvalue()[: 2 * 512] + _sparse_entry("genres/blues/blues.00000.wav", 50 * 10**9) + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(body)) as check:
        member = check.getmember("genres/blues/blues.00000.wav")
        assert member.issparse() and member.size == 50 * 10**9
    sparse = gzip.compress(body)
    server.files["/sparse.tar.gz"] = sparse
    to = tmp_path / "data"
    with pytest.raises(
        DownloadError, match="refusing to unpack the archive: entry 'genres/blues/blues.00000.wav' is a sparse file"
    ):
        _fetch(server, to, url=server.url("/sparse.tar.gz"), md5=hashlib.md5(sparse).hexdigest())
    assert not (to / "genres").exists()
    _assert_clean(to)
