"""Compare: the sidebar's run against a second one, on their stored test songs."""

import streamlit as st

from dashboard import state
from dashboard.charts import (
    accuracy_compare_figure,
    confusion_figure,
    difference_figure,
    per_genre_compare_figure,
    summary_confusion_metrics,
)
from genre.jobs.compare import CompareError, compare_runs

state.require_entrypoint()
st.title("Compare two runs")
run_a = state.selected_run()
if run_a is None:
    st.info("No trained runs yet: the Overview page says how to train one.")
    st.stop()
others = [r for r in state.runs() if r.run_id != run_a.run_id and r.metrics]
if not others:
    st.info(f"`{run_a.run_id}` is the only run with test results; train another to compare it with.")
    st.stop()
by_id = {r.run_id: r for r in others}
st.caption(
    f"Run A is the sidebar's run, **{run_a.run_id}**. Both are judged on their stored test results; nothing is run "
    f"again."
)
b_id = st.selectbox("Run B", list(by_id), key="compare_run_b")
run_b = by_id[b_id]
try:
    comparison = compare_runs(run_a, run_b)
except CompareError as error:
    st.warning(str(error))
    st.stop()
for note in comparison.notes:
    st.warning(note[0].upper() + note[1:] + ".")

st.markdown("##### Song accuracy")
a, b = comparison.a, comparison.b
cols = st.columns(2)
for col, s, label in zip(cols, (a, b), ("A", "B")):
    col.metric(f"{label} · {s.run_id}", f"{s.accuracy:.1%}", help=f"{s.right} of {s.test_songs} test songs voted right")
    col.caption(f"95% interval (Wilson) {s.interval[0]:.1%} to {s.interval[1]:.1%} on {s.test_songs} songs")
st.plotly_chart(accuracy_compare_figure(comparison), key="compare_accuracy_chart")
if comparison.p_value is not None:
    st.markdown(
        f"**Paired test** (exact McNemar on the {comparison.shared_songs} test songs both held out): "
        f"{comparison.verdict}."
    )

if comparison.genres:
    st.markdown("##### Per genre (song vote)")
    measure = st.segmented_control("Measure", ["recall", "F1"], default="recall", key="compare_measure") or "recall"
    st.plotly_chart(per_genre_compare_figure(comparison, measure.lower()), key="compare_per_genre_chart")

st.markdown("##### Confusion matrices")
normalised = st.toggle("Row-normalised", key="compare_normalised")
# Tabs, not columns: side by side, a 1024 px window leaves each matrix too small to label.
names = [f"A · {a.run_id}", f"B · {b.run_id}"] + (["B − A"] if comparison.difference is not None else [])
tabs = st.tabs(names)
tabs[0].plotly_chart(confusion_figure(summary_confusion_metrics(a), normalised=normalised), key="compare_confusion_a")
tabs[1].plotly_chart(confusion_figure(summary_confusion_metrics(b), normalised=normalised), key="compare_confusion_b")
if comparison.difference is not None:
    what = "songs" if comparison.difference_kind == "songs" else "share of each true genre's songs"
    tabs[2].caption(f"B minus A ({what}): red where B puts more songs than A, blue where it puts fewer.")
    tabs[2].plotly_chart(difference_figure(comparison), key="compare_difference_chart")

if comparison.p_value is None:
    st.stop()
rows = comparison.disagreements
st.markdown(f"##### Songs the runs vote differently on: {len(rows)} of {comparison.shared_songs}")
if not rows:
    st.success("The two runs cast the same vote on every shared test song.")
    st.stop()
st.dataframe(
    rows,
    hide_index=True,
    column_config={
        "track": st.column_config.TextColumn(width=140),
        "true": st.column_config.TextColumn(width=70),
        "vote_a": st.column_config.TextColumn("A voted", width=70),
        "confidence_a": st.column_config.NumberColumn(
            "A sure", format="percent", width=60, help="A's mean probability of its vote"
        ),
        "vote_b": st.column_config.TextColumn("B voted", width=70),
        "confidence_b": st.column_config.NumberColumn(
            "B sure", format="percent", width=60, help="B's mean probability of its vote"
        ),
        "right": st.column_config.TextColumn("right", width=60, help="Which run voted the true genre"),
    },
    key="compare_disagreements",
)
playable = {row["track"]: path for row in rows if (path := state.song_file(run_a, row["track"]))}
if playable:
    track = st.selectbox("Listen to a song they disagree on", list(playable), key="compare_track")
    st.audio(str(playable[track]))
else:
    st.caption(
        f"The dataset (`{run_a.config.get('data_root', 'unknown')}`) is not on this machine, so the songs cannot be "
        f"played here."
    )
