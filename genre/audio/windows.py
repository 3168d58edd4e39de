"""Cutting songs into the model's 3-second windows. Never padded with silence."""

from __future__ import annotations

import numpy as np

from .. import SAMPLE_RATE, WINDOW


def window_starts(n_samples: int, window: int = WINDOW) -> np.ndarray:
    """Start sample of every window of a song of ``n_samples``.

    Windows follow each other without overlap. A tail of at least half a window gets a last
    window that ends at the song's end, overlapping the one before it; a shorter tail is
    dropped. So every window is all music: a half-silent window is a different input for the
    model and changed its answer (issue 21). The founding report instead padded every song up
    to a multiple of 3 s, which gave each 30 s GTZAN song an 11th window of near silence. A clip
    shorter than one window yields one window at 0, which :func:`cut_window` fills by looping.
    """
    if n_samples <= 0:
        return np.zeros(0, dtype=np.int64)
    full, tail = divmod(n_samples, window)
    starts = np.arange(full, dtype=np.int64) * window
    if full == 0:
        return np.zeros(1, dtype=np.int64)
    if tail >= window / 2:
        starts = np.append(starts, np.int64(n_samples - window))
    return starts


def cut_window(song: np.ndarray, start: int, window: int = WINDOW) -> np.ndarray:
    """One window of ``song`` from ``start``. A song shorter than a window is repeated (looped)
    to fill it; a start too late for a whole window is moved back to end at the song's end."""
    song = np.asarray(song, dtype=np.float32)
    if song.shape[0] == 0:
        raise ValueError("cannot cut a window from an empty song")
    if song.shape[0] < window:
        return np.resize(song, window)  # np.resize repeats the samples in order
    start = min(int(start), song.shape[0] - window)
    return song[start : start + window].copy()


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
