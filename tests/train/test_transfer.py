"""The `transfer` model: its head trains on musicnn features computed once, and the run it
writes serves, evaluates and reports band-limited figures like any other."""

import numpy as np
import pytest

from genre.data.dataset import load_dataset
from genre.files import read_json
from genre.serve.prediction import Classifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """A feature store of this module's own: other tests of the session store features of other
    splits of the same songs, which the counts below must not see."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENRE_CACHE_DIR", str(tmp_path_factory.mktemp("transfer-cache")))
        yield


@pytest.fixture(scope="module")
def transfer_run(synth_root, tmp_path_factory):
    from genre.train.training import TrainConfig, train

    config = TrainConfig(
        # A dozen steps in all: a faster rate than the recipe's 1e-3.
        data_root=str(synth_root),
        model="transfer",
        epochs=3,
        batch_size=8,
        learning_rate=1e-2,
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(tmp_path_factory.mktemp("models")),
        run_id="tiny-transfer",
    )
    return train(config, progress=False)


def feature_files(synth_root):
    cache = load_dataset(synth_root, progress=False)
    return sorted((cache.folder.parent / "features").rglob("*.npy"))


def test_a_transfer_run_trains_its_head_on_stored_features(transfer_run, synth_root):
    split = read_json(transfer_run / "split.json")
    files = feature_files(synth_root)
    # Three "recordings" (the window, two coloured copies) of every training and validation song;
    # no test song's features are ever computed for training.
    assert len(files) == 3 * (len(split["train"]) + len(split["valid"]))
    cache = load_dataset(synth_root, progress=False)
    stored = {int(p.stem) for p in files}
    assert not stored & {cache.index_of(t) for t in split["test"]}
    history = read_json(transfer_run / "history.json")
    assert [e["epoch"] for e in history] == [1, 2, 3]
    metrics = read_json(transfer_run / "metrics.json")
    assert metrics["song_accuracy_vote"] >= 2 / 3  # three very different synthetic genres
    assert set(metrics["band_limited"]) == {"8000", "11000"}
    assert all(set(s["band_limited_vote"]) == {"8000", "11000"} for s in metrics["songs"])


def test_the_saved_transfer_model_serves_as_evaluation_saw_it(transfer_run, synth_root):
    """model.keras holds the whole network (raw audio in) and loads in safe mode; classifying a
    test song gives exactly the votes its evaluation recorded."""
    classifier = Classifier.load(transfer_run)
    assert classifier.model.input_shape == (None, 66_150, 1)
    cache = load_dataset(synth_root, progress=False)
    for song in read_json(transfer_run / "metrics.json")["songs"]:
        path = cache.path_of(song["track_id"])
        assert classifier.classify(path).votes.tolist() == song["votes"], song["track_id"]


def test_a_second_run_reuses_the_stored_features(transfer_run, synth_root, tmp_path):
    from genre.train.training import TrainConfig, train

    before = {p: p.stat().st_mtime_ns for p in feature_files(synth_root)}
    train(
        TrainConfig(
            data_root=str(synth_root),
            model="transfer-pooled",
            epochs=1,
            batch_size=8,
            test_fraction=0.34,
            val_fraction=0.25,
            models_dir=str(tmp_path),
            run_id="again",
        ),
        progress=False,
    )
    assert {p: p.stat().st_mtime_ns for p in feature_files(synth_root)} == before
    assert np.isfinite(read_json(tmp_path / "again" / "metrics.json")["window_accuracy"])


def test_features_of_other_weights_are_stored_apart(synth_root):
    """Stored features belong to the frozen part's weights: a changed part gets a new folder."""
    from genre.models.features import FeatureStore
    from genre.models.registry import build_model

    cache = load_dataset(synth_root, progress=False)
    frozen = build_model("transfer", 3).layers[1]
    first = FeatureStore(cache, frozen).folder
    assert FeatureStore(cache, frozen).folder == first
    frozen.set_weights([w * 1.01 for w in frozen.get_weights()])
    assert FeatureStore(cache, frozen).folder != first
    assert FeatureStore(cache, build_model("transfer", 3).layers[1], seed=2).folder != first
