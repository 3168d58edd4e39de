"""The sidebar's Retrain panel (dashboard/retrain.py) in Streamlit's AppTest."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from genre.jobs import jobs
from genre.jobs.runs import active_run_id
from genre.train import hardware
from synth import make_dataset, tiny_gtzan

SUBMIT = "retrain_submit"

# Every test here may start job processes; kill leftovers (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def _script(models_dir: str) -> None:
    from pathlib import Path

    from dashboard.retrain import render_retrain_panel

    render_retrain_panel(Path(models_dir))


def panel(models: Path) -> AppTest:
    """A fresh browser session on the panel (a new tab, a reload or a restarted app)."""
    at = AppTest.from_function(_script, args=(str(models),), default_timeout=30)
    return at.run()


@pytest.fixture(autouse=True)
def _no_dataset_from_the_environment(monkeypatch):
    monkeypatch.delenv("GENRE_DATA", raising=False)


@pytest.fixture(autouse=True)
def gpus(monkeypatch):
    """``gpus(host, usable)`` sets what the panel finds; by default, this host's own count.
    The panel keeps its count for the server's life: each test starts afresh."""
    from dashboard import retrain

    def found(host: int, usable: int) -> None:
        monkeypatch.setattr(hardware, "training_gpus", lambda: hardware.Gpus(host, usable))
        retrain._gpus.clear()

    retrain._gpus.clear()
    yield found
    retrain._gpus.clear()


def fill(
    at: AppTest, data: Path | str, epochs=2, batch=8, test=0.34, val=0.25, model="fast", protocol="stratified"
) -> AppTest:
    at.sidebar.text_input(key="retrain_data").set_value(str(data))
    at.sidebar.selectbox(key="retrain_model").set_value(model)
    at.sidebar.selectbox(key="retrain_protocol").set_value(protocol)
    at.sidebar.text_input(key="retrain_epochs").set_value("" if epochs is None else str(epochs))
    at.sidebar.text_input(key="retrain_batch").set_value("" if batch is None else str(batch))
    at.sidebar.number_input(key="retrain_test").set_value(test)
    at.sidebar.number_input(key="retrain_val").set_value(val)
    return at


def submit(at: AppTest) -> AppTest:
    return at.sidebar.button(key=SUBMIT).click().run()


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.sidebar.button}


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def until_idle(at: AppTest, timeout: float = 240.0) -> AppTest:
    """Rerun (as the progress fragment does) until the job has ended."""
    deadline = time.monotonic() + timeout
    while SUBMIT not in keys(at):  # the form is back once no job runs
        assert time.monotonic() < deadline, "the job did not end in time"
        time.sleep(0.5)
        at.run()
    assert not at.exception, at.exception
    return at


def test_without_a_dataset_the_sidebar_says_how_to_get_one_and_downloads_it(models, tmp_path, monkeypatch):
    url, md5 = tiny_gtzan(tmp_path)
    monkeypatch.setenv("GENRE_GTZAN_URL", url)
    monkeypatch.setenv("GENRE_GTZAN_MD5", md5)
    at = panel(models)
    assert not at.exception
    help_text = texts(at.sidebar.info)
    for words in (
        "No dataset folder",
        "GTZAN",
        "<folder>/<genre>/<audio files>",
        "python -m genre download gtzan",
        "python -m genre scan",
    ):
        assert words in help_text

    at.sidebar.text_input(key="retrain_download_to").set_value(str(tmp_path / "data"))
    at.sidebar.button(key="retrain_download").click().run()
    assert "Downloading GTZAN" in texts(at.sidebar.markdown) or "GTZAN is ready" in texts(at.sidebar.success)
    until_idle(at)
    assert "GTZAN is ready" in texts(at.sidebar.success)
    assert at.sidebar.text_input(key="retrain_data").value == str(tmp_path / "data" / "genres")
    assert "No dataset folder" not in texts(at.sidebar.info)
    # A fresh session offers the downloaded folder too.
    assert panel(models).sidebar.text_input(key="retrain_data").value == str(tmp_path / "data" / "genres")


def test_a_failed_download_shows_why(models, tmp_path, monkeypatch):
    url, _ = tiny_gtzan(tmp_path)
    monkeypatch.setenv("GENRE_GTZAN_URL", url)
    monkeypatch.setenv("GENRE_GTZAN_MD5", "0" * 32)
    at = panel(models)
    at.sidebar.text_input(key="retrain_download_to").set_value(str(tmp_path / "data"))
    until_idle(at.sidebar.button(key="retrain_download").click().run())
    assert "checksum mismatch" in texts(at.sidebar.error)
    assert "checksum mismatch" in texts(at.sidebar.code)  # the log's last lines
    assert "retrain_redownload" in keys(at)


@pytest.fixture(scope="module")
def bad_roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("panel-bad")
    (base / "empty").mkdir()
    return {
        "empty": base / "empty",
        "one-genre": make_dataset(base / "one", genres=("noise",), songs=3),
        "few": make_dataset(base / "few", songs=2),
    }


@pytest.mark.parametrize(
    "folder, changes, message",
    [
        ("missing", {}, "dataset folder not found"),
        ("empty", {}, "no genre subfolders"),
        ("one-genre", {}, "only one genre"),
        ("few", {}, "too few songs for the stratified split"),
        ("synth", {"protocol": "fault-filtered"}, "too few songs for the fault-filtered split"),
        ("synth", {"epochs": 0}, "epochs must be a whole number from 1 to 1000"),
        ("synth", {"batch": 100000}, "batch size must be a whole number from 1 to 1024"),
    ],
)
def test_bad_settings_show_their_message_and_start_nothing(
    folder, changes, message, bad_roots, synth_root, models, tmp_path
):
    root = {"missing": tmp_path / "nowhere", "synth": synth_root}.get(folder) or bad_roots[folder]
    at = submit(fill(panel(models), root, **changes))
    assert not at.exception
    assert message in texts(at.sidebar.error).lower()
    assert SUBMIT in keys(at) and "retrain_cancel" not in keys(at)
    assert not models.exists() and not jobs._CHILDREN


@pytest.mark.parametrize("typed", ["abc", "2.5", "ten"])
def test_letters_in_epochs_or_batch_are_refused_not_taken_for_the_recipe(typed, models, synth_root):
    for field in ("epochs", "batch"):
        at = submit(fill(panel(models), synth_root, **{field: typed}))
        assert not at.exception
        name = "epochs" if field == "epochs" else "batch size"
        assert "must be a whole number" in texts(at.sidebar.error) and name in texts(at.sidebar.error).lower()
        assert repr(typed) in texts(at.sidebar.error)
        assert SUBMIT in keys(at) and not (models / jobs.LOCK_NAME).exists() and not jobs._CHILDREN


@pytest.mark.slow
def test_empty_epochs_and_batch_take_the_chosen_models_recipe(models, synth_root):
    from genre.models.registry import REGISTRY

    at = panel(models)
    assert at.sidebar.text_input(key="retrain_epochs").value == ""  # nothing remembered yet
    at = submit(fill(at, synth_root, epochs=None, batch=None, model="fast"))
    lock = json.loads((models / jobs.LOCK_NAME).read_text())
    assert "--epochs" not in lock["argv"] and "--batch" not in lock["argv"]
    # The job's record keeps its settings as chosen (the recipe unresolved); the panel reads them there.
    assert (
        lock["config"]["model"] == "fast" and lock["config"]["epochs"] is None and lock["config"]["batch_size"] is None
    )
    assert f"`{lock['run_id']}` · fast · stratified" in texts(at.sidebar.markdown)
    # The job itself resolves the recipe: its status and its config say so.
    status = models / lock["run_id"] / "status.json"
    wait_for_file(status, lambda s: s.get("epochs") and s.get("batches"))
    recipe = REGISTRY["fast"]
    assert json.loads(status.read_text())["epochs"] == recipe.epochs
    config = json.loads((models / lock["run_id"] / "config.json").read_text())
    assert config["train"]["epochs"] == recipe.epochs and config["train"]["batch_size"] == recipe.batch_size
    jobs.cancel(models, force=True)


def wait_for_file(path: Path, ready=lambda data: True, timeout: float = 240.0) -> dict:
    """Poll until ``path`` holds JSON that ``ready`` accepts (a job writes it as it goes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = json.loads(path.read_text())
            if ready(data):
                return data
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"{path} did not become ready"
        time.sleep(0.1)


@pytest.mark.slow
def test_retrain_from_the_sidebar_runs_refuses_a_second_job_and_promotes(models, synth_root, tiny_run):
    shutil.copytree(tiny_run, models / "served")  # what the app serves until a promotion
    other_tab = panel(models)  # opened before the job starts: its form is still there
    at = submit(fill(panel(models), synth_root))
    assert not at.exception, at.exception
    assert "Training" in texts(at.sidebar.markdown) and "retrain_cancel" in keys(at)
    assert not at.sidebar.warning  # this tab started it
    lock = json.loads((models / jobs.LOCK_NAME).read_text())
    run_id = lock["run_id"]

    # A second start from another tab is refused, and that tab shows the running job.
    submit(fill(other_tab, synth_root))
    assert "already running" in texts(other_tab.sidebar.warning)
    assert "retrain_cancel" in keys(other_tab)
    other_tab.run()  # the progress panel redraws itself: the warning stays while the job runs
    assert "already running" in texts(other_tab.sidebar.warning)
    assert json.loads((models / jobs.LOCK_NAME).read_text())["pid"] == lock["pid"]
    # A reload (or a restarted app) re-attaches to it.
    reloaded = panel(models)
    assert f"`{run_id}`" in texts(reloaded.sidebar.markdown) and "retrain_cancel" in keys(reloaded)

    until_idle(at)
    assert sorted(p.name for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")) == sorted(
        [run_id, "served"]
    )
    assert active_run_id(models) == "served"  # a finished job is not served until promoted
    assert f"Run `{run_id}` finished: song accuracy" in texts(at.sidebar.success)
    at.sidebar.button(key="retrain_activate").click().run()
    assert (models / "ACTIVE").read_text().strip() == run_id
    assert "is now the active run" in texts(at.sidebar.success)
    assert "retrain_activate" not in keys(at)
    # The settings are remembered for the next time.
    assert panel(models).sidebar.text_input(key="retrain_epochs").value == "2"


@pytest.mark.slow
def test_cancel_from_the_sidebar_then_resume(models, synth_root):
    at = submit(fill(panel(models), synth_root, epochs=200))
    run_dir = models / json.loads((models / jobs.LOCK_NAME).read_text())["run_id"]
    deadline = time.monotonic() + 240
    while not (run_dir / "history.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    at.run()
    assert "epoch" in texts(at.sidebar.caption)  # live numbers from status.json
    at.sidebar.button(key="retrain_cancel").click().run()
    until_idle(at)
    assert "was cancelled after" in texts(at.sidebar.info)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "cancelled"
    stopped = json.loads((run_dir / "status.json").read_text())
    epochs_done = len(json.loads((run_dir / "history.json").read_text()))
    at.sidebar.button(key="retrain_resume").click().run()
    assert "resumed" in texts(at.sidebar.markdown) and "retrain_cancel" in keys(at)
    # It did resume: a new process trains the same run on from the epoch after the last one
    # completed (a run started over would show epoch 1 first), and the panel follows it.
    resumed = wait_for_file(run_dir / "status.json", lambda s: s["pid"] != stopped["pid"] and (s.get("epoch") or 0) > 0)
    assert resumed["epoch"] == epochs_done + 1 and resumed["epochs"] == 200
    at.run()
    shown = re.search(r"epoch (\d+)/200", texts(at.sidebar.caption))
    assert shown and int(shown.group(1)) > epochs_done


def started_argv(models: Path) -> list[str]:
    """The command line of the job the panel started (it is then stopped: only its start matters)."""
    argv = json.loads((models / jobs.LOCK_NAME).read_text())["argv"]
    jobs.cancel(models, force=True)
    return argv


def test_without_a_gpu_the_panel_says_it_trains_on_the_cpu(models, synth_root, tmp_path, monkeypatch):
    # As on a host without NVIDIA's driver.
    monkeypatch.setattr(hardware, "NVIDIA_GPUS", tmp_path / "no-driver")
    monkeypatch.setattr(hardware, "DEVICES", tmp_path / "no-dev")
    at = panel(models)
    assert not at.exception
    assert "Trains on the CPU: no GPU found." in texts(at.sidebar.caption)
    assert "retrain_strategy" not in {b.key for b in at.sidebar.selectbox}


@pytest.mark.parametrize(
    "host, usable, line",
    [
        (1, 1, "Trains on 1 GPU."),
        (1, 0, "Trains on the CPU: this host has 1 GPU, but TensorFlow sees none"),
        (2, 0, "Trains on the CPU: this host has 2 GPUs, but TensorFlow sees none"),
    ],
)
def test_one_device_or_none_is_said_not_offered(host, usable, line, gpus, models, synth_root):
    gpus(host, usable)
    # Remembered from a time with more GPUs: not offered now, so not asked for.
    jobs.remember_settings(models, jobs.Settings(str(synth_root), strategy="mirrored"))
    at = panel(models)
    assert line in texts(at.sidebar.caption)
    assert "retrain_strategy" not in {b.key for b in at.sidebar.selectbox}
    at = submit(fill(at, synth_root))
    assert not at.exception and not at.sidebar.error, texts(at.sidebar.error)
    argv = started_argv(models)
    assert argv[argv.index("--strategy") + 1] == "auto"


def test_with_several_gpus_the_panel_offers_the_strategy(gpus, models, synth_root):
    gpus(2, 2)
    at = panel(models)
    choice = at.sidebar.selectbox(key="retrain_strategy")
    assert (
        choice.options == ["auto: all 2 GPUs", "one device (the first GPU)", "all 2 GPUs (mirrored)"]
        and choice.value == "auto"
    )
    assert "Trains on" not in texts(at.sidebar.caption)
    choice.set_value("mirrored")
    at = submit(fill(at, synth_root))
    assert not at.exception and not at.sidebar.error, texts(at.sidebar.error)
    argv = started_argv(models)
    assert argv[argv.index("--strategy") + 1] == "mirrored"
    until_idle(at)
    # Remembered for the next time.
    assert panel(models).sidebar.selectbox(key="retrain_strategy").value == "mirrored"


def test_a_failed_run_shows_the_end_of_its_log_and_can_be_resumed(models):
    run = models / "broken"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {}, "model": "fast"}))
    (run / "status.json").write_text(
        json.dumps({"state": "failed", "pid": 4242, "message": "MemoryError: out of memory"})
    )
    (run / "train.log").write_text(
        "epoch 3\nTraceback (most recent call last):\nMemoryError: out of memory\ngenre: error: out of memory\n"
    )
    record = {
        "kind": "train",
        "job_id": "j",
        "pid": 4242,
        "started": 0,
        "log": str(run / "train.log"),
        "argv": [],
        "run_id": "broken",
        "run_dir": str(run),
        "progress": str(run / "status.json"),
        "returncode": 2,
    }
    (models / jobs.JOBS_DIR).mkdir()
    (models / jobs.JOBS_DIR / jobs.LAST_JOB).write_text(json.dumps(record))
    at = panel(models)
    assert "Run `broken` failed: MemoryError: out of memory" in texts(at.sidebar.error)
    assert "genre: error: out of memory" in texts(at.sidebar.code)
    assert "retrain_resume" in keys(at)
    at.sidebar.button(key="retrain_dismiss").click().run()
    assert not texts(at.sidebar.error)
    # Still listed for a resume among the interrupted runs.
    assert "retrain_resume_other" in keys(at)


def test_stopped_runs_are_offered_for_resume_but_not_one_trained_from_a_terminal(models, tiny_run):
    for name, status in {
        "stopped": {"state": "cancelled", "epoch": 5, "epochs": 8},
        "busy": {"state": "running", "pid": os.getpid()},
    }.items():
        shutil.copytree(tiny_run, models / name)
        (models / name / "status.json").write_text(json.dumps(status))
    shutil.copytree(tiny_run, models / "served")
    (models / "ACTIVE").write_text("served\n")
    at = panel(models)
    assert not at.exception
    # The cancelled run was evaluated as it stood; it is still resumable. The busy one is not.
    assert at.sidebar.selectbox(key="retrain_interrupted").options == ["stopped · cancelled · 8 epochs"]
    assert [o.split(" · ")[0] for o in at.sidebar.selectbox(key="retrain_promote_choice").options] == ["stopped"]


def test_the_panel_names_the_genres_of_the_folder_with_fewer_than_three_artists(models, tmp_path):
    # GTZAN's names: rock.00000-00001 are Morphine's, blues.00000-00001 John Lee Hooker's.
    from synth import GENRES, song, write

    data = tmp_path / "gtzan-like"
    for genre, sound in zip(("blues", "rock"), GENRES):
        (data / genre).mkdir(parents=True)
        for k in range(2):
            write(data / genre / f"{genre}.{k:05d}.wav", song(sound, 6.0, k))
    at = panel(models)
    at.session_state["retrain_data"] = str(data)  # the folder the panel holds (as after a download)
    at.run()
    assert not at.exception
    assert "Fewer than 3 artists in this folder: blues (1 artist), rock (1 artist)." in texts(at.sidebar.caption)
