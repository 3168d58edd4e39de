"""What the model heard, over time: a classified song's log-mel spectrogram, its windows and
each window's winner, and, for a model with a musicnn front end, musicnn's own tags per window.

All of it comes from a :class:`genre.serve.prediction.Classification` (its decoded ``song``, its
``starts`` and ``probabilities``): nothing is decoded again, and the windows are the ones the
classifier saw (``genre.audio.windows``, including a last window that overlaps the one before it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import SAMPLE_RATE, WINDOW, WINDOW_SECONDS
from ..audio.windows import cut_windows
from ..errors import GenreError
from ..models.musicnn import MSD_TAGS
from ..models.penultimate import has_layer

MELS = 64
MAX_FRAMES = 1500  # spectrogram columns; a long song gets a longer hop rather than a huge figure
TOP_TAGS = 10


class NoSongAudio(GenreError, ValueError):
    """A classification that does not carry its decoded audio."""


@dataclass
class LogMel:
    """A log-mel spectrogram: ``db[mel, frame]`` in dB below the loudest bin."""

    times: np.ndarray  # (frames,) centre of each frame, seconds
    frequencies: np.ndarray  # (mels,) centre of each mel band, Hz
    db: np.ndarray  # (mels, frames)


@dataclass
class Segment:
    """One classified window on the time axis."""

    start: float  # seconds
    end: float
    genre: str  # the window's winner
    probability: float  # its probability
    lane: int  # 0, or 1 for a window that overlaps the one before it


@dataclass
class Taggram:
    """musicnn's tags per window: ``values[tag, window]`` (sigmoid outputs, 0..1)."""

    tags: list[str]  # the top tags by mean over the windows, highest first
    values: np.ndarray  # (len(tags), n_windows)
    starts: np.ndarray  # (n_windows,) seconds


def log_mel(song: np.ndarray, sample_rate: int = SAMPLE_RATE, mels: int = MELS, max_frames: int = MAX_FRAMES) -> LogMel:
    """The log-mel spectrogram of a mono song (2048-point FFT, hop 512 samples, longer for
    songs beyond ``max_frames`` columns; Slaney mel bands up to half the rate)."""
    import librosa

    song = np.asarray(song, dtype=np.float32)
    if song.size == 0:
        raise NoSongAudio("an empty song has no spectrogram")
    hop = 512 * max(1, int(np.ceil(len(song) / 512 / max_frames)))
    power = librosa.feature.melspectrogram(y=song, sr=sample_rate, n_fft=2048, hop_length=hop, n_mels=mels)
    db = librosa.power_to_db(power, ref=max(float(power.max()), 1e-10), top_db=80.0).astype(np.float32)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sample_rate, hop_length=hop)
    frequencies = librosa.mel_frequencies(n_mels=mels + 2, fmax=sample_rate / 2)[1:-1]
    return LogMel(times.astype(np.float64), frequencies.astype(np.float64), db)


def segments(genres: list[str], probabilities: np.ndarray, starts: np.ndarray, seconds: float) -> list[Segment]:
    """Each window as a segment of the time axis, with its winning genre: one per start in
    ``starts`` (``genre.audio.windows.window_starts`` / sample rate). A window that overlaps the one
    before it (the last window of a song that does not end on a window boundary) goes on a
    second lane; a clip shorter than a window ends at the clip's end."""
    probabilities = np.asarray(probabilities).reshape(len(starts), len(genres))
    out: list[Segment] = []
    for start, p in zip(np.asarray(starts, dtype=np.float64), probabilities):
        end = min(start + WINDOW_SECONDS, max(float(seconds), start))
        lane = 1 if out and start < out[-1].end - 1e-9 else 0
        winner = int(np.argmax(p))
        out.append(Segment(float(start), float(end), genres[winner], float(p[winner]), lane))
    return out


def has_musicnn_front_end(model) -> bool:
    """Whether the model reads audio through musicnn's log-mel front end (a ``MusicnnMel``
    layer, possibly inside a nested model): then musicnn's own tags mean something for it."""
    return has_layer(model, "MusicnnMel")


class TagNetwork:
    """musicnn's MSD network with its own 50 tags, fed with the windows' musicnn log-mel."""

    def __init__(self, network=None):
        from ..models.musicnn import MusicnnMel, load_network

        self.network = network if network is not None else load_network()
        self.mel = MusicnnMel(name="taggram_mel")

    def tags(self, windows: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``(n, 66150)`` raw windows -> ``(n, 50)`` tag probabilities, in ``MSD_TAGS`` order."""
        out = []
        for first in range(0, len(windows), batch_size):
            chunk = np.asarray(windows[first : first + batch_size], dtype=np.float32).reshape(-1, WINDOW, 1)
            _, _, tags = self.network(self.mel(chunk), training=False)
            out.append(np.asarray(tags, dtype=np.float32))
        return np.concatenate(out) if out else np.zeros((0, len(MSD_TAGS)), dtype=np.float32)


def taggram(network: TagNetwork, song: np.ndarray, top: int = TOP_TAGS) -> Taggram:
    """musicnn's tags over the song's windows (cut as the classifier cut them), the ``top``
    tags by mean over the windows: a second pass of musicnn, for a classification that does not
    carry its tags (:func:`taggram_of` reads them where it does)."""
    windows, starts = cut_windows(np.asarray(song, dtype=np.float32))
    return top_tags(network.tags(windows), starts, top)


def top_tags(values: np.ndarray, starts: np.ndarray, top: int = TOP_TAGS) -> Taggram:
    """``(n_windows, 50)`` MSD tag probabilities -> the taggram of the ``top`` tags by mean."""
    values = np.asarray(values, dtype=np.float32)
    order = np.argsort(-values.mean(axis=0), kind="stable")[:top]
    return Taggram([MSD_TAGS[i] for i in order], values[:, order].T.copy(), np.asarray(starts, dtype=np.float64))


def taggram_of(classification, top: int = TOP_TAGS) -> Taggram | None:
    """The taggram of the tags a classification's own model call gave (``Classification.tags``),
    or None when its model gave none."""
    if classification.tags is None:
        return None
    return top_tags(classification.tags, classification.starts, top)


def song_of(classification) -> np.ndarray:
    """The decoded audio a classification was made from."""
    if classification.song is None:
        raise NoSongAudio("this classification does not carry its audio")
    return classification.song
