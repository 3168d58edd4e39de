"""Training history: loss and accuracy per epoch, one or several runs overlaid."""

import streamlit as st

from dashboard import state
from dashboard.charts import history_figure, history_table, history_table_shown

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
    "One colour per run (click a run in the legend to hide its curves). "
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
table = history_table_shown(history_table(histories))
# Every run name whole: its column is as wide as the longest name (up to what leaves the other
# seven columns room beside the sidebar on a 1024 px screen: 6 px a character, the grid's font
# measuring 5.6 on run names; the shipped runs' names fit without scrolling sideways, a longer one
# scrolls the others under the pinned name).
name_px = min(250, max(110, 6 * max((len(r["run"]) for r in table), default=0) + 16))
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "run": st.column_config.TextColumn(width=name_px, pinned=True),
        "epochs": st.column_config.NumberColumn(width=58),
        "best epoch": st.column_config.NumberColumn(
            "best", width=48, help="The best epoch, whose weights the run keeps"
        ),
        "loss": st.column_config.NumberColumn(format="%.3f", width=54, help="Training loss at the best epoch"),
        "accuracy": st.column_config.NumberColumn(
            "acc.", format="percent", width=58, help="Training accuracy at the best epoch"
        ),
        # Text, so a run without validation songs shows "—" rather than "None".
        "validation loss": st.column_config.TextColumn(
            "val. loss",
            width=66,
            alignment="right",
            help="Validation loss at the best epoch (— : the run kept no validation songs)",
        ),
        "validation accuracy": st.column_config.TextColumn(
            "val. acc.",
            width=66,
            alignment="right",
            help="Validation accuracy at the best epoch (— : the run kept no validation songs)",
        ),
        "minutes": st.column_config.NumberColumn("min", format="%.1f", width=50, help="Training minutes, all epochs"),
    },
)
