"""The Streamlit process keeps its Keras state between script runs (dashboard.runtime)."""

from __future__ import annotations

from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from dashboard import runtime

SCRIPT = """
import keras  # what the Classify page's model brings into the process
import streamlit as st

st.write("a script run")
"""


def test_script_runs_no_longer_clear_the_keras_session(monkeypatch):
    import keras  # here, not at collection: aiortc's pylibsrtp segfaults if imported after it

    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(1))
    # Streamlit's clean-up as shipped (another test may have replaced it already).
    monkeypatch.setattr(script_runner, "_clean_problem_modules", runtime.streamlit_clean_up or script_runner._clean_problem_modules)
    at = AppTest.from_string(SCRIPT).run()
    # Streamlit clears it after every run: gc.collect() under the GIL and an empty kernel cache.
    # Should this fail, Streamlit has dropped the habit and keep_keras_session can go.
    assert cleared
    cleared.clear()

    runtime.keep_keras_session()
    runtime.keep_keras_session()  # idempotent
    at.run()
    at.run()
    assert not at.exception and not cleared
