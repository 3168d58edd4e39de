"""Frozen front-end features of training windows, computed once and kept beside the song cache.

A model whose pretrained part is frozen (``transfer``) trains only its head, and the frozen
part's output for a given window never changes. So each window's features are computed once
per "recording": variant 0 is the window as it is, variants 1.. are coloured copies
(``genre.audio.augment.colour``, seeded by song, window and variant). Every epoch, fold and later run
on the same dataset reads them back; an epoch picks one variant per window at random.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..audio.augment import colour
from ..audio.windows import cut_window, window_starts
from ..data.dataset import Songs
from ..data.pipeline import BatchPlan, WindowSet
from ..files import atomic_path
from .traced import traced

# Bump when the windows or their colouring (genre.audio.augment.colour) change.
RECIPE_VERSION = 2  # 2: no zero-padded windows (genre.audio.windows)


class FeatureStore:
    """Features of ``extractor`` (a Keras model, raw windows -> features) for one song cache.

    Files: ``<cache>/../features/<cache key>-<tag>/v<variant>/<song index>.npy``, float16,
    one ``(windows, *feature_shape)`` array per song, written atomically.
    """

    def __init__(self, cache: Songs, extractor, variants: int = 1, seed: int = 1):
        self.cache, self.extractor, self.variants, self.seed = cache, extractor, variants, seed
        # Stored features belong to these weights, this seed and this recipe: any change, a new folder.
        weights = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in extractor.get_weights())).hexdigest()[:12]
        tag = f"{extractor.name}-{weights}-v{RECIPE_VERSION}-seed{seed}"
        self.folder = cache.folder.parent / "features" / f"{cache.folder.name}-{tag}"
        self._songs: dict[tuple[int, int], np.ndarray] = {}

    def _path(self, song: int, variant: int) -> Path:
        return self.folder / f"v{variant}" / f"{song}.npy"

    def _windows(self, song: int, variant: int) -> np.ndarray:
        audio = self.cache.song(song)
        windows = np.stack([cut_window(audio, int(start)) for start in window_starts(len(audio))])
        if variant:
            digest = hashlib.sha256(f"{self.seed}|{self.cache.track_ids[song]}|{variant}".encode()).digest()
            windows = colour(windows, np.random.default_rng(int.from_bytes(digest[:8], "little")))
        return windows

    def ensure(self, songs: list[int], progress: Callable[[int, int], None] | None = None, batch: int = 16) -> None:
        """Compute the features of every variant of ``songs`` that are not stored yet."""
        missing = [(s, v) for v in range(self.variants) for s in sorted(set(songs)) if not self._path(s, v).exists()]
        call = traced(self.extractor)
        for done, (song, variant) in enumerate(missing):
            windows = self._windows(song, variant).astype(np.float32)
            out = np.concatenate(
                [np.asarray(call(windows[i : i + batch, :, None])) for i in range(0, len(windows), batch)]
            ).astype(np.float16)
            with atomic_path(self._path(song, variant), suffix=".npy") as tmp:
                np.save(tmp, out)
            if progress:
                progress(done + 1, len(missing))

    def song_features(self, song: int, variant: int) -> np.ndarray:
        key = (song, variant)
        if key not in self._songs:
            self._songs[key] = np.load(self._path(song, variant), mmap_mode="r")
        return self._songs[key]

    def dataset(
        self,
        windows: WindowSet,
        n_genres: int,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 1,
        multiple: int = 1,
        share: tuple[int, int] = (0, 1),
    ):
        """A ``tf.data.Dataset`` of ``(features, one-hot labels)`` batches of ``windows``'s
        windows; with ``augment``, each window comes as a random one of the stored variants.
        Each pass feeds a multiple of ``multiple`` windows, and ``share`` picks a replica's rows
        of each batch, as ``WindowSet.dataset`` does."""
        import tensorflow as tf

        plan = BatchPlan(len(windows), batch_size, shuffle, seed, multiple, share)
        eye = np.eye(n_genres, dtype=np.float32)
        # Position of each window within its song (windows of a song are consecutive).
        first = {}
        position = np.empty(len(windows), dtype=np.int64)
        for row, song in enumerate(windows.song):
            position[row] = row - first.setdefault(int(song), row)
        shape = tuple(self.extractor.output_shape[1:])

        def generate():
            for rows in plan:
                variant = (
                    plan.augment_rng.integers(0, self.variants, size=len(rows))
                    if augment
                    else np.zeros(len(rows), dtype=np.int64)
                )
                x = np.stack(
                    [self.song_features(int(windows.song[r]), int(v))[position[r]] for r, v in zip(rows, variant)]
                )
                yield x.astype(np.float32), eye[windows.labels[rows]]

        signature = (tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((None, n_genres), tf.float32))
        return plan.dataset(generate, signature)
