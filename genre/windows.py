"""Cutting songs into the model's 3-second windows."""

from __future__ import annotations

import numpy as np

from . import SAMPLE_RATE, WINDOW


def window_starts(n_samples: int, window: int = WINDOW) -> np.ndarray:
    """Start sample of every window of a song of ``n_samples``.

    Windows do not overlap. A tail of at least half a window becomes a last, zero-padded
    window; a shorter tail is dropped. The founding report instead padded every song up to a
    multiple of 3 s, which gave each 30 s GTZAN song an 11th window of near silence (30.013 s
    leaves a 0.013 s tail) that votes on the song's genre with no music in it. A clip shorter
    than one window still yields one padded window, so that any decodable clip can be classified.
    """
    if n_samples <= 0:
        return np.zeros(0, dtype=np.int64)
    full, tail = divmod(n_samples, window)
    count = full + (1 if tail >= window / 2 or full == 0 else 0)
    return np.arange(count, dtype=np.int64) * window


def cut_window(song: np.ndarray, start: int, window: int = WINDOW) -> np.ndarray:
    """One window of ``song`` from ``start``, zero-padded past the song's end."""
    piece = np.asarray(song[start : start + window], dtype=np.float32)
    if piece.shape[0] < window:
        piece = np.pad(piece, (0, window - piece.shape[0]))
    return piece


def cut_windows(
    song: np.ndarray, window: int = WINDOW, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a mono song into windows.

    Returns ``(windows, start_seconds)``: a float32 array ``(n_windows, window)`` and each
    window's start time in seconds.
    """
    starts = window_starts(len(song), window)
    windows = np.zeros((len(starts), window), dtype=np.float32)
    for row, start in enumerate(starts):
        windows[row] = cut_window(song, int(start), window)
    return windows, starts / float(sample_rate)
