"""Held-out songs: how the selected run's vote does on its test songs, genre by genre."""

import streamlit as st

from dashboard import state
from dashboard.charts import confusion_figure, misclassified_rows, per_genre_rows, reliability_figure
from genre.serve.calibration import read_calibration

state.require_entrypoint()
st.title("Held-out songs")
run = state.selected_run()
if run is None:
    st.info("No trained runs yet: the Overview page says how to train one.")
    st.stop()
metrics = run.metrics
if not metrics:
    st.info(f"Run `{run.run_id}` has no test results yet ({run.state}).")
    st.stop()

pooled = ", pooled over the cross-validation folds" if metrics.get("pooled") else ""
st.caption(
    f"{metrics['test_songs']} test songs{pooled}, never seen in training. Each song's genre is the "
    "majority vote of its 3 s windows."
)

# One above the other: side by side, a 1024 px window left the matrix too small to label
# every genre and cut off the table's last columns.
normalised = st.toggle(
    "Row-normalised",
    key="confusion_normalised",
    help="Show each true genre's songs as shares of that row; the diagonal is the recall",
)
st.plotly_chart(confusion_figure(metrics, normalised=normalised), key="confusion_chart")
st.markdown("##### Per genre (song vote)")
st.dataframe(
    per_genre_rows(metrics),
    hide_index=True,
    column_config={
        "precision": st.column_config.NumberColumn(format="percent"),
        "recall": st.column_config.NumberColumn(format="percent"),
        "f1": st.column_config.NumberColumn("F1", format="%.2f"),
        "support": st.column_config.NumberColumn("songs"),
    },
)

st.markdown("##### What a confidence means")
calibration = read_calibration(run.path)
if calibration and calibration.get("reliability", {}).get("bins"):
    st.caption(
        f"The Classify page's confidence against how often it is right, on {calibration['reliability']['songs']} "
        f"test songs "
        f"(numbers: songs per point; on the dotted line a confidence means exactly what it says). Calibrated with "
        f"temperature {calibration['temperature']:.2f} on {calibration['songs']} {calibration['fitted_on']} songs; "
        f"an answer whose lead over the runner-up is under {calibration['margin_threshold']:.0%} is shown as uncertain."
    )
    st.plotly_chart(reliability_figure(calibration["reliability"]["bins"]), key="reliability_chart")
else:
    st.caption(
        f"Run `{run.run_id}` has no calibration yet (python -m genre calibrate models/{run.run_id}): its "
        f"confidences are the model's own."
    )

wrong = misclassified_rows(metrics)
st.markdown(f"##### Misclassified songs: {len(wrong)} of {metrics['test_songs']}")
if not wrong:
    st.success("Every test song is voted into its true genre.")
    st.stop()
st.dataframe(
    wrong,
    hide_index=True,
    # Fixed widths: every column fits beside the sidebar on a 1024 px screen.
    column_config={
        "track": st.column_config.TextColumn(width=120),
        "true": st.column_config.TextColumn(width=64),
        "voted": st.column_config.TextColumn(width=64),
        "windows": st.column_config.NumberColumn(width=66),
        "votes": st.column_config.TextColumn(
            "windows won", width=120, help="How many of the song's windows each genre won"
        ),
        "p(true)": st.column_config.NumberColumn(
            format="percent", width=60, help="Mean probability of the true genre over the windows"
        ),
        "p(voted)": st.column_config.NumberColumn(
            format="percent", width=66, help="Mean probability of the voted genre"
        ),
    },
)

playable = {row["track"]: path for row in wrong if (path := state.song_file(run, row["track"]))}
if playable:
    track = st.selectbox("Listen to a misclassified song", list(playable), key="held_out_track")
    row = next(r for r in wrong if r["track"] == track)
    st.caption(f"True genre **{row['true']}**, voted **{row['voted']}** ({row['votes']}).")
    st.audio(str(playable[track]))
else:
    st.caption(
        f"The dataset (`{run.config.get('data_root', 'unknown')}`) is not on this machine, so the songs cannot be "
        f"played here."
    )
