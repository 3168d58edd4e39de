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
    column_config={
        "loss": st.column_config.NumberColumn(format="%.4f"),
        "validation loss": st.column_config.NumberColumn(format="%.4f"),
        "accuracy": st.column_config.NumberColumn(format="percent"),
        "validation accuracy": st.column_config.NumberColumn(format="percent"),
        "minutes": st.column_config.NumberColumn("training minutes", format="%.1f"),
    },
)
