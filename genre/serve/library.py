"""Classifying a whole music collection: walk folders, classify every audio file in batches,
keep one result per file so that a second call only classifies what is new, export CSV/JSON.

Results are kept in a cache beside the output (``<out stem>.library.jsonl``), one JSON line
per file, appended and flushed as each file is done: a ``kill -9`` loses at most the line being
written, and the next call re-classifies only files whose path, size, mtime or run differ.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..audio.decode import AUDIO_SUFFIXES, AudioError, decode
from ..audio.windows import cut_windows
from ..errors import GenreError
from ..files import atomic_path, write_text

# A collection also holds iTunes' m4a (AAC), which decodes only through librosa's ffmpeg
# fallback: listed, so that it is classified where ffmpeg is installed (and its MP4 ©gen tag can
# be written), and gets its row with the reason where it is not.
LIBRARY_SUFFIXES = (*AUDIO_SUFFIXES, ".m4a")

# Longer files would need gigabytes of memory at 22,050 Hz float32 (2 h is 635 MB, twice over
# with the windows); a collection's songs are minutes long, so longer files are reported.
MAX_SECONDS = 30 * 60
# Windows classified in one model call: several songs at once (the models are batch-independent).
BATCH_WINDOWS = 64
DECODE_THREADS = 2
CSV_COLUMNS = (
    "path", "duration_s", "genre", "confidence", "top1", "top1_p", "top2", "top2_p", "top3", "top3_p",
    "windows_won", "run", "error",
)  # fmt: skip


class LibraryError(GenreError, ValueError):
    """A library scan that cannot start: no folders, no audio, an output that cannot be written."""


@dataclass
class SongResult:
    """One file's row: its genre, or the reason it could not be classified."""

    path: str
    size: int
    mtime_ns: int
    run: str
    duration_s: float | None = None
    genre: str | None = None
    confidence: float | None = None  # mean probability of the voted genre
    top3: list[tuple[str, float]] = field(default_factory=list)
    windows_won: dict[str, int] = field(default_factory=dict)
    window_genres: list[str] = field(default_factory=list)  # each window's winner, in order
    window_starts: list[float] = field(default_factory=list)
    error: str | None = None

    def key(self) -> tuple:
        return (self.path, self.size, self.mtime_ns, self.run)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["top3"] = [[g, p] for g, p in self.top3]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SongResult:
        d = dict(d)
        d["top3"] = [(g, float(p)) for g, p in d.get("top3", [])]
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def walk(folders: Sequence[str | os.PathLike]) -> list[Path]:
    """Audio files under ``folders`` (recursively, sorted). Linked folders are not entered;
    a linked file counts only if it points inside one of ``folders``."""
    roots = []
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise LibraryError(f"{folder}: no such folder")
        roots.append(path.resolve())
    found: list[Path] = []
    for root in roots:
        for here, dirs, files in os.walk(root, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = Path(here) / name
                if path.suffix.lower() not in LIBRARY_SUFFIXES:
                    continue
                if path.is_symlink():
                    target = path.resolve()
                    if not any(r == target or r in target.parents for r in roots):
                        continue
                if path not in found:
                    found.append(path)
    return found


def cache_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.library.jsonl")


def load_cache(path: Path) -> dict[str, SongResult]:
    """The cached rows by path; a last line cut off by a kill is ignored."""
    rows: dict[str, SongResult] = {}
    if not path.is_file():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = SongResult.from_dict(json.loads(line))
        except (ValueError, TypeError, KeyError):
            continue
        rows[row.path] = row
    return rows


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None


def _duration(path: Path) -> float | None:
    """Duration from the header, without decoding (None where the header does not say)."""
    import soundfile as sf

    try:
        return sf.info(str(path)).duration
    except Exception:  # soundfile raises several unrelated types
        pass
    try:
        import mutagen

        f = mutagen.File(str(path))
        return float(f.info.length) if f is not None else None
    except Exception:
        return None


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode one file and cut its windows; :class:`AudioError` with one line otherwise."""
    if not path.exists():
        raise AudioError(str(path), "the file vanished during the scan")
    if not os.access(path, os.R_OK):
        raise AudioError(str(path), "permission denied")
    seconds = _duration(path)
    if seconds is not None and seconds > MAX_SECONDS:
        raise AudioError(
            str(path), f"too long ({seconds / 60:.0f} min); files up to {MAX_SECONDS // 60} min are classified"
        )
    song = decode(path)
    windows, starts = cut_windows(song)
    return windows, starts, len(song) / SAMPLE_RATE


def _row(path: Path, stat: tuple[int, int], run: str, classifier, probabilities, starts, seconds) -> SongResult:
    result = classifier.summarise(probabilities, starts, seconds)
    genres = result.genres
    mean = result.mean_probability
    winners = probabilities.argmax(axis=1)
    return SongResult(
        path=str(path), size=stat[0], mtime_ns=stat[1], run=run,
        duration_s=round(result.seconds, 3),
        genre=result.vote_genre,
        confidence=float(mean[genres.index(result.vote_genre)]),
        top3=result.ranking()[:3],
        windows_won={g: int(n) for g, n in zip(genres, result.votes) if n},
        window_genres=[genres[int(i)] for i in winners],
        window_starts=[float(s) for s in result.starts],
    )  # fmt: skip


def classify_files(
    classifier,
    paths: Sequence[Path],
    run: str,
    batch_windows: int = BATCH_WINDOWS,
    threads: int = DECODE_THREADS,
) -> Iterator[SongResult]:
    """Classify ``paths`` in order: a thread pool decodes ahead while the model classifies the
    windows of several songs in one call. Yields one row per file, errors included."""
    pending: list[tuple[Path, tuple[int, int], np.ndarray, np.ndarray, float]] = []

    def flush() -> Iterator[SongResult]:
        if not pending:
            return
        probabilities = classifier.predict_windows(np.concatenate([p[2] for p in pending]), batch_size=batch_windows)
        first = 0
        for path, stat, windows, starts, seconds in pending:
            yield _row(path, stat, run, classifier, probabilities[first : first + len(windows)], starts, seconds)
            first += len(windows)
        pending.clear()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        ahead = max(4, 2 * threads)  # decoded songs waiting in memory at most
        futures: list[tuple[Path, tuple[int, int] | None, Future]] = []
        index = 0
        while index < len(paths) or futures:
            while index < len(paths) and len(futures) < ahead:
                path = paths[index]
                futures.append((path, _stat(path), pool.submit(_load, path)))
                index += 1
            path, stat, future = futures.pop(0)
            try:
                windows, starts, seconds = future.result()
            except AudioError as error:
                yield from flush()
                yield SongResult(str(path), *(stat or (0, 0)), run=run, error=error.reason)
                continue
            except OSError as error:
                yield from flush()
                yield SongResult(str(path), *(stat or (0, 0)), run=run, error=error.strerror or str(error))
                continue
            pending.append((path, stat or (0, 0), windows, starts, seconds))
            if sum(len(p[2]) for p in pending) >= batch_windows:
                yield from flush()
        yield from flush()


def scan(
    folders: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    classifier,
    run: str,
    on_progress: Callable[[int, int], None] | None = None,
    progress_bar: bool = False,
    batch_windows: int = BATCH_WINDOWS,
    threads: int = DECODE_THREADS,
    should_stop: Callable[[], bool] | None = None,
) -> ScanResult:
    """Classify every audio file under ``folders`` not already in the cache for ``run`` and
    write ``out`` (``.csv`` or ``.json``, atomically). Returns every file's row, in walk order,
    and how many were classified now."""
    out = Path(out)
    check_output(out)
    paths = walk(folders)
    if not paths:
        raise LibraryError(f"no audio files ({', '.join(LIBRARY_SUFFIXES)}) under {', '.join(map(str, folders))}")
    cache_file = cache_path(out)
    cached = load_cache(cache_file)
    done: dict[str, SongResult] = {}
    todo: list[Path] = []
    for path in paths:
        row = cached.get(str(path))
        stat = _stat(path)
        if row is not None and stat is not None and row.key() == (str(path), *stat, run):
            done[str(path)] = row
        else:
            todo.append(path)
    classified = 0
    if on_progress is not None:
        on_progress(len(done), len(paths))
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), initial=len(done), unit="file", desc="classifying", dynamic_ncols=True)
    try:
        with open(cache_file, "a", encoding="utf-8") as journal:
            for row in classify_files(classifier, todo, run, batch_windows, threads):
                journal.write(json.dumps(row.to_dict()) + "\n")
                journal.flush()  # a kill loses at most this line
                done[row.path] = row
                classified += 1
                if bar is not None:
                    bar.update(1)
                if on_progress is not None:
                    on_progress(len(done), len(paths))
                if should_stop is not None and should_stop():
                    break
    finally:
        if bar is not None:
            bar.close()
    rows = [done[str(p)] for p in paths if str(p) in done]
    write_results(out, rows)
    compact_cache(cache_file, {**cached, **done})
    return ScanResult(rows, classified, len(paths))


@dataclass
class ScanResult:
    rows: list[SongResult]
    classified: int  # files classified by this call (the others came from the cache)
    found: int  # audio files the walk found


def compact_cache(path: Path, rows: dict[str, SongResult]) -> None:
    """Rewrite the cache with one line per file (appends leave superseded lines behind)."""
    write_text(path, "".join(json.dumps(r.to_dict()) + "\n" for r in rows.values()))


def record(out: str | os.PathLike, rows: Iterable[SongResult]) -> None:
    """Put rows (updated after a tag write) into the cache of ``out``."""
    cache_file = cache_path(out)
    compact_cache(cache_file, {**load_cache(cache_file), **{r.path: r for r in rows}})


def check_output(out: Path) -> None:
    if out.suffix.lower() not in (".csv", ".json"):
        raise LibraryError(f"--out {out}: give a .csv or .json file")
    if not out.parent.is_dir():
        raise LibraryError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise LibraryError(f"--out {out} is a folder; give a .csv or .json file")


def to_csv(rows: Iterable[SongResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        top = [x for g, p in r.top3 for x in (g, f"{p:.4f}")] + [""] * (6 - 2 * len(r.top3))
        won = ";".join(f"{g}:{n}" for g, n in sorted(r.windows_won.items(), key=lambda kv: -kv[1]))
        writer.writerow(
            [r.path, "" if r.duration_s is None else f"{r.duration_s:.2f}", r.genre or "",
             "" if r.confidence is None else f"{r.confidence:.4f}", *top, won, r.run, r.error or ""]
        )  # fmt: skip
    return buffer.getvalue()


def to_json(rows: Iterable[SongResult]) -> str:
    keep = [{k: v for k, v in r.to_dict().items() if k not in ("size", "mtime_ns")} for r in rows]
    return json.dumps(keep, indent=1) + "\n"


def write_results(out: Path, rows: Sequence[SongResult]) -> None:
    """Write ``rows`` as CSV or JSON by ``out``'s suffix, atomically."""
    text = to_json(rows) if out.suffix.lower() == ".json" else to_csv(rows)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_results(out: str | os.PathLike) -> list[SongResult]:
    """The rows of a finished scan (from its cache, which keeps sizes and times)."""
    rows = load_cache(cache_path(out))
    return list(rows.values())
