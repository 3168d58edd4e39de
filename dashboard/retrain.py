"""The sidebar's *Retrain* panel: start a training run (or the GTZAN download) as a background
job, follow it live, cancel or resume it, and promote a finished run to the served model.

All the job machinery is in ``genre.jobs.jobs``; this module only draws it. The job itself is a
separate ``python -m genre`` process, so Keras never trains inside the Streamlit server, and
everything shown here is re-read from files: a page reload or an app restart re-attaches.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from genre.data.dataset import is_cached, scan
from genre.data.folders import allowed_roots, is_usable
from genre.data.splits import PROTOCOLS
from genre.errors import GenreError
from genre.files import format_bytes
from genre.jobs import jobs
from genre.jobs.headline import few_artists_line
from genre.jobs.joblog import log_tail
from genre.jobs.runs import active_run_id, list_runs, load_run, set_active, small_test_caution
from genre.models.registry import REGISTRY
from genre.train import hardware
from genre.train.config import BATCH_RANGE, EPOCHS_RANGE

from . import access, state
from .charts import progress_figure

PROGRESS_SECONDS = 1.0
# After this long a cancelled job that has not stopped gets a *Stop now* (SIGKILL) button.
FORCE_AFTER_SECONDS = 20.0
GTZAN_SIZE_TEXT = "1.2 GB"

KEY = "retrain_"
NOTICE = KEY + "notice"  # a message for the next draw of the panel: (kind, text)
APPLIED = KEY + "applied"  # the finished download whose folder this session already selected
SUBMIT = KEY + "submit"  # the Retrain button

PROTOCOL_HELP = (
    "stratified: a seeded split stratified by genre (test share, then validation share of the rest). "
    "fault-filtered: the artist-disjoint GTZAN split of Kereliuk, Sturm & Larsen (GTZAN track names only). "
    "cv: k-fold cross-validation grouped by artist."
)
NO_DATASET = """Training needs songs in the layout `<folder>/<genre>/<audio files>` (wav, au,
flac, ogg, mp3), one subfolder per genre, two genres at least.

**GTZAN** (1,000 30-second clips, 10 genres; Tzanetakis & Cook, 2002) is the usual choice:
download it below, or in a terminal with `.venv/bin/python -m genre download gtzan`, and cache
it once with `.venv/bin/python -m genre scan <folder>`. Set `$GENRE_DATA` to offer a folder by
default."""


def render_retrain_panel(models_dir: Path) -> None:
    """Draw the *Retrain* panel at the current end of the sidebar for the runs in ``models_dir``."""
    models_dir = Path(models_dir)
    with st.sidebar:
        st.divider()
        st.subheader("Retrain")
        running = jobs.current_job(models_dir)
        if running is not None:
            if st.session_state.get(SUBMIT):
                # This page's form was out of date: a job started elsewhere meanwhile.
                _keep_notice("warning", "A job is already running (below), so no new one was started.", running)
            _live_panel(models_dir)
        elif access.can_control():
            _idle_panel(models_dir)
        else:
            access.render_unlock()


# While a job runs: a fragment that redraws itself every second --------------------------------


@st.fragment(run_every=PROGRESS_SECONDS)
def _live_panel(models_dir: Path) -> None:
    job = jobs.current_job(models_dir)
    if job is None:
        # It ended: redraw the whole app, so the run selector lists the new run and the
        # panel shows how the job went.
        st.rerun()
    _notice(job)
    if job.kind == "train":
        _training_progress(job)
    elif job.kind == "library":
        _library_progress(job)
    else:
        _download_progress(job)
    if access.can_control():  # a remote visitor without the password watches, but cannot stop it
        _job_buttons(models_dir, job)
        with st.expander("Log"):
            st.code(log_tail(job.log, 15) or "(nothing yet)", language=None)


def _job_buttons(models_dir: Path, job: jobs.Job) -> None:
    """*Cancel*, and *Stop now* for a job that does not stop. No ``help=`` tooltips on them:
    Streamlit draws a button with a tooltip twice (the second copy hidden), and the page must
    hold one Cancel, the one on screen; what the buttons do is said in a caption instead."""
    if job.state == "cancelling":
        forcing = time.time() - (job.cancel_requested or time.time()) > FORCE_AFTER_SECONDS
        st.caption(
            "Cancelling: training stops after the current batch; the run can be resumed."
            + (" *Stop now* kills the job (SIGKILL); a run resumes from its last completed epoch." if forcing else "")
        )
        if forcing:
            st.button("Stop now", key=KEY + "force", on_click=_cancel, args=(models_dir, True))
    else:
        st.button("Cancel", key=KEY + "cancel", on_click=_cancel, args=(models_dir, False))
        st.caption("Cancel stops the job; a training run stays resumable.")


def _training_progress(job: jobs.Job) -> None:
    config = job.config or {}
    # Before the job has written its config.json the model and protocol are not known yet: left out, not "None".
    what = " · resumed" if job.resumed else "".join(f" · {config[k]}" for k in ("model", "protocol") if config.get(k))
    st.markdown(f"**Training** `{job.run_id}`{what}")
    status = job.status_written_by_job
    state = job.state
    st.progress(job.fraction)
    if state == "starting":
        st.caption(f"Starting: loading TensorFlow and {_dataset_words(job)}…")
    elif state == "running":
        parts = []
        if status.get("folds"):
            parts.append(f"fold {status['fold']}/{status['folds']}")
        if status.get("message") and not status.get("epoch"):
            parts.append(status["message"])  # work before the first epoch (transfer's features)
        elif status.get("epoch"):
            parts.append(f"epoch {status['epoch']}/{status.get('epochs', '?')}")
            parts.append(f"batch {status.get('batch', 0)}/{status.get('batches', '?')}")
        else:
            # A resumed run's status says epoch 0 until its first batch is done.
            parts.append(f"starting epoch {len(job.history) + 1}/{status.get('epochs', '?')}")
        if status.get("loss") is not None:
            parts.append(f"loss {status['loss']:.3f}")
        if status.get("accuracy") is not None:
            parts.append(f"accuracy {status['accuracy']:.0%}")
        eta = job.eta_seconds
        if eta is not None:
            parts.append(f"about {_duration(eta)} left" + (" in this fold" if status.get("folds") else ""))
        st.caption(" · ".join(parts))
    elif state == "evaluating":
        st.caption("Evaluating the best epoch on the test songs…")
    elif state == "finishing":
        st.caption("Finishing…")
    _history_chart(job.history)


def _history_chart(history: list[dict]) -> None:
    if not history:
        return
    last = history[-1]
    numbers = [f"after epoch {last['epoch']}: accuracy {last.get('accuracy', float('nan')):.0%}"]
    if "val_accuracy" in last:
        numbers.append(f"validation {last['val_accuracy']:.0%}")
    st.caption(", ".join(numbers))
    if len(history) >= 2:
        st.plotly_chart(progress_figure(history), key=KEY + "progress_chart", config={"displayModeBar": False})


def _dataset_words(job: jobs.Job) -> str:
    """What the starting job is loading: the cached songs, or the songs it decodes first."""
    if job.resumed:
        return "the cached dataset"
    data = (job.config or {}).get("data_root")
    cached = st.session_state.setdefault(KEY + "cached", {})
    if job.job_id not in cached:  # one look per job: the scan stats every song file
        cached[job.job_id] = bool(data) and is_cached(data)
    return "the cached dataset" if cached[job.job_id] else "the dataset (decoding it the first time)"


def _download_progress(job: jobs.Job) -> None:
    st.markdown(f"**Downloading GTZAN** to `{job.target}`")
    done, total = job.status.get("done"), job.status.get("total")
    st.progress(job.fraction)
    if job.state == "starting" or done is None:
        st.caption("Connecting…")
    elif total and done >= total:
        st.caption("Verifying the checksum and unpacking…")
    else:
        st.caption(f"{format_bytes(done or 0)} of {format_bytes(total or None)}")


def _library_progress(job: jobs.Job) -> None:
    st.markdown(f"**Classifying a collection** in `{job.target}` (the Library page shows it)")
    st.progress(job.fraction)
    done, total = job.status.get("done"), job.status.get("total")
    st.caption("Finding files and loading the model…" if done is None else f"{done} of {total} files")


def _cancel(models_dir: Path, force: bool) -> None:
    if not access.can_control():
        return
    job = jobs.cancel(models_dir, force=force)
    if job is None:
        st.session_state[NOTICE] = ("info", "The job had already ended.")


# Without a job: how the last one went, and the settings for the next -------------------------


def _idle_panel(models_dir: Path) -> None:
    _notice()
    last = jobs.last_job(models_dir)
    if last is not None:
        _outcome(models_dir, last)
    _interrupted_runs(models_dir, last)
    _promote(models_dir)

    settings = jobs.remembered_settings(models_dir)
    data_key = KEY + "data"
    if (
        last is not None
        and last.kind == "download"
        and last.state == "finished"
        and st.session_state.get(APPLIED) != last.job_id
    ):
        # The download finished: select its folder (the job machinery remembered it too).
        st.session_state[data_key] = str(last.result)
        st.session_state[APPLIED] = last.job_id
    data_now = st.session_state.get(data_key, settings.data_dir)
    # Only folders inside the operator's roots are looked at, so this says nothing about others.
    usable = bool(data_now) and is_usable(data_now, allowed_roots(models_dir))
    _no_dataset(models_dir, missing=not usable)
    if usable:
        _few_artists(data_now)

    # The folder is set through Session State (a finished download selects its folder), so
    # the widget takes no default of its own.
    st.session_state.setdefault(data_key, settings.data_dir)
    with st.form(KEY + "form", border=False):
        st.text_input(
            "Dataset folder",
            key=data_key,
            placeholder="/path/to/genres",
            help="Songs as <folder>/<genre>/<files>; every subfolder is a genre.",
        )
        models = list(REGISTRY)
        model = st.selectbox(
            "Model",
            models,
            index=models.index(settings.model) if settings.model in models else 0,
            key=KEY + "model",
            help=" ".join(
                f"{name}: {spec.description} (recipe: {spec.epochs} epochs, batch {spec.batch_size})."
                for name, spec in REGISTRY.items()
            ),
        )
        protocol = st.selectbox(
            "Split",
            PROTOCOLS,
            index=PROTOCOLS.index(settings.protocol) if settings.protocol in PROTOCOLS else 0,
            key=KEY + "protocol",
            help=PROTOCOL_HELP,
        )
        left, right = st.columns(2)
        # Empty means the chosen model's recipe: the model is picked in the same form, so a
        # number filled in from the last run's model would be wrong for another model.
        recipes = "; ".join(f"{name} {spec.epochs}" for name, spec in REGISTRY.items())
        # Text, not number inputs: a browser's number field turns typed letters into "empty",
        # which would silently mean the recipe; here they are refused with a message.
        epochs = left.text_input(
            "Epochs",
            value="" if settings.epochs is None else str(settings.epochs),
            placeholder="recipe",
            key=KEY + "epochs",
            help=f"{EPOCHS_RANGE[0]} to {EPOCHS_RANGE[1]}; empty takes the model's recipe ({recipes})",
        )
        batch = right.text_input(
            "Batch",
            value="" if settings.batch_size is None else str(settings.batch_size),
            placeholder="recipe",
            key=KEY + "batch",
            help=f"{BATCH_RANGE[0]} to {BATCH_RANGE[1]} windows; empty takes the model's recipe",
        )
        seed = left.number_input(
            "Seed", value=int(settings.seed), step=1, key=KEY + "seed", help="Seeds the split and the training."
        )
        folds = right.number_input("Folds (cv)", value=int(settings.folds), step=1, key=KEY + "folds")
        test_share = left.number_input(
            "Test share",
            value=float(settings.test_fraction),
            step=0.05,
            format="%.2f",
            key=KEY + "test",
            help="stratified: share of songs held out for test",
        )
        val_share = right.number_input(
            "Validation share",
            value=float(settings.val_fraction),
            step=0.05,
            format="%.2f",
            key=KEY + "val",
            help="share of training songs kept for validation; 0 trains on all",
        )
        strategy = _devices(settings.strategy)
        st.caption(_split_needs(data_now, protocol, test_share, val_share, int(folds), models_dir).capitalize() + ".")
        submitted = st.form_submit_button("Retrain", type="primary", width="stretch", key=SUBMIT)
    if submitted:
        try:
            epochs_value, batch_value = jobs.parse_count("epochs", epochs), jobs.parse_count("batch size", batch)
        except jobs.SettingsError as error:
            st.error(_sentence(str(error)))
            return
        chosen = jobs.Settings(
            data_dir=str(st.session_state[data_key]).strip(),
            model=model,
            protocol=protocol,
            epochs=epochs_value,
            batch_size=batch_value,
            seed=int(seed),
            test_fraction=float(test_share),
            val_fraction=float(val_share),
            folds=int(folds),
            strategy=strategy,
        )
        _start(lambda: jobs.start_training(models_dir, chosen))


@st.cache_resource(show_spinner="Looking for GPUs…")
def _gpus() -> hardware.Gpus:
    """Once per server: on a host with NVIDIA GPUs, counting them takes a child process seconds."""
    return hardware.training_gpus()


def _split_needs(
    data_dir: str | None, protocol: str, test_share: float, val_share: float, folds: int, models_dir: Path
) -> str:
    """How many songs the chosen split needs, for the dataset folder's genres (10 until a
    usable folder is chosen)."""
    from genre.data.dataset import scan
    from genre.data.splits import needs_text

    n_genres = 10
    if data_dir and is_usable(data_dir, allowed_roots(models_dir)):
        try:
            n_genres = len({t.genre for t in scan(data_dir)}) or 10
        except Exception:  # noqa: BLE001 - an unreadable folder is refused, with its reason, on Retrain
            pass
    try:
        return needs_text(protocol, n_genres, test_share, val_share, folds)
    except Exception:  # noqa: BLE001 - shares out of range are refused on Retrain
        return "the split's songs are counted when you press Retrain"


def _devices(remembered: str) -> str:
    """Where the job trains: a choice only where there is one (more than one usable GPU), else
    a line that says where; returns the strategy to ask for."""
    gpus = _gpus()
    if gpus.usable > 1:
        labels = {
            "auto": f"auto: all {gpus.usable} GPUs",
            "none": "one device (the first GPU)",
            "mirrored": f"all {gpus.usable} GPUs (mirrored)",
        }
        return st.selectbox(
            "Devices",
            list(labels),
            index=list(labels).index(remembered) if remembered in labels else 0,
            format_func=labels.get,
            key=KEY + "strategy",
            help="Across several GPUs each batch is split among them: the batch above is per GPU, and the "
            "learning rate is not scaled. Training on several hosts starts from a terminal (README).",
        )
    if gpus.usable == 1:
        st.caption("Trains on 1 GPU.")
    elif gpus.host:
        st.caption(
            f"Trains on the CPU: this host has {gpus.host} GPU{'s' if gpus.host > 1 else ''}, but TensorFlow sees none "
            "(install requirements-gpu.txt, or check CUDA_VISIBLE_DEVICES)."
        )
    else:
        st.caption("Trains on the CPU: no GPU found.")
    return "auto"  # on one device or none, auto trains without a strategy, as the line says


def _outcome(models_dir: Path, job: jobs.Job) -> None:
    """How the last job ended, with what can be done about it."""
    state = job.state
    if job.kind == "library":
        # The Library page shows a scan's outcome; a scan's end says nothing here.
        return
    if job.kind == "train":
        run = load_run(job.run_dir) if job.run_dir else None
        name = f"Run `{job.run_id}`"
        if state == "finished" and run is not None:
            metrics = run.metrics or {}
            score = (
                f": song accuracy {metrics['song_accuracy_vote']:.0%} on {metrics['test_songs']} test songs"
                if metrics
                else ""
            )
            st.success(f"{name} finished{score}.")
            if active_run_id(models_dir) == job.run_id:
                st.caption("It is the active run: the app serves it.")
            elif run.servable:
                st.button(
                    "Make active",
                    key=KEY + "activate",
                    type="primary",
                    on_click=_activate,
                    args=(models_dir, job.run_id),
                    help="Serve this run's model in the app (an atomic switch of models/ACTIVE).",
                )
        else:
            epochs = len(job.history)
            done = f" after {epochs} completed epoch{'s' if epochs != 1 else ''}" if epochs else ""
            if state == "cancelled":
                st.info(f"{name} was cancelled{done}.")
            else:
                st.error(f"{name} {'failed' if state == 'failed' else 'stopped'}{done}: {job.message}")
            if state != "cancelled":
                st.code(log_tail(job.log, 12) or "(the log is empty)", language=None)
            if job.resumable:
                st.button(
                    "Resume",
                    key=KEY + "resume",
                    on_click=_resume,
                    args=(models_dir, job.run_dir),
                    help="Continue from the last completed epoch.",
                )
    else:
        if state == "finished":
            st.success(f"GTZAN is ready in `{job.result}` and selected as the dataset folder.")
        else:
            st.error(
                f"The GTZAN download {state}: {job.message}"
                if state != "cancelled"
                else "The GTZAN download was cancelled; starting it again resumes it."
            )
            if state != "cancelled":
                st.code(log_tail(job.log, 12) or "(the log is empty)", language=None)
            st.button("Download again", key=KEY + "redownload", on_click=_download, args=(models_dir, job.target))
    st.button("Dismiss", key=KEY + "dismiss", on_click=jobs.dismiss_last_job, args=(models_dir,))


def _interrupted_runs(models_dir: Path, last: jobs.Job | None) -> None:
    """Other runs that stopped early (cancelled, failed, killed with the app down): resumable.
    A run trained from a terminal right now is not offered, nor the active run."""
    skip = {last.run_id if last is not None and last.kind == "train" else None, active_run_id(models_dir)}
    stopped = [r for r in list_runs(models_dir) if r.interrupted and r.run_id not in skip]
    if not stopped:
        return
    with st.expander(f"Interrupted runs ({len(stopped)})"):
        labels = {
            r.run_id: f"{r.run_id} · {r.state if r.state not in ('running', 'evaluating') else 'killed'} · "
            f"{len(r.history())} epochs"
            for r in stopped
        }
        choice = st.selectbox("Run", list(labels), format_func=labels.get, key=KEY + "interrupted")
        st.button("Resume run", key=KEY + "resume_other", on_click=_resume, args=(models_dir, str(models_dir / choice)))


def _promote(models_dir: Path) -> None:
    """*Make active* for any other finished run."""
    active = active_run_id(models_dir)
    finished = [
        r for r in list_runs(models_dir) if r.metrics and r.servable and r.run_id != active and not r.in_training
    ]
    if not finished:
        return
    with st.expander("Serve another run"):
        labels = {
            r.run_id: f"{r.run_id} · {r.config.get('model', '?')} · {r.metrics['song_accuracy_vote']:.0%}"
            for r in finished
        }
        choice = st.selectbox("Finished run", list(labels), format_func=labels.get, key=KEY + "promote_choice")
        st.caption(f"Active now: `{active}`" if active else "No run is active yet.")
        caution = small_test_caution(next(r for r in finished if r.run_id == choice).metrics)
        if caution:
            st.warning(caution)
        st.button("Make active", key=KEY + "promote", on_click=_activate, args=(models_dir, choice))


def _few_artists(data_dir: str) -> None:
    """One line when the folder's genres have songs of fewer than 3 artists (GTZAN's artist index)."""
    line = _few_artists_of(data_dir)
    if line:
        st.caption(f":material/groups: {line}")


@st.cache_data(ttl=60, show_spinner=False)
def _few_artists_of(data_dir: str) -> str | None:
    # The sidebar renders on every rerun of every page: scan (a stat a file) once a minute at most.
    try:
        return few_artists_line([track.track_id for track in scan(data_dir)], where="this folder")
    except (OSError, GenreError):  # the form's own checks say what is wrong with the folder
        return None


def _no_dataset(models_dir: Path, missing: bool) -> None:
    """How to get a dataset: open when there is none yet, one folded line when there is."""
    if missing:
        st.info("No dataset folder yet: choose one below, or download GTZAN.")
    with st.expander("Getting a dataset (GTZAN)", expanded=False):
        st.info(NO_DATASET)
        to = st.text_input(
            "Download to",
            value=str(jobs.default_download_dir()),
            key=KEY + "download_to",
            help=f"About {GTZAN_SIZE_TEXT} to download and as much again unpacked.",
        )
        if st.button(f"Download GTZAN ({GTZAN_SIZE_TEXT})", key=KEY + "download"):
            _start(lambda: jobs.start_download(models_dir, to=to.strip() or None))
        st.caption(
            "Dataset and download folders must lie inside: " + ", ".join(f"`{r}`" for r in allowed_roots(models_dir))
        )


# Actions ------------------------------------------------------------------------------------


def _start(start) -> None:
    """Start a job; a refusal shows its message and starts nothing."""
    if not access.can_control():
        return
    try:
        start()
    except jobs.JobRunning as error:
        _keep_notice("warning", _sentence(str(error)), error.job)
        st.rerun()  # show the job that is running instead
    except jobs.JobError as error:
        st.error(_sentence(str(error)))
        return
    st.rerun()


def _resume(models_dir: Path, run_dir: str) -> None:
    if not access.can_control():
        return
    try:
        jobs.start_training(models_dir, resume=run_dir)
    except jobs.JobError as error:
        st.session_state[NOTICE] = ("error", _sentence(str(error)))


def _download(models_dir: Path, to: str | None) -> None:
    if not access.can_control():
        return
    try:
        jobs.start_download(models_dir, to=to)
    except jobs.JobError as error:
        st.session_state[NOTICE] = ("error", _sentence(str(error)))


def _activate(models_dir: Path, run_id: str) -> None:
    if not access.can_control():
        return
    try:
        set_active(run_id, models_dir)
    except (ValueError, OSError) as error:
        st.session_state[NOTICE] = ("error", f"Cannot make {run_id} active: {error}")
    else:
        # This tab shows and serves the new run from now on, on every page.
        state.select(run_id)
        st.session_state[NOTICE] = ("success", f"`{run_id}` is now the active run.")


def _keep_notice(kind: str, text: str, job: jobs.Job) -> None:
    """A notice that stays while ``job`` runs (the live panel redraws every second)."""
    st.session_state[NOTICE] = (kind, text, job.job_id)


def _notice(job: jobs.Job | None = None) -> None:
    """Show the pending notice: once, or, when it belongs to a job, for as long as that job
    runs (the live panel redraws every second)."""
    notice = st.session_state.get(NOTICE)
    if not notice:
        return
    kind, text, *owner = notice
    if not owner or job is None or owner[0] != job.job_id:
        st.session_state.pop(NOTICE, None)
        if owner:
            return  # about a job that has ended since
    getattr(st, kind)(text)


# Formatting ---------------------------------------------------------------------------------


def _sentence(text: str) -> str:
    """The package's messages are CLI-style lower case; the sidebar shows sentences."""
    return text[:1].upper() + text[1:]


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
