"""Training runs: artifacts, learning, resume, classify."""

import numpy as np
import pytest

from genre.files import read_json
from genre.serve.prediction import Classifier
from synth import GENRES, song, write

pytestmark = pytest.mark.slow


def test_a_short_fast_run_learns_and_writes_every_artifact(tiny_run):
    for name in (
        "model.keras",
        "config.json",
        "genres.json",
        "split.json",
        "history.json",
        "metrics.json",
        "status.json",
    ):
        assert (tiny_run / name).is_file(), name
    config = read_json(tiny_run / "config.json")
    assert config["model"] == "fast" and config["dataset_tracks"] == 18 and config["seed"] == 1
    assert config["train"]["epochs"] == 8 and config["genre_version"]
    history = read_json(tiny_run / "history.json")
    assert [e["epoch"] for e in history] == list(range(1, 9))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(history[0])
    assert read_json(tiny_run / "status.json")["state"] == "finished"
    split = read_json(tiny_run / "split.json")
    metrics = read_json(tiny_run / "metrics.json")
    assert metrics["test_songs"] == len(split["test"]) and {s["track_id"] for s in metrics["songs"]} == set(
        split["test"]
    )
    # Three genres: chance is a third.
    assert metrics["window_accuracy"] >= 0.75 and metrics["song_accuracy_vote"] >= 0.75
    assert not list(tiny_run.glob("*.tmp")) and not list(tiny_run.glob(".*"))


def test_classify_a_file_with_the_trained_run(tiny_run, tmp_path):
    classifier = Classifier.load(tiny_run)
    assert classifier.genres == sorted(GENRES)
    path = write(tmp_path / "clicks.flac", song("clicks", 7.0, seed=999))
    result = classifier.classify(path)
    assert result.probabilities.shape == (2, 3)  # 7 s: two windows, the 1 s tail dropped
    np.testing.assert_array_equal(result.starts, [0.0, 3.0])
    assert result.votes.sum() == 2 and result.vote_genre == "clicks" and result.mean_genre == "clicks"
    assert result.ranking()[0][0] == "clicks"


def test_an_interrupted_run_resumes_from_its_last_epoch(synth_root, tmp_path, monkeypatch):
    """Stop a run after epoch 2 (as SIGTERM would), then resume it to the end."""
    import shutil

    import keras

    import genre.train.training as training
    from genre.train.training import TrainConfig, TrainingCancelled, train

    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise TrainingCancelled("stopped for the test")

    config = TrainConfig(
        data_root=str(synth_root),
        epochs=4,
        batch_size=8,
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(tmp_path),
        run_id="resumable",
    )
    run = tmp_path / "resumable"

    def train_until_cancelled():
        with monkeypatch.context() as patch:
            patch.setattr(training, "ProgressCallback", lambda status, stop: StopAfterTwoEpochs())
            with pytest.raises(TrainingCancelled):
                train(config, progress=False)

    train_until_cancelled()
    assert read_json(run / "status.json")["state"] == "cancelled"
    assert [e["epoch"] for e in read_json(run / "history.json")] == [1, 2]
    assert not (run / "metrics.json").exists()

    train(config, progress=False)
    assert [e["epoch"] for e in read_json(run / "history.json")] == [1, 2, 3, 4]
    assert read_json(run / "status.json")["state"] == "finished"
    assert (run / "metrics.json").is_file()

    # A new run in the same folder starts afresh: it must not pick up an old run's checkpoint
    # (resumed from the one left at epoch 2, it would be stopped before training an epoch).
    shutil.rmtree(run)
    train_until_cancelled()
    shutil.rmtree(run)
    train_until_cancelled()
    assert [e["epoch"] for e in read_json(run / "history.json")] == [1, 2]


def test_cross_validation_run_pools_every_song(synth_root, tmp_path):
    from genre.train.training import TrainConfig, train

    config = TrainConfig(
        data_root=str(synth_root),
        protocol="cv",
        folds=3,
        epochs=2,
        batch_size=8,
        val_fraction=0.25,
        models_dir=str(tmp_path),
        run_id="cv",
    )
    run = train(config, progress=False)
    metrics = read_json(run / "metrics.json")
    assert metrics["pooled"] and len(metrics["folds"]) == 3
    assert sorted(s["track_id"] for s in metrics["songs"]) == sorted(
        read_json(run / "split.json")["folds"][0]["train"]
        + read_json(run / "split.json")["folds"][0]["valid"]
        + read_json(run / "split.json")["folds"][0]["test"]
    )
    assert sum(map(sum, metrics["confusion_matrix"])) == 18
    assert Classifier.load(run).classify(song("drones", 4, 5)).probabilities.shape == (1, 3)
    assert len(read_json(run / "history.json")) == 2
