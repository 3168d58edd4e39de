"""Library: classify a folder of music on the server as a background job, then browse, filter,
listen, export and (behind a confirmation) write genre tags."""

import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import access, state
from dashboard.charts import distribution_figure, timeline_figure
from genre.data.folders import FolderRefused, allowed_roots, check_inside
from genre.files import read_json
from genre.jobs import jobs
from genre.serve import library, tags

KEY = "library_"
PROGRESS_SECONDS = 1.0

state.require_entrypoint()
st.title("Library")
models_dir = state.models_dir()
run = state.selected_run()
results_file = models_dir / jobs.JOBS_DIR / jobs.LIBRARY_RESULTS
st.caption(
    "Classify every audio file in a folder on this server (recursively) with the selected run, as a "
    "background job: it survives a page reload, and a second scan only classifies new or changed files."
)


def start_scan(folder: str) -> None:
    if not access.can_control():
        return
    try:
        jobs.start_library(models_dir, folder, run.path if run is not None else None)
        st.session_state[KEY + "notice"] = None
    except jobs.JobError as error:
        st.session_state[KEY + "notice"] = str(error)


@st.fragment(run_every=PROGRESS_SECONDS)
def live_scan() -> None:
    job = jobs.current_job(models_dir)
    if job is None:
        st.rerun()  # it ended: draw the results
    if job.kind != "library":
        st.info("Another job (training or a download) is running; a scan can start when it ends.")
        return
    done, total = job.status.get("done"), job.status.get("total")
    st.markdown(f"**Scanning** `{job.target}`")
    st.progress(job.fraction)
    elapsed = time.time() - job.started
    st.caption("Finding files and loading the model…" if done is None else f"{done} of {total} files · {elapsed:.0f} s")
    if access.can_control() and job.state != "cancelling":
        # No help= tooltip: Streamlit draws a button with one twice, a hidden copy beside it.
        st.button("Cancel", key=KEY + "cancel", on_click=jobs.cancel, args=(models_dir,))
        st.caption("Cancel stops the scan; the files done so far are kept.")


running = jobs.current_job(models_dir)
if running is not None:
    live_scan()
elif access.can_control():
    settings = read_json(models_dir / jobs.JOBS_DIR / "library-settings.json", {}) or {}
    roots = allowed_roots(models_dir)
    with st.form(KEY + "form", border=False):
        folder = st.text_input(
            "Music folder on the server",
            value=settings.get("folder", str(roots[0]) if roots else ""),
            help="Only folders inside the operator's data roots ($GENRE_DATA_ROOTS): " + ", ".join(map(str, roots)),
        )
        if st.form_submit_button("Scan", type="primary", disabled=run is None or not run.servable):
            from genre.files import write_json

            write_json(models_dir / jobs.JOBS_DIR / "library-settings.json", {"folder": folder})
            start_scan(folder)
            st.rerun()
    if st.session_state.get(KEY + "notice"):
        st.error(st.session_state[KEY + "notice"])
    last = jobs.last_job(models_dir)
    if last is not None and last.kind == "library" and last.state not in ("finished",):
        st.warning(f"The last scan {last.message}; scanning again continues where it stopped.")
else:
    access.render_unlock()

if not results_file.is_file():
    st.info("No scan yet: choose a folder above and press **Scan**.")
    st.stop()

paths = [r["path"] for r in json.loads(results_file.read_text())]
cache = library.load_cache(library.cache_path(results_file))
rows = [cache[p] for p in paths if p in cache]
good = [r for r in rows if not r.error]
genres = sorted({r.genre for r in good})
st.subheader(
    f"{len(good)} songs classified" + (f", {len(rows) - len(good)} could not be read" if len(good) < len(rows) else "")
)

f1, f2, f3 = st.columns([2, 2, 2])
chosen = f1.multiselect("Genre", genres, key=KEY + "genres", placeholder="all genres")
floor = f2.slider("Confidence at least", 0.0, 1.0, 0.0, 0.05, key=KEY + "floor")
order = f3.selectbox("Order", ("low confidence first", "high confidence first", "path"), key=KEY + "order")
# The table spans the page: at 1024 px a column beside it leaves no room for its columns.
table = pd.DataFrame(
    [
        {
            "file": Path(r.path).name, "genre": r.genre or "", "confidence": r.confidence,
            "2nd": f"{r.top3[1][0]} {r.top3[1][1]:.0%}" if len(r.top3) > 1 else "",
            # Text, so an unreadable file shows "—" rather than "None".
            "duration": "—" if r.duration_s is None else f"{r.duration_s:.0f}", "error": r.error or "", "path": r.path,
        }
        for r in rows
    ]
)  # fmt: skip
shown = table[(table["confidence"].fillna(0) >= floor) | (table["error"] != "")] if floor else table
if chosen:
    shown = shown[shown["genre"].isin(chosen)]
if order != "path":
    shown = shown.sort_values("confidence", ascending=order.startswith("low"), na_position="first")
picked = st.dataframe(
    shown.drop(columns=["path"]),
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key=KEY + "table",
    column_config={
        "confidence": st.column_config.ProgressColumn(
            "confidence", format="%.2f", min_value=0, max_value=1, width="small"
        ),
        "duration": st.column_config.TextColumn("s", width="small", alignment="right", help="duration in seconds"),
        "file": st.column_config.TextColumn("file", width="medium"),
        "genre": st.column_config.TextColumn("genre", width="small"),
        "2nd": st.column_config.TextColumn("2nd", width="small", help="the second genre by mean probability"),
        "error": st.column_config.TextColumn(
            "error", width="medium", help="why the file could not be read; in full below the table"
        ),
    },
)
selection = picked.selection.rows if picked is not None else []
unreadable = [r for r in rows if r.error]
if unreadable:
    # The table cuts long reasons at 1024 px; here they wrap, whole.
    with st.expander(
        f"Why {len(unreadable)} file{'s' if len(unreadable) > 1 else ''} could not be read",
        expanded=len(unreadable) <= 10,
    ):
        st.table(
            pd.DataFrame(
                {"file": [Path(r.path).name for r in unreadable], "reason": [r.error for r in unreadable]}
            ).set_index("file")
        )

left, right = st.columns([3, 2])
with left:
    if good:
        st.plotly_chart(
            distribution_figure(genres, [r.genre for r in good]), key=KEY + "dist", config={"displayModeBar": False}
        )
with right:
    st.caption("The whole scan, every column (the JSON also holds each window's winner):")
    c1, c2 = st.columns(2)
    c1.download_button(
        "CSV", library.to_csv(rows), "library.csv", "text/csv", key=KEY + "csv", icon=":material/download:"
    )
    c2.download_button(
        "JSON", library.to_json(rows), "library.json", "application/json", key=KEY + "json", icon=":material/download:"
    )

if selection:
    row = cache[shown.iloc[selection[0]]["path"]]
    st.markdown(f"**{Path(row.path).name}** · `{row.path}`")
    if row.error:
        st.error(row.error)
    else:
        st.caption(f"{row.genre} ({row.confidence:.0%}); " + ", ".join(f"{g} {p:.0%}" for g, p in row.top3))
        st.plotly_chart(
            timeline_figure(genres or [row.genre], row.window_genres, row.window_starts),
            key=KEY + "timeline",
            config={"displayModeBar": False},
        )
    try:  # only files inside the operator's roots are served
        st.audio(str(check_inside(row.path, allowed_roots(models_dir))))
    except (FolderRefused, OSError):
        st.caption("This file is outside the folders the app may serve.")

if access.can_control() and good and jobs.current_job(models_dir) is None:
    with st.expander("Write genre tags into the files"):
        threshold = st.slider(
            "Only songs with confidence at least", 0.0, 1.0, tags.DEFAULT_MIN_CONFIDENCE, 0.05, key=KEY + "min"
        )
        plan = tags.plan(good, threshold)
        todo = [c for c in plan if c.skipped is None]
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "file": Path(c.path).name,
                        "now": ", ".join(c.old or []) or "(none)",
                        "new": c.new or "",
                        "skipped": c.skipped or "",
                    }
                    for c in plan
                ]
            ),
            hide_index=True,
            key=KEY + "plan",
        )
        sure = st.checkbox(
            f"Write the genre tag of these {len(todo)} files (the original tags go to a journal first; "
            "`python -m genre library --restore-tags JOURNAL` puts them back)",
            key=KEY + "sure",
        )
        if st.button("Write tags", disabled=not (sure and todo), key=KEY + "write", type="primary"):
            journal = tags.journal_path(results_file)
            tags.write_tags(plan, journal)
            written = [c.path for c in todo if c.skipped is None]
            for r in good:
                if r.path in written:
                    st_ = Path(r.path).stat()
                    r.size, r.mtime_ns = st_.st_size, st_.st_mtime_ns
            library.record(results_file, [cache[p] for p in written])
            st.success(f"{len(written)} files tagged; undo with `python -m genre library --restore-tags {journal}`")
