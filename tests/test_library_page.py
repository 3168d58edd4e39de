"""The Library page in AppTest: a scan as a background job, re-attach, the table, the timeline,
exports, tag writing behind a confirmation, and a remote visitor who cannot scan."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import streamlit_webrtc  # noqa: F401  before TensorFlow loads (see streamlit_app.py)
from streamlit.testing.v1 import AppTest

from genre.jobs import jobs
from genre.serve import tags
from synth import song, write

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_stray_jobs")]


@pytest.fixture
def models(tiny_run, tmp_path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(tiny_run, folder / "tiny-fast")
    (folder / "ACTIVE").write_text("tiny-fast\n")
    return folder


@pytest.fixture
def music(tmp_path) -> Path:
    root = tmp_path / "music"  # under pytest's folder: inside the operator's roots (conftest)
    (root / "sub").mkdir(parents=True)
    write(root / "a.flac", song("drones", 6.5, seed=1))
    write(root / "sub" / "b.ogg", song("noise", 6.5, seed=2))
    write(root / "sub" / "c.wav", song("clicks", 7.0, seed=3))
    (root / "broken.mp3").write_text("no mp3")
    return root


def page(models: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("GENRE_MODELS_DIR", str(models))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at.switch_page("pages/library.py").run()


def until_done(at: AppTest, timeout: float = 180) -> AppTest:
    deadline = time.monotonic() + timeout
    while jobs.current_job(at_models(at)) is not None:
        assert time.monotonic() < deadline, "the scan did not end in time"
        time.sleep(0.3)
    return at.run()


def at_models(at) -> Path:
    return Path(__import__("os").environ["GENRE_MODELS_DIR"])


def test_scan_a_folder_browse_filter_export_and_write_tags(models, music, monkeypatch):
    at = page(models, monkeypatch)
    assert not at.exception, at.exception
    assert "No scan yet" in at.info[0].value
    at.text_input[0].set_value(str(music))
    at.button[0].click().run()
    assert not at.exception, at.exception
    job = jobs.current_job(models) or jobs.last_job(models)
    assert job.kind == "library" and job.target == str(music.resolve())
    reloaded = page(models, monkeypatch)  # a reload re-attaches to the running scan (or shows its result)
    assert not reloaded.exception
    at = until_done(at)
    assert not at.exception, at.exception
    assert "3 songs classified, 1 could not be read" in at.subheader[0].value
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["file"]) == {"a.flac", "b.ogg", "c.wav", "broken.mp3"}
    assert "not a readable audio file" in " ".join(table["error"])
    assert table.set_index("file").loc["broken.mp3", "duration"] == "—"  # not "None"
    # The reason in full, not cut by the table's column, below the table.
    (why,) = at.table
    assert why.value.to_dict() == {
        "reason": {"broken.mp3": "not a readable audio file (its format was not recognised, or the file is damaged)"}
    }
    assert {b.label for b in at.get("download_button")} >= {"CSV", "JSON"}
    # Filter: a confidence floor keeps the unreadable file visible (its error is news).
    at.slider(key="library_floor").set_value(1.0).run()
    assert set(at.dataframe[0].value["file"]) <= {"broken.mp3", "a.flac", "b.ogg", "c.wav"}
    # Tag writing shows a preview and needs the confirmation.
    write_button = at.button(key="library_write")
    assert write_button.disabled
    at.slider(key="library_min").set_value(0.0).run()
    at.checkbox(key="library_sure").check().run()
    at.button(key="library_write").click().run()
    assert not at.exception, at.exception
    assert "files tagged" in at.success[0].value
    assert tags.current_genre(str(music / "a.flac")) is not None
    journal = next((models / jobs.JOBS_DIR).glob("library.tags-*.json"))
    assert tags.restore(journal) and tags.current_genre(str(music / "a.flac")) is None
    # A second scan reuses the results: nothing new to classify.
    assert json.loads((models / jobs.JOBS_DIR / jobs.LIBRARY_RESULTS).read_text())


def test_a_folder_outside_the_roots_is_refused(models, monkeypatch, tmp_path):
    monkeypatch.setenv("GENRE_DATA_ROOTS", str(tmp_path / "only-here"))
    at = page(models, monkeypatch)
    at.text_input[0].set_value("/etc")
    at.button[0].click().run()
    assert "not inside the folders this app may use" in at.error[0].value
    assert jobs.current_job(models) is None


def test_a_remote_visitor_cannot_scan(models, monkeypatch):
    from dashboard import access

    monkeypatch.setattr(access, "client_address", lambda: "203.0.113.7")
    at = page(models, monkeypatch)
    assert not at.exception
    assert not at.text_input and not at.button
