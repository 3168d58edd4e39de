"""Training history: loss and accuracy per epoch, one or several runs overlaid."""

import streamlit as st

from dashboard import state
from dashboard.charts import history_figure, history_table

state.require_entrypoint()
st.title("Training history")
run = state.selected_run()
if run is None:
    st.info("No trained runs yet: the Overview page says how to train one.")
    st.stop()

runs = {r.run_id: r for r in state.runs()}
with_history = [r for r in runs if state.history(runs[r])]
if not with_history:
    st.info("No run has finished an epoch yet.")
    st.stop()

default = [run.run_id] if run.run_id in with_history else with_history[:1]
chosen = st.multiselect(
    "Runs to compare",
    with_history,
    default=default,
    key="history_runs",
    help="Overlay several runs, e.g. the founding `seed` network against `fast`.",
)
if not chosen:
    st.info("Pick at least one run.")
    st.stop()

histories = {r: state.history(runs[r]) for r in chosen}
st.plotly_chart(history_figure(histories), key="history_chart")
st.caption(
    "Solid: training; dashed: validation (songs held out of training, not the test songs). "
    "The star marks the best epoch, the one whose weights the run keeps: lowest validation loss, "
    "or lowest training loss for a run without validation songs."
    + (
        " Cross-validation runs show the mean over their folds; each fold keeps its own best epoch, "
        "and the star marks the mean curve's."
        if any(runs[r].config.get("protocol") == "cv" for r in chosen)
        else ""
    )
)
st.dataframe(
    history_table(histories),
    hide_index=True,
    # Short labels and fixed widths: all eight columns fit beside the sidebar on a 1024 px screen.
    column_config={
        "run": st.column_config.TextColumn(width=150),
        "epochs": st.column_config.NumberColumn(width=58),
        "best epoch": st.column_config.NumberColumn("best", width=48, help="The best epoch, whose weights the run keeps"),
        "loss": st.column_config.NumberColumn(format="%.3f", width=54, help="Training loss at the best epoch"),
        "accuracy": st.column_config.NumberColumn("acc.", format="percent", width=58, help="Training accuracy at the best epoch"),
        "validation loss": st.column_config.NumberColumn("val. loss", format="%.3f", width=66, help="Validation loss at the best epoch"),
        "validation accuracy": st.column_config.NumberColumn("val. acc.", format="percent", width=66, help="Validation accuracy at the best epoch"),
        "minutes": st.column_config.NumberColumn("min", format="%.1f", width=50, help="Training minutes, all epochs"),
    },
)
