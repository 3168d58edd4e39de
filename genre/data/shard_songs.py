"""The songs of a shard folder read back one at a time, for what needs whole songs rather than a
stream of windows: evaluation (each test song classified on its own, as the Classify page
serves it), the frozen features of a transfer model, and the checks on a resumed run.

:class:`ShardSongs` is a :class:`genre.data.dataset.Songs`, as the song cache is, but holds no
audio: ``song`` seeks to the song's record (its byte offset is in ``shards.json``) and decodes
that one.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from .dataset import Songs, default_cache_root
from .shards import PCM_SCALE, RECORD_OVERHEAD, ShardError, all_shards, read_manifest


class ShardSongs(Songs):
    """Every song of the shards in ``folder`` (all parts), read on demand (see :class:`Songs`)."""

    def __init__(self, folder: str | os.PathLike):
        self.shards = Path(folder).expanduser().resolve()
        self.manifest = read_manifest(self.shards)
        self.genres: list[str] = self.manifest["genres"]
        self.sample_rate = int(self.manifest["sample_rate"])
        self.root = Path(self.manifest["data_root"])  # the folder the shards were made from
        self.failed: dict[str, str] = {}
        self._where: dict[str, tuple[str, int]] = {}
        track_ids, lengths = [], []
        for shard in all_shards(self.manifest):
            for track_id, samples, offset in zip(shard["songs"], shard["song_samples"], shard["offsets"]):
                track_ids.append(track_id)
                lengths.append(samples)
                self._where[track_id] = (shard["file"], offset)
        order = np.argsort(track_ids, kind="stable")
        self.track_ids: list[str] = [track_ids[i] for i in order]
        self.lengths = np.asarray(lengths, dtype=np.int64)[order]
        self._index_tracks()
        # Where derived data (a transfer model's frozen features) is kept: the cache folder, under
        # a key of these shards' content (not their path: moved shards keep their features),
        # never inside the user's shard folder.
        digests = sorted(shard["sha256"] for shard in all_shards(self.manifest))
        key = hashlib.sha256(f"{self.manifest['dataset_key']}|{self.manifest['split']}|{digests}".encode()).hexdigest()[
            :20
        ]
        self.folder = default_cache_root() / "shards" / f"shards-{key}"

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
            raise ShardError(
                f"{name} holds no song at byte {offset}; the shards changed since shards.json was written ({error})"
            ) from error
        if found != track_id:
            raise ShardError(
                f"{name} holds {found} where shards.json puts {track_id}; the shards changed since it was written"
            )
        pcm = np.frombuffer(features["audio"].bytes_list.value[0], dtype="<i2")
        return pcm.astype(np.float32) / PCM_SCALE
