"""What a local attacker (or a careless command) must not get past: run ids and ``activate``
that lead out of ``models/``, an ``ACTIVE`` naming another folder, two trainings in one folder,
a model file that runs code when loaded, and the dashboard's bind address."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from genre.cli import main
from genre.jobs import jobs
from genre.jobs.runs import active_run_id, check_run_id, list_runs

ROOT = Path(__file__).resolve().parent.parent
BAD_RUN_IDS = ["../x", "../../etc", "/tmp/abs", ".", "..", "a/b", ".jobs", "a\\b", "x y"]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_a_run_id_is_a_plain_name(run_id):
    with pytest.raises(ValueError, match="a run id is a plain name"):
        check_run_id(run_id)


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_train_refuses_a_run_id_that_is_a_path_and_writes_nothing(run_id, synth_root, tmp_path, capsys):
    models = tmp_path / "inner" / "models"
    before = sorted(tmp_path.rglob("*"))
    code = main(["train", "--data", str(synth_root), "--epochs", "1", "--models-dir", str(models), "--run-id", run_id])
    assert code == 2
    assert "a run id is a plain name" in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, inside models/ or out of it
    assert not Path("/tmp/abs").exists()


@pytest.fixture
def two_places(tiny_run, tmp_path) -> tuple[Path, Path]:
    """``models/`` with its served run, and a servable run outside it."""
    models = tmp_path / "models"
    shutil.copytree(tiny_run, models / "served")
    (models / "ACTIVE").write_text("served\n")
    outside = Path(shutil.copytree(tiny_run, tmp_path / "elsewhere" / "evil"))
    return models, outside


@pytest.mark.parametrize("how", ["absolute", "relative", "nested"])
def test_activate_accepts_only_a_run_of_the_models_folder(two_places, how, capsys):
    models, outside = two_places
    target = {"absolute": str(outside), "relative": "../elsewhere/evil", "nested": "served/../../elsewhere/evil"}[how]
    assert main(["activate", target, "--models-dir", str(models)]) == 2
    assert "a run id is a plain name" in capsys.readouterr().err
    assert (models / "ACTIVE").read_text() == "served\n"
    assert active_run_id(models) == "served"


@pytest.mark.parametrize("pointer", ["../elsewhere/evil", "ABSOLUTE", "served/../../elsewhere/evil"])
def test_an_active_file_naming_a_path_is_refused(two_places, pointer):
    models, outside = two_places
    shutil.copytree(models / "served", models / "newest")  # what is served when ACTIVE is refused
    (models / "ACTIVE").write_text((str(outside) if pointer == "ABSOLUTE" else pointer) + "\n")
    assert active_run_id(models) in {"served", "newest"}  # a run of models/, never the outside one
    assert {r.run_id for r in list_runs(models)} == {"served", "newest"}


def test_a_malicious_model_file_is_refused_by_safe_mode(tiny_run, tmp_path):
    """A model.keras whose Lambda layer runs a shell command when called: loading it for
    classification must refuse it, and the command must never run."""
    import keras

    from genre.serve.prediction import Classifier

    marker = tmp_path / "pwned"
    run = Path(shutil.copytree(tiny_run, tmp_path / "models" / "evil"))
    command = f"touch {marker}"
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda x: x + 0 * os.system(command))(inputs)
    keras.Model(inputs, outputs).save(run / "model.keras")
    marker.unlink(missing_ok=True)  # tracing the lambda while building the model ran it once

    with pytest.raises(ValueError, match="(?i)unsafe|lambda|safe_mode"):
        Classifier.load(run)
    assert not marker.exists()


# The CLI takes the dashboard's lock ---------------------------------------------------------


def test_the_cli_refuses_to_train_while_a_job_holds_the_lock(synth_root, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    # A dashboard job (this live process plays it) holds the folder.
    (models / jobs.LOCK_NAME).write_text(
        json.dumps(
            {
                "kind": "train",
                "job_id": "dash",
                "pid": os.getpid(),
                "started": 0,
                "log": "",
                "argv": [],
                "run_id": "other",
            }
        )
    )
    assert main(["train", "--data", str(synth_root), "--epochs", "1", "--models-dir", str(models)]) == 2
    assert "a job is already running (training run other" in capsys.readouterr().err
    assert sorted(p.name for p in models.iterdir()) == [jobs.LOCK_NAME]  # no run folder made


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "genre", *args],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_two_identical_train_commands_never_share_a_run_folder(synth_root, tmp_path):
    models = tmp_path / "models"
    # Many epochs: the winner must still be training when the test cancels it.
    command = [
        "train",
        "--data",
        str(synth_root),
        "--epochs",
        "1000",
        "--batch",
        "8",
        "--test-fraction",
        "0.34",
        "--val-fraction",
        "0.25",
        "--models-dir",
        str(models),
    ]
    first, second = _cli(*command), _cli(*command)
    lock_file = models / jobs.LOCK_NAME
    try:
        # One wins the lock and trains; the other is refused at once. The winner is held still as
        # soon as its run has begun (its config written, the folder's flock long released): on a
        # loaded machine it once finished all its epochs before the loser was refused.
        while True:
            try:
                held = json.loads(lock_file.read_text())
            except (OSError, ValueError):  # not there yet, or being written
                held = {}
            if held.get("run_dir") and (Path(held["run_dir"]) / "config.json").exists():
                break
            assert first.poll() is None or second.poll() is None, "both commands ended"
            time.sleep(0.05)
        winner, loser = (first, second) if held["pid"] == first.pid else (second, first)
        os.killpg(winner.pid, signal.SIGSTOP)
        assert loser.wait() == 2
        assert "a job is already running" in loser.stderr.read()
        lock = json.loads((models / jobs.LOCK_NAME).read_text())
        assert lock["pid"] == winner.pid and winner.poll() is None
        assert [p.name for p in models.iterdir() if p.is_dir()] == [lock["run_id"]]
        # The dashboard sees the terminal's run as the running job and will not start another.
        job = jobs.current_job(models)
        assert job is not None and job.pid == winner.pid and job.run_id == lock["run_id"]
        with pytest.raises(jobs.JobRunning):
            jobs.start_training(
                models,
                jobs.Settings(data_dir=str(synth_root), epochs=1, batch_size=8, test_fraction=0.34, val_fraction=0.25),
            )
    finally:
        for process in (first, second):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                os.killpg(process.pid, signal.SIGCONT)
    assert winner.wait() == 3  # cancelled: resumable
    assert not (models / jobs.LOCK_NAME).exists()  # released on the way out


def test_a_named_run_folder_is_created_exclusively(synth_root, tmp_path, capsys):
    models = tmp_path / "models"
    (models / "taken").mkdir(parents=True)
    (models / "taken" / "config.json").write_text("{}")
    assert (
        main(["train", "--data", str(synth_root), "--epochs", "1", "--models-dir", str(models), "--run-id", "taken"])
        == 2
    )
    assert "run " in capsys.readouterr().err and (models / "taken" / "config.json").read_text() == "{}"


# The dashboard's bind address ---------------------------------------------------------------


def test_the_dashboard_listens_on_loopback_only_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_a_dashboard_job_goes_on_under_the_lock_its_server_took(tmp_path, monkeypatch):
    """Until the dashboard writes the job's pid into the lock, the lock names the server (a
    process without 'genre' in its command): the job must still find it its own, not stale."""
    models = tmp_path / "models"
    models.mkdir()
    server = subprocess.Popen(["sleep", "60"])
    try:
        record = {
            "kind": "train",
            "job_id": "train-1",
            "pid": server.pid,
            "started": 0,
            "log": "",
            "argv": [],
            "run_dir": str(models / "r"),
        }
        (models / jobs.LOCK_NAME).write_text(json.dumps(record))
        monkeypatch.setenv(jobs.JOB_ENV, "train-1")
        with jobs.training_lock(models, models / "r", ["train"]):
            assert json.loads((models / jobs.LOCK_NAME).read_text())["job_id"] == "train-1"
        assert (models / jobs.LOCK_NAME).exists()  # the dashboard's lock: the dashboard clears it
        monkeypatch.setenv(jobs.JOB_ENV, "another")
        with jobs.training_lock(models, models / "r", ["train"]):  # not ours: judged, stale, replaced
            assert json.loads((models / jobs.LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        server.kill()
        server.wait()


def _rewrite_model_config(src: Path, dst: Path, change) -> None:
    """Copy a ``.keras`` archive, passing its config.json through ``change``."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


def _exec_as_layer(config) -> None:
    layer = config["config"]["layers"][-1]
    layer.update(module="builtins", class_name="exec", registered_name=None)


def _exec_as_lambda(config) -> None:
    layer = config["config"]["layers"][-1]
    function = {"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}
    layer.update(
        module="keras.layers",
        class_name="Lambda",
        registered_name=None,
        config={"name": layer["config"]["name"], "function": function, "arguments": {}},
    )


@pytest.mark.slow
@pytest.mark.parametrize("change", [_exec_as_layer, _exec_as_lambda], ids=["layer", "lambda"])
def test_a_model_config_naming_exec_is_one_line_in_the_cli(change, tiny_run, tmp_path):
    from synth import song, write

    run = Path(shutil.copytree(tiny_run, tmp_path / "models" / "evil"))
    _rewrite_model_config(tiny_run / "model.keras", run / "model.keras", change)
    audio = write(tmp_path / "a.wav", song("drones", 6.5, seed=4))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "genre", "classify", str(audio), "--run", str(run)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    ours = [line for line in out.stderr.strip().splitlines() if line.startswith("genre:")]
    assert len(ours) == 1 and "cannot be loaded" in ours[0], out.stderr


@pytest.mark.slow
def test_classify_names_a_folder_as_a_folder(tiny_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "genre", "classify", str(tmp_path), "--run", str(tiny_run)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{tmp_path}: a folder, not an audio file" in out.stderr and "no such file" not in out.stderr
