"""The command line: every command end to end, its one-line errors, and runs it refuses to touch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genre.files import read_json
from synth import make_dataset, song, write

pytestmark = pytest.mark.slow


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
    out = run_cli(
        "classify", str(tmp_path / "missing.wav"), str(short), str(garbage), str(good), "--run", str(tiny_run)
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "missing.wav: no such file" in out.stderr
    assert "short.wav: too short (0.50 s)" in out.stderr
    assert f"{garbage}: not a readable audio file (its format was not recognised, or the file is damaged)" in out.stderr
    assert (
        "resync" not in out.stderr and "does not exist" not in out.stderr
    )  # libmpg123's chatter stays off the terminal
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
    from genre.jobs.runs import active_run_id, set_active

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
    from genre.train.training import TrainConfig, train

    run = tmp_path / "again"
    run.mkdir()
    stale = {"protocol": "stratified", "train": ["noise/x"], "valid": [], "test": ["drones/y"]}
    (run / "split.json").write_text(json.dumps(stale))  # no config.json: the start died early
    config = TrainConfig(
        data_root=str(synth_root),
        epochs=1,
        batch_size=8,
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(tmp_path),
        run_id="again",
    )
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
    from genre.jobs.runs import list_runs, read_runs

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
    for command in ("scan", "train", "evaluate", "classify", "runs", "activate", "compare", "download"):
        out = run_cli(command, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout
