"""Several pretrained taggers side by side (`taggers`, `taggers-map`): the frozen front end gives
each tagger's own outputs, and the tag-to-genre map is a fixed start the head departs from."""

import numpy as np
import pytest

from genre.models import musicnn
from genre.models.registry import build_model
from genre.models.tag_map import GENRE_TAGS, tag_prior
from synth import song

GTZAN = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


@pytest.fixture(scope="module")
def windows():
    return np.stack([song(g, 3.0, seed=3)[:66_150] for g in ("drones", "clicks")])[..., None].astype(np.float32)


def test_the_extractor_gives_each_taggers_own_outputs_side_by_side(windows):
    blocks = ("MSD_musicnn:emb", "MTT_vgg:emb", "MTT_vgg:max", "MSD_musicnn:mean", "MTT_vgg:tags")
    vector = np.asarray(musicnn.build_taggers_extractor(blocks)(windows))
    mel = musicnn.MusicnnMel()(windows)
    frames, penultimate, _ = (np.asarray(v) for v in musicnn.load_backbone("MSD_musicnn")(mel, training=False))
    pool4, pool5, tags = (np.asarray(v) for v in musicnn.load_backbone("MTT_vgg")(mel, training=False))
    clipped = np.clip(tags, 1e-6, 1 - 1e-6)
    expected = np.concatenate(
        [penultimate, pool5, pool4.max(axis=(1, 2)), frames.mean(axis=1), np.log(clipped / (1 - clipped))], axis=1
    )
    assert vector.shape == (2, 200 + 256 + 128 + 753 + 50)
    np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-4)
    assert [musicnn.part_sizes(b.split(":")[0])[b.split(":")[1]] for b in blocks] == [200, 256, 128, 753, 50]


def test_the_map_gives_a_genre_the_mean_logit_of_its_tags():
    prior = tag_prior(("MSD_musicnn:emb", "MSD_musicnn:tags"), GTZAN, (200, 50))
    assert prior.shape == (250, 10) and not prior[:200].any()
    rock = prior[200:, GTZAN.index("rock")]
    assert set(np.flatnonzero(rock)) == {musicnn.MSD_TAGS.index(t) for t in GENRE_TAGS["rock"]["MSD"]}
    np.testing.assert_allclose(rock.sum(), 1.0)
    assert not prior[:, GTZAN.index("reggae")].any()  # no tag names reggae
    # A genre the map does not know gets no prior.
    assert not tag_prior(("MSD_musicnn:tags",), ["polka"], (50,)).any()


def test_an_untrained_map_head_answers_as_the_map_and_keeps_it_frozen(windows, tmp_path):
    import keras

    model = build_model("taggers-map", 10, genres=GTZAN)
    head = model.layers[2]
    fixed = head.get_layer("tag_map")
    assert not fixed.trainable and not any(w is fixed.kernel for w in head.trainable_weights)
    trained = head.get_layer("genre_logits")
    trained.set_weights([np.zeros_like(w) for w in trained.get_weights()])
    features = np.asarray(model.layers[1](windows))
    expected = features @ fixed.get_weights()[0]
    expected = np.exp(expected - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        np.asarray(model(windows)), expected / expected.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6
    )
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.layers[2].get_layer("tag_map").get_weights()[0], fixed.get_weights()[0])
    # Without genre names there is nothing to map to: the head has no map.
    assert "tag_map" not in [layer.name for layer in build_model("taggers-map", 3).layers[2].layers]


@pytest.mark.slow
def test_a_taggers_map_run_keeps_the_map_of_its_genres_and_serves_as_evaluated(synth_root, tmp_path):
    """Trained from a folder whose genres the map knows, the run's head holds the map of those
    genres (frozen through training and saving), and Classify gives the votes evaluation saw."""
    import shutil

    from genre.data.dataset import load_dataset
    from genre.files import read_json
    from genre.serve.prediction import Classifier
    from genre.train.training import TrainConfig, train

    names = dict(zip(sorted(p.name for p in synth_root.iterdir() if p.is_dir()), ("classical", "jazz", "rock")))
    root = tmp_path / "data"
    for old, new in names.items():
        (root / new).mkdir(parents=True)
        for i, song_file in enumerate(sorted((synth_root / old).iterdir())):
            shutil.copy(song_file, root / new / f"{new}.{i:05d}{song_file.suffix}")
    config = TrainConfig(
        data_root=str(root), model="taggers-map", epochs=2, batch_size=8, learning_rate=1e-2, test_fraction=0.34,
        val_fraction=0.25, models_dir=str(tmp_path / "models"), run_id="tiny-taggers-map",
        augment=False,  # one recording per window: the map, not the features, is under test
    )  # fmt: skip
    run = train(config, progress=False)
    classifier = Classifier.load(run)
    genres = read_json(run / "genres.json")
    assert genres == ["classical", "jazz", "rock"]
    blocks = [f"{b}:{p}" for b in ("MSD_musicnn", "MTT_musicnn") for p in ("emb", "max", "mean")] + [
        "MSD_musicnn:tags",
        "MTT_musicnn:tags",
    ]
    widths = [musicnn.block_width(b) for b in blocks]
    saved = classifier.model.layers[2].get_layer("tag_map").get_weights()[0]
    np.testing.assert_allclose(saved, tag_prior(blocks, genres, widths))
    assert saved[:, genres.index("rock")].any() and saved[:, genres.index("classical")].any()
    cache = load_dataset(root, progress=False)
    for song_metrics in read_json(run / "metrics.json")["songs"]:
        assert classifier.classify(cache.path_of(song_metrics["track_id"])).votes.tolist() == song_metrics["votes"]
