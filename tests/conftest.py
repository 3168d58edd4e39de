"""Shared fixtures: a synthetic dataset and a tiny trained run, made once per session."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# Caches and runs made by tests stay in pytest's temporary folders.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# streamlit-webrtc's SRTP library (pylibsrtp) crashes the process (SIGSEGV) when it loads after
# TensorFlow: `pytest tests/audio/test_augment.py tests/test_app.py` did. The dashboard's server never
# loads TensorFlow, but one pytest process loads both, in the order it collects the files.
import streamlit_webrtc  # noqa: E402, F401

from synth import GENRES, make_dataset  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["GENRE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    # The dashboard's jobs may use folders under pytest's temporary folder (the operator's roots).
    os.environ["GENRE_DATA_ROOTS"] = str(tmp_path_factory.getbasetemp().resolve())
    yield


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """Three synthetic genres, six 6-9 s songs each."""
    return make_dataset(tmp_path_factory.mktemp("synth"), songs=6)


@pytest.fixture(scope="session")
def tiny_run(synth_root, tmp_path_factory) -> Path:
    """A `fast` run trained for a few epochs on the synthetic dataset (about 20 s on 2 cores)."""
    from genre.train.training import TrainConfig, train

    models = tmp_path_factory.mktemp("models")
    config = TrainConfig(
        data_root=str(synth_root),
        model="fast",
        epochs=8,
        batch_size=8,
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(models),
        run_id="tiny-fast",
    )
    return train(config, progress=False)


@pytest.fixture
def models(tmp_path) -> Path:
    """An empty models folder for one test."""
    return tmp_path / "models"


@pytest.fixture
def no_stray_jobs():
    """Kill whatever job processes a test started: a failing test must not leave training
    processes behind on a shared machine. Job tests use it module-wide (autouse there)."""
    yield
    from genre.jobs import jobs

    for pid, child in list(jobs._CHILDREN.items()):
        if child.poll() is None:
            os.killpg(pid, signal.SIGKILL)
            child.wait()
        jobs._CHILDREN.pop(pid, None)


@pytest.fixture
def genres():
    return list(GENRES)


@pytest.fixture(autouse=True)
def _operator_visitor(monkeypatch):
    """AppTest sessions have no browser connection; they play the operator on loopback
    (tests/test_access.py plays remote visitors)."""
    from dashboard import access

    monkeypatch.setattr(access, "client_address", lambda: "127.0.0.1")
