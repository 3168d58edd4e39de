"""The songs of a shard folder read back one at a time, for what needs whole songs rather than a
stream of windows: evaluation (each test song classified on its own, as the Classify page
serves it), the frozen features of a transfer model, and the checks on a resumed run.

:class:`ShardSongs` answers as :class:`genre.dataset.SongCache` does (``genres``,
``track_ids``, ``labels``, ``lengths``, ``index_of``, ``song``), but holds no audio: ``song``
seeks to the song's record (its byte offset is in ``shards.json``) and decodes that one.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from .shards import PCM_SCALE, RECORD_OVERHEAD, ShardError, read_manifest


class ShardSongs:
    """Every song of the shards in ``folder`` (all parts), read on demand."""

    def __init__(self, folder: str | os.PathLike):
        from .dataset import default_cache_root

        self.shards = Path(folder).expanduser().resolve()
        self.manifest = read_manifest(self.shards)
        self.genres: list[str] = self.manifest["genres"]
        self.sample_rate = int(self.manifest["sample_rate"])
        self.root = Path(self.manifest["data_root"])  # the folder the shards were made from
        self.failed: dict[str, str] = {}
        self._where: dict[str, tuple[str, int]] = {}
        track_ids, lengths = [], []
        for entries in self.manifest["shards"].values():
            for shard in entries:
                for track_id, samples, offset in zip(shard["songs"], shard["song_samples"], shard["offsets"]):
                    track_ids.append(track_id)
                    lengths.append(samples)
                    self._where[track_id] = (shard["file"], offset)
        order = np.argsort(track_ids, kind="stable")
        self.track_ids: list[str] = [track_ids[i] for i in order]
        self.lengths = np.asarray(lengths, dtype=np.int64)[order]
        self.labels = np.asarray([self.genres.index(t.split("/")[0]) for t in self.track_ids], dtype=np.int64)
        self._position = {t: i for i, t in enumerate(self.track_ids)}
        # Where derived data (a transfer model's frozen features) is kept: the cache folder, under
        # a key of these shards, never inside the user's shard folder.
        # The key is the shards' content, not their path: moved shards keep their features.
        digests = sorted(shard["sha256"] for entries in self.manifest["shards"].values() for shard in entries)
        key = hashlib.sha256(f"{self.manifest['dataset_key']}|{self.manifest['split']}|{digests}".encode()).hexdigest()[:20]
        self.folder = default_cache_root() / "shards" / f"shards-{key}"

    def __len__(self) -> int:
        return len(self.track_ids)

    def index_of(self, track_id: str) -> int:
        return self._position[track_id]

    def song(self, i: int) -> np.ndarray:
        """The decoded song ``i`` (float32 in [-1, 1]), read from its shard file alone."""
        import tensorflow as tf

        track_id = self.track_ids[i]
        name, offset = self._where[track_id]
        path = self.shards / name
        with open(path, "rb") as file:
            file.seek(offset)
            header = file.read(12)
            (length,) = struct.unpack("<Q", header[:8]) if len(header) == 12 else (0,)
            # A wrong offset reads some other bytes as the length: never more than the file holds.
            fits = 0 < length <= path.stat().st_size - offset - RECORD_OVERHEAD
            record = file.read(length) if fits else b""
        try:
            if not record:
                raise ValueError("no record there")
            features = tf.train.Example.FromString(record).features.feature
            found = features["track_id"].bytes_list.value[0].decode()
        except Exception as error:  # a truncated file or another record: protobuf says little
            raise ShardError(f"{name} holds no song at byte {offset}; the shards changed since shards.json was written ({error})") from error
        if found != track_id:
            raise ShardError(f"{name} holds {found} where shards.json puts {track_id}; the shards changed since it was written")
        pcm = np.frombuffer(features["audio"].bytes_list.value[0], dtype="<i2")
        return pcm.astype(np.float32) / PCM_SCALE

    def path_of(self, track_id: str) -> Path | None:
        """The audio file of a track, if the folder the shards were made from is on this machine."""
        from .dataset import track_path

        return track_path(self.root, track_id)
