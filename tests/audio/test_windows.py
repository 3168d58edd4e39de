"""Windowing rules: 3 s windows, the last one ending at the song's end; never padded with silence."""

import numpy as np
import pytest

from genre import SAMPLE_RATE, WINDOW
from genre.audio.windows import cut_window, cut_windows, window_starts


@pytest.mark.parametrize(
    "n, expected",
    [
        (WINDOW * 10 + 294, 10),  # a 30.013 s GTZAN song: the 0.013 s tail is dropped
        (WINDOW * 2 + WINDOW // 2, 3),  # exactly half a window: a last window at the end
        (WINDOW * 2 + WINDOW // 2 - 1, 2),  # just under half: dropped
        (WINDOW * 3, 3),
        (SAMPLE_RATE, 1),  # a clip shorter than one window still gets one
        (0, 0),
    ],
)
def test_window_count(n, expected):
    assert len(window_starts(n)) == expected


def test_a_7_5_s_song_has_windows_at_0_3_and_4_5_s_the_last_ending_at_its_end():
    song = np.arange(int(7.5 * SAMPLE_RATE), dtype=np.float32)
    windows, starts = cut_windows(song)
    np.testing.assert_allclose(starts, [0.0, 3.0, 4.5])
    np.testing.assert_array_equal(windows[0], song[:WINDOW])
    np.testing.assert_array_equal(windows[1], song[WINDOW : 2 * WINDOW])
    np.testing.assert_array_equal(windows[2], song[-WINDOW:])  # overlaps the window before it


def test_a_2_s_clip_fills_its_window_with_its_own_samples_repeated():
    clip = np.arange(1, 2 * SAMPLE_RATE + 1, dtype=np.float32)
    windows, starts = cut_windows(clip)
    assert windows.shape == (1, WINDOW) and starts.tolist() == [0.0]
    np.testing.assert_array_equal(windows[0, : clip.size], clip)
    np.testing.assert_array_equal(windows[0, clip.size :], clip[: WINDOW - clip.size])


@pytest.mark.parametrize("seconds", [1.0, 2.9, 3.0, 4.4, 4.6, 7.5, 29.93, 30.013, 61.7])
def test_no_window_holds_a_run_of_padded_zeros(seconds):
    # A song with no zero sample anywhere: any zero in a window would be padding.
    song = (1.0 + np.arange(int(seconds * SAMPLE_RATE)) % 7).astype(np.float32)
    windows, _ = cut_windows(song)
    assert len(windows) >= 1 and np.count_nonzero(windows == 0) == 0


def test_cut_window_never_reads_past_the_end():
    song = np.arange(1, WINDOW + 100, dtype=np.float32)
    np.testing.assert_array_equal(cut_window(song, 500), song[-WINDOW:])


@pytest.mark.parametrize("seconds", [1.2, 4.6, 7.5])
def test_no_window_that_classify_serves_holds_padded_zeros(seconds):
    from genre.serve.prediction import Classifier

    seen = []

    class Spy:
        def __call__(self, batch, training=False):
            seen.append(np.asarray(batch))
            return np.full((len(batch), 2), 0.5, dtype=np.float32)

    song = (1.0 + np.arange(int(seconds * SAMPLE_RATE)) % 5).astype(np.float32)
    result = Classifier(Spy(), ["a", "b"]).classify(song)
    served = np.concatenate(seen)
    assert served.shape[1:] == (WINDOW, 1) and len(served) == len(result.starts)
    assert np.count_nonzero(served == 0) == 0
