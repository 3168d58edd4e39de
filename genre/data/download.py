"""Download, verify and safely unpack the full GTZAN dataset.

``download_gtzan(to)`` leaves the dataset in ``to/"genres"`` (one sub-folder
per genre) and returns that path.  Layout of ``to`` while it works:

* ``.genres.tar.gz.part`` -- the archive being downloaded.  It is resumed with
  an HTTP Range request after an interruption, and it is deleted once the
  dataset is unpacked.
* ``.genres.unpack-XXXX/`` -- the temporary unpack folder.  It is renamed to
  ``genres/`` only when everything is unpacked and the marker file
  ``.genre-download-complete`` (JSON with the md5) has been written, so a
  ``genres/`` folder with a marker is always complete.
* ``.genres.lock`` -- an empty lock file that stops two downloads (say the
  CLI and the dashboard) from writing the same files at once.

If the archive holds one top-level folder of folders (GTZAN's ``genres/``),
that folder's contents become ``to/"genres"``.  Otherwise the archive's top
level does.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ..errors import GenreError
from ..files import format_bytes, write_json

GTZAN_URL = "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz"
GTZAN_MD5 = "5b3d6dddb579ab49814ab86dba69e7c7"
GTZAN_SIZE = 1_226_192_050

DATASET_DIRNAME = "genres"
MARKER_NAME = ".genre-download-complete"
PART_NAME = ".genres.tar.gz.part"
UNPACK_PREFIX = ".genres.unpack-"
LOCK_NAME = ".genres.lock"
# WAV barely compresses, so the unpacked folder is about as big as the archive.
UNPACKED_FACTOR = 1.1
# Bounds on what one download may write. Audio hardly compresses, so an archive that declares
# more than ten times its own size (plus some slack for tiny archives) is a decompression
# bomb, not a dataset; an archive of unknown size may not exceed MAX_ARCHIVE_BYTES.
MAX_EXPANSION = 10
EXPANSION_SLACK = 64 << 20
MAX_ARCHIVE_BYTES = 4 << 30

ProgressFn = Callable[[int, "int | None"], None]

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
# Retries after the connection drops mid-download. The count resets whenever a
# try makes progress, so a slow but flaky link still gets there.
_RETRIES = 3
_RETRY_DELAY_S = 2.0
_PROGRESS_INTERVAL_S = 0.5
_USER_AGENT = "genre-downloader/1 (python urllib)"


class DownloadError(GenreError):
    """A download failure, with a message meant to be shown to users as-is."""

    def __init__(self, message: str) -> None:
        # The CLI prints str(error) as one line, so collapse any newlines here.
        super().__init__(" ".join(str(message).split()))


class _BadArchive(DownloadError):
    """The archive itself is unusable: there is no point in keeping it."""


class _RangeNotSatisfiable(GenreError):
    def __init__(self, total: int | None) -> None:
        super().__init__(total)
        self.total = total


def default_download_dir() -> Path:
    """Where the GTZAN download goes unless told otherwise: the user data folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("genre")) / "gtzan"


def download_gtzan(
    to: Path,
    url: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Download GTZAN into ``to`` and return the dataset folder ``to/"genres"``.

    ``url`` and ``md5`` default to the environment variables ``GENRE_GTZAN_URL``
    and ``GENRE_GTZAN_MD5``, then to ``GTZAN_URL`` and ``GTZAN_MD5``.  ``size``
    (archive bytes) defaults to ``GTZAN_SIZE`` only for the default URL.
    Otherwise the size comes from the server's Content-Length.  ``progress``
    shows tqdm bars and status lines on stderr.  ``on_progress(done, total)``
    receives the downloaded byte count at most every 0.5 s, plus once at the
    end.  An exception raised by the callback aborts the download and keeps the
    partial file.  Every failure raises ``DownloadError`` with a one-line
    message.  A complete dataset already in place is left untouched.
    """
    to = Path(to).expanduser()
    url = url or os.environ.get("GENRE_GTZAN_URL") or GTZAN_URL
    md5 = (md5 or os.environ.get("GENRE_GTZAN_MD5") or GTZAN_MD5).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise DownloadError(f"not an md5 checksum (32 hex digits): {md5!r}")
    if urlsplit(url).scheme not in ("http", "https", "file"):
        raise DownloadError(f"unsupported URL (need http, https or file): {url}")
    if size is None and (url == GTZAN_URL or md5 == GTZAN_MD5):
        size = GTZAN_SIZE  # GTZAN's archive, from whichever mirror

    dest = to / DATASET_DIRNAME
    if _is_complete(dest, md5):
        _say(progress, f"GTZAN is already present in {dest}; nothing to do.")
        return dest
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {to}: {e.strerror or e}") from e

    with _lock(to):
        # Another process may have finished while this one waited for the lock.
        if _is_complete(dest, md5):
            _say(progress, f"GTZAN is already present in {dest}; nothing to do.")
            return dest
        _remove_stale_unpack_dirs(to)
        part = to / PART_NAME
        _fetch(url, part, size, progress, on_progress)
        _verify(part, md5, progress)
        try:
            files = _unpack(part, dest, {"md5": md5, "url": url}, progress)
        except _BadArchive:
            # The archive passed its checksum but cannot be used, so downloading
            # it again would not help. Keeping it would only waste disk space.
            part.unlink(missing_ok=True)
            raise
        part.unlink(missing_ok=True)
    _say(progress, f"Unpacked {files} files.")
    return dest


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)


def _is_complete(dest: Path, md5: str) -> bool:
    """True if ``dest`` is a finished download of this md5.

    Raises if ``dest`` holds something else, because that is not ours to replace.
    """
    if not dest.exists():
        return False
    marker = dest / MARKER_NAME
    if not marker.is_file():
        raise DownloadError(
            f"{dest} exists but is not a complete GTZAN download (no {MARKER_NAME});"
            " move it away or choose another folder"
        )
    try:
        found = json.loads(marker.read_text(encoding="utf-8")).get("md5")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != md5:
        raise DownloadError(
            f"{dest} holds a different download (md5 {found}, expected {md5}); move it away or choose another folder"
        )
    return True


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows has no flock. Run without the guard there.
        yield
        return
    try:
        handle = open(folder / LOCK_NAME, "a")
    except OSError as e:
        raise DownloadError(f"cannot write to {folder}: {e.strerror or e}") from e
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise DownloadError(f"another download into {folder} is already running") from e
        except OSError:
            pass  # Some network file systems cannot lock at all. Run without the guard there.
        yield  # The lock is released when the handle closes.


def _remove_stale_unpack_dirs(folder: Path) -> None:
    # These are left behind only by a killed run. The lock is held, so none is in use.
    for stale in folder.glob(UNPACK_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)


def _check_space(folder: Path, total: int, have: int) -> None:
    unpacked = int(total * UNPACKED_FACTOR)
    need = (total - have) + unpacked
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DownloadError(
            f"not enough free disk space in {folder}: need about {format_bytes(need)}"
            f" ({format_bytes(total - have)} still to download + ~{format_bytes(unpacked)} unpacked),"
            f" only {format_bytes(free)} free"
        )


class _Throttle:
    """Calls ``on_progress`` at most once per interval so a UI is not flooded."""

    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn = fn
        self.last = float("-inf")

    def __call__(self, done: int, total: int | None, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_INTERVAL_S:
            self.last = now
            self.fn(done, total)


def _open(url: str, have: int) -> Any:
    """Start a GET request, resuming from byte ``have``, and return the response."""
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        content_range = e.headers.get("Content-Range") if e.headers else None
        e.close()
        if e.code == 416 and have:
            raise _RangeNotSatisfiable(_parse_content_range(content_range)[2]) from e
        raise DownloadError(f"download failed: HTTP {e.code} {e.reason} from {url}") from e
    except urllib.error.URLError as e:
        host = urlsplit(url).hostname or url
        raise DownloadError(f"cannot reach {host}: {e.reason}; check the network or the URL") from e
    except (OSError, http.client.HTTPException) as e:
        host = urlsplit(url).hostname or url
        raise DownloadError(f"cannot reach {host}: {e}; check the network or the URL") from e


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``"bytes 5-9/10"`` -> (5, 9, 10), ``"bytes */10"`` -> (None, None, 10)."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None, None
    start, end, total = match.groups()
    return (
        int(start) if start else None,
        int(end) if end else None,
        int(total) if total and total != "*" else None,
    )


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


def _fetch(url: str, part: Path, size: int | None, progress: bool, on_progress: ProgressFn | None) -> None:
    """Bring ``part`` to the full archive, resuming it and retrying dropped connections. It
    never grows past ``size`` (or MAX_ARCHIVE_BYTES when the size is unknown), whatever the
    server announces or sends."""
    limit = size if size is not None else MAX_ARCHIVE_BYTES
    have = part.stat().st_size if part.exists() else 0
    if size is not None:
        if have > size:  # Not a prefix of the expected archive.
            part.unlink()
            have = 0
        _check_space(part.parent, size, have)
        if have == size:  # Finished before, e.g. unpacking was interrupted. The md5 check decides.
            if on_progress:
                on_progress(have, size)
            return

    report = _Throttle(on_progress)
    bar = None
    failures = 0
    received = False  # whether this call got any bytes, i.e. the network did work
    try:
        while True:
            try:
                response = _open(url, have)
            except _RangeNotSatisfiable as e:
                if e.total is None or e.total == have:
                    report(have, have, force=True)
                    return  # The partial file is already whole. The md5 check decides.
                part.unlink(missing_ok=True)  # Longer than the remote file: it is garbage.
                have = 0
                continue
            except DownloadError as e:
                # Before any byte arrived a connection failure means "no network": fail fast.
                # After the link dropped mid-download, a reconnect may need a few tries.
                failures += 1
                if not received:
                    raise
                if failures > _RETRIES:
                    raise DownloadError(
                        f"{e}; {format_bytes(have)} are kept: run the same command again to resume"
                    ) from e
                time.sleep(_RETRY_DELAY_S * failures)
                continue

            with response:
                status = getattr(response, "status", None) or 200
                length = _content_length(response)
                if status == 206:
                    start, _, total = _parse_content_range(response.headers.get("Content-Range"))
                    if start != have:
                        # This body cannot be spliced on. Start over without Range.
                        part.unlink(missing_ok=True)
                        have = 0
                        continue
                    if total is None and length is not None:
                        total = have + length
                else:
                    # The server ignored Range (or this is a fresh start): the body is the
                    # whole file, so the partial file has to be rewritten from zero.
                    have = 0
                    total = length
                if total is None:
                    total = size
                if total is not None and total > limit:
                    part.unlink(missing_ok=True)
                    raise _too_big(f"the server announces {format_bytes(total)}", limit)
                if total is not None:
                    _check_space(part.parent, total, have)

                if progress and bar is None:
                    bar = _make_bar(total, have, "GTZAN")
                elif bar is not None and (bar.n != have or bar.total != total):
                    bar.reset(total=total)
                    bar.update(have)
                report(have, total, force=True)

                before = have
                have, error = _stream(response, part, have, total, bar, report, limit)

            if error is None and (total is None or have >= total):
                report(have, total, force=True)
                return
            received = received or have > before
            failures = 0 if have > before else failures + 1
            if failures > _RETRIES:
                reason = error or "connection closed early"
                raise DownloadError(
                    f"download interrupted after {format_bytes(have)} of {format_bytes(total)} ({reason});"
                    " run the same command again to resume"
                )
            time.sleep(_RETRY_DELAY_S * max(failures, 1))
    finally:
        if bar is not None:
            bar.close()


def _stream(
    response: BinaryIO,
    part: Path,
    have: int,
    total: int | None,
    bar: Any,
    report: _Throttle,
    limit: int,
) -> tuple[int, str | None]:
    """Append the response body to ``part``, never past ``limit`` bytes. Return the new size
    and the read error, if any."""
    try:
        handle = open(part, "ab" if have else "wb")
    except OSError as e:
        raise DownloadError(f"cannot write {part}: {e.strerror or e}") from e
    with handle:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as e:
                return have, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if not chunk:
                return have, None
            if have + len(chunk) > limit:
                handle.close()
                part.unlink(missing_ok=True)
                raise _too_big("the server sent more", limit)
            try:
                handle.write(chunk)
            except OSError as e:
                raise DownloadError(f"cannot write {part}: {e.strerror or e}") from e
            have += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            report(have, total)


def _too_big(what: str, limit: int) -> DownloadError:
    return DownloadError(
        f"{what} than the expected archive ({format_bytes(limit)}); the download was removed;"
        " check the URL (and pass the mirror's md5 if its archive differs)"
    )


def _make_bar(total: int | None, initial: int, desc: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # The bar is nice to have, not a reason to fail.
        return None
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
    )


def _verify(part: Path, md5: str, progress: bool) -> None:
    """Compare the md5 of the complete download and delete it if the check fails."""
    _say(progress, "Verifying checksum...")
    try:
        with open(part, "rb") as handle:
            found = hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
    except OSError as e:
        raise DownloadError(f"cannot read {part}: {e.strerror or e}") from e
    if found != md5:
        # A complete file with the wrong checksum cannot be repaired by resuming it.
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch: expected md5 {md5}, got {found};"
            " the download was removed; run again, and check the URL and md5 if it repeats"
        )


def _unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why a member must not be unpacked, or None if it is safe."""
    name = member.name
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in path.parts:
        return "escapes the target folder"
    if member.issym() or member.islnk():
        return "is a link"
    if member.isdev():
        return "is a device file"
    if member.issparse():
        return "is a sparse file"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or folder"
    return None


def _unpack(archive: Path, dest: Path, marker: dict[str, str], progress: bool) -> int:
    """Unpack ``archive`` and move the result to ``dest``. Return the number of files.

    Everything goes into a temporary folder next to ``dest``. That folder is renamed
    only after the last file and the marker are written, so an interruption never
    leaves a ``dest`` that looks complete.
    """
    _check_members(archive, dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=UNPACK_PREFIX, dir=dest.parent))
    try:
        files = _extract_safely(archive, tmp, progress)
        root = _dataset_root(tmp)
        write_json(root / MARKER_NAME, {**marker, "files": files})
        os.rename(root, dest)
        return files
    except OSError as e:
        raise DownloadError(f"cannot unpack into {dest.parent}: {e.strerror or e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_members(archive: Path, folder: Path) -> None:
    """Read the archive's table of contents before anything is written: refuse an unsafe
    entry, and a declared total that exceeds the free space or what this archive's size can
    honestly unpack to (a decompression bomb)."""
    declared = 0
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                _refuse_unsafe(member)
                declared += max(0, member.size)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        raise _BadArchive(f"the archive is corrupt ({e}); it was removed") from e
    bound = archive.stat().st_size * MAX_EXPANSION + EXPANSION_SLACK
    if declared > bound:
        raise _BadArchive(
            f"refusing to unpack the archive: its entries declare {format_bytes(declared)} from a"
            f" {format_bytes(archive.stat().st_size)} archive (a decompression bomb); the archive was removed"
        )
    free = shutil.disk_usage(folder).free
    if declared > free:
        raise DownloadError(
            f"not enough free disk space in {folder} to unpack: need {format_bytes(declared)},"
            f" only {format_bytes(free)} free; free some space and run the same command again"
        )


def _refuse_unsafe(member: tarfile.TarInfo) -> None:
    reason = _unsafe_reason(member)
    if reason:
        raise _BadArchive(f"refusing to unpack the archive: entry {member.name!r} {reason}; the archive was removed")


def _extract_safely(archive: Path, target: Path, progress: bool) -> int:
    # One pass: each member is checked before it is extracted, and a refusal
    # throws away the whole temporary folder. That avoids decompressing 1.2 GB twice.
    use_filter = hasattr(tarfile, "data_filter")  # Python >= 3.11.4 / 3.12
    files = 0
    bar = None
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            if progress:
                bar = _make_bar(archive.stat().st_size, 0, "unpacking")
            for member in tar:
                _refuse_unsafe(member)
                if use_filter:
                    tar.extract(member, target, filter="data")
                else:
                    tar.extract(member, target)
                files += member.isfile()
                if bar is not None:
                    bar.update(raw.tell() - bar.n)
    except tarfile.FilterError as e:
        raise _BadArchive(f"refusing to unpack the archive: {e}; the archive was removed") from e
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _BadArchive(f"the archive is corrupt ({e}); it was removed") from e
    finally:
        if bar is not None:
            bar.close()
    if files == 0:
        raise _BadArchive("the archive contains no files; it was removed")
    return files


def _dataset_root(tmp: Path) -> Path:
    """Use the contents of a single wrapper folder of folders (``genres/``) as the dataset root."""
    entries = list(tmp.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and any(p.is_dir() for p in entries[0].iterdir()):
        return entries[0]
    return tmp
