"""Training runs: artifacts, learning, resume, evaluation by hand, classify, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genre.evaluation import song_metrics
from genre.files import read_json
from genre.prediction import Classifier
from genre.voting import majority_vote
from synth import GENRES, make_dataset, song, write

pytestmark = pytest.mark.slow


def test_a_short_fast_run_learns_and_writes_every_artifact(tiny_run):
    for name in ("model.keras", "config.json", "genres.json", "split.json", "history.json", "metrics.json", "status.json"):
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
    assert metrics["test_songs"] == len(split["test"]) and {s["track_id"] for s in metrics["songs"]} == set(split["test"])
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


def test_evaluation_numbers_recomputed_by_hand():
    genres = ["a", "b", "c"]
    p = np.array(
        [
            # song 0 (true a): windows vote a, b, a -> a
            [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1],
            # song 1 (true b): a tie a/b, broken by mean probability -> b
            [0.5, 0.4, 0.1], [0.1, 0.9, 0.0],
            # song 2 (true c): votes b, b -> b (wrong), mean probability also b
            [0.2, 0.5, 0.3], [0.1, 0.6, 0.3],
        ]
    )
    window_song = np.array([0, 0, 0, 1, 1, 2, 2])
    window_true = np.array([0, 0, 0, 1, 1, 2, 2])
    m = song_metrics(genres, ["a/1", "b/1", "c/1"], window_song, window_true, p)
    assert m["window_accuracy"] == pytest.approx(3 / 7)  # windows 0, 2, 4 are right
    assert m["song_accuracy_vote"] == pytest.approx(2 / 3)
    assert [s["vote"] for s in m["songs"]] == ["a", "b", "b"]
    assert m["songs"][1]["votes"] == [1, 1, 0]
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert m["per_genre"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_genre"]["c"]["recall"] == 0.0
    assert m["song_balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["song_macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert majority_vote(p[3:5]) == 1


def test_an_interrupted_run_resumes_from_its_last_epoch(synth_root, tmp_path, monkeypatch):
    """Stop a run after epoch 2 (as SIGTERM would), then resume it to the end."""
    import shutil

    import keras

    import genre.training as training
    from genre.training import TrainConfig, TrainingCancelled, train

    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise TrainingCancelled("stopped for the test")

    config = TrainConfig(data_root=str(synth_root), epochs=4, batch_size=8, test_fraction=0.34,
                         val_fraction=0.25, models_dir=str(tmp_path), run_id="resumable")
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

    # A new run in the same folder starts afresh: it must not pick up an old run's checkpoint.
    shutil.rmtree(run)
    train_until_cancelled()
    shutil.rmtree(run)
    train(config, progress=False)
    assert [e["epoch"] for e in read_json(run / "history.json")] == [1, 2, 3, 4]


def test_cross_validation_run_pools_every_song(synth_root, tmp_path):
    from genre.training import TrainConfig, train

    config = TrainConfig(data_root=str(synth_root), protocol="cv", folds=3, epochs=2, batch_size=8,
                         val_fraction=0.25, models_dir=str(tmp_path), run_id="cv")
    run = train(config, progress=False)
    metrics = read_json(run / "metrics.json")
    assert metrics["pooled"] and len(metrics["folds"]) == 3
    assert sorted(s["track_id"] for s in metrics["songs"]) == sorted(read_json(run / "split.json")["folds"][0]["train"]
                                                                        + read_json(run / "split.json")["folds"][0]["valid"]
                                                                        + read_json(run / "split.json")["folds"][0]["test"])
    assert sum(map(sum, metrics["confusion_matrix"])) == 18
    assert Classifier.load(run).classify(song("drones", 4, 5)).probabilities.shape == (1, 3)
    assert len(read_json(run / "history.json")) == 2


REPO = Path(__file__).resolve().parent.parent


def run_cli(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "genre", *args], capture_output=True, text=True, env=env, **kwargs)


def test_cli_classify_runs_and_evaluate(tiny_run, tmp_path):
    path = write(tmp_path / "d.wav", song("drones", 6.5, seed=4))
    out = run_cli("classify", str(path), "--run", str(tiny_run), "--windows")
    assert out.returncode == 0, out.stderr
    assert "drones (2/2 windows)" in out.stdout and "3.0s" in out.stdout
    listed = run_cli("runs", "--models-dir", str(tiny_run.parent))
    assert "tiny-fast" in listed.stdout and "song" in listed.stdout
    run = finished_copy(tiny_run, tmp_path / "models")  # the session's run stays as it is
    (run / "metrics.json").unlink()
    evaluated = run_cli("evaluate", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    assert read_json(run / "metrics.json") == read_json(tiny_run / "metrics.json")


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "/no/such/folder", "--epochs", "1"], "dataset folder not found"),
        (["train", "--data", "."], "no genre subfolders"),
        (["classify", "/no/such.wav", "--run", "/no/run"], "holds no trained model"),
        (["evaluate", "/no/run"], "not a trained run folder"),
    ],
)
def test_cli_errors_are_one_line(args, message, tmp_path):
    if args[0] == "train":  # its own models folder: a run elsewhere in models/ must not answer first
        args = [*args, "--models-dir", str(tmp_path / "models")]
    out = run_cli(*args, cwd=tmp_path if "." in args else None)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 or all(
        line.startswith(("I0000", "W0000", "E0000", "WARNING: All")) for line in out.stderr.strip().splitlines()[:-1]
    )


def test_cli_classify_says_why_a_file_cannot_be_classified_and_goes_on(tiny_run, tmp_path):
    good = write(tmp_path / "good.wav", song("drones", 6.5, seed=4))
    short = write(tmp_path / "short.wav", song("drones", 0.5, seed=4))
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio" * 100)
    out = run_cli("classify", str(tmp_path / "missing.wav"), str(short), str(garbage), str(good), "--run", str(tiny_run))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "missing.wav: no such file" in out.stderr
    assert "short.wav: too short (0.50 s)" in out.stderr
    assert f"{garbage}: not a readable audio file (its format was not recognised, or the file is damaged)" in out.stderr
    assert "resync" not in out.stderr and "does not exist" not in out.stderr  # libmpg123's chatter stays off the terminal
    assert f"{good}: drones" in out.stdout  # the good file is still classified


def finished_copy(tiny_run: Path, models: Path, name: str = "copy") -> Path:
    """A copy of the tiny run in ``models`` (pointed at by nothing)."""
    import shutil

    return Path(shutil.copytree(tiny_run, models / name))


def set_status(run: Path, **status) -> None:
    (run / "status.json").write_text(json.dumps(status))


def test_cli_resume_refuses_finished_active_and_busy_runs(tiny_run, tmp_path):
    models = tmp_path / "models"
    finished = finished_copy(tiny_run, models, "finished")
    out = run_cli("train", "--resume", str(finished))
    assert out.returncode == 2 and "has already finished; start a new run instead" in out.stderr
    assert read_json(finished / "history.json") == read_json(tiny_run / "history.json")  # nothing retrained

    busy = finished_copy(tiny_run, models, "busy")
    set_status(busy, state="running", pid=os.getpid())  # this process plays the trainer
    out = run_cli("train", "--resume", str(busy))
    assert out.returncode == 2 and f"is being trained now (pid {os.getpid()})" in out.stderr

    served = finished_copy(tiny_run, models, "served")
    set_status(served, state="cancelled")
    (models / "ACTIVE").write_text("served\n")
    out = run_cli("train", "--resume", str(served))
    assert out.returncode == 2 and "is the active run" in out.stderr


def test_a_run_being_trained_cannot_be_made_active(tiny_run, tmp_path):
    from genre.runs import active_run_id, set_active

    models = tmp_path / "models"
    busy = finished_copy(tiny_run, models, "busy")
    set_status(busy, state="running", pid=os.getpid())
    with pytest.raises(ValueError, match="is being trained"):
        set_active("busy", models)
    assert not (models / "ACTIVE").exists()
    set_status(busy, state="running", pid=2**22 + 12345)  # its trainer is gone: killed
    set_active("busy", models)
    assert active_run_id(models) == "busy"


def test_resume_refuses_a_dataset_with_other_genres(tiny_run, tmp_path):
    models = tmp_path / "models"
    finished_copy(tiny_run, models, "served")
    (models / "ACTIVE").write_text("served\n")
    run = finished_copy(tiny_run, models)
    set_status(run, state="cancelled")
    config = read_json(run / "config.json")
    other = make_dataset(tmp_path / "other", genres=("clicks", "noise"), songs=3)
    config["train"]["data_root"] = str(other)
    (run / "config.json").write_text(json.dumps(config))
    out = run_cli("train", "--resume", str(run))
    assert out.returncode == 2 and "genres" in out.stderr and "differ from the run's" in out.stderr
    assert read_json(run / "history.json") == read_json(tiny_run / "history.json")


def test_a_split_left_by_a_failed_start_is_not_reused(synth_root, tmp_path):
    from genre.training import TrainConfig, train

    run = tmp_path / "again"
    run.mkdir()
    stale = {"protocol": "stratified", "train": ["noise/x"], "valid": [], "test": ["drones/y"]}
    (run / "split.json").write_text(json.dumps(stale))  # no config.json: the start died early
    config = TrainConfig(data_root=str(synth_root), epochs=1, batch_size=8, test_fraction=0.34,
                         val_fraction=0.25, models_dir=str(tmp_path), run_id="again")
    train(config, progress=False)
    split = read_json(run / "split.json")
    assert "noise/x" not in split["train"] and len(split["train"] + split["valid"] + split["test"]) == 18


def test_cli_evaluate_says_what_a_half_made_run_lacks(tiny_run, tmp_path):
    run = finished_copy(tiny_run, tmp_path / "models")
    (run / "split.json").unlink()
    out = run_cli("evaluate", str(run))
    assert out.returncode == 2 and "needs config.json, split.json and model.keras" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreadable_run_files_are_named_and_the_other_runs_still_listed(tiny_run, tmp_path):
    from genre.runs import list_runs, read_runs

    models = tmp_path / "models"
    finished_copy(tiny_run, models, "good")
    broken = finished_copy(tiny_run, models, "broken")
    (broken / "metrics.json").write_text('{"song_accuracy_vote": 0.5,')  # cut off
    runs, unreadable = read_runs(models)
    assert [r.run_id for r in runs] == ["good"]
    assert "broken" in unreadable and "metrics.json is not valid JSON" in unreadable["broken"]
    assert [r.run_id for r in list_runs(models)] == ["good"]
    out = run_cli("runs", "--models-dir", str(models))
    assert out.returncode == 0 and "good" in out.stdout


def test_cli_help_on_every_command():
    for command in ("scan", "train", "evaluate", "classify", "runs", "activate", "download"):
        out = run_cli(command, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout
