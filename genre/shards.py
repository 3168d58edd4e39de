"""TFRecord shards of a dataset's decoded songs, for data beyond memory.

``write_shards`` decodes a dataset once (through the song cache) and writes one
``tf.train.Example`` per song: ``audio`` (16-bit PCM, little-endian bytes), ``label`` (the
genre's index), ``track_id`` (bytes) and ``starts`` (the song's window starts, as
``genre.windows.window_starts`` places them); a cross-validation set also holds ``fold`` (the
fold, counted from 1, in which the song is a test song). A plain split gets one set of shards
per part (``train-00000-of-00003.tfrecord``, ``valid-...``, ``test-...``), cross-validation one
set (``all-...``). ``shards.json`` names the genres, the split manifest exactly as
``genre.splits`` makes it, and every shard file with its songs, windows, size and sha256.

``shard_dataset`` reads a part back as ``tf.data`` batches with no Python in the loop:
``list_files`` -> file sharding across workers -> parallel ``interleave`` -> parse -> windows
cut in the graph -> shuffle -> batch -> prefetch. Its windows are the ones ``WindowSet`` cuts
from the cache, sample for sample.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import SAMPLE_RATE, WINDOW, __version__
from .errors import GenreError
from .files import atomic_path, read_json, write_json
from .splits import PARTS, audit, fold_parts, make_split
from .windows import window_starts

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

MANIFEST = "shards.json"
FORMAT = 1
SONGS_PER_SHARD = 100  # about 130 MB of 30 s songs: TensorFlow's advice is 100-200 MB a file
CV_PART = "all"
# soundfile reads 16-bit PCM as int / 32768, so a 16-bit source round-trips bit for bit; other
# sources lose at most half a step of 1/32768.
PCM_SCALE = 32768.0
_SHARD_NAME = re.compile(r"^(train|valid|test|all)-\d{5}-of-\d{5}\.tfrecord$")


class ShardError(GenreError, ValueError):
    """Shards that cannot be written or read as asked; the message says why."""


def shard_name(part: str, index: int, count: int) -> str:
    return f"{part}-{index:05d}-of-{count:05d}.tfrecord"


def to_pcm16(song: np.ndarray) -> np.ndarray:
    """A float song in [-1, 1] as int16 PCM, clipped to the int16 range."""
    return np.clip(np.round(np.asarray(song, dtype=np.float64) * PCM_SCALE), -32768, 32767).astype("<i2")


def write_shards(
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    protocol: str = "stratified",
    seed: int = 1,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    folds: int = 5,
    songs_per_shard: int = SONGS_PER_SHARD,
    progress: bool = True,
) -> tuple[dict, bool]:
    """Write the shards of ``data_root`` split by ``protocol`` into ``out``.

    Returns ``(manifest, written)``: ``written`` is False when ``out`` already held these very
    shards (same dataset, genres, split and shard size), which are then left as they are.
    Raises :class:`ShardError` for an ``out`` that holds other shards.
    """
    import tensorflow as tf
    from tqdm import tqdm

    from .dataset import load_dataset

    if songs_per_shard < 1:
        raise ShardError(f"the songs per shard must be at least 1, not {songs_per_shard}")
    out = Path(out).expanduser()
    existing = _existing(out)  # before decoding: a refused folder should cost nothing
    cache = load_dataset(data_root, progress=progress)
    split = make_split(
        protocol, cache.track_ids, cache.labels, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed, folds=folds
    )
    audit(split)
    identity = {
        "format": FORMAT,
        "dataset_key": cache.folder.name,
        "sample_rate": cache.sample_rate,
        "window": WINDOW,
        "songs_per_shard": songs_per_shard,
        "genres": cache.genres,
        "split": split,
    }
    if existing is not None:
        differs = [key for key, value in identity.items() if existing.get(key) != value]
        if differs:
            raise ShardError(f"{out} already holds other shards (not the same {', '.join(_WORDS.get(k, k) for k in differs)}); pick another --out or empty it")
        if all((out / s["file"]).is_file() and (out / s["file"]).stat().st_size == s["bytes"] for s in _all_shards(existing)):
            return existing, False

    fold_of = {}
    if "folds" in split:
        fold_of = {t: number for number, part in enumerate(split["folds"], 1) for t in part["test"]}
        plan = {CV_PART: sorted(fold_of)}
    else:
        plan = {part: list(split[part]) for part in PARTS}
    shards: dict[str, list[dict]] = {}
    bar = tqdm(total=sum(len(songs) for songs in plan.values()), desc="sharding", unit="song", disable=not progress)
    for part, songs in plan.items():
        groups = [songs[i : i + songs_per_shard] for i in range(0, len(songs), songs_per_shard)]
        shards[part] = []
        for index, group in enumerate(groups):
            path = out / shard_name(part, index, len(groups))
            counts = []
            with atomic_path(path) as tmp:
                with tf.io.TFRecordWriter(str(tmp)) as writer:
                    for track_id in group:
                        i = cache.index_of(track_id)
                        song = cache.song(i)
                        starts = window_starts(len(song))
                        counts.append(len(starts))
                        writer.write(_example(song, int(cache.labels[i]), track_id, starts, fold_of.get(track_id)))
                        bar.update()
                digest = _sha256(tmp)
                size = tmp.stat().st_size
            shards[part].append(
                {"file": path.name, "songs": group, "song_windows": counts, "windows": int(sum(counts)), "bytes": size, "sha256": digest}
            )
    bar.close()
    if "folds" not in split:
        # The shards' own audit: every song in a train file is a training song.
        audit(split, [t for s in shards["train"] for t in s["songs"]])
    manifest = identity | {"data_root": str(cache.root), "genre_version": __version__, "shards": shards}
    write_json(out / MANIFEST, manifest)
    return manifest, True


_WORDS = {
    "format": "format",
    "dataset_key": "dataset (folder or files)",
    "sample_rate": "sample rate",
    "window": "window",
    "songs_per_shard": "songs per shard",
    "genres": "genres",
    "split": "split",
}


def _existing(out: Path) -> dict | None:
    """The manifest of the shards ``out`` holds, or None for a folder without shards; a folder
    with shard files but no manifest (an interrupted ``shard``, or someone else's) is refused."""
    manifest = read_json(out / MANIFEST)
    if manifest is not None:
        return manifest
    if out.is_dir() and any(_SHARD_NAME.match(p.name) for p in out.iterdir()):
        raise ShardError(f"{out} holds shard files but no {MANIFEST} (an interrupted shard?); empty it or pick another --out")
    return None


def _all_shards(manifest: dict) -> list[dict]:
    return [s for part in manifest["shards"].values() for s in part]


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _example(song: np.ndarray, label: int, track_id: str, starts: np.ndarray, fold: int | None) -> bytes:
    import tensorflow as tf

    feature = {
        "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[to_pcm16(song).tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "track_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[track_id.encode()])),
        "starts": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(s) for s in starts])),
    }
    if fold is not None:
        feature["fold"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[fold]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def read_manifest(folder: str | os.PathLike) -> dict:
    """The ``shards.json`` of a shard folder; :class:`ShardError` when there is none."""
    manifest = read_json(Path(folder) / MANIFEST)
    if manifest is None:
        raise ShardError(f"{folder} holds no shards (no {MANIFEST}); make them with: python -m genre shard DATA --out {folder}")
    return manifest


def part_songs(manifest: dict, part: str, fold: int | None = None) -> list[str]:
    """The track ids of ``part`` (``train``, ``valid``, ``test``; with ``fold``, counted from 1,
    that fold's part of a cross-validation split), as the split manifest lists them."""
    split = manifest["split"]
    if part not in PARTS:
        raise ShardError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    if "folds" in split:
        if fold is None or not 1 <= fold <= len(split["folds"]):
            raise ShardError(f"these shards hold a {len(split['folds'])}-fold cross-validation split: pass fold=1..{len(split['folds'])}")
        return fold_parts(split)[fold - 1][part]
    if fold is not None:
        raise ShardError(f"these shards hold a {split['protocol']} split, which has no folds")
    return split[part]


def shard_dataset(
    folder: str | os.PathLike,
    part: str,
    n_genres: int,
    batch_size: int,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 1,
    worker_index: int = 0,
    num_workers: int = 1,
    fold: int | None = None,
    shuffle_buffer: int = 512,
    with_track_ids: bool = False,
) -> "tf.data.Dataset":
    """The windows of ``part`` read from the shards in ``folder``, as a ``tf.data.Dataset`` of
    ``(windows (B, WINDOW, 1) float32, one-hot labels)`` batches (``with_track_ids``: and each
    window's track id), this worker's share only: worker ``worker_index`` of ``num_workers``
    reads every ``num_workers``-th shard file of the part. A cross-validation set needs
    ``fold`` (counted from 1, as the run's ``fold-K`` folders are).

    ``augment=True`` is refused: ``WindowSet``'s augmentation (random offsets, then colour)
    draws from a NumPy generator, which the graph cannot reproduce. ``shuffle_buffer`` counts
    windows (each holds 264 KB as float32).
    """
    import tensorflow as tf

    if augment:
        raise ShardError("sharded input does not augment yet: WindowSet's augmentation draws from NumPy and cannot be reproduced in the graph")
    if not 0 <= worker_index < num_workers:
        raise ShardError(f"worker {worker_index} of {num_workers} does not exist")
    folder = Path(folder)
    manifest = read_manifest(folder)
    if n_genres != len(manifest["genres"]):
        raise ShardError(f"the shards hold {len(manifest['genres'])} genres, not {n_genres}")
    wanted = part_songs(manifest, part, fold)
    if not wanted:
        raise ShardError(f"the {part} part{f' of fold {fold}' if fold else ''} holds no songs")
    cv = "folds" in manifest["split"]
    stored = CV_PART if cv else part
    listed = manifest["shards"].get(stored, [])
    names = sorted(s["file"] for s in listed)
    pattern = str(folder / f"{stored}-*-of-*.tfrecord")
    found = sorted(Path(p).name for p in tf.io.gfile.glob(pattern))
    if found != names:
        raise ShardError(f"{folder}'s {stored} shard files are not the ones {MANIFEST} lists ({len(found)} found, {len(names)} listed)")
    if part == "train" and not cv:
        audit(manifest["split"], [t for s in listed for t in s["songs"]])
    if len(names) < num_workers:
        raise ShardError(f"{len(names)} {stored} shard file(s) cannot be shared among {num_workers} workers; shard again with fewer --songs-per-shard")

    # Files are dealt out before anything is read: each worker opens only its own.
    files = tf.data.Dataset.list_files(pattern, shuffle=False).shard(num_workers, worker_index)
    mine = [Path(p.decode()).name for p in files.as_numpy_iterator()]
    by_name = {s["file"]: s for s in listed}
    keep = set(wanted)
    windows = sum(n for name in mine for t, n in zip(by_name[name]["songs"], by_name[name]["song_windows"]) if t in keep)
    records = files.interleave(
        tf.data.TFRecordDataset, cycle_length=max(1, min(len(mine), 4)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    spec = {
        "audio": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "track_id": tf.io.FixedLenFeature([], tf.string),
        "starts": tf.io.VarLenFeature(tf.int64),
    }
    songs = records.map(lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
    if cv:
        # A fold's train and valid parts are not one fold field's values: valid is carved per fold.
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(sorted(keep)), tf.ones(len(keep), tf.int64)), default_value=0
        )
        songs = songs.filter(lambda s: table.lookup(s["track_id"]) > 0)

    eye = tf.eye(n_genres, dtype=tf.float32)

    def cut(s):
        pcm = tf.io.decode_raw(s["audio"], tf.int16, little_endian=True)
        song = tf.cast(pcm, tf.float32) / PCM_SCALE
        starts = tf.sparse.to_dense(s["starts"])
        # Zeros past the end: the last window may run over it (genre.windows.cut_window).
        padded = tf.concat([song, tf.zeros([WINDOW], tf.float32)], 0)
        rows = tf.gather(padded, starts[:, None] + tf.range(WINDOW, dtype=tf.int64)[None, :])
        count = tf.shape(starts)[0]
        labels = tf.repeat(eye[s["label"]][None, :], count, axis=0)
        ids = tf.repeat(s["track_id"][None], count)
        return rows[..., None], labels, ids

    data = songs.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    if shuffle:
        data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if not with_track_ids:
        data = data.map(lambda x, y, t: (x, y))
    data = data.batch(batch_size)
    # A known length lets Keras show progress.
    return data.apply(tf.data.experimental.assert_cardinality(-(-windows // batch_size))).prefetch(tf.data.AUTOTUNE)
