"""Live microphone audio: from WebRTC frames to the model's 3-second windows. No Streamlit.

The WebRTC frame callback runs on aiortc's event loop and only calls :meth:`LiveAudio.append`;
when a frame completes a window, the buffer's ``listener`` is called, and
:class:`genre.serve.live_worker.LiveWorker` classifies the window into a :class:`LiveTally` on its own
thread. The page only reads the tally. Frames from aiortc are 48 kHz stereo s16 (interleaved
``s16`` or planar ``s16p``): they are downmixed by averaging and resampled to 22,050 Hz with a
streaming soxr resampler, so frame boundaries leave no clicks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import SAMPLE_RATE, WINDOW
from ..audio.decode import check_usable

if TYPE_CHECKING:
    from .prediction import Classification, Classifier

WEBRTC_RATE = 48_000
MAX_TAKE_SECONDS = 600.0


@dataclass(frozen=True)
class LiveWindow:
    """A completed window of the take: its number (0, 1, ...), start time in the take
    (seconds), samples, and the wall-clock time its last sample arrived."""

    index: int
    start: float
    samples: np.ndarray
    completed_at: float


def to_mono(data: np.ndarray, channels: int, planar: bool | None = None) -> np.ndarray:
    """Average the channels of one frame's samples into mono float32 in [-1, 1].

    ``data`` is what ``av.AudioFrame.to_ndarray()`` returns: ``(1, n * channels)`` interleaved
    for packed formats, ``(channels, n)`` for planar ones; a 1-D array is read as interleaved.
    Integer samples are scaled by their type's range.
    """
    data = np.asarray(data)
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        scale = float(-info.min) if data.dtype.kind == "i" else (info.max + 1) / 2
        offset = 0.0 if data.dtype.kind == "i" else scale
        samples = (data.astype(np.float32) - offset) / scale
    else:
        samples = data.astype(np.float32, copy=False)
    if planar is None:
        planar = samples.ndim == 2 and samples.shape[0] == channels and channels > 1
    if planar:
        return samples.reshape(channels, -1).mean(axis=0, dtype=np.float32)
    flat = samples.reshape(-1)
    if channels > 1:
        if flat.size % channels:
            raise ValueError(f"{flat.size} interleaved samples do not divide into {channels} channels")
        return flat.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return flat


class LiveAudio:
    """A thread-safe ring buffer of the take being recorded, at the model's sample rate.

    :meth:`append` takes WebRTC frames (``av.AudioFrame``, or the array ``frame.to_ndarray()``
    gives with its rate and channel count); :meth:`pop_windows` hands out every completed
    66,150-sample window exactly once; :meth:`take` returns the whole take, bounded to its last
    ``max_seconds`` (older audio is overwritten, and windows not popped in time are counted in
    ``dropped_windows``).
    """

    def __init__(self, max_seconds: float = MAX_TAKE_SECONDS, sample_rate: int = SAMPLE_RATE, window: int = WINDOW):
        self.sample_rate, self.window = sample_rate, window
        self.capacity = max(int(max_seconds * sample_rate), window)
        self._lock = threading.Lock()
        # Called (on the writer's thread, outside the lock) after a frame that completes a
        # window; it outlives reset(), so a new take needs no new wiring.
        self.listener: Callable[[], None] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the take: the next frame starts a new one."""
        with self._lock:
            # Grown on demand up to `capacity`, so a short take does not hold 50 MB.
            self._ring = np.zeros(min(self.capacity, self.window * 4), dtype=np.float32)
            self._written = 0  # samples written since the take began
            self._next_window = 0  # number of the next window to hand out
            self._completed_at: list[float] = []  # per window, when its last sample came
            self._resampler = None
            self._input: tuple[int, int] | None = None  # (rate, channels) of the frames
            self.frames = 0
            self.dropped_windows = 0
            self.started_at: float | None = None
            self.last_frame_at: float | None = None

    # ------------------------------------------------------------------ writer (frame callback)

    def append(self, frame, sample_rate: int | None = None, channels: int | None = None) -> None:
        """Add one frame. ``frame`` is an ``av.AudioFrame`` or an array of its samples; for an
        array, ``sample_rate`` (default 48 kHz) and ``channels`` (default 2) describe it."""
        planar = None
        if hasattr(frame, "to_ndarray"):
            sample_rate = frame.sample_rate
            channels = len(frame.layout.channels)
            planar = bool(frame.format.is_planar)
            frame = frame.to_ndarray()
        rate = int(sample_rate or WEBRTC_RATE)
        channels = int(channels or 2)
        mono = to_mono(frame, channels, planar)
        now = time.time()
        with self._lock:
            if self._input != (rate, channels):
                self._input = (rate, channels)
                self._resampler = self._new_resampler(rate)
            out = mono if self._resampler is None else self._resampler.resample_chunk(mono)
            self._write(np.asarray(out, dtype=np.float32))
            self.frames += 1
            self.last_frame_at = now
            if self.started_at is None:
                self.started_at = now
            completed = self._written // self.window - len(self._completed_at)
            for _ in range(completed):
                self._completed_at.append(now)
        listener = self.listener
        if completed > 0 and listener is not None:
            listener()

    def _new_resampler(self, rate: int):
        if rate == self.sample_rate:
            return None
        import soxr

        return soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32", quality="HQ")

    def _write(self, samples: np.ndarray) -> None:
        n = samples.size
        if n == 0:
            return
        if len(self._ring) < self.capacity and self._written + n > len(self._ring):
            size = min(self.capacity, max(2 * len(self._ring), self._written + n))
            grown = np.zeros(size, dtype=np.float32)
            grown[: self._written] = self._ring[: self._written]  # not wrapped yet: positions equal
            self._ring = grown
        if n > self.capacity:
            self._written += n - self.capacity
            samples, n = samples[-self.capacity :], self.capacity
        pos = self._written % len(self._ring)
        first = min(n, len(self._ring) - pos)
        self._ring[pos : pos + first] = samples[:first]
        self._ring[: n - first] = samples[first:]
        self._written += n

    def _read(self, start: int, length: int) -> np.ndarray:
        size = len(self._ring)
        pos = start % size
        first = min(length, size - pos)
        return np.concatenate([self._ring[pos : pos + first], self._ring[: length - first]])

    # ------------------------------------------------------------------ reader (the page)

    def pop_windows(self) -> list[LiveWindow]:
        """The windows completed since the last call, oldest first, each handed out once."""
        out = []
        with self._lock:
            complete = self._written // self.window
            oldest = max(0, self._written - len(self._ring))
            while self._next_window < complete:
                k = self._next_window
                self._next_window += 1
                start = k * self.window
                if start < oldest:
                    self.dropped_windows += 1
                    continue
                samples = self._read(start, self.window)
                out.append(LiveWindow(k, start / self.sample_rate, samples, self._completed_at[k]))
        return out

    def take(self) -> np.ndarray:
        """The take so far (its last ``capacity`` samples), mono float32 at ``sample_rate``."""
        with self._lock:
            length = min(self._written, len(self._ring))
            return self._read(self._written - length, length) if length else np.zeros(0, np.float32)

    @property
    def seconds(self) -> float:
        """Seconds of audio received in this take."""
        return self._written / self.sample_rate

    @property
    def windows_completed(self) -> int:
        return self._written // self.window

    @property
    def input_format(self) -> tuple[int, int] | None:
        """``(sample rate, channels)`` of the frames received, once one has come."""
        return self._input


class LiveTally:
    """The windows of a live take classified so far: their probabilities, start times, when
    their last sample arrived, and how long after that each was classified (``lags``) and first
    drawn (``shown_lags``).

    Thread-safe: :meth:`update` runs on the live worker's thread while the page reads
    :meth:`snapshot`. Updates are serialised, so windows are added in the order they completed.
    """

    def __init__(self):
        self._updating = threading.Lock()  # one update at a time; a restart waits for it
        self._changed = threading.Condition()
        self.probabilities: list[np.ndarray] = []
        self.starts: list[float] = []
        self.completed_at: list[float] = []
        self.lags: list[float] = []
        self.shown_lags: list[float] = []
        self.error: str | None = None

    def __len__(self) -> int:
        return len(self.probabilities)

    def update(self, classifier: Classifier, audio: LiveAudio) -> int:
        """Classify the windows ``audio`` has completed since the last call; return how many.

        One window per model call, as the page's own polling did whenever it kept up: a
        window's probabilities then cannot depend on which windows shared its call, that is on
        how many had piled up while the server was busy. (They did: the first ``fast`` runs'
        front end, Keras' ``MelSpectrogram`` with ``top_db=80``, floored a whole batch at its
        loudest bin minus 80 dB.)
        """
        with self._updating:
            new = audio.pop_windows()
            if not new:
                return 0
            probabilities = np.concatenate([classifier.predict_windows(w.samples[None]) for w in new])
            now = time.time()
            with self._changed:
                self.probabilities.extend(probabilities)
                self.starts.extend(w.start for w in new)
                self.completed_at.extend(w.completed_at for w in new)
                self.lags.extend(now - w.completed_at for w in new)
                self._changed.notify_all()
            return len(new)

    def fail(self, error: str) -> None:
        """Record why classifying a window failed (the page shows it)."""
        with self._changed:
            self.error = error
            self._changed.notify_all()

    def restart(self, audio: LiveAudio) -> None:
        """Start a new take: empty ``audio`` and forget every window. Waits for a classification
        in progress, so no window of the old take lands in the new one."""
        with self._updating:
            audio.reset()
            with self._changed:
                for values in (self.probabilities, self.starts, self.completed_at, self.lags, self.shown_lags):
                    values.clear()
                self.error = None
                self._changed.notify_all()

    def snapshot(self, n_genres: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the probabilities ``(n, n_genres)`` and start times so far."""
        with self._changed:
            probabilities = np.asarray(self.probabilities, dtype=np.float32).reshape(-1, n_genres)
            return probabilities, np.asarray(self.starts, dtype=np.float64)

    def mark_shown(self, count: int) -> None:
        """The first ``count`` windows are on the page now: note how long each waited for it."""
        now = time.time()
        with self._changed:
            for k in range(len(self.shown_lags), min(count, len(self.completed_at))):
                self.shown_lags.append(now - self.completed_at[k])

    def wait_for(self, count: int, timeout: float | None = None) -> bool:
        """Block until ``count`` windows are classified (or one failed); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.probabilities) >= count or self.error is not None, timeout)

    def summary(self, classifier: Classifier, seconds: float) -> Classification:
        """The running vote over every window so far (``ValueError`` before the first)."""
        probabilities, starts = self.snapshot(len(classifier.genres))
        return classifier.summarise(probabilities, starts, seconds)

    @property
    def median_lag(self) -> float:
        """Median seconds from a window's last sample to its classification."""
        with self._changed:
            return float(np.median(self.lags)) if self.lags else 0.0

    @property
    def median_shown_lag(self) -> float:
        """Median seconds from a window's last sample to the page run that first drew it."""
        with self._changed:
            return float(np.median(self.shown_lags)) if self.shown_lags else 0.0


def check_take(samples: np.ndarray, label: str = "the recording") -> np.ndarray:
    """Raise ``AudioError`` for a take that is too short or silent, as ``decode`` does for
    files; return the samples otherwise."""
    return check_usable(samples, label)
