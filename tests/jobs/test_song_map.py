"""The song map: penultimate activations found in any model, a PCA fitted on training songs
only, nearest training songs, the cached file and the ``map`` command."""

from __future__ import annotations

import numpy as np
import pytest

from genre.cli import main
from genre.files import read_json, write_json
from genre.jobs.song_map import (
    MAP_FILE,
    SongMapError,
    StaleSongMap,
    compute_song_map,
    fit_map,
    read_song_map,
    save_song_map,
)

WIDTH = 12


def _parts(n_train=12, n_valid=3, n_test=4) -> dict[str, list[str]]:
    genres = ("drones", "noise", "clicks")
    ids = [f"{genres[i % 3]}/{genres[i % 3]}.{i:05d}" for i in range(n_train + n_valid + n_test)]
    return {"train": ids[:n_train], "valid": ids[n_train : n_train + n_valid], "test": ids[n_train + n_valid :]}


def _vectors(parts, seed=0, test_offset=0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = {t: rng.normal(size=WIDTH) * np.linspace(3, 0.2, WIDTH) for part in parts.values() for t in part}
    for t in parts["test"]:
        vectors[t] = vectors[t] + test_offset
    return vectors


def _fit(parts, vectors):
    return fit_map("r", "digest", parts, lambda t: (t.split("/")[0], vectors[t]))


def test_the_pca_is_fitted_on_the_training_songs_alone():
    from sklearn.decomposition import PCA

    parts = _parts()
    plain = _fit(parts, _vectors(parts))
    # Test (and validation) songs far away, on another axis: the fit must not move.
    moved = _vectors(parts, test_offset=50.0)
    for t in parts["valid"]:
        moved[t] = moved[t] - 30.0
    shifted = _fit(parts, moved)
    np.testing.assert_allclose(shifted.mean, plain.mean)
    np.testing.assert_allclose(shifted.components, plain.components)
    train = np.stack([_vectors(parts)[t] for t in parts["train"]])
    pca2 = PCA(2, svd_solver="full").fit(train)
    np.testing.assert_allclose(plain.mean, pca2.mean_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain.components[:2], pca2.components_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(plain.xy[: len(train)], pca2.transform(train), rtol=1e-4, atol=1e-4)
    # The test songs are projected, not fitted: their points moved with their vectors.
    test = [i for i, p in enumerate(shifted.parts) if p == "test"]
    assert not np.allclose(shifted.xy[test], plain.xy[test])
    assert plain.parts.count("train") == 12 and plain.parts.count("test") == 4
    assert plain.genres[0] == parts["train"][0].split("/")[0] and plain.votes == plain.genres


def test_too_few_training_songs_are_refused():
    parts = _parts(n_train=2)
    with pytest.raises(SongMapError, match="at least 3"):
        _fit(parts, _vectors(parts))


def test_a_song_is_placed_among_its_nearest_training_songs_only():
    parts = _parts()
    vectors = _vectors(parts)
    song_map = _fit(parts, vectors)
    target = parts["train"][5]
    # The windows of a "new" song whose mean is the training song's vector.
    windows = np.stack([vectors[target] - 1.0, vectors[target] + 1.0])
    placed = song_map.place(windows)
    assert placed.nearest[0].track_id == target and placed.nearest[0].distance == pytest.approx(0.0, abs=1e-4)
    assert len(placed.nearest) == 5
    assert {n.track_id for n in placed.nearest} <= set(parts["train"])
    distances = [n.distance for n in placed.nearest]
    assert distances == sorted(distances)
    np.testing.assert_allclose(placed.xy, song_map.xy[song_map.track_ids.index(target)], atol=1e-4)
    # A test song identical to the new song is never offered as a nearest training song.
    test = parts["test"][0]
    assert test not in {n.track_id for n in song_map.place(vectors[test][None]).nearest}
    with pytest.raises(SongMapError, match="wide"):
        song_map.place(np.zeros((1, WIDTH + 1)))


def test_the_map_file_round_trips_and_a_map_of_another_model_is_refused(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"model one")
    from genre.jobs.song_map import model_sha256

    parts = _parts()
    song_map = fit_map("r", model_sha256(tmp_path), parts, lambda t: ("noise", _vectors(parts)[t]))
    path = save_song_map(tmp_path, song_map)
    assert path == tmp_path / MAP_FILE and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    back = read_song_map(tmp_path)
    assert back.track_ids == song_map.track_ids and back.parts == song_map.parts and back.votes == song_map.votes
    np.testing.assert_array_equal(back.coords, song_map.coords)
    (tmp_path / "model.keras").write_bytes(b"model two")
    with pytest.raises(StaleSongMap, match="python -m genre map"):
        read_song_map(tmp_path)
    assert read_song_map(tmp_path, check=False) is not None
    (tmp_path / MAP_FILE).write_bytes(b"not a zip")
    with pytest.raises(SongMapError, match="cannot be read"):
        read_song_map(tmp_path)
    assert read_song_map(tmp_path / "elsewhere") is None


# ----------------------------------------------------------------------------- penultimate layers


def _check_penultimate(model, reference):
    from genre.models.penultimate import with_penultimate

    x = np.random.default_rng(1).normal(size=(4,) + tuple(model.input_shape[1:])).astype(np.float32)
    probabilities, penultimate = with_penultimate(model)(x, training=False)
    np.testing.assert_allclose(np.asarray(probabilities), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(penultimate), np.asarray(reference(x, training=False)), rtol=1e-5, atol=1e-6)


def test_the_penultimate_layer_is_found_plain_nested_or_behind_a_softmax():
    import keras
    from keras import layers

    from genre.models.penultimate import NoPenultimateLayer, has_layer, with_penultimate

    inputs = keras.Input((20,))
    hidden = layers.Dense(7, activation="relu")(inputs)
    plain = keras.Model(inputs, layers.Dense(3, activation="softmax")(hidden))
    _check_penultimate(plain, keras.Model(inputs, hidden))

    logits = layers.Dense(3)(hidden)
    separate = keras.Model(inputs, layers.Activation("softmax")(logits))
    _check_penultimate(separate, keras.Model(inputs, hidden))

    # A frozen front model and a head model, composed as the transfer models are.
    front_in = keras.Input((20,))
    front = keras.Model(front_in, layers.Dense(9, activation="tanh")(front_in), name="front")
    head_in = keras.Input((9,))
    head_hidden = layers.Dense(5, activation="relu")(head_in)
    head = keras.Model(head_in, layers.Dense(3, activation="softmax")(head_hidden), name="head")
    outer_in = keras.Input((20,))
    composed = keras.Model(outer_in, head(front(outer_in)))
    _check_penultimate(composed, keras.Model(outer_in, keras.Model(head_in, head_hidden)(front(outer_in))))
    assert has_layer(composed, "Dense") and not has_layer(composed, "MusicnnMel")

    # Trained logits plus a fixed map's (genre.models.registry.build_vector_head): the trained Dense's input.
    mapped = layers.Add()([layers.Dense(3)(hidden), layers.Dense(3, use_bias=False, trainable=False)(inputs)])
    _check_penultimate(keras.Model(inputs, layers.Activation("softmax")(mapped)), keras.Model(inputs, hidden))

    no_dense = keras.Model(inputs, layers.Softmax()(layers.Add()([inputs, inputs])))
    with pytest.raises(NoPenultimateLayer, match="InputLayer"):
        with_penultimate(no_dense)


# ----------------------------------------------------------------------------- on a tiny trained run


@pytest.mark.slow
def test_the_map_command_maps_a_tiny_run_from_its_own_split(tiny_run, tmp_path, capsys):
    import shutil

    from genre.serve.prediction import Classifier

    run = tmp_path / "tiny-fast"
    shutil.copytree(tiny_run, run)
    assert main(["map", str(run)]) == 0
    out = capsys.readouterr().out
    assert "PCA fitted on the training songs" in out
    song_map = read_song_map(run)
    split = read_json(run / "split.json")
    assert song_map.track_ids == split["train"] + split["valid"] + split["test"]
    assert (run / MAP_FILE).stat().st_size < 300_000
    # Each song's vote and point are those of the Classify path on that song alone.
    classifier = Classifier.load(run)
    from genre.data.dataset import load_dataset

    cache = load_dataset(read_json(run / "config.json")["data_root"], progress=False)
    song = split["test"][0]
    result = classifier.classify(np.asarray(cache.song(cache.index_of(song))))
    i = song_map.track_ids.index(song)
    assert song_map.votes[i] == result.vote_genre
    np.testing.assert_allclose(
        song_map.project(result.embeddings.mean(axis=0))[0], song_map.coords[i], rtol=1e-4, atol=1e-4
    )
    # The test songs' metrics.json votes agree with the map's.
    votes = {s["track_id"]: s["vote"] for s in read_json(run / "metrics.json")["songs"]}
    assert all(song_map.votes[song_map.track_ids.index(t)] == v for t, v in votes.items())


def test_the_map_command_says_in_one_line_when_the_dataset_is_missing(tmp_path, capsys):
    run = tmp_path / "elsewhere"
    write_json(run / "config.json", {"data_root": str(tmp_path / "gone")})
    write_json(run / "split.json", _parts())
    (run / "model.keras").write_bytes(b"never loaded")
    assert main(["map", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genre: error:") and "not on this machine" in err and "\n" not in err
    assert main(["map", "no-such-run", "--models-dir", str(tmp_path)]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
    with pytest.raises(SongMapError):
        compute_song_map(tmp_path / "not-a-run")


def test_a_cross_validation_run_is_mapped_on_the_fold_it_serves():
    from genre.jobs.song_map import split_parts

    folds = [{"train": [f"a/{k}"], "valid": [], "test": [f"t/{k}"]} for k in range(3)]
    assert split_parts({"served_fold": 2}, {"folds": folds}) == {"train": ["a/1"], "valid": [], "test": ["t/1"]}
    assert split_parts({}, {"train": ["x"], "test": ["y"]}) == {"train": ["x"], "valid": [], "test": ["y"]}
