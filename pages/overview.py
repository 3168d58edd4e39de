"""Overview: what the selected model is and how well it classifies held-out songs."""

from datetime import datetime

import streamlit as st

from dashboard import access, state
from dashboard.charts import best_epoch, recall_figure
from genre.jobs.headline import headline
from genre.jobs.runs import set_active, small_test_caution

# The Folds table's headers: metrics.json's keys in words.
FOLD_COLUMNS = {
    "song_accuracy_vote": "Song accuracy (vote)",
    "song_accuracy_mean": "Song accuracy (mean probability)",
    "window_accuracy": "Window accuracy",
    "song_balanced_accuracy": "Balanced accuracy (songs)",
}

state.require_entrypoint()
st.title("Music genre classifier")
run = state.selected_run()

if run is None:
    st.info(
        f"There is no trained model in `{state.models_dir()}` yet. Train one on a dataset "
        "folder laid out as `<root>/<genre>/<audio files>` (GTZAN's layout), then reload this page:"
    )
    st.code(
        "python -m genre download gtzan            # or use a copy you already have\n"
        "python -m genre train --data <dataset folder>   # writes models/<run-id>/",
        language="bash",
    )
    st.stop()

active = state.active_id()
config, metrics, status = run.config, run.metrics, run.status
header, action = st.columns([4, 1], vertical_alignment="bottom")
header.subheader(f"Run `{run.run_id}`")
if run.run_id == active:
    header.caption("The active run: the one the app serves by default.")
elif run.servable and metrics and not run.in_training and access.can_control():
    caution = small_test_caution(metrics)
    if caution:
        st.warning(caution)
    if action.button("Make active", help="Serve this run by default (writes models/ACTIVE)"):
        set_active(run.run_id, state.models_dir())
        st.rerun()

if run.in_training:
    st.progress(run.fraction, text=run.progress_text)
elif run.interrupted:
    st.warning(run.stopped_text() + (" The results below are those of the best epoch it reached." if metrics else ""))

if metrics:
    pooled = " (pooled over the folds)" if metrics.get("pooled") else ""
    cols = st.columns(3)
    cols[0].metric(
        "Song accuracy (vote)",
        f"{metrics['song_accuracy_vote']:.1%}",
        border=True,
        help="Share of the held-out test songs whose majority vote over their 3 s windows is the true genre" + pooled,
    )
    cols[1].metric(
        "Window accuracy",
        f"{metrics['window_accuracy']:.1%}",
        border=True,
        help="Share of the test songs' 3 s windows classified correctly on their own",
    )
    cols[2].metric(
        "Test songs",
        f"{metrics['test_songs']}",
        border=True,
        help=f"Songs never seen in training ({metrics['test_windows']} windows)" + pooled,
    )
    honest = headline(run, state.runs())
    disjoint = run.config.get("protocol") in ("cv", "fault-filtered")
    st.markdown(
        f"**What these figures mean.** {honest.test_set}; "
        + (
            "no test song's artist was heard in training."
            if disjoint
            else "test songs may share artists with the training songs."
        )
    )
    if honest.few_artists:
        st.caption(f":material/groups: {honest.few_artists}")
    cols = st.columns(3)
    if honest.unseen_run is not None:
        multi = honest.multi_artist
        cols[0].metric(
            "Unheard artists",
            f"{honest.unseen_accuracy:.1%}",
            border=True,
            help=f"Song accuracy of the `{config.get('model')}` model on test songs whose artists it never trained on "
            f"(run `{honest.unseen_run.run_id}`, {honest.unseen_run.config.get('protocol')}"
            f", {honest.unseen_run.metrics['test_songs']} songs)",
        )
        if multi:
            cols[0].caption(
                f"{multi['song_accuracy_vote']:.1%} over the {len(multi['genres'])} genres with several artists"
            )
    else:
        cols[0].metric(
            "Unheard artists", "—", border=True, help="Not measured: no cross-validated run of this model yet"
        )
        cols[0].caption(f"not measured: no cross-validated `{config.get('model')}` run yet")
    for col, hz in zip(cols[1:], (8_000, 11_000)):
        value = honest.band_limited.get(hz)
        change = f"{value - metrics['song_accuracy_vote']:+.1%}" if value is not None else None
        same = change in ("+0.0%", "-0.0%")  # no arrow for no change: it is neither a gain nor a loss
        col.metric(
            f"Audio cut at {hz / 1000:.0f} kHz",
            f"{value:.1%}" if value is not None else "—",
            delta=None if change is None else "same as full band" if same else f"{change} vs full band",
            delta_color="off" if same else "normal",
            delta_arrow="off" if same else "auto",
            border=True,
            help=f"Song accuracy of the same test songs low-passed at {hz} Hz, as a low-rate mp3 or a laptop "
            f"microphone records them",
        )
        if value is None:
            col.caption("not measured: `python -m genre evaluate` on this run adds it")
    st.caption(
        f"By mean probability instead of vote: {metrics['song_accuracy_mean']:.1%} · "
        f"balanced song accuracy {metrics['song_balanced_accuracy']:.1%} · "
        f"song macro F1 {metrics['song_macro_f1']:.3f} · window macro F1 {metrics['window_macro_f1']:.3f}"
    )
elif run.state == "finished":
    st.info("This run has no test results (metrics.json).")


def _date(iso: str | None) -> str:
    if not iso:
        return "unknown"
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y, %H:%M %Z").strip(", ")
    except ValueError:
        return iso


train = config.get("train", {})
songs = config.get("songs", {})
history = state.history(run)
best = best_epoch(history)
protocol = config.get("protocol", "unknown")
if "folds" in songs:
    split = f"{protocol}: {songs['folds']}-fold cross-validation over {songs['total']} songs, each tested once"
    training_songs = f"about {songs['total'] * (songs['folds'] - 1) // songs['folds']} per fold"
else:
    split = f"{protocol}: {train.get('test_fraction', 0):.0%} of the songs held out for test"
    if songs.get("valid"):
        split += f", {train.get('val_fraction', 0):.0%} of the rest for validation"
    training_songs = f"{songs.get('train', '?')}" + (
        f" (+ {songs['valid']} for validation)" if songs.get("valid") else ""
    )
split += f"; split by song, seed {config.get('seed', train.get('seed', '?'))}"
genres = config.get("genres", [])
root = config.get("data_root")
dataset = f"`{root}`, {config.get('dataset_tracks', '?')} tracks" if root else "unknown"
if root:
    from pathlib import Path

    dataset += " (on this machine)" if Path(root).is_dir() else " (not on this machine)"
trained = _date(config.get("created"))
if history and config.get("served_fold"):
    fold = config["served_fold"]
    trained += (
        f" · {len(history)} epochs per fold; the served fold {fold}'s best was epoch {best_epoch(run.history(fold))}"
    )
elif history:
    trained += f" · {len(history)} epochs, best {best}"
if train.get("batch_size"):
    trained += f" · batch {train['batch_size']}, learning rate {train.get('learning_rate')}"

rows = [
    ("Architecture", f"**{config.get('model', '?')}**: {config.get('description', '')}"),
    ("Parameters", f"{config['parameters']:,}" if config.get("parameters") else "?"),
    ("Split protocol", split),
    ("Training songs", training_songs),
    ("Genres", f"{len(genres)}: " + ", ".join(genres)),
    ("Trained", trained),
    ("Dataset", dataset),
    ("Keras", config.get("keras_version", "?")),
]
if config.get("served_fold"):
    rows.insert(2, ("Served model", f"fold {config['served_fold']} (lowest validation loss)"))
st.markdown("#### The model")
st.markdown(f"| Run | `{run.run_id}` |\n|---|---|\n" + "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in rows))

if metrics:
    # A row of their own: beside the facts table the charts were squeezed to a sliver at 1024 px.
    recall, unseen_recall = st.columns(2, gap="large")
    recall.markdown("#### Per genre")
    recall.caption(f"Run `{run.run_id}`: the share of each genre's test songs the vote gets right")
    recall.plotly_chart(recall_figure(metrics), key="recall_chart")
    unseen = honest.unseen_run  # set above whenever there are metrics
    if unseen is not None and unseen.run_id != run.run_id:
        unseen_recall.markdown("#### Per genre, on artists it never heard")
        unseen_recall.caption(
            f"Run `{unseen.run_id}`: {unseen.config.get('protocol')} grouped by artist, each song tested by a model "
            "that never heard its artist"
        )
        unseen_recall.plotly_chart(recall_figure(unseen.metrics), key="unseen_recall_chart")

if metrics and metrics.get("folds"):
    st.markdown("#### Folds")
    st.dataframe(
        [{"fold": k + 1, **f} for k, f in enumerate(metrics["folds"])],
        hide_index=True,
        column_config={"fold": st.column_config.NumberColumn("Fold")}
        | {key: st.column_config.NumberColumn(label, format="percent") for key, label in FOLD_COLUMNS.items()}
        | {
            "song_macro_f1": st.column_config.NumberColumn("Macro F1 (songs)", format="%.3f"),
            "test_songs": st.column_config.NumberColumn("Test songs"),
        },
    )
