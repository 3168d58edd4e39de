"""Session state shared by the pages (the selected run, the live take) and cached loaders.

Runs are re-read only when one of their files changes: the cache keys carry the files'
modification times, so a run that finishes training, or a retrained ``model.keras``, shows up
without restarting the app.
"""

from __future__ import annotations

import io
import runpy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from genre.data.dataset import track_path
from genre.jobs.runs import Run, active_run_id, default_models_dir, load_run, read_runs
from genre.serve.live import LiveAudio, LiveTally
from genre.serve.live_worker import LiveWorker

if TYPE_CHECKING:
    from genre.serve.prediction import Classifier

SELECTED_KEY = "selected_run"
LIVE_KEY = "live_audio"
LIVE_RESULTS_KEY = "live_results"
MIC_ACTIVE_KEY = "mic_active"
ENTRYPOINT = Path(__file__).resolve().parent.parent / "streamlit_app.py"
RUN_FILES = ("config.json", "status.json", "metrics.json", "history.json", "genres.json", "model.keras")


def require_entrypoint() -> None:
    """Run the page through ``streamlit_app.py``.

    With a ``pages/`` folder beside the entrypoint, Streamlit starts in its classic multipage
    mode and runs a deep-linked page (``/classify``) on its own, without the navigation and the
    sidebar, until some session has called ``st.navigation``. Leave that mode and run the
    entrypoint in place (it runs this page again, properly); a rerun instead would lose the
    click that started this run.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(ENTRYPOINT), run_name="__main__")
        st.stop()


def models_dir() -> Path:
    """The folder of runs the app shows (``$GENRE_MODELS_DIR`` or ``models/``)."""
    return default_models_dir()


def _stamp(run_dir: Path) -> tuple:
    stamps = []
    for name in RUN_FILES:
        try:
            stamps.append((name, (run_dir / name).stat().st_mtime_ns))
        except FileNotFoundError:
            pass
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=256)
def _load_run(run_dir: str, stamp: tuple) -> Run:
    return load_run(run_dir)


@st.cache_data(show_spinner=False, max_entries=256)
def _history(run_dir: str, stamp: tuple) -> list[dict]:
    return load_run(run_dir).history()


def runs() -> list[Run]:
    """Every readable run under the models folder, newest first."""
    return runs_and_unreadable()[0]


def runs_and_unreadable() -> tuple[list[Run], dict[str, str]]:
    """The readable runs, newest first, and the run folders that could not be read, each with
    the reason (``genre.jobs.runs.read_runs``); a run's files are read again only when one of them
    has changed."""
    return read_runs(models_dir(), load=lambda p: _load_run(str(p), _stamp(p)))


def history(run: Run) -> list[dict]:
    return _history(str(run.path), _stamp(run.path))


def active_id() -> str | None:
    return active_run_id(models_dir())


def selected_run() -> Run | None:
    """The run chosen in the sidebar; by default the active one, else the newest."""
    available = runs()
    by_id = {r.run_id: r for r in available}
    chosen = st.session_state.get(SELECTED_KEY)
    if chosen in by_id:
        return by_id[chosen]
    default = active_id()
    if default in by_id:
        return by_id[default]
    return available[0] if available else None


def select(run_id: str) -> None:
    st.session_state[SELECTED_KEY] = run_id


# ----------------------------------------------------------------------------- model and audio


@st.cache_resource(show_spinner=False, max_entries=4)
def _classifier(run_dir: str, model_mtime_ns: int):
    from genre.serve.prediction import Classifier

    classifier = Classifier.load(run_dir)
    classifier.warm_up()
    return classifier


def classifier(run: Run):
    """The run's model, loaded once per ``model.keras`` version and warmed up."""
    return _classifier(str(run.path), (run.path / "model.keras").stat().st_mtime_ns)


# Run folders whose model the server-start warm-up has loaded (the test waits on it).
warmed: set[str] = set()


@st.cache_resource(show_spinner=False)
def warm_served_model(folder: str):
    """Once per server and models folder: load and warm the active run's model in a background
    thread, so the first visit to Classify does not wait for it and no page waits here. A page
    asking for the model meanwhile waits on the same cache entry instead of loading it again."""
    import threading

    def work() -> None:
        run_id = active_run_id(Path(folder))
        if run_id is None:
            return
        try:
            run = load_run(Path(folder) / run_id)
            if run.servable:
                classifier(run)
                warmed.add(str(run.path))
        except Exception:  # noqa: BLE001 - the Classify page shows the reason when it loads the model itself
            pass

    thread = threading.Thread(target=work, name="warm-served-model", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def warm_up_audio() -> None:
    """Decode a short 44.1 kHz wav and mp3 once: the first resample loads librosa's lazy
    modules and soxr (seconds on a small machine), which the first real upload should not pay."""
    import soundfile as sf

    from genre.audio.decode import decode

    t = np.arange(int(1.5 * 44_100)) / 44_100
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for fmt in ("WAV", "MP3"):
        buffer = io.BytesIO()
        try:
            sf.write(buffer, tone, 44_100, format=fmt)
        except (sf.LibsndfileError, ValueError):  # a libsndfile built without mp3
            continue
        decode(buffer.getvalue(), name=f"warm-up.{fmt.lower()}")


# A result carries its decoded audio (for the spectrogram): 2.6 MB a 30 s song, 53 MB ten minutes.
@st.cache_data(show_spinner=False, max_entries=8)
def _classify_bytes(run_dir: str, model_mtime_ns: int, data: bytes, name: str):
    return _classifier(run_dir, model_mtime_ns).classify(data, name=name)


@st.cache_data(show_spinner=False, max_entries=8)
def _classify_samples(run_dir: str, model_mtime_ns: int, samples: np.ndarray):
    return _classifier(run_dir, model_mtime_ns).classify(samples)


def classify_bytes(run: Run, data: bytes, name: str):
    """Classify encoded audio (an upload, a recording); cached per run and content."""
    return _classify_bytes(str(run.path), (run.path / "model.keras").stat().st_mtime_ns, data, name)


def classify_samples(run: Run, samples: np.ndarray):
    """Classify mono float32 audio at 22,050 Hz (the microphone take); cached per content."""
    return _classify_samples(str(run.path), (run.path / "model.keras").stat().st_mtime_ns, samples)


def song_file(run: Run, track_id: str) -> Path | None:
    """The audio file of a test song in the run's dataset, if that is on this machine."""
    root = run.config.get("data_root")
    return track_path(root, track_id) if root else None


# ----------------------------------------------------------------------------- live microphone


def live_audio():
    """This session's microphone buffer (the WebRTC callback appends to it)."""
    if LIVE_KEY not in st.session_state:
        st.session_state[LIVE_KEY] = LiveAudio()
    return st.session_state[LIVE_KEY]


def live_results() -> LiveTally:
    """The windows of the take classified so far."""
    if LIVE_RESULTS_KEY not in st.session_state:
        st.session_state[LIVE_RESULTS_KEY] = LiveTally()
    return st.session_state[LIVE_RESULTS_KEY]


@st.cache_resource(show_spinner=False)
def live_worker() -> LiveWorker:
    """The server's one thread that classifies live windows as they complete."""
    return LiveWorker()


def follow_live(classifier: Classifier) -> None:
    """Have this session's live windows classified with ``classifier`` as soon as each
    completes, off the page's thread (the page only draws the tally)."""
    live_worker().follow(live_audio(), live_results(), classifier)


def new_take() -> None:
    """Start a fresh take: empty buffer, no windows (the same objects, so the live worker
    keeps following them)."""
    live_results().restart(live_audio())
    st.session_state.pop("take_classified", None)


def on_mic_change(key: str) -> None:
    """WebRTC state callback: a new take begins when the stream starts (before its first frame
    arrives, so nothing of it is lost)."""
    context = st.session_state.get(key)
    active = bool(context and (context.state.playing or context.state.signalling))
    if active and not st.session_state.get(MIC_ACTIVE_KEY):
        new_take()
    st.session_state[MIC_ACTIVE_KEY] = active


# ----------------------------------------------------------------------------- song map, what the model heard


@st.cache_data(show_spinner=False, max_entries=16)
def _song_map(run_dir: str, map_mtime_ns: int, model_mtime_ns: int):
    from genre.jobs.song_map import read_song_map

    return read_song_map(run_dir)


def song_map(run: Run):
    """The run's cached song map, or None when it has none; re-read when the map or the model
    file changes. A stale or unreadable map raises ``genre.jobs.song_map.SongMapError``."""
    from genre.jobs.song_map import MAP_FILE

    try:
        map_mtime = (run.path / MAP_FILE).stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _song_map(str(run.path), map_mtime, (run.path / "model.keras").stat().st_mtime_ns)


def no_song_map_text(run: Run) -> str:
    """One line for a run without a song map: how to compute it, or why it cannot be here."""
    root = run.config.get("data_root")
    if root and Path(root).is_dir():
        return (
            f"Run `{run.run_id}` has no song map yet: `python -m genre map {run.run_id}` computes it from its dataset "
            f"(`{root}`)."
        )
    return (
        f"Run `{run.run_id}` has no song map, and its dataset (`{root or 'not named'}`) is not on this machine to "
        "compute one."
    )


@st.cache_resource(show_spinner=False)
def tag_network():
    """musicnn's MSD network with its 50 tags, loaded once per server."""
    from genre.serve.heard import TagNetwork

    return TagNetwork()


@st.cache_data(show_spinner=False, max_entries=8)
def log_mel(song: np.ndarray):
    from genre.serve.heard import log_mel as compute

    return compute(song)


@st.cache_data(show_spinner=False, max_entries=8)
def _second_pass_taggram(song: np.ndarray):
    from genre.serve.heard import taggram as compute

    return compute(tag_network(), song)


def taggram(result):
    """musicnn's tags over a classified song's windows: the classification's own (one model call)
    where its model gave them, else a second pass of musicnn over the song."""
    from genre.serve.heard import song_of, taggram_of

    tags = taggram_of(result)
    return tags if tags is not None else _second_pass_taggram(song_of(result))
