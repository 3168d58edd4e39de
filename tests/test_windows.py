"""Windowing rules: non-overlapping 3 s windows; a tail of half a window or more is padded."""

import numpy as np
import pytest

from genre import SAMPLE_RATE, WINDOW
from genre.windows import cut_windows, window_starts


@pytest.mark.parametrize(
    "n, expected",
    [
        (WINDOW * 10 + 294, 10),  # a 30.013 s GTZAN song: the 0.013 s tail is dropped
        (WINDOW * 2 + WINDOW // 2, 3),  # exactly half a window: padded
        (WINDOW * 2 + WINDOW // 2 - 1, 2),  # just under half: dropped
        (WINDOW * 3, 3),
        (SAMPLE_RATE, 1),  # a clip shorter than one window still gets one
        (0, 0),
    ],
)
def test_window_count(n, expected):
    assert len(window_starts(n)) == expected


def test_windows_are_cut_in_order_with_start_times_and_zero_padding():
    song = np.arange(WINDOW * 2 + WINDOW // 2 + 10, dtype=np.float32)
    windows, starts = cut_windows(song)
    assert windows.shape == (3, WINDOW) and windows.dtype == np.float32
    np.testing.assert_array_equal(starts, [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(windows[1], song[WINDOW : 2 * WINDOW])
    tail = song.size - 2 * WINDOW
    np.testing.assert_array_equal(windows[2, :tail], song[2 * WINDOW :])
    assert not windows[2, tail:].any()
