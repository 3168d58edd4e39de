"""Decoding audio into mono float32 at 22,050 Hz. Nothing else in the package decodes audio."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..errors import GenreError

MIN_SECONDS = 1.0
# -80 dBFS: quieter than the noise floor of any 16-bit recording.
SILENCE_PEAK = 1e-4
AUDIO_SUFFIXES = (".wav", ".au", ".flac", ".ogg", ".mp3")

log = logging.getLogger(__name__)


class AudioError(GenreError, ValueError):
    """Audio that cannot be used: undecodable, empty, silent or too short. Names the source."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):
        # Decoding runs in worker processes; the error must survive pickling back.
        return (type(self), (self.source, self.reason))


AudioSource = str | os.PathLike | bytes


def decode(source: AudioSource, name: str | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file path or encoded bytes (an upload) into mono float32 at ``sample_rate``.

    Channels are averaged; other rates are resampled with librosa (soxr). ``name`` labels
    bytes in error messages. Raises :class:`AudioError` for anything unusable.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "uploaded audio"
        if len(source) == 0:
            raise AudioError(label, "the file is empty")
        raw, rate = _read(io.BytesIO(bytes(source)), label)
    else:
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise AudioError(label, "no such file")
        if path.stat().st_size == 0:
            raise AudioError(label, "the file is empty")
        raw, rate = _read(path, label)

    if raw.size == 0:
        raise AudioError(label, "the file holds no audio samples")
    mono = raw.mean(axis=1, dtype=np.float32) if raw.ndim == 2 else raw.astype(np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioError(label, "the audio holds invalid (non-finite) samples")
    if rate != sample_rate:
        import librosa  # deferred: importing librosa costs about a second

        mono = librosa.resample(mono, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(check_usable(mono, label, sample_rate), dtype=np.float32)


def check_usable(samples: np.ndarray, label: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Raise :class:`AudioError` for audio too short to classify or silent (files and
    microphone takes alike); return the samples otherwise."""
    seconds = samples.size / sample_rate
    if seconds < MIN_SECONDS:
        raise AudioError(label, f"too short ({seconds:.2f} s); at least {MIN_SECONDS:g} s is needed")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioError(label, "the audio is silent")
    return samples


def _read(file: Path | io.BytesIO, label: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(file, dtype="float32", always_2d=True)
        return data, int(rate)
    except Exception as sf_error:  # soundfile raises several unrelated types
        # libsndfile's words name a Python object for an upload ("<_io.BytesIO object at
        # 0x...>") and call a text file named .mp3 "not a regular file": they are for the log.
        log.debug("soundfile cannot read %s: %s", label, sf_error)
    # libsndfile cannot read everything (some mp3/m4a); librosa's audioread fallback may.
    if isinstance(file, Path):
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # librosa warns about falling back, which is the point
                data, rate = librosa.load(str(file), sr=None, mono=False)
            # Where ffmpeg is installed, audioread "decodes" a text file into zero samples instead
            # of failing: what the fallback cannot turn into sound is unreadable, whichever
            # backend it found, so the message does not depend on what else is installed.
            if np.size(data):
                return np.atleast_2d(data).T.astype(np.float32), int(rate)
        except Exception:
            pass
    raise AudioError(label, "not a readable audio file (its format was not recognised, or the file is damaged)")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Keep what C libraries print to file descriptor 2 off the terminal for the block
    (libmpg123's "Note: Trying to resync..." for a file that is not really an mp3). For a
    single-threaded command line only: it silences every thread's stderr meanwhile."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
