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
    monkeypatch.setattr(
        script_runner, "_clean_problem_modules", runtime.streamlit_clean_up or script_runner._clean_problem_modules
    )
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


def test_the_streamlit_internal_that_require_entrypoint_switches_is_still_there():
    """dashboard.state.require_entrypoint turns off Streamlit's classic multipage mode through
    ``PagesManager.uses_pages_directory`` (no public switch in Streamlit 1.67). If Streamlit
    moves it, this fails by name rather than deep links silently losing the sidebar."""
    from streamlit.runtime.pages_manager import PagesManager

    assert "uses_pages_directory" in vars(PagesManager), (
        "streamlit.runtime.pages_manager.PagesManager.uses_pages_directory is gone: "
        "update dashboard.state.require_entrypoint for this Streamlit version"
    )
