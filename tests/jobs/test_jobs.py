"""Background jobs (genre.jobs.jobs): validation, the lock, cancel/resume, SIGKILL safety, download."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genre.jobs import jobs
from genre.jobs.joblog import log_tail
from genre.jobs.runs import active_run_id, list_runs, set_active
from genre.processes import create_exclusive, proc_stat
from synth import make_dataset, tiny_gtzan

# Every test here may start job processes; kill leftovers (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def tiny_settings(root: Path, **changes) -> jobs.Settings:
    """Settings the 18-song synthetic set can split, for a job of a few seconds."""
    values = {
        "data_dir": str(root),
        "model": "fast",
        "epochs": 2,
        "batch_size": 8,
        "test_fraction": 0.34,
        "val_fraction": 0.25,
    }
    return jobs.Settings(**{**values, **changes})


def wait_for(predicate, timeout: float = 240.0, poll: float = 0.05, models: Path | None = None):
    """Poll ``predicate`` until it returns something true; with ``models``, give up as soon as
    that folder's job has ended, showing how."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if models is not None and jobs.current_job(models) is None:
            ended = jobs.last_job(models)
            raise AssertionError(f"the job ended early ({ended.state}: {ended.message}):\n{log_tail(ended.log)}")
        time.sleep(poll)
    running = jobs.current_job(models) if models is not None else None
    detail = f" (job {running.state}, status {running.status}):\n{log_tail(running.log)}" if running else ""
    raise TimeoutError(f"condition not met in {timeout:.0f} s{detail}")


def read(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


# Settings ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad")
    (base / "empty").mkdir()
    (base / "no-audio" / "rock").mkdir(parents=True)
    (base / "no-audio" / "rock" / "notes.txt").write_text("not audio")
    return {
        "empty": base / "empty",
        "no-audio": base / "no-audio",
        "one-genre": make_dataset(base / "one", genres=("drones",), songs=3),
        "few": make_dataset(base / "few", songs=2),
        "missing": base / "nowhere",
    }


@pytest.mark.parametrize(
    "case, changes, message",
    [
        ("missing", {}, "dataset folder not found"),
        ("blank", {"data_dir": "  "}, "choose a dataset folder"),
        ("empty", {}, "no genre subfolders"),
        ("no-audio", {}, "no genre subfolders"),
        ("one-genre", {}, "only one genre"),
        ("few", {}, "too few songs for the stratified split"),
        ("synth", {"protocol": "fault-filtered"}, "too few songs for the fault-filtered split"),
        ("synth", {"protocol": "cv", "folds": 7}, "too few songs for the cv split"),
        ("synth", {"protocol": "cv", "folds": 1}, "number of folds must be a whole number from 2"),
        ("synth", {"epochs": 0}, "epochs must be a whole number from 1 to 1000"),
        ("synth", {"epochs": 1001}, "epochs must be a whole number from 1 to 1000"),
        ("synth", {"batch_size": 0}, "batch size must be a whole number from 1 to 1024"),
        ("synth", {"batch_size": 5000}, "batch size must be a whole number from 1 to 1024"),
        ("synth", {"model": "huge"}, "unknown model 'huge'"),
        ("synth", {"protocol": "random"}, "unknown split protocol"),
        ("synth", {"test_fraction": 0.0}, "test share must be between 0 and 1"),
        ("synth", {"val_fraction": 1.0}, "validation share must be at least 0 and below 1"),
        (
            "synth",
            {"strategy": "horovod"},
            r"unknown distribution strategy 'horovod'; choose one of auto, none, mirrored$",
        ),
        ("synth", {"strategy": "multi-worker"}, "multi-worker training starts from a terminal on every host"),
    ],
)
def test_bad_settings_are_refused_and_start_nothing(case, changes, message, bad_folders, synth_root, models):
    root = synth_root if case in ("synth", "blank") else bad_folders[case]
    settings = tiny_settings(root, **changes)
    with pytest.raises(jobs.SettingsError, match=message):
        jobs.validate_settings(settings)
    with pytest.raises(jobs.SettingsError, match=message):
        jobs.start_training(models, settings)
    assert not models.exists(), "a refused job must not touch the models folder"
    assert not jobs._CHILDREN


def test_good_settings_report_what_the_job_will_see(synth_root):
    summary = jobs.validate_settings(tiny_settings(synth_root))
    assert summary["songs"] == 18
    assert summary["genres"] == {"clicks": 6, "drones": 6, "noise": 6}
    assert sum(summary["split"].values()) == 18 and all(summary["split"].values())


def test_settings_are_remembered_and_the_env_var_is_the_default(models, synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_DATA", str(tmp_path / "from-env"))
    assert jobs.default_data_dir(models) == str(tmp_path / "from-env")
    jobs.remember_settings(models, tiny_settings(synth_root, epochs=7))
    assert jobs.default_data_dir(models) == str(synth_root)
    assert jobs.remembered_settings(models).epochs == 7
    shutil.copytree(synth_root, tmp_path / "moved")
    jobs.remember_settings(models, tiny_settings(tmp_path / "moved"))
    shutil.rmtree(tmp_path / "moved")
    # The remembered folder is gone: the environment's folder is offered again.
    assert jobs.default_data_dir(models) == str(tmp_path / "from-env")


def test_the_strategy_is_remembered_and_passed_to_the_job(models, synth_root):
    from genre.cli import build_parser

    settings = tiny_settings(synth_root, strategy="mirrored")
    args = settings.cli_args()
    assert args[args.index("--strategy") + 1] == "mirrored"
    assert build_parser().parse_args(["train", *args]).strategy == "mirrored"
    assert settings.config().strategy == "mirrored"
    jobs.remember_settings(models, settings)
    assert jobs.remembered_settings(models).strategy == "mirrored"
    # Settings remembered before the strategy was one ask for the default.
    record = json.loads((models / jobs.JOBS_DIR / jobs.SETTINGS).read_text())
    del record["strategy"]
    (models / jobs.JOBS_DIR / jobs.SETTINGS).write_text(json.dumps(record))
    assert jobs.remembered_settings(models).strategy == "auto"
    assert jobs.Settings.from_dict({"data_dir": "x"}).cli_args()[-2:] == ["--strategy", "auto"]


# The lock -----------------------------------------------------------------------------------


def _write_lock(models: Path, pid: int, **extra) -> Path:
    models.mkdir(parents=True, exist_ok=True)
    record = {"kind": "train", "job_id": "x", "pid": pid, "started": time.time(), "log": "", "argv": [], **extra}
    (models / jobs.LOCK_NAME).write_text(json.dumps(record))
    return models / jobs.LOCK_NAME


def test_a_lock_whose_process_is_gone_is_cleared_on_the_next_look(models):
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    lock = _write_lock(models, done.pid)
    assert jobs.current_job(models) is None
    assert not lock.exists()


def test_a_zombie_or_a_reused_pid_is_not_a_job(models):
    # A child that exited but was not reaped (the app that started it is busy or gone).
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for(lambda: (proc_stat(zombie.pid) or ("Z",))[0] == "Z", timeout=10)
    lock = _write_lock(models, zombie.pid)
    assert jobs.current_job(models) is None and not lock.exists()
    # A live process that is not ours: the pid was reused after the job died.
    other = subprocess.Popen(["sleep", "30"])
    try:
        lock = _write_lock(models, other.pid)
        assert jobs.current_job(models) is None and not lock.exists()
        lock = _write_lock(models, other.pid, proc_start=1)  # a different start time
        assert jobs.current_job(models) is None and not lock.exists()
    finally:
        other.kill()
        other.wait()
    # Garbage in the lock cannot hold the folder forever.
    models.joinpath(jobs.LOCK_NAME).write_text("{not json")
    assert jobs.current_job(models) is None


def test_the_lock_is_created_exclusively(models):
    models.mkdir()
    assert create_exclusive(models / jobs.LOCK_NAME, {"pid": 1})
    assert not create_exclusive(models / jobs.LOCK_NAME, {"pid": 2})
    assert read(models / jobs.LOCK_NAME) == {"pid": 1}
    assert [p.name for p in models.iterdir()] == [jobs.LOCK_NAME]  # no temporary files left


def test_a_terminal_run_records_its_settings_in_the_lock(models):
    config = {"model": "seed", "protocol": "cv", "data_root": "/data"}
    with jobs.training_lock(models, models / "run", ["train", "--data", "/data"], config):
        job = jobs.current_job(models)
        assert job.config == config and read(models / jobs.LOCK_NAME)["config"] == config
        assert not job.resumed
    assert not (models / jobs.LOCK_NAME).exists()


# Jobs that train ----------------------------------------------------------------------------


@pytest.mark.slow
def test_cancel_stops_the_run_which_resumes_where_it_stopped(models, synth_root):
    settings = tiny_settings(synth_root, epochs=8)
    job = jobs.start_training(models, settings, run_id="to-cancel")
    run = models / "to-cancel"
    # The job's record keeps the settings it runs with (the sidebar reads them there).
    assert job.config == read(models / jobs.LOCK_NAME)["config"]
    assert job.config["model"] == "fast" and job.config["epochs"] == 8 and job.config["run_id"] == "to-cancel"
    with pytest.raises(jobs.JobRunning, match="already running"):
        jobs.start_training(models, tiny_settings(synth_root))
    assert [r.name for r in models.iterdir() if not r.name.startswith(".")] == ["to-cancel"]

    wait_for(lambda: len(read(run / "history.json") or []) >= 1, models=models)
    cancelled = jobs.cancel(models)
    assert cancelled.pid == job.pid and cancelled.state == "cancelling"
    assert read(models / jobs.LOCK_NAME)["cancel_requested"]
    ended = jobs.wait(models, timeout=240)
    assert ended.state == "cancelled" and ended.resumable and ended.returncode == 3
    assert read(run / "status.json")["state"] == "cancelled"
    assert not (models / jobs.LOCK_NAME).exists()
    before = read(run / "history.json")
    assert 1 <= len(before) < 8

    again = jobs.start_training(models, resume=run)
    assert again.resumed and again.config == read(run / "config.json")["train"]
    resumed = jobs.wait(models, timeout=240)
    assert resumed.state == "finished", log_tail(run)
    history = read(run / "history.json")
    assert [e["epoch"] for e in history] == list(range(1, 9))
    assert history[: len(before)] == before  # the completed epochs were kept, not re-run
    assert read(run / "metrics.json")["test_songs"] > 0
    with pytest.raises(jobs.SettingsError, match="already finished"):
        jobs.start_training(models, resume=run)


@pytest.mark.slow
def test_a_dashboard_job_trains_on_this_host_even_with_tf_config_set(models, synth_root, monkeypatch):
    """TF_CONFIG in the server's environment is for runs started by hand on several hosts: a
    dashboard job drops it (else --strategy auto would wait for peers), and resuming a
    multi-worker run from the dashboard finishes it here."""
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert "TF_CONFIG" not in jobs.job_environment("x") and jobs.job_environment("x")[jobs.JOB_ENV] == "x"
    jobs.start_training(models, tiny_settings(synth_root, epochs=1), run_id="here")
    assert jobs.wait(models, timeout=240).state == "finished"
    run = models / "here"
    assert read(run / "config.json")["distribution"]["resolved"] == "none"
    # As if a multi-worker run had lost a worker: the dashboard resumes it on this host.
    config = read(run / "config.json")
    config["train"]["strategy"] = "multi-worker"
    (run / "config.json").write_text(json.dumps(config))
    (run / "status.json").write_text(json.dumps(read(run / "status.json") | {"state": "failed"}))
    (run / "metrics.json").unlink()
    job = jobs.start_training(models, resume=run)
    assert job.argv[-2:] == ["--strategy", "auto"]
    assert jobs.wait(models, timeout=240).state == "finished", log_tail(run)


@pytest.fixture(scope="module")
def slow_root(tmp_path_factory) -> Path:
    """60 songs: a `fast` epoch at batch 2 takes a second or so, long enough to be caught in the
    middle."""
    return make_dataset(tmp_path_factory.mktemp("slow"), songs=20, seed=5)


@pytest.mark.slow
def test_a_job_killed_mid_epoch_harms_nothing_and_resumes(models, tiny_run, slow_root):
    from genre.serve.prediction import Classifier

    shutil.copytree(tiny_run, models / "served")
    set_active("served", models)
    # The kill lands within a poll (20 ms) of the first completed epoch, mid-epoch or between
    # epochs, both of which must resume from the last completed one; epochs of a second or so
    # leave the job four more it cannot finish before then.
    settings = tiny_settings(slow_root, epochs=5, batch_size=2)
    job = jobs.start_training(models, settings, run_id="killed")
    run = models / "killed"
    wait_for(lambda: len(read(run / "history.json") or []) >= 1, timeout=300, poll=0.02, models=models)
    os.kill(job.pid, signal.SIGKILL)
    # Look as a second app instance would: it did not start the job, so cannot reap it.
    child = jobs._CHILDREN.pop(job.pid)
    wait_for(lambda: (proc_stat(job.pid) or ("Z",))[0] == "Z", timeout=10)
    assert (models / jobs.LOCK_NAME).exists()

    # The served run is untouched and still serves.
    assert active_run_id(models) == "served"
    classifier = Classifier.load(models / "served")
    song = next(slow_root.glob("clicks/*.wav"))
    assert classifier.classify(song).vote_genre in classifier.genres

    assert jobs.current_job(models) is None  # the next look clears the stale lock
    assert not (models / jobs.LOCK_NAME).exists()
    assert child.poll() is not None  # and reaped the zombie
    ended = jobs.last_job(models)
    assert ended.state == "killed" and ended.resumable and ended.returncode == -signal.SIGKILL
    completed = read(run / "history.json")
    assert 1 <= len(completed) < 5

    jobs.start_training(models, resume=run)
    resumed = jobs.wait(models, timeout=240)
    assert resumed.state == "finished", log_tail(run)
    history = read(run / "history.json")
    assert [e["epoch"] for e in history] == list(range(1, 6))
    # Continued from the last completed epoch. A kill between an epoch's history line and its
    # checkpoint redoes that epoch; seeded, it comes out the same but for its wall time.
    figures = lambda entries: [{k: v for k, v in e.items() if k != "seconds"} for e in entries]  # noqa: E731
    assert figures(history[: len(completed)]) == figures(completed)
    assert read(run / "metrics.json")["test_songs"] > 0
    assert active_run_id(models) == "served"  # finishing does not promote
    assert {r.run_id for r in list_runs(models)} == {"served", "killed"}


@pytest.mark.slow
def test_a_finishing_job_does_not_change_the_served_run(models, tiny_run, synth_root, tmp_path, monkeypatch):
    """Without models/ACTIVE the app serves the newest finished run; starting a job pins the
    current one, so only *Make active* changes what is served. Relative paths are taken from
    the caller's working folder, not the job's."""
    shutil.copytree(tiny_run, models / "served")
    assert active_run_id(models) == "served" and not (models / "ACTIVE").exists()
    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(synth_root, tmp_path)
    jobs.start_training("models", tiny_settings(data, epochs=1), run_id="newer")
    assert jobs.wait(models, timeout=240).state == "finished"
    assert (models / "newer" / "metrics.json").is_file()
    assert active_run_id(models) == "served"
    with pytest.raises(jobs.SettingsError, match="exists already"):
        jobs.start_training(models, tiny_settings(synth_root), run_id="newer")


@pytest.mark.slow
def test_a_job_that_fails_says_why(models, synth_root):
    """The CLI's one-line error reaches the sidebar; here the run folder cannot be created."""
    models.mkdir()
    (models / "blocked").write_text("a file where the run folder would go")
    with pytest.raises(jobs.SettingsError, match="exists already"):
        jobs.start_training(models, tiny_settings(synth_root), run_id="blocked")
    # A dataset that vanishes between the check and the job: the job itself fails.
    data = models.parent / "vanishing"
    shutil.copytree(synth_root, data)
    job = jobs.start_training(models, tiny_settings(data), run_id="fails")
    shutil.rmtree(data)
    ended = jobs.wait(models, timeout=240)
    assert ended.state == "failed" and not ended.resumable
    assert "dataset folder not found" in ended.message
    assert "genre: error: dataset folder not found" in log_tail(job.log)


# The download job ---------------------------------------------------------------------------


def test_download_runs_as_a_job_and_selects_the_new_folder(models, tmp_path):
    url, md5 = tiny_gtzan(tmp_path)
    job = jobs.start_download(models, to=tmp_path / "data", url=url, md5=md5)
    assert job.kind == "download" and (models / jobs.LOCK_NAME).exists()
    ended = jobs.wait(models, timeout=240)
    assert ended.state == "finished", log_tail(ended.log)
    assert ended.result == tmp_path / "data" / "genres"
    progress = read(models / jobs.JOBS_DIR / jobs.DOWNLOAD_PROGRESS)
    assert progress["done"] == progress["total"] > 0
    assert jobs.default_data_dir(models) == str(tmp_path / "data" / "genres")
    assert jobs.validate_settings(jobs.Settings(str(ended.result), test_fraction=0.5, val_fraction=0))["songs"] == 4


def test_a_failed_download_shows_the_reason(models, tmp_path):
    url, _ = tiny_gtzan(tmp_path)
    jobs.start_download(models, to=tmp_path / "data", url=url, md5="0" * 32)
    ended = jobs.wait(models, timeout=240)
    assert ended.state == "failed" and ended.result is None
    assert "md5" in ended.message.lower() or "checksum" in ended.message.lower()


@pytest.mark.parametrize("force", [False, True])
def test_a_download_can_be_cancelled(models, tmp_path, force):
    """A server that accepts the connection and never answers: the job waits until cancelled."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/genres.tar.gz"
        job = jobs.start_download(models, to=tmp_path / "data", url=url, md5="0" * 32)
        assert jobs.current_job(models).state in ("starting", "downloading")
        assert jobs.cancel(models, force=force).state == "cancelling"
        ended = jobs.wait(models, timeout=60)
    assert ended.job_id == job.job_id and ended.state == "cancelled"
    assert ended.returncode == -(signal.SIGKILL if force else signal.SIGTERM)
    assert jobs.cancel(models) is None  # nothing left to cancel


def test_the_server_side_never_loads_keras(synth_root):
    """Checking settings and drawing the panel happen in the Streamlit server: no TensorFlow there."""
    code = (
        "import sys, dashboard.retrain\n"
        "from genre.train import hardware; from genre.jobs import jobs\n"
        f"jobs.validate_settings(jobs.Settings({str(synth_root)!r}, test_fraction=0.34, val_fraction=0.25))\n"
        # Without NVIDIA's driver the GPUs are counted without TensorFlow.
        f"assert hardware.training_gpus({str(synth_root / 'no-driver')!r}, {str(synth_root / 'no-dev')!r}) == "
        f"hardware.Gpus(0, 0)\n"
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=jobs.REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
