"""What a song goes through before it reaches the model: random colouring for training, and
the band limits a low-rate mp3 or a laptop microphone imposes, for evaluation."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from .. import SAMPLE_RATE, WINDOW

if TYPE_CHECKING:
    import tensorflow as tf

GAIN_DB = 6.0  # each window's level, +-
TILT_DB_PER_OCTAVE = 3.0  # a spectral tilt around 1 kHz, +-, clipped at +-12 dB
TILT_LIMIT_DB = 12.0
LOWPASS_PROBABILITY = 0.5
LOWPASS_HZ = (3_500.0, 11_000.0)  # a low-rate mp3 keeps ~8-11 kHz, a phone ~3.5-4 kHz


def colour(windows: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Random gain, EQ tilt and (half the time) a low-pass, one draw per window of
    ``(n, samples)``: the ways real recordings differ from GTZAN's full-band CD audio."""
    windows = np.asarray(windows, dtype=np.float32)
    return apply_colour(windows, *colour_draws(len(windows), rng), sample_rate=sample_rate)


def colour_draws(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``colour``'s draws for ``n`` windows: gain (dB), tilt (dB per octave) and low-pass
    cutoff (Hz, ``inf`` for none), each ``(n, 1)`` float64."""
    # Seeded runs and the feature cache depend on this order: tilt, gain, low-pass or not, cutoff.
    tilt = rng.uniform(-TILT_DB_PER_OCTAVE, TILT_DB_PER_OCTAVE, size=(n, 1))
    gain = rng.uniform(-GAIN_DB, GAIN_DB, size=(n, 1))
    cutoff = np.where(rng.random(size=(n, 1)) < LOWPASS_PROBABILITY, rng.uniform(*LOWPASS_HZ, size=(n, 1)), np.inf)
    return gain, tilt, cutoff


def apply_colour(
    windows: np.ndarray,
    gain_db: np.ndarray,
    tilt_db_per_octave: np.ndarray,
    cutoff_hz: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Windows ``(n, samples)`` through the colours given by ``(n, 1)`` draws (see
    ``colour_response``), as float32."""
    windows = np.asarray(windows, dtype=np.float32)
    samples = windows.shape[1]
    freqs = np.fft.rfftfreq(samples, 1.0 / sample_rate)
    spectrum = np.fft.rfft(windows, axis=1) * colour_response(freqs, gain_db, tilt_db_per_octave, cutoff_hz)
    return np.fft.irfft(spectrum, n=samples, axis=1).astype(np.float32)


def colour_response(
    freqs: np.ndarray | tf.Tensor,
    gain_db: np.ndarray | tf.Tensor,
    tilt_db_per_octave: np.ndarray | tf.Tensor,
    cutoff_hz: np.ndarray | tf.Tensor,
    xp: ModuleType = np,
) -> np.ndarray | tf.Tensor:
    """The amplitude response of each window's colour at ``freqs`` (Hz), one row per window of
    the ``(n, 1)`` draws: the gain, a tilt around 1 kHz clipped at +-``TILT_LIMIT_DB``, and the
    low-pass of ``lowpass_response``. ``xp`` is the array module: NumPy, or
    ``tensorflow.experimental.numpy`` in ``colour_graph``, so both use this one definition."""
    octaves = xp.log2(xp.maximum(freqs, 20.0) / 1000.0)
    response = 10.0 ** ((gain_db + xp.clip(tilt_db_per_octave * octaves, -TILT_LIMIT_DB, TILT_LIMIT_DB)) / 20.0)
    return response * lowpass_response(freqs, cutoff_hz, xp)


def lowpass_response(
    freqs: np.ndarray | tf.Tensor, cutoff: np.ndarray | tf.Tensor | float, xp: ModuleType = np
) -> np.ndarray | tf.Tensor:
    """A low-pass with a raised-cosine roll-off over the last 10% below ``cutoff`` (``inf``:
    none); ``xp`` as in ``colour_response``."""
    cutoff = xp.asarray(cutoff)
    start = 0.9 * cutoff
    with np.errstate(invalid="ignore"):  # inf - inf for the windows without a low-pass, masked below
        position = xp.clip((freqs - start) / xp.maximum(cutoff - start, 1e-9), 0.0, 1.0)
    return xp.where(xp.isinf(cutoff), 1.0, 0.5 * (1.0 + xp.cos(np.pi * position)))


def colour_graph(windows: tf.Tensor, seed: tf.Tensor, sample_rate: int = SAMPLE_RATE) -> tf.Tensor:
    """``colour`` in the TensorFlow graph, for a ``tf.data`` map: windows ``(n, samples)`` or
    ``(n, samples, 1)`` float32 (``samples`` known when traced), returned in the same shape.

    The draws come from ``seed`` (shape ``[2]`` int, a stateless seed as
    ``tf.random.stateless_uniform`` takes): the same seed, the same colours. They follow
    ``colour``'s distributions, not its NumPy generator's numbers."""
    import tensorflow as tf
    import tensorflow.experimental.numpy as tnp

    windows = tf.convert_to_tensor(windows, tf.float32)
    rank = windows.shape.rank
    if rank not in (2, 3) or (rank == 3 and windows.shape[2] != 1) or windows.shape[1] is None:
        raise ValueError(
            f"colour_graph takes windows (n, samples) or (n, samples, 1) with samples known, not {windows.shape}"
        )
    flat = windows[..., 0] if rank == 3 else windows
    samples = flat.shape[1]
    freqs = tf.constant(np.fft.rfftfreq(samples, 1.0 / sample_rate), tf.float32)
    response = colour_response(freqs, *colour_draws_graph(tf.shape(flat)[0], seed), xp=tnp)
    # irfft's default length is 2 * (bins - 1), one short for an odd window: both get the length.
    spectrum = tf.signal.rfft(flat, fft_length=[samples]) * tf.cast(response, tf.complex64)
    out = tf.signal.irfft(spectrum, fft_length=[samples])
    return out[..., None] if rank == 3 else out


def colour_draws_graph(n: int | tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``colour_draws`` in the graph, from a stateless ``seed`` (shape ``[2]`` int): gain (dB),
    tilt (dB per octave) and cutoff (Hz, ``inf`` for none), each ``(n, 1)`` float32."""
    import tensorflow as tf

    # One seed per quantity, so none of them repeats another's numbers.
    tilt_seed, gain_seed, choice_seed, cutoff_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    shape = tf.stack([n, 1])
    tilt = tf.random.stateless_uniform(shape, tilt_seed, -TILT_DB_PER_OCTAVE, TILT_DB_PER_OCTAVE)
    gain = tf.random.stateless_uniform(shape, gain_seed, -GAIN_DB, GAIN_DB)
    lowpassed = tf.random.stateless_uniform(shape, choice_seed) < LOWPASS_PROBABILITY
    cutoff = tf.where(lowpassed, tf.random.stateless_uniform(shape, cutoff_seed, *LOWPASS_HZ), np.inf)
    return gain, tilt, cutoff


def shift_starts_graph(
    starts: tf.Tensor, song_length: int | tf.Tensor, seed: tf.Tensor, window: int = WINDOW
) -> tf.Tensor:
    """``WindowSet.batch``'s shift in the graph: each window start moved by a uniform whole
    offset in ``[-window // 2, window // 2]``, then clipped to ``[0, song_length - window]``
    (0 for a song shorter than a window), drawn from a stateless ``seed`` (shape ``[2]`` int).
    ``starts`` is an int32 or int64 tensor of one song's starts; the result has its dtype."""
    import tensorflow as tf

    starts = tf.convert_to_tensor(starts)
    offsets = tf.random.stateless_uniform(tf.shape(starts), seed, -window // 2, window // 2 + 1, dtype=starts.dtype)
    latest = tf.maximum(tf.cast(song_length, starts.dtype) - window, 0)
    return tf.clip_by_value(starts + offsets, 0, latest)


def band_limit(song: np.ndarray, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``song`` as a recording that keeps only ``cutoff_hz``: resampled to twice the cutoff and
    back (librosa's default resampler), the same length as before."""
    import librosa

    low = librosa.resample(np.asarray(song, dtype=np.float32), orig_sr=sample_rate, target_sr=int(2 * cutoff_hz))
    back = librosa.resample(low, orig_sr=int(2 * cutoff_hz), target_sr=sample_rate)
    out = np.zeros(len(song), dtype=np.float32)
    out[: min(len(back), len(song))] = back[: len(song)]
    return out
