"""Training colouring and the band limits used to evaluate robustness."""

import numpy as np

from genre import SAMPLE_RATE, WINDOW
from genre.augment import band_limit, colour, lowpass_response


def energy_above(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / SAMPLE_RATE)
    return float(spectrum[..., freqs > hz].sum() / spectrum.sum())


def test_band_limit_removes_the_top_and_keeps_the_length():
    noise = np.random.default_rng(0).normal(0, 0.1, WINDOW + 123).astype(np.float32)
    limited = band_limit(noise, 8_000)
    assert limited.shape == noise.shape and limited.dtype == np.float32
    assert energy_above(noise, 8_200) > 0.2
    assert energy_above(limited, 8_200) < 1e-3
    # Below the cutoff the signal is untouched (within the resampler's ripple).
    low = np.sin(2 * np.pi * 1000 * np.arange(WINDOW) / SAMPLE_RATE).astype(np.float32)
    np.testing.assert_allclose(band_limit(low, 8_000)[2000:-2000], low[2000:-2000], atol=2e-3)


def test_colour_is_repeatable_and_varies_level_tilt_and_band():
    windows = np.random.default_rng(1).normal(0, 0.1, (64, WINDOW)).astype(np.float32)
    a = colour(windows, np.random.default_rng(5))
    b = colour(windows, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == windows.shape and a.dtype == np.float32
    levels = 20 * np.log10(a.std(axis=1) / windows.std(axis=1))
    assert levels.min() < -2 and levels.max() > 2
    top = np.array([energy_above(w, 10_000) for w in a])
    assert (top < 1e-4).sum() >= 10  # about half are low-passed, most below 10 kHz
    assert (top > 0.05).sum() >= 10


def test_lowpass_response_passes_below_and_stops_at_the_cutoff():
    freqs = np.array([0.0, 7_000.0, 8_000.0, 9_000.0])
    np.testing.assert_allclose(lowpass_response(freqs, 8_000.0), [1, 1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(lowpass_response(freqs, np.inf), [1, 1, 1, 1])


def colour_before_the_graph_version(windows, rng, sample_rate=SAMPLE_RATE):
    """``colour`` as it was before its draws and response were split apart, kept to pin the
    split to the same draws, in the same order, and the same output bits (runs and the feature
    cache are reproduced from their seeds)."""
    windows = np.asarray(windows, dtype=np.float32)
    n, samples = windows.shape
    freqs = np.fft.rfftfreq(samples, 1.0 / sample_rate)
    octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    tilt = rng.uniform(-3.0, 3.0, size=(n, 1))
    gain = rng.uniform(-6.0, 6.0, size=(n, 1))
    response = 10.0 ** ((gain + np.clip(tilt * octaves, -12.0, 12.0)) / 20.0)
    cutoff = np.where(rng.random(size=(n, 1)) < 0.5, rng.uniform(3_500.0, 11_000.0, size=(n, 1)), np.inf)
    start = 0.9 * cutoff
    with np.errstate(invalid="ignore"):
        position = np.clip((freqs - start) / np.maximum(cutoff - start, 1e-9), 0.0, 1.0)
    response *= np.where(np.isinf(cutoff), 1.0, 0.5 * (1.0 + np.cos(np.pi * position)))
    spectrum = np.fft.rfft(windows, axis=1) * response
    return np.fft.irfft(spectrum, n=samples, axis=1).astype(np.float32)


def test_colour_draws_and_output_are_those_of_the_original():
    windows = np.random.default_rng(2).normal(0, 0.1, (16, 5_001)).astype(np.float32)
    ours, theirs = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(colour(windows, ours), colour_before_the_graph_version(windows, theirs))
    assert ours.random() == theirs.random()  # nothing more or less drawn
