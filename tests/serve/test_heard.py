"""What the model heard: the spectrogram, the strip of window winners and musicnn's taggram line
up with the windows the classifier really cut."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.heard import cell_edges, heard_figure
from genre import SAMPLE_RATE, WINDOW, WINDOW_SECONDS
from genre.audio.windows import window_starts
from genre.models.musicnn import MSD_TAGS
from genre.serve.heard import (
    NoSongAudio,
    Taggram,
    has_musicnn_front_end,
    log_mel,
    segments,
    song_of,
)
from synth import song

GENRES = ["drones", "noise", "clicks"]


def _probabilities(n: int) -> np.ndarray:
    p = np.full((n, 3), 0.1)
    p[np.arange(n), np.arange(n) % 3] = 0.8
    return p


@pytest.mark.parametrize("seconds", [30.0, 31.6, 31.2, 1.2, 4.6])
def test_the_strip_has_one_segment_per_window_the_classifier_cut(seconds):
    n = int(seconds * SAMPLE_RATE)
    starts = window_starts(n) / SAMPLE_RATE
    segs = segments(GENRES, _probabilities(len(starts)), starts, n / SAMPLE_RATE)
    assert [s.start for s in segs] == pytest.approx(list(starts))
    assert [s.genre for s in segs] == [GENRES[k % 3] for k in range(len(starts))]
    assert all(s.end == pytest.approx(min(s.start + WINDOW_SECONDS, n / SAMPLE_RATE)) for s in segs)
    # Only a last window that overlaps the one before it goes on the second lane.
    overlapping = len(starts) > 1 and starts[-1] < starts[-2] + WINDOW_SECONDS
    assert [s.lane for s in segs] == [0] * (len(segs) - 1) + [1 if overlapping else 0]
    assert segs[-1].end == pytest.approx(min(n / SAMPLE_RATE, starts[-1] + WINDOW_SECONDS))
    edges = cell_edges(segs)
    assert len(edges) == len(segs) + 1 and np.all(np.diff(edges) > 0)


def test_spectrogram_strip_and_taggram_share_one_time_axis():
    audio = song("clicks", 31.6, seed=3)
    starts = window_starts(len(audio)) / SAMPLE_RATE
    assert len(starts) == 11 and starts[-1] == pytest.approx((len(audio) - WINDOW) / SAMPLE_RATE)
    mel = log_mel(audio)
    seconds = len(audio) / SAMPLE_RATE
    assert mel.db.shape == (64, len(mel.times)) and mel.times[0] == 0 and mel.times[-1] <= seconds + 0.05
    assert mel.db.max() == pytest.approx(0.0, abs=1e-4) and mel.db.min() >= -80.0
    segs = segments(GENRES, _probabilities(len(starts)), starts, seconds)
    tags = Taggram(list(MSD_TAGS[:10]), np.random.default_rng(0).uniform(size=(10, len(starts))), starts)
    fig = heard_figure(GENRES, mel, segs, seconds, tags)
    spectrogram, strip, taggram = fig.data
    assert spectrogram.x[-1] <= seconds + 0.05 and spectrogram.z.shape == mel.db.shape
    # Streamlit's browser side repaints #000001-#000040 (its theme's placeholders): none may be used.
    placeholders = {f"#0000{n:02d}" for n in range(1, 41)}
    assert not {c.lower() for _, c in spectrogram.colorscale + taggram.colorscale} & placeholders
    assert list(strip.base) == pytest.approx(list(starts))  # one strip segment per real window
    assert [b + w for b, w in zip(strip.base, strip.x)] == pytest.approx([s.end for s in segs])
    assert list(strip.y).count("overlap") == 1 and strip.y[-1] == "overlap"
    assert list(taggram.x) == pytest.approx(list(cell_edges(segs)))
    assert taggram.x[0] == 0 and taggram.x[-1] == pytest.approx(seconds)
    # Shared x axes, all spanning the song; a dotted boundary at every window start and the end.
    assert (
        fig.layout.xaxis.range
        == fig.layout.xaxis2.range
        == fig.layout.xaxis3.range
        == pytest.approx((0, seconds), rel=0.003)
    )
    assert strip.xaxis == "x2" and taggram.xaxis == "x3" and fig.layout.xaxis.matches == "x3"
    boundaries = sorted(shape.x0 for shape in fig.layout.shapes)
    assert boundaries == pytest.approx(sorted(set(starts) | {seconds}))
    assert len(heard_figure(GENRES, mel, segs, seconds).data) == 2  # no musicnn front end: no taggram


def test_a_long_song_gets_a_longer_hop_not_a_huge_figure():
    mel = log_mel(np.zeros(SAMPLE_RATE * 600, dtype=np.float32) + 0.01, max_frames=1500)
    assert len(mel.times) <= 1501


def test_a_classification_without_audio_says_so():
    from types import SimpleNamespace

    with pytest.raises(NoSongAudio):
        song_of(SimpleNamespace(song=None))
    with pytest.raises(NoSongAudio):
        log_mel(np.zeros(0, dtype=np.float32))


@pytest.mark.slow
def test_musicnns_taggram_is_its_top_tags_over_the_classifiers_windows():
    """musicnn's own 50 tags on the same windows, the top 10 by mean; a model with musicnn's
    front end is recognised, nested or not (loads the pretrained network: a few seconds)."""
    from genre.models.registry import build_model
    from genre.serve.heard import TagNetwork, taggram

    network = TagNetwork()
    audio = song("drones", 7.6, seed=4)
    result = taggram(network, audio)
    samples = window_starts(len(audio))
    starts = samples / SAMPLE_RATE
    assert list(result.starts) == pytest.approx(list(starts)) and result.values.shape == (10, len(starts))
    all_tags = network.tags(np.stack([audio[s : s + WINDOW] for s in samples]))
    order = np.argsort(-all_tags.mean(axis=0), kind="stable")[:10]
    assert result.tags == [MSD_TAGS[i] for i in order]
    np.testing.assert_allclose(result.values, all_tags[:, order].T, rtol=1e-5, atol=1e-6)
    assert np.all((result.values >= 0) & (result.values <= 1))
    assert has_musicnn_front_end(build_model("transfer", 3)) and not has_musicnn_front_end(build_model("fast", 3))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["transfer", "taggers", "taggers-tags"])
def test_a_classification_carries_musicnns_tags_from_its_own_model_call(name):
    """`transfer` holds musicnn's MSD back end, `taggers` and `taggers-tags` its embedding as a block of the head's
    input: the tags come out of the same call as the probabilities, equal to a second pass of
    musicnn over the same windows, and alike alone or batched with other windows."""
    from genre.models.registry import build_model
    from genre.serve.heard import TagNetwork, taggram_of, top_tags
    from genre.serve.prediction import Classifier

    classifier = Classifier(build_model(name, 3), GENRES)
    audio = song("drones", 7.6, seed=4)
    result = classifier.classify(audio)
    samples = window_starts(len(audio))
    windows = np.stack([audio[s : s + WINDOW] for s in samples])
    second_pass = TagNetwork().tags(windows)
    assert result.tags.shape == (len(samples), len(MSD_TAGS))
    np.testing.assert_allclose(result.tags, second_pass, rtol=1e-4, atol=1e-5)
    alone = classifier.predict_with_embeddings(windows[1:2])[2]
    np.testing.assert_allclose(alone, result.tags[1:2], rtol=1e-4, atol=1e-5)
    shown = taggram_of(result)
    expected = top_tags(second_pass, samples / SAMPLE_RATE)
    assert shown.tags == expected.tags and list(shown.starts) == pytest.approx(list(samples / SAMPLE_RATE))
    np.testing.assert_allclose(shown.values, expected.values, rtol=1e-4, atol=1e-5)


def test_a_model_without_musicnn_gives_no_tags_and_no_taggram():
    from genre.models.registry import build_model
    from genre.serve.heard import taggram_of
    from genre.serve.prediction import Classifier

    result = Classifier(build_model("fast", 3), GENRES).classify(song("noise", 4.0, seed=1))
    assert result.tags is None and taggram_of(result) is None and result.embeddings is not None
