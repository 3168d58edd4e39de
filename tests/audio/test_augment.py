"""Training colouring and the band limits used to evaluate robustness."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from genre import SAMPLE_RATE, WINDOW
from genre.audio.augment import (
    GAIN_DB,
    LOWPASS_HZ,
    TILT_DB_PER_OCTAVE,
    apply_colour,
    band_limit,
    colour,
    colour_draws,
    colour_draws_graph,
    colour_graph,
    colour_response,
    lowpass_response,
    shift_starts_graph,
)


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


def test_the_module_loads_without_tensorflow():
    code = "import sys, genre.audio.augment; print('tensorflow' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_graph_response_is_the_numpy_response_for_the_same_draws():
    gain, tilt, cutoff = (d.astype(np.float32) for d in colour_draws(64, np.random.default_rng(3)))
    # Add the edges: the steepest tilts (clipped at low and high frequencies), the extreme cutoffs.
    gain = np.vstack([gain, [[-GAIN_DB], [GAIN_DB], [0.0], [0.0]]]).astype(np.float32)
    tilt = np.vstack([tilt, [[-TILT_DB_PER_OCTAVE], [TILT_DB_PER_OCTAVE], [0.0], [0.0]]]).astype(np.float32)
    cutoff = np.vstack([cutoff, [[np.inf], [np.inf], [LOWPASS_HZ[0]], [LOWPASS_HZ[1]]]]).astype(np.float32)
    freqs = np.fft.rfftfreq(WINDOW, 1 / SAMPLE_RATE)
    expected = colour_response(freqs, gain, tilt, cutoff)
    graph = tf.function(lambda *args: colour_response(*args, xp=tnp))
    got = graph(tf.constant(freqs, tf.float32), tf.constant(gain), tf.constant(tilt), tf.constant(cutoff)).numpy()
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.isfinite(got).all() and (expected[-2:, freqs >= LOWPASS_HZ[1]] == 0).all()
    # float32 frequencies move the roll-off by ~1e-3 Hz: a few 1e-6 on its 350 Hz slope.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("samples", [WINDOW, 1_001])
def test_colour_graph_is_numpy_colour_with_its_draws(samples):
    """At the real window length and an odd one (where irfft's default length is one short)."""
    windows = np.random.default_rng(4).normal(0, 0.1, (8, samples)).astype(np.float32)
    seed = tf.constant([7, 8])
    draws = [d.numpy() for d in colour_draws_graph(8, seed)]
    assert np.isinf(draws[2]).any() and np.isfinite(draws[2]).any()  # both kinds are checked
    expected = apply_colour(windows, *draws)
    got = colour_graph(tf.constant(windows), seed).numpy()
    assert got.shape == windows.shape and got.dtype == np.float32
    error = np.linalg.norm(got - expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert error.max() < 1e-5
    with_channel = colour_graph(tf.constant(windows[..., None]), seed).numpy()
    np.testing.assert_array_equal(with_channel, got[..., None])
    with pytest.raises(ValueError):
        colour_graph(tf.zeros([2, samples, 2]), seed)


def test_graph_draws_follow_colours_distributions():
    gain, tilt, cutoff = (d.numpy()[:, 0] for d in colour_draws_graph(20_000, tf.constant([11, 12])))
    deciles = np.linspace(0.1, 0.9, 9)
    for values, (low, high) in ((gain, (-GAIN_DB, GAIN_DB)), (tilt, (-TILT_DB_PER_OCTAVE, TILT_DB_PER_OCTAVE))):
        assert low <= values.min() and values.max() <= high
        np.testing.assert_allclose(np.quantile(values, deciles), low + deciles * (high - low), atol=0.02 * (high - low))
    lowpassed = np.isfinite(cutoff)
    assert 0.47 < lowpassed.mean() < 0.53
    cut = cutoff[lowpassed]
    assert LOWPASS_HZ[0] <= cut.min() and cut.max() <= LOWPASS_HZ[1]
    span = LOWPASS_HZ[1] - LOWPASS_HZ[0]
    np.testing.assert_allclose(np.quantile(cut, deciles), LOWPASS_HZ[0] + deciles * span, atol=0.02 * span)
    # Each quantity from its own stream: no two move together.
    assert abs(np.corrcoef(gain, tilt)[0, 1]) < 0.05
    assert abs(np.corrcoef(gain[lowpassed], cut)[0, 1]) < 0.05


def test_colour_graph_is_deterministic_for_a_seed_and_differs_for_another():
    windows = tf.constant(np.random.default_rng(5).normal(0, 0.1, (6, 2_000)).astype(np.float32))
    a = colour_graph(windows, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(a, colour_graph(windows, tf.constant([1, 2])).numpy())
    other = colour_graph(windows, tf.constant([1, 3])).numpy()
    assert not np.allclose(a, other, rtol=1e-3, atol=1e-3)


def test_colour_and_shift_run_in_a_dataset_map():
    """Traced once, in graph mode, with the window count unknown (as after batching a dataset)."""
    songs = np.random.default_rng(6).normal(0, 0.1, (4, 3, 1_000, 1)).astype(np.float32)
    seeds = np.arange(8, dtype=np.int64).reshape(4, 2)
    starts = np.tile(np.array([0, 2_000, 4_000], np.int64), (4, 1))
    windows = tf.data.Dataset.from_tensor_slices(songs).unbatch().batch(3)
    assert windows.element_spec.shape.as_list() == [None, 1_000, 1]
    data = tf.data.Dataset.zip(windows, tf.data.Dataset.from_tensor_slices((seeds, starts)))
    mapped = data.map(
        lambda batch, draw: (colour_graph(batch, draw[0]), shift_starts_graph(draw[1], 5_000, draw[0], window=1_000)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    for (coloured, shifted), song, seed, start in zip(mapped.as_numpy_iterator(), songs, seeds, starts):
        np.testing.assert_allclose(
            coloured, colour_graph(tf.constant(song), tf.constant(seed)).numpy(), rtol=1e-6, atol=1e-7
        )
        np.testing.assert_array_equal(
            shifted, shift_starts_graph(tf.constant(start), 5_000, tf.constant(seed), window=1_000).numpy()
        )


def test_shift_stays_inside_the_song_and_goes_both_ways():
    length = 10 * WINDOW
    latest = length - WINDOW
    starts = tf.constant(np.repeat([0, latest // 2, latest], 2_000), tf.int64)
    shifted = shift_starts_graph(starts, length, tf.constant([3, 4])).numpy()
    assert shifted.dtype == np.int64 and shifted.min() >= 0 and shifted.max() <= latest
    offsets = shifted[2_000:4_000] - latest // 2  # the middle: never clipped
    assert -WINDOW // 2 <= offsets.min() < -0.45 * WINDOW and 0.45 * WINDOW < offsets.max() <= WINDOW // 2
    assert 0.4 < (offsets < 0).mean() < 0.6
    # At the ends about half the shifts would leave the song: they stop at its edge.
    assert 0.4 < (shifted[:2_000] == 0).mean() < 0.6 and 0.4 < (shifted[4_000:] == latest).mean() < 0.6
    np.testing.assert_array_equal(shifted, shift_starts_graph(starts, length, tf.constant([3, 4])).numpy())
    other = shift_starts_graph(starts, length, tf.constant([3, 5])).numpy()
    assert (shifted[2_000:4_000] != other[2_000:4_000]).mean() > 0.99
    short = shift_starts_graph(tf.constant([0, 0], tf.int32), WINDOW // 3, tf.constant([3, 4])).numpy()
    assert short.dtype == np.int32 and (short == 0).all()  # a song shorter than a window stays at 0
