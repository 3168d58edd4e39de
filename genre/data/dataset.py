"""Datasets in the GTZAN layout and their decoded-song cache.

A dataset is a folder ``<root>/<genre>/<audio files>``: genre = folder name, track id =
``<genre>/<file stem>``. Every track is decoded once into a memory-mapped cache (one float32
file of all songs end to end plus an index), so that reloading all of GTZAN takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE, __version__
from ..audio.decode import AUDIO_SUFFIXES, AudioError, decode
from ..errors import GenreError
from ..files import naming, read_json, write_json

log = logging.getLogger(__name__)

CACHE_ENV = "GENRE_CACHE_DIR"
DATA_ENV = "GENRE_DATA"


class DatasetError(GenreError, ValueError):
    """A dataset folder that cannot be used, with the reason."""


@dataclass(frozen=True)
class Track:
    """One audio file of a dataset."""

    track_id: str
    genre: str
    path: Path
    size: int
    mtime_ns: int


def scan(root: str | os.PathLike) -> list[Track]:
    """List the audio files of a dataset folder, sorted by track id.

    Raises :class:`DatasetError` when the folder is missing, has no genre subfolders holding
    audio, or fewer than two genres.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    tracks = []
    for genre_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(genre_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith("."):
                stat = path.stat()
                tracks.append(
                    Track(f"{genre_dir.name}/{path.stem}", genre_dir.name, path, stat.st_size, stat.st_mtime_ns)
                )
    genres = sorted({t.genre for t in tracks})
    if not tracks:
        raise DatasetError(
            f"{root} has no genre subfolders with audio files ({', '.join(AUDIO_SUFFIXES)}); "
            "expected <root>/<genre>/<files>"
        )
    if len(genres) < 2:
        raise DatasetError(f"{root} has only one genre ({genres[0]}); at least two are needed")
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise DatasetError(f"{root} has several files per track id (same name, other extension): {dupes[:3]}")
    return tracks


def track_path(root: str | os.PathLike, track_id: str) -> Path | None:
    """The audio file ``<root>/<genre>/<stem>.<ext>`` of a track id, if it exists."""
    if "/" not in track_id or ".." in track_id:
        return None
    genre, stem = track_id.split("/", 1)
    for suffix in AUDIO_SUFFIXES:
        path = Path(root) / genre / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def default_cache_root() -> Path:
    """Where caches live: ``$GENRE_CACHE_DIR``, else the user cache folder (outside the repo)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("genre"))


def cache_key(root: Path, tracks: list[Track], sample_rate: int) -> str:
    """A key that changes whenever the root, the rate or any file's size or mtime changes."""
    payload = json.dumps(
        [str(root.resolve()), sample_rate, [(t.track_id, t.path.name, t.size, t.mtime_ns) for t in tracks]]
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class Songs:
    """A dataset's decoded songs, wherever they are kept: what training, evaluation and the
    features read. Attributes: ``track_ids`` (``<genre>/<stem>``, sorted), ``genres`` (sorted
    genre names), ``labels`` (genre index per track), ``lengths`` (samples per track),
    ``failed`` (track id -> reason for tracks that did not decode), ``root`` (the dataset
    folder), ``folder`` (where data derived from them is kept beside); ``song(i)`` decodes one."""

    genres: list[str]
    track_ids: list[str]
    root: Path
    folder: Path

    def _index_tracks(self) -> None:
        """Labels and positions, from ``genres`` and ``track_ids`` (a track id names its genre)."""
        self.labels = np.asarray([self.genres.index(t.split("/")[0]) for t in self.track_ids], dtype=np.int64)
        self._position = {t: i for i, t in enumerate(self.track_ids)}

    def __len__(self) -> int:
        return len(self.track_ids)

    def index_of(self, track_id: str) -> int:
        return self._position[track_id]

    def song(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def path_of(self, track_id: str) -> Path | None:
        """The audio file of a track, if it is still on this machine."""
        return track_path(self.root, track_id)


class SongCache(Songs):
    """Decoded songs of a dataset, memory-mapped (see :class:`Songs`)."""

    def __init__(self, folder: Path):
        index = read_json(folder / "index.json")
        if index is None:
            raise DatasetError(f"incomplete cache at {folder}")
        self.folder = folder
        self.root = Path(index["root"])
        self.sample_rate = int(index["sample_rate"])
        self.genres: list[str] = index["genres"]
        self.track_ids: list[str] = index["track_ids"]
        self._index_tracks()
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)
        self.lengths = np.asarray(index["lengths"], dtype=np.int64)
        self.failed: dict[str, str] = index["failed"]
        # Songs lie in the file in decoding-completion order, not in track-id order.
        total = int((self.offsets + self.lengths).max()) if self.track_ids else 0
        self.audio = np.memmap(folder / "audio.f32", dtype=np.float32, mode="r", shape=(total,))

    def song(self, i: int) -> np.ndarray:
        """The decoded song ``i`` (a read-only memory-mapped view)."""
        start = self.offsets[i]
        return self.audio[start : start + self.lengths[i]]


def is_cached(
    root: str | os.PathLike, cache_root: str | os.PathLike | None = None, sample_rate: int = SAMPLE_RATE
) -> bool:
    """Whether ``root`` as it is now is already decoded in the cache (a scan; nothing is
    decoded). A folder that cannot be scanned is not."""
    root = Path(root).expanduser()
    try:
        tracks = scan(root)
    except DatasetError:
        return False
    return (Path(cache_root or default_cache_root()) / cache_key(root, tracks, sample_rate) / "index.json").exists()


def load_dataset(
    root: str | os.PathLike,
    cache_root: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
    workers: int | None = None,
    progress: bool = True,
) -> SongCache:
    """Scan ``root`` and return its decoded songs, building the cache on first use.

    Tracks that fail to decode are logged, listed in ``SongCache.failed`` and skipped.
    """
    root = Path(root).expanduser()
    tracks = scan(root)
    folder = Path(cache_root or default_cache_root()) / cache_key(root, tracks, sample_rate)
    if not (folder / "index.json").exists():
        _build(folder, root, tracks, sample_rate, workers, progress)
    cache = SongCache(folder)
    if not cache.track_ids:
        raise DatasetError(f"no track of {root} could be decoded")
    return cache


def _decode_track(path: str, track_id: str, sample_rate: int) -> np.ndarray:
    return decode(path, name=track_id, sample_rate=sample_rate)


def _build(
    folder: Path, root: Path, tracks: list[Track], sample_rate: int, workers: int | None, progress: bool
) -> None:
    """Decode every track into a private folder, then rename it into place: a reader never sees
    half a cache, and of two processes building the same one, the first to finish wins."""
    from tqdm import tqdm

    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    started = time.perf_counter()
    decoded: dict[str, tuple[int, int]] = {}
    failed: dict[str, str] = {}
    offset = 0
    workers = workers or max(1, min(len(tracks), os.cpu_count() or 1))
    try:
        with (
            naming(folder / "audio.f32", building / "audio.f32"),
            open(building / "audio.f32", "wb") as out,
            ProcessPoolExecutor(max_workers=workers) as pool,
        ):
            futures = {pool.submit(_decode_track, str(t.path), t.track_id, sample_rate): t for t in tracks}
            bar = tqdm(as_completed(futures), total=len(futures), desc="decoding", unit="song", disable=not progress)
            # Songs are appended in completion order; the index records where each landed.
            for future in bar:
                track = futures[future]
                try:
                    song = future.result()
                except AudioError as error:
                    failed[track.track_id] = error.reason
                    log.warning("skipping %s", error)
                    continue
                out.write(song.tobytes())
                decoded[track.track_id] = (offset, song.size)
                offset += song.size
        ids = sorted(decoded)
        write_json(
            building / "index.json",
            {
                "root": str(root.resolve()),
                "sample_rate": sample_rate,
                "genres": sorted({t.genre for t in tracks}),
                "track_ids": ids,
                "offsets": [decoded[t][0] for t in ids],
                "lengths": [decoded[t][1] for t in ids],
                "failed": failed,
                "built_seconds": round(time.perf_counter() - started, 2),
                "genre_version": __version__,
            },
        )
        if folder.exists() and not (folder / "index.json").exists():
            shutil.rmtree(folder)  # the remains of an older, unfinished layout
        try:
            building.rename(folder)
        except OSError:
            if not (folder / "index.json").exists():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    if failed:
        log.warning("%d of %d tracks could not be decoded and were skipped", len(failed), len(tracks))
