"""TFRecord shards of a dataset's decoded songs, for data beyond memory.

``write_shards`` decodes a dataset once (through the song cache) and writes one
``tf.train.Example`` per song: ``audio`` (16-bit PCM, little-endian bytes), ``label`` (the
genre's index), ``track_id`` (bytes) and ``starts`` (the song's window starts, as
``genre.audio.windows.window_starts`` places them); a cross-validation set also holds ``fold`` (the
fold, counted from 1, in which the song is a test song). A plain split gets one set of shards
per part (``train-00000-of-00003.tfrecord``, ``valid-...``, ``test-...``), cross-validation one
set (``all-...``). ``shards.json`` names the genres, the split manifest exactly as
``genre.data.splits`` makes it, and every shard file with its songs, their windows, samples and byte
offsets (so one song can be read back alone: ``genre.data.shard_songs``), its size and sha256.

``shard_dataset`` reads a part back as ``tf.data`` batches with no Python in the loop: the
part's files -> dealt out among workers -> parallel ``interleave`` -> parse -> windows cut (for
training, shifted) in the graph -> shuffle -> batch -> (for training, coloured) -> prefetch. Unaugmented,
its windows are the ones ``WindowSet`` cuts from the cache, sample for sample.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import WINDOW, __version__
from ..audio.windows import window_starts
from ..errors import GenreError
from ..files import atomic_path, read_json, write_json
from .splits import PARTS, audit, fold_parts, make_split

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

MANIFEST = "shards.json"
FORMAT = 3  # 2: song samples and byte offsets in shards.json; 3: last windows end at the song end
SONGS_PER_SHARD = 100  # about 130 MB of 30 s songs: TensorFlow's advice is 100-200 MB a file
CV_PART = "all"
# soundfile reads 16-bit PCM as int / 32768, so a 16-bit source round-trips bit for bit; other
# sources lose at most half a step of 1/32768.
PCM_SCALE = 32768.0
# A TFRecord record: its length (8 bytes) and that length's CRC (4), the data, the data's CRC (4).
RECORD_OVERHEAD = 16
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
        protocol,
        cache.track_ids,
        cache.labels,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
        folds=folds,
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
            raise ShardError(
                f"{out} already holds other shards (not the same {', '.join(_WORDS.get(k, k) for k in differs)}); "
                "pick another --out or empty it"
            )
        if all(
            (out / s["file"]).is_file() and (out / s["file"]).stat().st_size == s["bytes"] for s in all_shards(existing)
        ):
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
            counts, samples, offsets, position = [], [], [], 0
            with atomic_path(path) as tmp:
                with tf.io.TFRecordWriter(str(tmp)) as writer:
                    for track_id in group:
                        i = cache.index_of(track_id)
                        song = cache.song(i)
                        starts = window_starts(len(song))
                        counts.append(len(starts))
                        samples.append(len(song))
                        record = _example(song, int(cache.labels[i]), track_id, starts, fold_of.get(track_id))
                        writer.write(record)
                        offsets.append(position)
                        position += RECORD_OVERHEAD + len(record)
                        bar.update()
                digest = _sha256(tmp)
                size = tmp.stat().st_size
            if size != position:
                raise ShardError(
                    f"{path.name}: TensorFlow wrote {size} bytes where the TFRecord format makes {position}; "
                    "the offsets would be wrong"
                )
            shards[part].append(
                {
                    "file": path.name,
                    "songs": group,
                    "song_windows": counts,
                    "song_samples": samples,
                    "offsets": offsets,
                    "windows": int(sum(counts)),
                    "bytes": size,
                    "sha256": digest,
                }
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
        raise ShardError(
            f"{out} holds shard files but no {MANIFEST} (an interrupted shard?); empty it or pick another --out"
        )
    return None


def all_shards(manifest: dict) -> list[dict]:
    """Every shard file's entry in ``manifest``, all parts."""
    return [s for part in manifest["shards"].values() for s in part]


def damaged_files(folder: str | os.PathLike, manifest: dict, digest: bool = False) -> list[str]:
    """The shard files of ``manifest`` in ``folder`` that are missing or not the size it lists
    (with ``digest``, also those whose sha256 differs: slower, it reads every byte)."""
    damaged = []
    for shard in all_shards(manifest):
        path = Path(folder) / shard["file"]
        if not path.is_file() or path.stat().st_size != shard["bytes"] or (digest and _sha256(path) != shard["sha256"]):
            damaged.append(shard["file"])
    return damaged


def check_files(folder: str | os.PathLike, manifest: dict) -> None:
    """:class:`ShardError` naming the shard files that are missing or cut short (sizes only:
    cheap enough for every start)."""
    damaged = damaged_files(folder, manifest)
    if damaged:
        named = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3 else "")
        raise ShardError(
            f"shard files in {folder} are missing or not the size shards.json lists: {named}; shard the dataset again"
        )


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
        raise ShardError(
            f"{folder} holds no shards (no {MANIFEST}); make them with: python -m genre shard DATA --out {folder}"
        )
    if manifest.get("format") != FORMAT:
        raise ShardError(
            f"{folder} holds shards of format {manifest.get('format')} (this genre reads {FORMAT}); "
            "shard again into an empty folder"
        )
    return manifest


def part_songs(manifest: dict, part: str, fold: int | None = None) -> list[str]:
    """The track ids of ``part`` (``train``, ``valid``, ``test``; with ``fold``, counted from 1,
    that fold's part of a cross-validation split), as the split manifest lists them."""
    split = manifest["split"]
    if part not in PARTS:
        raise ShardError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    if "folds" in split:
        if fold is None or not 1 <= fold <= len(split["folds"]):
            folds = len(split["folds"])
            raise ShardError(f"these shards hold a {folds}-fold cross-validation split: pass fold=1..{folds}")
        return fold_parts(split)[fold - 1][part]
    if fold is not None:
        raise ShardError(f"these shards hold a {split['protocol']} split, which has no folds")
    return split[part]


@dataclass(frozen=True)
class ShardPlan:
    """What one worker reads of a part: its ``files``, whether it keeps only every
    ``num_workers``-th window of them (``by_window``: fewer files than workers), and the
    ``fed`` windows it feeds each pass, in ``batches`` batches.

    One worker feeds the part's windows (a multiple of ``multiple``, its replicas: see
    ``genre.train.distribute.fed_windows``). Several workers each feed the same number of windows, the
    fewest any worker has, as every replica must take the same number of steps (with several
    replicas a worker, whole steps of ``multiple`` batches); a shuffled part leaves out other
    windows each epoch. Shards of about equal size, many more than the workers, leave out few.
    """

    files: tuple[str, ...]
    by_window: bool
    fed: int
    batches: int
    steps: int  # of training: ``batches``, or a ``multiple``-th of them when replicas take turns
    turns: bool  # several replicas take this worker's batches in turn
    windows: int  # of this worker's share, before any is left out


def shard_plan(
    manifest: dict,
    part: str,
    batch_size: int,
    worker_index: int = 0,
    num_workers: int = 1,
    fold: int | None = None,
    multiple: int = 1,
) -> ShardPlan:
    """Worker ``worker_index`` of ``num_workers``'s share of ``part``; :class:`ShardError` when
    it cannot feed a single step."""
    if not 0 <= worker_index < num_workers:
        raise ShardError(f"worker {worker_index} of {num_workers} does not exist")
    wanted = set(part_songs(manifest, part, fold))
    if not wanted:
        raise ShardError(f"the {part} part{f' of fold {fold}' if fold else ''} holds no songs")
    listed = sorted(manifest["shards"].get(_stored_part(manifest, part), []), key=lambda s: s["file"])

    def windows_of(entries: list[dict]) -> int:
        return sum(n for s in entries for t, n in zip(s["songs"], s["song_windows"]) if t in wanted)

    total = windows_of(listed)
    by_window = num_workers > len(listed)
    if by_window:
        mine = listed
        each = [total // num_workers + (w < total % num_workers) for w in range(num_workers)]
    else:
        mine = listed[worker_index::num_workers]
        each = [windows_of(listed[w::num_workers]) for w in range(num_workers)]
    # Several replicas a worker take its batches in turn: whole steps only, or one would get none.
    # Else one worker's replicas split each global batch evenly, or, one replica a worker,
    # every worker feeds the same batches, the last one as short on each.
    turns = num_workers > 1 and multiple > 1
    step = batch_size * multiple if turns else multiple if num_workers == 1 else 1
    fed = min(each) - min(each) % step
    if not fed:
        raise ShardError(
            f"the {part} part's {total} windows cannot give each of {num_workers} worker(s) one step of "
            f"{step} windows; use fewer workers or replicas, a smaller batch, or more songs"
        )
    batches = -(-fed // batch_size)
    return ShardPlan(
        tuple(s["file"] for s in mine),
        by_window,
        fed,
        batches,
        fed // step if turns else batches,
        turns,
        each[worker_index],
    )


def _stored_part(manifest: dict, part: str) -> str:
    return CV_PART if "folds" in manifest["split"] else part


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
    multiple: int = 1,
    class_weight: dict[int, float] | None = None,
    manifest: dict | None = None,
) -> tf.data.Dataset:
    """The windows of ``part`` read from the shards in ``folder``, as a ``tf.data.Dataset`` of
    ``(windows (B, WINDOW, 1) float32, one-hot labels)`` batches, this worker's share only
    (:func:`shard_plan`): worker ``worker_index`` of ``num_workers`` reads every
    ``num_workers``-th shard file of the part (with fewer files than workers, every file, keeping
    every ``num_workers``-th window). A cross-validation set needs ``fold`` (counted from 1, as
    the run's ``fold-K`` folders are).

    ``with_track_ids`` adds each window's track id; ``class_weight`` a sample weight per window
    (from its genre). ``augment`` shifts each window by up to half a window inside its song and
    colours it (gain, EQ tilt, low-pass), as ``WindowSet`` does for training, from TensorFlow's
    stateless generators (the same distributions, not the same draws), new ones each pass.
    ``shuffle`` also reorders this worker's files each pass (when it reads its own). ``shuffle_buffer``
    counts windows (each holds 264 KB as float32). ``manifest``: the folder's ``shards.json``,
    when the caller has read it already.
    """
    import tensorflow as tf

    from ..audio.augment import colour_graph, shift_starts_graph
    from .pipeline import class_weight_lookup

    if with_track_ids and class_weight:
        raise ShardError("a dataset yields track ids or sample weights, not both")
    folder = Path(folder)
    manifest = manifest or read_manifest(folder)
    if n_genres != len(manifest["genres"]):
        raise ShardError(f"the shards hold {len(manifest['genres'])} genres, not {n_genres}")
    plan = shard_plan(manifest, part, batch_size, worker_index, num_workers, fold, multiple)
    stored = _stored_part(manifest, part)
    listed = manifest["shards"].get(stored, [])
    missing = [s["file"] for s in listed if not (folder / s["file"]).is_file()]
    if missing:
        raise ShardError(
            f"{folder} lacks {len(missing)} of the {stored} shard files {MANIFEST} lists, e.g. {missing[0]}"
        )
    cv = "folds" in manifest["split"]
    if part == "train" and not cv:
        audit(manifest["split"], [t for s in listed for t in s["songs"]])

    # The manifest's own list, not a glob: a folder name with glob characters reads the same.
    files = tf.data.Dataset.from_tensor_slices([str(folder / name) for name in plan.files])
    if shuffle and not plan.by_window:
        files = files.shuffle(len(plan.files), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(len(plan.files), 4)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
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
        keep = sorted(part_songs(manifest, part, fold))
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keep), tf.ones(len(keep), tf.int64)), default_value=0
        )
        songs = songs.filter(lambda s: table.lookup(s["track_id"]) > 0)

    eye = tf.eye(n_genres, dtype=tf.float32)
    # Each worker draws its own augmentation, new each pass.
    stream = seed * 1_000 + worker_index

    def cut(s, song_seed=None):
        pcm = tf.io.decode_raw(s["audio"], tf.int16, little_endian=True)
        song = tf.cast(pcm, tf.float32) / PCM_SCALE
        starts = tf.sparse.to_dense(s["starts"])
        if song_seed is not None:
            starts = shift_starts_graph(starts, tf.shape(song, out_type=tf.int64)[0], song_seed)
        # As genre.audio.windows.cut_window: every start leaves a whole window in a song of one window
        # or more, and a shorter song repeats; the modulo does both.
        length = tf.shape(song, out_type=tf.int64)[0]
        rows = tf.gather(song, (starts[:, None] + tf.range(WINDOW, dtype=tf.int64)[None, :]) % length)
        count = tf.shape(starts)[0]
        labels = tf.repeat(eye[s["label"]][None, :], count, axis=0)
        ids = tf.repeat(s["track_id"][None], count)
        return rows[..., None], labels, ids

    if augment:
        seeds = tf.data.Dataset.random(seed=stream, rerandomize_each_iteration=True).batch(2)
        data = tf.data.Dataset.zip(songs, seeds).map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        data = songs.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.unbatch()
    if plan.by_window:
        data = data.shard(num_workers, worker_index)
    if shuffle:
        data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    data = data.take(plan.fed).batch(batch_size)
    if augment:
        seeds = tf.data.Dataset.random(seed=stream + 500, rerandomize_each_iteration=True).batch(2)
        data = tf.data.Dataset.zip(data, seeds).map(
            lambda batch, batch_seed: (colour_graph(batch[0], batch_seed), *batch[1:]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if class_weight:
        weight = class_weight_lookup(class_weight)
        data = data.map(lambda x, y, t: (x, y, weight(y)))
    elif not with_track_ids:
        data = data.map(lambda x, y, t: (x, y))
    if not plan.turns:
        # A known length lets Keras show progress; not when replicas take this worker's batches
        # in turn, where Keras would count each batch as a step.
        data = data.apply(tf.data.experimental.assert_cardinality(plan.batches))
    return data.prefetch(tf.data.AUTOTUNE)
