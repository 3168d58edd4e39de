"""Who may act in the dashboard, and which server folders it may touch.

AppTest has no browser connection; ``dashboard.access.client_address`` is patched to play a
visitor from loopback (conftest) or from another machine (here)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_retrain_panel import SUBMIT, fill, keys, panel, submit, texts

from dashboard import access
from genre.data.dataset import load_dataset
from genre.data.folders import FolderRefused, check_inside
from genre.jobs import jobs

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
CONTROLS = {SUBMIT, "retrain_download", "retrain_cancel", "retrain_promote", "retrain_activate", "retrain_resume_other"}

pytestmark = pytest.mark.usefixtures("no_stray_jobs")


@pytest.fixture
def remote(monkeypatch):
    monkeypatch.setattr(access, "client_address", lambda: "203.0.113.7")


@pytest.fixture
def served(tiny_run, tmp_path) -> Path:
    """A models folder with two finished runs, ``tiny-fast`` active."""
    models = tmp_path / "models"
    shutil.copytree(tiny_run, models / "tiny-fast")
    shutil.copytree(tiny_run, models / "other")
    (models / "ACTIVE").write_text("tiny-fast\n")
    return models


def _hold_lock(models: Path, **record) -> None:
    """A running training job, played by this (live) process."""
    models.mkdir(parents=True, exist_ok=True)
    base = {
        "kind": "train",
        "job_id": "j1",
        "pid": os.getpid(),
        "started": time.time(),
        "log": "",
        "argv": [],
        "run_id": "busy",
    }
    (models / jobs.LOCK_NAME).write_text(json.dumps(base | record))


def test_a_remote_visitor_gets_no_job_controls(remote, served, synth_root):
    at = panel(served)
    assert not at.exception
    assert not keys(at) & CONTROLS
    assert "open only to the operator" in texts(at.sidebar.caption)
    assert not at.sidebar.text_input  # no dataset or download folder to type, nothing to probe
    # A running job can be watched, not cancelled.
    _hold_lock(served)
    at = panel(served)
    assert "Training" in texts(at.sidebar.markdown) and "retrain_cancel" not in keys(at)


def test_a_remote_visitor_cannot_make_a_run_active_from_the_overview(remote, served, monkeypatch):
    monkeypatch.setenv("GENRE_MODELS_DIR", str(served))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.sidebar.selectbox(key="run_choice").set_value("other").run()
    assert not at.exception
    assert "Make active" not in [b.label for b in at.button]


def test_the_operators_password_unlocks_the_controls_for_a_remote_visitor(remote, served):
    at = AppTest.from_function(_panel_script, args=(str(served),), default_timeout=30)
    at.secrets["jobs_password"] = "correct horse"
    at.run()
    assert not keys(at) & CONTROLS
    at.sidebar.text_input(key="jobs_password_input").set_value("wrong")
    at.sidebar.button[0].click().run()
    assert "Wrong password." in texts(at.sidebar.error) and not keys(at) & CONTROLS
    at.sidebar.text_input(key="jobs_password_input").set_value("correct horse")
    at.sidebar.button[0].click().run()
    assert SUBMIT in keys(at) and "retrain_promote" in keys(at)


def _panel_script(models_dir: str) -> None:
    from pathlib import Path

    from dashboard.retrain import render_retrain_panel

    render_retrain_panel(Path(models_dir))


def test_the_operator_on_loopback_has_the_controls(served):
    assert {SUBMIT, "retrain_promote", "retrain_download"} <= keys(panel(served))


# Operator roots ----------------------------------------------------------------------------


def test_a_folder_outside_the_roots_gets_the_same_answer_whether_it_exists_or_not(tmp_path):
    roots = [(tmp_path / "allowed").resolve()]
    (tmp_path / "allowed" / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    assert check_inside(tmp_path / "allowed" / "data", roots) == roots[0] / "data"
    assert check_inside(tmp_path / "allowed" / "not-yet", roots) == roots[0] / "not-yet"  # a download target
    (tmp_path / "allowed" / "link").symlink_to(tmp_path / "outside")
    answers = []
    for folder in [
        "/etc",
        "/no/such/folder",
        str(tmp_path / "outside"),
        str(tmp_path / "allowed" / "link"),
        "../allowed",
        "relative/data",
    ]:
        with pytest.raises(FolderRefused) as caught:
            check_inside(folder, roots)
        answers.append(str(caught.value).replace(folder, "<folder>"))
    assert len(set(answers)) == 1, answers
    assert "not inside the folders this app may use" in answers[0] and "does not exist" not in answers[0]


def test_the_panel_refuses_folders_outside_the_roots_alike_and_starts_nothing(
    models, synth_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("GENRE_DATA_ROOTS", str(synth_root))
    outside = tmp_path / "elsewhere"
    shutil.copytree(synth_root, outside)  # a real dataset, but not the operator's to offer
    errors = {}
    for folder in (outside, tmp_path / "missing", Path("/etc")):
        at = submit(fill(panel(models), folder))
        assert not at.exception
        errors[folder] = texts(at.sidebar.error).replace(str(folder), "<folder>")
        assert SUBMIT in keys(at) and not (models / jobs.LOCK_NAME).exists() and not jobs._CHILDREN
        assert "No dataset folder yet" in texts(at.sidebar.info)  # nothing told about the folder
    assert len(set(errors.values())) == 1 and "not inside the folders this app may use" in errors[outside]
    # The download target too.
    at = panel(models)
    at.sidebar.text_input(key="retrain_download_to").set_value(str(tmp_path / "dl"))
    at.sidebar.button(key="retrain_download").click().run()
    assert "not inside the folders this app may use" in texts(at.sidebar.error) and not jobs._CHILDREN


# The panel's other manners ------------------------------------------------------------------


def test_make_active_switches_this_tabs_run_and_model(served, monkeypatch):
    monkeypatch.setenv("GENRE_MODELS_DIR", str(served))
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert at.sidebar.selectbox(key="run_choice").value == "tiny-fast"
    at.sidebar.selectbox(key="retrain_promote_choice").set_value("other").run()
    at.sidebar.button(key="retrain_promote").click().run()
    assert not at.exception
    assert (served / "ACTIVE").read_text().strip() == "other"
    assert at.sidebar.selectbox(key="run_choice").value == "other"  # the pages show and serve it
    assert "Run `other`" in " ".join(m.value for m in at.subheader)


def test_the_active_runs_dataset_is_offered_when_it_is_on_this_machine(served, synth_root, monkeypatch):
    monkeypatch.delenv("GENRE_DATA", raising=False)
    monkeypatch.delenv("GENRE_DATA_ROOTS")  # the default roots include the runs' datasets
    at = panel(served)
    assert at.sidebar.text_input(key="retrain_data").value == str(synth_root.resolve())
    assert "No dataset folder yet" not in texts(at.sidebar.info)
    assert not any(e.proto.expanded for e in at.sidebar.expander)  # the form stays compact


def test_starting_says_whether_the_dataset_is_decoded_or_cached(models, synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_CACHE_DIR", str(tmp_path / "cache"))
    _hold_lock(
        models,
        argv=["-m", "genre", "train", "--data", str(synth_root)],
        config={"data_root": str(synth_root)},
        job_id="new",
    )
    assert "decoding it the first time" in texts(panel(models).sidebar.caption)
    load_dataset(synth_root, progress=False)
    _hold_lock(
        models,
        argv=["-m", "genre", "train", "--data", str(synth_root)],
        config={"data_root": str(synth_root)},
        job_id="new-again",
    )
    assert "loading TensorFlow and the cached dataset" in texts(panel(models).sidebar.caption)
    _hold_lock(models, argv=["-m", "genre", "train", "--resume", str(models / "busy")], job_id="resumed")
    assert "the cached dataset" in texts(panel(models).sidebar.caption)


# Proxies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": ""},
        {"X-Forwarded-For": "   "},
        {"X-Client-IP": "203.0.113.7"},
        {"True-Client-IP": "203.0.113.7"},
        {"CF-Connecting-IP": "203.0.113.7"},
        {"Forwarded": "for=203.0.113.7"},
        {"Via": "1.1 proxy"},
    ],
)
def test_any_forwarding_header_makes_a_loopback_visitor_remote(headers, monkeypatch):
    monkeypatch.setattr(access, "request_headers", lambda: {k.lower(): v for k, v in headers.items()})
    assert not access.is_local()


def test_a_loopback_visitor_without_forwarding_headers_is_local(monkeypatch):
    monkeypatch.setattr(access, "request_headers", lambda: {"host": "localhost:8501", "user-agent": "x"})
    assert access.is_local()


def test_behind_proxy_in_the_secrets_makes_nobody_local(served):
    """A same-machine proxy that sets no header at all: the operator's setting says so."""
    at = AppTest.from_function(_panel_script, args=(str(served),), default_timeout=30)
    at.secrets["behind_proxy"] = True
    at.run()
    assert not at.exception
    assert not keys(at) & CONTROLS
    assert "open only to the operator" in texts(at.sidebar.caption)
