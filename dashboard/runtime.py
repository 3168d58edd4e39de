"""Server-wide settings of the Streamlit process that the app depends on."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)
# Streamlit's own clean-up, once keep_keras_session() has replaced it (the tests put it back).
streamlit_clean_up = None


def _close_matplotlib_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # as Streamlit's own clean-up: never fail a script run over it
            pass


def keep_keras_session() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run.

    Streamlit does that (``script_runner._clean_problem_modules``) for apps that build a model
    on every rerun. This app builds none; it loads each model once (``st.cache_resource``), and
    the clear-up costs every session dearly: it runs a full ``gc.collect()`` (about 0.2 s with
    TensorFlow loaded, all of it holding the GIL, so the microphone's frames, the web server
    and every other session stop meanwhile) and it empties TensorFlow's kernel cache, so the
    next model call re-creates its kernels. The live page reruns twice a second, and so paid
    this twice a second for every session. Streamlit's other clean-up (closing matplotlib
    figures) is kept. Safe to call more than once.
    """
    global streamlit_clean_up
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # pragma: no cover - a Streamlit without it has nothing to undo
        return
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        log.warning("Streamlit has no _clean_problem_modules any more; nothing to keep it from")
        return
    if current is not _close_matplotlib_figures:
        streamlit_clean_up = current
        script_runner._clean_problem_modules = _close_matplotlib_figures
