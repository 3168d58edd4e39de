"""The sidebar: which run the pages show (the choice holds across pages)."""

from __future__ import annotations

import streamlit as st

from genre.jobs.runs import Run

from . import state

CHOICE_KEY = "run_choice"


def run_label(run: Run, active: str | None) -> str:
    """``<run id> · <model> · 72% · active`` for the selector."""
    parts = [run.run_id]
    if run.config.get("model"):
        parts.append(run.config["model"])
    if run.metrics:
        parts.append(f"{run.metrics['song_accuracy_vote']:.0%}")
    elif run.state_now not in ("finished",):
        parts.append(run.state_now)
    if run.run_id == active:
        parts.append("active")
    return " · ".join(parts)


def _remember_choice() -> None:
    state.select(st.session_state[CHOICE_KEY])


def render_sidebar() -> Run | None:
    """Draw the run selector and the retrain panel; return the selected run (``None`` without runs)."""
    from .retrain import render_retrain_panel

    selected = _run_selector()
    render_retrain_panel(state.models_dir())
    return selected


def _run_selector() -> Run | None:
    runs, unreadable = state.runs_and_unreadable()
    with st.sidebar:
        for run_id, reason in unreadable.items():
            st.warning(f"Run `{run_id}` is left out: {reason}")
        if not runs:
            st.caption(f"No trained runs in `{state.models_dir()}`.")
            return None
        selected = state.selected_run()
        active = state.active_id()
        ids = [r.run_id for r in runs]
        labels = {r.run_id: run_label(r, active) for r in runs}
        # The widget's own state is dropped when a page does not draw it; the choice itself
        # lives under SELECTED_KEY, so it holds across pages and across new runs appearing.
        st.session_state[CHOICE_KEY] = selected.run_id
        st.selectbox(
            "Run",
            ids,
            key=CHOICE_KEY,
            format_func=labels.get,
            on_change=_remember_choice,
            help="Every run under the models folder, newest first. Accuracy is the song-level "
            "vote on the run's held-out test songs; *active* is the run served by default.",
        )
        state.select(selected.run_id)
        _run_facts(selected, active)
    return selected


def _run_facts(run: Run, active: str | None) -> None:
    config = run.config
    facts = []
    if config.get("genres"):
        facts.append(f"{len(config['genres'])} genres")
    if config.get("protocol"):
        facts.append(config["protocol"])
    if config.get("created"):
        facts.append(config["created"][:10])
    st.caption(" · ".join(facts))
    if run.in_training:
        status = run.status
        epoch, epochs = status.get("epoch", 0), status.get("epochs", 0)
        st.info(f"Training: epoch {epoch} of {epochs}" if run.state == "running" else "Evaluating on the test songs")
    elif run.interrupted:
        st.caption(f":orange[{run.stopped_text(detail=False)}]")
    if run.run_id != active and active:
        st.caption(f"The active run is **{active}**.")
