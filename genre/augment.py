"""What a song goes through before it reaches the model: random colouring for training, and
the band limits a low-rate mp3 or a laptop microphone imposes, for evaluation."""

from __future__ import annotations

import numpy as np

from . import SAMPLE_RATE

GAIN_DB = 6.0  # each window's level, +-
TILT_DB_PER_OCTAVE = 3.0  # a spectral tilt around 1 kHz, +-, clipped at +-12 dB
TILT_LIMIT_DB = 12.0
LOWPASS_PROBABILITY = 0.5
LOWPASS_HZ = (3_500.0, 11_000.0)  # a low-rate mp3 keeps ~8-11 kHz, a phone ~3.5-4 kHz


def colour(windows: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Random gain, EQ tilt and (half the time) a low-pass, one draw per window of
    ``(n, samples)``: the ways real recordings differ from GTZAN's full-band CD audio."""
    windows = np.asarray(windows, dtype=np.float32)
    n, samples = windows.shape
    freqs = np.fft.rfftfreq(samples, 1.0 / sample_rate)
    octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    tilt = rng.uniform(-TILT_DB_PER_OCTAVE, TILT_DB_PER_OCTAVE, size=(n, 1))
    gain = rng.uniform(-GAIN_DB, GAIN_DB, size=(n, 1))
    response = 10.0 ** ((gain + np.clip(tilt * octaves, -TILT_LIMIT_DB, TILT_LIMIT_DB)) / 20.0)
    cutoff = np.where(rng.random(size=(n, 1)) < LOWPASS_PROBABILITY, rng.uniform(*LOWPASS_HZ, size=(n, 1)), np.inf)
    response *= lowpass_response(freqs, cutoff)
    spectrum = np.fft.rfft(windows, axis=1) * response
    return np.fft.irfft(spectrum, n=samples, axis=1).astype(np.float32)


def lowpass_response(freqs: np.ndarray, cutoff: np.ndarray | float) -> np.ndarray:
    """A low-pass with a raised-cosine roll-off over the last 10% below ``cutoff``."""
    cutoff = np.asarray(cutoff, dtype=np.float64)
    start = 0.9 * cutoff
    with np.errstate(invalid="ignore"):
        position = np.clip((freqs - start) / np.maximum(cutoff - start, 1e-9), 0.0, 1.0)
    return np.where(np.isinf(cutoff), 1.0, 0.5 * (1.0 + np.cos(np.pi * position)))


def band_limit(song: np.ndarray, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``song`` as a recording that keeps only ``cutoff_hz``: resampled to twice the cutoff and
    back (librosa's default resampler), the same length as before."""
    import librosa

    low = librosa.resample(np.asarray(song, dtype=np.float32), orig_sr=sample_rate, target_sr=int(2 * cutoff_hz))
    back = librosa.resample(low, orig_sr=int(2 * cutoff_hz), target_sr=sample_rate)
    out = np.zeros(len(song), dtype=np.float32)
    out[: min(len(back), len(song))] = back[: len(song)]
    return out
