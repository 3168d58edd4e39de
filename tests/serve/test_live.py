"""The live-microphone buffer: WebRTC frames in, each completed 3 s window out exactly once."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import soxr

from genre import SAMPLE_RATE, WINDOW
from genre.audio.decode import AudioError
from genre.serve.live import LiveAudio, LiveTally, check_take, to_mono
from synth import song

RATE = 48_000
FRAME = 960  # 20 ms, what aiortc delivers


def stereo_s16(seconds: float, seed: int = 0) -> np.ndarray:
    """``(n, 2)`` int16 at 48 kHz: synthetic clicks on the left, drones on the right."""
    left = song("clicks", seconds, seed, sr=RATE)
    right = song("drones", seconds, seed, sr=RATE)
    return (np.stack([left, right], axis=1) * 32767).astype(np.int16)


def frames(audio: np.ndarray, planar: bool = False):
    """aiortc-style frames: packed ``s16`` (interleaved) or planar ``s16p``."""
    for start in range(0, len(audio), FRAME):
        chunk = audio[start : start + FRAME]
        if planar:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk.T), format="s16p", layout="stereo")
        else:
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = RATE
        yield frame


def expected_mono(audio: np.ndarray) -> np.ndarray:
    mono = audio.astype(np.float32).mean(axis=1) / 32768
    return soxr.resample(mono, RATE, SAMPLE_RATE, quality="HQ")


def test_to_mono_averages_interleaved_and_planar_channels():
    interleaved = np.array([[100, 300, -32768, 0]], dtype=np.int16)  # L R L R
    assert np.allclose(to_mono(interleaved, 2), [200 / 32768, -0.5])
    planar = np.array([[100, -32768], [300, 0]], dtype=np.int16)
    assert np.allclose(to_mono(planar, 2), [200 / 32768, -0.5])
    assert np.allclose(to_mono(np.array([0.5, -0.5], dtype=np.float32), 1), [0.5, -0.5])
    with pytest.raises(ValueError):
        to_mono(np.zeros(5, dtype=np.int16), 2)


@pytest.mark.parametrize("planar", [False, True])
def test_frames_become_windows_of_the_downmixed_resampled_audio(planar):
    audio = stereo_s16(7.0)
    live = LiveAudio()
    for frame in frames(audio, planar):
        live.append(frame)
    windows = live.pop_windows()
    assert [w.index for w in windows] == [0, 1]
    assert [w.start for w in windows] == [0.0, 3.0]
    reference = expected_mono(audio)
    for w in windows:
        assert w.samples.shape == (WINDOW,) and w.samples.dtype == np.float32
        start = int(w.start * SAMPLE_RATE)
        # Streaming resampling across 20 ms frames equals resampling the whole take at once.
        assert np.allclose(w.samples, reference[start : start + WINDOW], atol=1e-4)
    assert live.pop_windows() == []  # each window is handed out once
    assert live.input_format == (RATE, 2)
    assert live.frames == len(audio) // FRAME + (len(audio) % FRAME > 0)
    assert abs(live.seconds - 7.0) < 0.05  # the resampler holds back a few ms
    take = live.take()
    assert take.size == round(live.seconds * SAMPLE_RATE)
    assert np.allclose(take, reference[: take.size], atol=1e-4)


def test_arrays_from_to_ndarray_are_accepted():
    audio = stereo_s16(3.5, seed=1)
    by_frame, by_array = LiveAudio(), LiveAudio()
    for frame in frames(audio):
        by_frame.append(frame)
        by_array.append(frame.to_ndarray(), sample_rate=RATE, channels=2)
    assert np.array_equal(by_frame.take(), by_array.take())
    assert len(by_array.pop_windows()) == 1


def test_windows_arrive_as_they_complete_and_reset_starts_a_new_take():
    audio = stereo_s16(9.5, seed=2)
    live = LiveAudio()
    popped = []
    for frame in frames(audio):
        live.append(frame)
        popped.extend(w.index for w in live.pop_windows())
        # A window is available as soon as its last sample has come in, not later.
        assert len(popped) == live.windows_completed
    assert popped == [0, 1, 2]
    live.reset()
    assert live.seconds == 0 and live.take().size == 0 and live.pop_windows() == []
    for frame in frames(audio[: RATE * 4]):
        live.append(frame)
    assert [w.start for w in live.pop_windows()] == [0.0]


def test_take_is_bounded_and_late_windows_are_counted_as_dropped():
    live = LiveAudio(max_seconds=4.0)
    audio = stereo_s16(13.0, seed=3)
    for frame in frames(audio):
        live.append(frame)
    reference = expected_mono(audio)
    end = round(live.seconds * SAMPLE_RATE)
    assert live.take().size == live.capacity == 4 * SAMPLE_RATE
    assert np.allclose(live.take(), reference[end - live.capacity : end], atol=1e-4)  # the last 4 s
    windows = live.pop_windows()
    # 4 windows completed; only the last one still lies in the 4 s kept.
    assert [w.index for w in windows] == [3] and live.dropped_windows == 3
    assert np.allclose(windows[0].samples, reference[3 * WINDOW : 4 * WINDOW], atol=1e-4)


def test_concurrent_writer_and_reader_see_every_window_once():
    audio = stereo_s16(16.0, seed=4)
    live = LiveAudio(max_seconds=60)
    seen: list[int] = []
    done = threading.Event()

    def reader():
        while not done.wait(0.002):
            seen.extend(w.index for w in live.pop_windows())
        seen.extend(w.index for w in live.pop_windows())

    thread = threading.Thread(target=reader)
    thread.start()
    for frame in frames(audio):
        live.append(frame)
    done.set()
    thread.join()
    assert seen == list(range(5))
    assert live.dropped_windows == 0


def test_check_take_rejects_short_and_silent_recordings():
    with pytest.raises(AudioError, match="too short"):
        check_take(np.full(SAMPLE_RATE // 2, 0.1, dtype=np.float32))
    with pytest.raises(AudioError, match="silent"):
        check_take(np.zeros(SAMPLE_RATE * 2, dtype=np.float32))
    ok = np.full(SAMPLE_RATE * 2, 0.1, dtype=np.float32)
    assert check_take(ok) is ok


class CountingClassifier:
    """Stands in for ``genre.serve.prediction.Classifier``: a window's probability of genre 1 is its
    mean absolute sample, so each window's row can be checked."""

    genres = ["a", "b"]

    def __init__(self):
        self.calls = []

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(len(windows))
        level = np.abs(windows).mean(axis=1)
        return np.stack([1 - level, level], axis=1).astype(np.float32)


def test_the_tally_classifies_each_window_once_in_order():
    audio = stereo_s16(10, seed=3)
    live, tally, classifier = LiveAudio(), LiveTally(), CountingClassifier()
    added = 0
    for frame in frames(audio):
        live.append(frame)
        added += tally.update(classifier, live)
    assert added == len(tally) == 3 and sum(classifier.calls) == 3
    assert tally.starts == [0.0, 3.0, 6.0]
    take = live.take()
    expected = [np.abs(take[k * WINDOW : (k + 1) * WINDOW]).mean() for k in range(3)]
    np.testing.assert_allclose([p[1] for p in tally.probabilities], expected, rtol=1e-5)
    # One lag per window, none negative (how long they are is a benchmark's business).
    assert len(tally.lags) == 3 and min(tally.lags) >= 0 and tally.median_lag == float(np.median(tally.lags))
    # Nothing new: no window is classified again, and the model is not even called.
    calls = list(classifier.calls)
    assert tally.update(classifier, live) == 0 and classifier.calls == calls and len(tally) == 3
