"""Live windows are classified on the live worker's thread as they complete: in order, each
once, with the probabilities the page's own call gave, whatever other sessions are doing.

Every wait here is on a condition (a window count, an event), never on the clock.
"""

from __future__ import annotations

import gc
import io
import threading
import weakref

import numpy as np
import pytest
import soundfile as sf
from test_live import CountingClassifier, frames, stereo_s16

from dashboard.charts import window_figure
from genre import WINDOW
from genre.serve.live import LiveAudio, LiveTally
from genre.serve.live_worker import LiveWorker
from synth import song


@pytest.fixture
def worker():
    worker = LiveWorker(name="test-live-windows")
    yield worker
    worker.close()


def one_by_one(classifier, take: np.ndarray, count: int) -> np.ndarray:
    """The probabilities of the take's first ``count`` windows, each classified alone."""
    return np.concatenate([classifier.predict_windows(take[None, k * WINDOW : (k + 1) * WINDOW]) for k in range(count)])


def test_windows_are_classified_without_the_page_asking(worker):
    live, tally, classifier = LiveAudio(), LiveTally(), CountingClassifier()
    worker.follow(live, tally, classifier)
    for frame in frames(stereo_s16(10, seed=5)):  # aiortc's part; nobody calls tally.update
        live.append(frame)
    assert tally.wait_for(3)
    assert tally.starts == [0.0, 3.0, 6.0] and sum(classifier.calls) == 3
    np.testing.assert_array_equal(np.asarray(tally.probabilities), one_by_one(classifier, live.take(), 3))
    assert all(lag >= 0 for lag in tally.lags)


def test_a_new_take_starts_empty_even_with_a_window_in_flight(worker):
    live, tally = LiveAudio(), LiveTally()

    class Slow(CountingClassifier):
        """Holds its first window until the test has asked for a new take."""

        def __init__(self):
            super().__init__()
            self.entered, self.release = threading.Event(), threading.Event()

        def predict_windows(self, windows):
            self.entered.set()
            self.release.wait()
            return super().predict_windows(windows)

    classifier = Slow()
    worker.follow(live, tally, classifier)
    audio = stereo_s16(7, seed=6)
    for frame in frames(audio[: 48_000 * 4]):  # one window, now being classified
        live.append(frame)
    classifier.entered.wait()
    restarted = threading.Thread(target=tally.restart, args=(live,))
    restarted.start()  # waits for the window in flight
    classifier.release.set()
    restarted.join()
    assert len(tally) == 0 and live.seconds == 0
    for frame in frames(audio):
        live.append(frame)
    assert tally.wait_for(2)
    assert tally.starts == [0.0, 3.0]


def test_a_failing_model_is_reported_not_swallowed(worker):
    class Broken(CountingClassifier):
        def predict_windows(self, windows):
            raise RuntimeError("no model")

    live, tally = LiveAudio(), LiveTally()
    worker.follow(live, tally, Broken())
    for frame in frames(stereo_s16(3.5, seed=7)):
        live.append(frame)
    assert tally.wait_for(1)
    assert tally.error == "RuntimeError: no model" and len(tally) == 0


def test_a_closed_session_is_not_kept_alive(worker):
    live, tally = LiveAudio(), LiveTally()
    worker.follow(live, tally, CountingClassifier())
    for frame in frames(stereo_s16(3.5, seed=9)):
        live.append(frame)
    assert tally.wait_for(1)
    worker.close()  # the thread has finished every job
    gone = weakref.ref(live)
    gc.disable()  # freed by reference counting alone: no cycle through the listener
    try:
        del live
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.slow
def test_live_windows_arrive_in_order_while_other_sessions_classify(tiny_run, worker):
    from genre.serve.prediction import Classifier

    classifier = Classifier.load(tiny_run)
    classifier.warm_up()
    uploads = []
    for k, kind in enumerate(("drones", "noise", "clicks")):
        buffer = io.BytesIO()
        sf.write(buffer, song(kind, 30.0, seed=40 + k, sr=44_100), 44_100, format="WAV")
        uploads.append(buffer.getvalue())
    sequential = [classifier.classify(data) for data in uploads]

    stop = threading.Event()
    busy = [threading.Event() for _ in uploads]
    results: list[list] = [[] for _ in uploads]

    def session(k: int) -> None:
        """Another user: decode, resample, classify and chart a 30 s upload, again and again."""
        for _ in range(1000):  # bounded, but the live take ends it long before
            result = classifier.classify(uploads[k], name=f"upload-{k}.wav")
            window_figure(result.genres, result.probabilities, result.starts)
            results[k].append(result)
            busy[k].set()
            if stop.is_set():
                return

    others = [threading.Thread(target=session, args=(k,)) for k in range(len(uploads))]
    for thread in others:
        thread.start()
    for event in busy:
        event.wait()  # every other session is classifying before the microphone starts

    live, tally = LiveAudio(), LiveTally()
    worker.follow(live, tally, classifier)
    audio = stereo_s16(16, seed=8)
    microphone = threading.Thread(target=lambda: [live.append(frame) for frame in frames(audio)])
    microphone.start()
    try:
        assert tally.wait_for(5)
    finally:
        stop.set()
        microphone.join()
        for thread in others:
            thread.join()

    assert tally.error is None
    assert tally.starts == [0.0, 3.0, 6.0, 9.0, 12.0]  # in order, each once
    assert live.dropped_windows == 0
    # Bit for bit the probabilities of classifying each window here, on a quiet machine.
    np.testing.assert_array_equal(np.asarray(tally.probabilities), one_by_one(classifier, live.take(), 5))
    # And the other sessions' results were not disturbed either.
    for k, session_results in enumerate(results):
        assert session_results
        for result in session_results:
            np.testing.assert_array_equal(result.probabilities, sequential[k].probabilities)
