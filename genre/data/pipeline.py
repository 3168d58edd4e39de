"""Windows streamed from the song cache into Keras, for the songs of one split part only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import WINDOW
from ..audio.augment import colour
from ..audio.windows import cut_window, window_starts
from .dataset import Songs


@dataclass
class WindowSet:
    """The windows of a set of songs: ``song`` (cache index) and ``start`` (sample) per window."""

    cache: Songs
    song: np.ndarray
    start: np.ndarray

    @classmethod
    def for_tracks(cls, cache: Songs, track_ids: list[str]) -> WindowSet:
        songs, starts = [], []
        for track_id in track_ids:
            i = cache.index_of(track_id)
            s = window_starts(int(cache.lengths[i]))
            songs.append(np.full(len(s), i, dtype=np.int64))
            starts.append(s)
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
        return cls(cache, cat(songs), cat(starts))

    def __len__(self) -> int:
        return len(self.song)

    @property
    def track_ids(self) -> list[str]:
        """The track id of every window, in order (what the leakage audit checks)."""
        return [self.cache.track_ids[i] for i in self.song]

    @property
    def labels(self) -> np.ndarray:
        return self.cache.labels[self.song]

    def batch(self, rows: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Gather windows ``rows`` as ``(len(rows), WINDOW, 1)``; with ``rng``, augment them:
        shift each window by up to half a window inside its song and colour it (gain, EQ tilt,
        low-pass: ``genre.audio.augment.colour``), so each epoch sees other cuts and other
        "recordings" of the same training songs."""
        out = np.empty((len(rows), WINDOW), dtype=np.float32)
        for k, row in enumerate(rows):
            song = self.cache.song(int(self.song[row]))
            start = int(self.start[row])
            if rng is not None:
                latest = max(0, len(song) - WINDOW)
                start = int(np.clip(start + rng.integers(-WINDOW // 2, WINDOW // 2 + 1), 0, latest))
            out[k] = cut_window(song, start)
        if rng is not None:
            out = colour(out, rng)
        return out[..., None]

    def dataset(
        self,
        n_genres: int,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 1,
        multiple: int = 1,
        share: tuple[int, int] = (0, 1),
    ):
        """A ``tf.data.Dataset`` of ``(windows, one-hot labels)`` batches.

        With ``shuffle``, the window order changes every epoch (a new pass draws the next
        permutation from one seeded generator, so a whole run is repeatable). Each pass feeds
        a multiple of ``multiple`` windows, the first ones of its order (``multiple`` is the
        number of replicas: see ``genre.train.distribute.fed_windows``).

        ``share=(k, n)`` yields only the rows ``k, k + n, ...`` of each batch of ``batch_size``:
        replica ``k`` of ``n``'s share of the global batch, under multi-worker training, where
        every worker runs this generator for its own replicas. The window order is then drawn
        from ``seed`` alone (the same on every worker, so the shares are disjoint) and the
        augmentation from ``seed`` and ``k``.
        """
        import tensorflow as tf

        plan = BatchPlan(len(self), batch_size, shuffle, seed, multiple, share)
        eye = np.eye(n_genres, dtype=np.float32)

        def generate():
            for rows in plan:
                yield self.batch(rows, plan.augment_rng if augment else None), eye[self.labels[rows]]

        signature = (tf.TensorSpec((None, WINDOW, 1), tf.float32), tf.TensorSpec((None, n_genres), tf.float32))
        return plan.dataset(generate, signature)


class BatchPlan:
    """Which rows each batch of one pass over ``windows`` windows takes, for the datasets of
    :meth:`WindowSet.dataset` and ``FeatureStore.dataset``.

    With ``shuffle`` every pass draws a new permutation from one generator seeded by ``seed``;
    a pass feeds the first multiple of ``multiple`` windows of its order; ``share=(k, n)`` keeps
    rows ``k, k + n, ...`` of each batch (replica ``k`` of ``n``). ``augment_rng`` is the
    generator for augmentation: the order's own on one share (so a run repeats as it always
    has), else one seeded by ``seed`` and ``k``, so every worker draws the same order.
    """

    def __init__(
        self,
        windows: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        multiple: int = 1,
        share: tuple[int, int] = (0, 1),
    ):
        self.windows, self.batch_size, self.shuffle = windows, batch_size, shuffle
        self.index, self.count = share
        self.rng = np.random.default_rng(seed)
        self.augment_rng = self.rng if self.count == 1 else np.random.default_rng([seed, self.index])
        self.fed = windows - windows % multiple
        self.batches = -(-self.fed // batch_size)

    def __iter__(self):
        order = (self.rng.permutation(self.windows) if self.shuffle else np.arange(self.windows))[: self.fed]
        for first in range(0, len(order), self.batch_size):
            yield order[first : first + self.batch_size][self.index :: self.count]

    def dataset(self, generate, signature):
        """``generate``'s batches as a ``tf.data.Dataset`` of this plan's known length."""
        import tensorflow as tf

        data = tf.data.Dataset.from_generator(generate, output_signature=signature)
        # A known length lets Keras show progress and stops its "ran out of data" warning.
        return data.apply(tf.data.experimental.assert_cardinality(self.batches)).prefetch(2)


def class_weight_lookup(class_weight: dict[int, float]):
    """A graph function from one-hot labels ``(B, genres)`` to each row's weight in
    ``class_weight`` (1 for a genre it lacks): Keras's ``class_weight``, as sample weights, for
    inputs ``fit`` cannot weight itself (distributed datasets; the shards' stream)."""
    import tensorflow as tf

    weights = tf.constant([class_weight.get(c, 1.0) for c in range(max(class_weight) + 1)], tf.float32)
    return lambda y: tf.gather(weights, tf.argmax(y, axis=-1))
