"""musicnn in Keras: the converted weights reproduce the original TensorFlow-1 graph, and the
in-graph front end reproduces musicnn's own features."""

from pathlib import Path

import numpy as np
import pytest

from genre import SAMPLE_RATE, WINDOW
from genre.models import musicnn
from synth import song

FIXTURE = Path(__file__).parent.parent / "fixtures" / "musicnn_reference.npz"


@pytest.fixture(scope="module")
def network():
    return musicnn.load_network()


def test_the_keras_network_matches_the_original_graph(network):
    """tests/fixtures/musicnn_reference.npz holds the original graph's outputs on a fixed input
    (scripts/convert_musicnn.py ran musicnn's own checkpoint to make it)."""
    reference = np.load(FIXTURE)
    frames, penultimate, tags = (np.asarray(v) for v in network(reference["input"], training=False))
    assert network.count_params() == 792_079
    assert frames.shape == (2, musicnn.FRAMES, musicnn.EMBEDDING)
    np.testing.assert_allclose(penultimate, reference["penultimate"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(tags, reference["tags"], atol=1e-4, rtol=0)
    # Pooled frame features run up to ~80: compare them relative to their scale.
    for name, pooled in (("max_pool", frames.max(axis=1)), ("mean_pool", frames.mean(axis=1))):
        scale = np.abs(reference[name]).max()
        assert np.abs(pooled - reference[name]).max() <= 1e-5 * scale + 1e-4, name


def test_the_in_graph_front_end_gives_musicnns_own_embedding(network):
    """The exact path is musicnn's: librosa resamples to 16 kHz, then the log-mel. The graph
    resamples in the frequency domain instead; the embedding must not notice."""
    import librosa

    windows = np.stack([song(g, 3.0, seed=7)[:WINDOW] for g in ("drones", "noise", "clicks")])
    in_graph = np.asarray(musicnn.MusicnnMel()(windows[..., None]))
    exact = np.stack(
        [
            musicnn.reference_features(librosa.resample(w, orig_sr=SAMPLE_RATE, target_sr=musicnn.MUSICNN_RATE))[
                : musicnn.FRAMES
            ]
            for w in windows
        ]
    )
    assert in_graph.shape == exact.shape == (3, musicnn.FRAMES, musicnn.N_MELS)
    a, b = (np.asarray(network(x, training=False)[1]) for x in (in_graph, exact))
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.999, cosine


def test_features_are_computed_in_float32_where_musicnns_float16_overflowed():
    """musicnn computed 10000 * S in float16: inf above 6.55 and every loud window alike."""
    loud = (0.9 * np.sin(2 * np.pi * 440 * np.arange(WINDOW) / SAMPLE_RATE)).astype(np.float32)
    features = np.asarray(musicnn.MusicnnMel()(loud[None, :, None]))
    assert np.isfinite(features).all() and features.max() > np.log10(65504 + 1)


def test_transfer_reads_the_original_embedding_and_never_trains_it(network):
    """`transfer`'s head starts from musicnn's own back end: on the fixture's input, its frozen
    embedding part gives the original graph's penultimate layer."""
    reference = np.load(FIXTURE)
    frames = network(reference["input"], training=False)[0]
    embedding = musicnn.build_embedding()
    np.testing.assert_allclose(
        np.asarray(embedding(frames, training=True)), reference["penultimate"], atol=1e-4, rtol=0
    )
    assert not embedding.trainable_weights


@pytest.mark.parametrize("backbone", ["MTT_musicnn", "MSD_vgg", "MTT_vgg"])
def test_the_other_taggers_of_the_wheel_match_their_original_graphs(backbone):
    """Each converted tagger reproduces its own TF1 graph on the fixed input (fixtures written by
    scripts/convert_musicnn.py from the wheel's checkpoints)."""
    reference = np.load(Path(__file__).parent.parent / "fixtures" / f"{backbone}_reference.npz")
    network = musicnn.load_backbone(backbone)
    outputs = [np.asarray(v) for v in network(reference["input"], training=False)]
    np.testing.assert_allclose(outputs[-1], reference["tags"], atol=1e-4, rtol=0)
    if musicnn.BACKBONES[backbone].architecture == "vgg":
        assert network.count_params() == 607_030
        pool4, pool5 = outputs[0].reshape(2, -1), outputs[1]
        for name, mine in (("pool4", pool4), ("pool5", pool5)):
            scale = np.abs(reference[name]).max()
            assert np.abs(mine - reference[name]).max() <= 1e-5 * scale + 1e-4, name
    else:
        assert network.count_params() == 792_079
        np.testing.assert_allclose(outputs[1], reference["penultimate"], atol=1e-4, rtol=0)


def test_the_two_vgg_taggers_pool_differently_as_their_graphs_did():
    """MSD_vgg pools time then frequency in its first two blocks; MTT_vgg pools both at once.
    With MTT's pooling, MSD's weights give other tags: the difference is real, not a detail."""
    reference = np.load(Path(__file__).parent.parent / "fixtures" / "MSD_vgg_reference.npz")
    wrong = musicnn.build_vgg("MTT_vgg")
    wrong.set_weights(musicnn.load_backbone("MSD_vgg").get_weights())
    assert np.abs(np.asarray(wrong(reference["input"], training=False)[-1]) - reference["tags"]).max() > 1e-3


def test_every_tagger_names_its_fifty_tags_and_its_weights_ship_with_the_package():
    for name, backbone in musicnn.BACKBONES.items():
        assert len(backbone.tags) == musicnn.TAGS == len(set(backbone.tags)), name
        assert backbone.weights.is_file() and backbone.weights.parent == musicnn.WEIGHTS_DIR, name
    assert musicnn.BACKBONES["MSD_musicnn"].weights == musicnn.WEIGHTS
    assert "rock" in musicnn.MSD_TAGS and "classical" in musicnn.MTT_TAGS
