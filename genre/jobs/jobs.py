"""Background jobs for the dashboard: training runs and the GTZAN download, one at a time per
``models/`` folder.

A job is ``python -m genre train|download ...`` started detached (its own session, output to a
log file), so Keras never loads into the Streamlit server and a crash of either side leaves the
other standing. No Streamlit here: the dashboard (``dashboard/retrain.py``) only calls these.

Files, all written atomically:

* ``models/.lock``: the running job (JSON: pid, kind, run id, started, ...). Made with an
  exclusive create, so two app instances cannot both start a job. It is *stale* when its
  process is gone, a zombie, or a different process that reused the pid; every look
  (``current_job``) clears a stale lock.
* ``models/.jobs/last.json``: the latest job and how it ended, so the outcome (finished,
  failed with its log, cancelled and resumable) survives a page reload or an app restart.
* ``models/.jobs/settings.json``: the last settings used (the dataset folder above all).
* ``<run>/train.log``; ``models/.jobs/download.log`` and ``download-progress.json``.

A job only ever writes its own run folder (always a new one, or the cancelled/failed run it
resumes) and the files above, so the run the app serves cannot be damaged, whenever the job
is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from ..data.dataset import DATA_ENV, DatasetError, scan
from ..data.download import DATASET_DIRNAME, MARKER_NAME, default_download_dir
from ..data.folders import FolderRefused, allowed_roots, check_inside
from ..errors import GenreError
from ..files import read_json, write_json
from ..processes import create_exclusive, folder_flock, proc_stat, process_alive, start_time
from ..train.config import BATCH_RANGE, DEFAULTS, EPOCHS_RANGE, ConfigError, TrainConfig, run_id_stem
from ..train.status import training_fraction
from .joblog import TRAIN_LOG, error_line
from .runs import ACTIVE_FILE, Run, active_run_id, check_resumable, check_run_id, set_active

LOCK_NAME = ".lock"
JOBS_DIR = ".jobs"
LAST_JOB = "last.json"
SETTINGS = "settings.json"
DOWNLOAD_LOG = "download.log"
DOWNLOAD_PROGRESS = "download-progress.json"
LIBRARY_LOG = "library.log"
LIBRARY_PROGRESS = "library-progress.json"
LIBRARY_RESULTS = "library.json"  # its cache, library.library.jsonl, lies beside it
# Set for a job's process: the job id whose lock the dashboard took on its behalf.
JOB_ENV = "GENRE_JOB_ID"
# The strategies a job may ask for: one process on this host (multi-worker needs TF_CONFIG
# and a process on every host, started from a terminal).
JOB_STRATEGIES = ("auto", "none", "mirrored")


# The job runs ``python -m genre`` from the repository, whatever the server's working folder.
REPO = Path(__file__).resolve().parents[2]

# Popen objects of the jobs this process started: polling them reaps the finished ones (no
# zombies) and yields their exit codes. Jobs of other processes are judged through /proc.
_CHILDREN: dict[int, subprocess.Popen] = {}


class JobError(GenreError):
    """A job that cannot be started, resumed or cancelled; the message is meant for users."""


class SettingsError(JobError, ValueError):
    """A bad training setting, refused before anything starts."""


class JobRunning(JobError):
    """Another job holds this ``models/`` folder's lock."""

    def __init__(self, job: Job):
        what = f"training run {job.run_id}" if job.kind == "train" else "the GTZAN download"
        super().__init__(f"a job is already running ({what}, pid {job.pid}); wait for it or cancel it")
        self.job = job


@dataclass
class Settings:
    """What the sidebar asks for: the part of :class:`~genre.train.config.TrainConfig` it offers,
    with its defaults. ``None`` epochs/batch take the model's recipe; ``strategy`` is one of
    :data:`JOB_STRATEGIES`."""

    data_dir: str
    model: str = DEFAULTS["model"]
    protocol: str = DEFAULTS["protocol"]
    epochs: int | None = DEFAULTS["epochs"]
    batch_size: int | None = DEFAULTS["batch_size"]
    seed: int = DEFAULTS["seed"]
    test_fraction: float = DEFAULTS["test_fraction"]
    val_fraction: float = DEFAULTS["val_fraction"]
    folds: int = DEFAULTS["folds"]
    strategy: str = DEFAULTS["strategy"]

    def config(self) -> TrainConfig:
        """The training run these settings ask for."""
        values = asdict(self)
        return TrainConfig(data_root=values.pop("data_dir"), **values)

    def cli_args(self) -> list[str]:
        args = [
            "--data",
            str(Path(self.data_dir).expanduser().absolute()),
            "--model",
            self.model,
            "--protocol",
            self.protocol,
        ]
        if self.epochs is not None:
            args += ["--epochs", str(self.epochs)]
        if self.batch_size is not None:
            args += ["--batch", str(self.batch_size)]
        args += [
            "--seed",
            str(self.seed),
            "--test-fraction",
            str(self.test_fraction),
            "--val-fraction",
            str(self.val_fraction),
        ]
        return args + ["--folds", str(self.folds), "--strategy", self.strategy]

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Job:
    """One background job: what the lock (and ``last.json``) records, plus what a look found.

    ``status`` is the run's ``status.json`` (training) or the download's progress file;
    ``history`` the run's ``history.json`` so far (the current fold's while a cross-validation
    run trains); ``alive`` whether the process still runs.
    """

    kind: str  # "train" | "download" | "library"
    job_id: str
    pid: int
    started: float
    log: str
    argv: list[str]
    run_id: str | None = None
    run_dir: str | None = None
    target: str | None = None  # download: the folder the dataset goes to; library: the folder scanned
    progress: str | None = None  # the file the job reports progress in
    proc_start: int | None = None  # the process's start time (Linux), to tell pid reuse
    cancel_requested: float | None = None
    ended: float | None = None
    returncode: int | None = None
    group: bool = True  # the job leads its own process group (a dashboard job; not a terminal's)
    config: dict | None = None  # training: the run's TrainConfig fields (a resumed run's as saved)
    alive: bool = field(default=False, compare=False)
    status: dict = field(default_factory=dict, compare=False)
    history: list = field(default_factory=list, compare=False)

    _RECORD = (
        "kind", "job_id", "pid", "started", "log", "argv", "run_id", "run_dir", "target", "progress",
        "proc_start", "cancel_requested", "ended", "returncode", "group", "config",
    )  # fmt: skip

    def record(self) -> dict:
        data = asdict(self)
        return {k: data[k] for k in self._RECORD}

    @classmethod
    def from_record(cls, data: dict) -> Job:
        return cls(**{k: data[k] for k in cls._RECORD if k in data})

    # What the job is doing, or how it ended ------------------------------------------------

    @property
    def resumed(self) -> bool:
        """A training job that continues an interrupted run rather than starting a new one."""
        return "--resume" in self.argv

    @property
    def status_written_by_job(self) -> dict:
        """``status`` if this job's process wrote it; a resumed run's file may still hold the
        previous attempt's ``cancelled`` until the new process gets going."""
        if self.kind == "train":
            return self.status if self.status.get("pid") == self.pid else {}
        return self.status

    @property
    def state(self) -> str:
        """Alive: ``starting``, ``running``, ``evaluating``, ``finishing``, ``downloading``, ``cancelling``.
        Ended: ``finished``, ``cancelled``, ``failed`` or ``killed`` (died without a word)."""
        status = self.status_written_by_job
        if self.alive:
            if self.cancel_requested:
                return "cancelling"
            if self.kind == "download":
                return "downloading" if status else "starting"
            if self.kind == "library":
                return "scanning" if status else "starting"
            said = status.get("state")
            if said in ("finished", "failed", "cancelled"):
                return "finishing"  # the status is written; the process is on its way out
            return said if said in ("running", "evaluating") else "starting"
        if self.kind == "train":
            said = status.get("state")
            if said in ("finished", "cancelled", "failed"):
                return said
        elif self.kind == "library":
            if self.returncode == 0 or (self.returncode is None and status.get("finished")):
                return "finished"
        elif self.target and _download_complete(Path(self.target)) and self.returncode in (0, None):
            return "finished"
        if self.cancel_requested:
            return "cancelled"
        # Training that ends by an exception says "failed" in its status; one that still says
        # "running" was stopped from outside (SIGKILL, the OOM killer, a power cut).
        if (self.returncode or 0) < 0 or (self.kind == "train" and status.get("state") in ("running", "evaluating")):
            return "killed"
        return "failed"

    @property
    def message(self) -> str:
        """One line on how it went, for the sidebar."""
        state = self.state
        if state == "failed":
            said = self.status_written_by_job.get("message") if self.kind == "train" else None
            return said or error_line(self.log) or f"the job ended unexpectedly (exit code {self.returncode})"
        if state == "killed":
            return f"killed (signal {-self.returncode})" if (self.returncode or 0) < 0 else "killed, or out of memory"
        if state == "cancelled":
            return "cancelled" + ("; it can be resumed" if self.resumable else "")
        return state

    @property
    def resumable(self) -> bool:
        """A training run that stopped early and got as far as writing its config."""
        return (
            self.kind == "train"
            and not self.alive
            and self.state in ("cancelled", "failed", "killed")
            and bool(self.run_dir)
            and (Path(self.run_dir) / "config.json").is_file()
        )

    @property
    def result(self) -> Path | None:
        """The finished run's folder, or the downloaded dataset folder."""
        if self.state != "finished":
            return None
        if self.kind == "train":
            return Path(self.run_dir) if self.run_dir else None
        if self.kind == "library":
            return Path(self.progress).with_name(LIBRARY_RESULTS) if self.progress else None
        return dataset_folder(Path(self.target)) if self.target else None

    @property
    def fraction(self) -> float:
        """How far along, 0..1, for a progress bar."""
        status = self.status_written_by_job
        if self.kind in ("download", "library"):
            done, total = status.get("done") or 0, status.get("total")
            return min(1.0, done / total) if total else 0.0
        return training_fraction(status, len(self.history))

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left (of this fold, for cross-validation), counted down since the last update."""
        status = self.status_written_by_job
        if "eta_seconds" not in status or status.get("state") != "running":
            return None
        return max(0.0, status["eta_seconds"] - (time.time() - status.get("updated", time.time())))


# Looking at, starting and cancelling jobs ---------------------------------------------------


def current_job(models_dir: str | os.PathLike) -> Job | None:
    """The job running for ``models_dir`` with its live status and history, or ``None``.

    This is the "next look" that clears a stale lock (its process died, even by SIGKILL) and
    records how that job ended in ``last.json``.
    """
    models_dir = Path(models_dir)
    if not (models_dir / LOCK_NAME).exists():
        return None
    with folder_flock(models_dir):
        return _running_job(models_dir)


def last_job(models_dir: str | os.PathLike) -> Job | None:
    """The latest job of ``models_dir`` (running or ended) with its status, or ``None``."""
    models_dir = Path(models_dir)
    running = current_job(models_dir)
    if running is not None:
        return running
    try:
        job = Job.from_record(read_json(models_dir / JOBS_DIR / LAST_JOB))
    except (TypeError, ValueError, AttributeError):
        return None  # none yet, or an unreadable record: nothing to report
    _attach_live_files(job)
    return job


def dismiss_last_job(models_dir: str | os.PathLike) -> None:
    """Forget the ended job's outcome (the sidebar's *Dismiss*); a running job is kept."""
    models_dir = Path(models_dir)
    if current_job(models_dir) is None:
        (models_dir / JOBS_DIR / LAST_JOB).unlink(missing_ok=True)


def start_training(
    models_dir: str | os.PathLike,
    settings: Settings | None = None,
    resume: str | os.PathLike | None = None,
    run_id: str | None = None,
    roots: list[Path] | None = None,
) -> Job:
    """Validate ``settings`` and start training a new run, or resume the run folder ``resume``.

    The dataset folder must lie inside ``roots`` (default: :func:`genre.data.folders.allowed_roots`).
    Raises :class:`SettingsError` for a bad setting and :class:`JobRunning` while another job
    holds the lock; in both cases nothing starts.
    """
    # Absolute paths: the job runs from the repository, not from the server's working folder.
    models_dir = Path(models_dir).expanduser().absolute()
    if resume is not None:
        run_dir = Path(resume).expanduser().absolute()
        config = _check_resumable(models_dir, run_dir).config.get("train")
        argv = ["train", "--resume", str(run_dir)]
        if (config or {}).get("strategy") == "multi-worker":
            argv += ["--strategy", "auto"]  # a dashboard job trains on this host alone (job_environment)
    else:
        if settings is None:
            raise SettingsError("no settings given")
        if str(settings.data_dir).strip():  # empty: validate_settings says to choose one
            settings.data_dir = str(_inside(settings.data_dir, models_dir, roots))
        validate_settings(settings)
        run_dir = models_dir / _new_run_id(models_dir, settings, run_id)
        argv = ["train", *settings.cli_args(), "--models-dir", str(models_dir), "--run-id", run_dir.name]
        config = asdict(settings.config())
        config.update(models_dir=str(models_dir), run_id=run_dir.name)
    models_dir.mkdir(parents=True, exist_ok=True)
    _pin_served_run(models_dir)
    job = _start(
        models_dir, "train", argv, run_dir / TRAIN_LOG, new_folder=None if resume is not None else run_dir,
        run_id=run_dir.name, run_dir=str(run_dir), progress=str(run_dir / "status.json"), config=config,
    )  # fmt: skip
    if settings is not None:
        remember_settings(models_dir, settings)
    return job


def start_download(
    models_dir: str | os.PathLike,
    to: str | os.PathLike | None = None,
    url: str | None = None,
    md5: str | None = None,
    roots: list[Path] | None = None,
) -> Job:
    """Start ``python -m genre download gtzan`` as this folder's job. Progress goes to
    ``models/.jobs/download-progress.json``; when it finishes, the next look selects the new
    dataset folder (:func:`default_data_dir`). ``to`` must lie inside ``roots`` (default:
    :func:`genre.data.folders.allowed_roots`)."""
    models_dir = Path(models_dir).expanduser().absolute()
    to = _inside(to or default_download_dir(), models_dir, roots)
    jobs_dir = models_dir / JOBS_DIR
    progress = jobs_dir / DOWNLOAD_PROGRESS
    argv = ["download", "gtzan", "--to", str(to), "--progress-file", str(progress)]
    argv += ["--url", url] if url else []
    argv += ["--md5", md5] if md5 else []
    jobs_dir.mkdir(parents=True, exist_ok=True)
    return _start(
        models_dir, "download", argv, jobs_dir / DOWNLOAD_LOG, fresh=[progress], target=str(to), progress=str(progress)
    )


def start_library(
    models_dir: str | os.PathLike,
    folder: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    roots: list[Path] | None = None,
) -> Job:
    """Start ``python -m genre library FOLDER`` as this folder's job: it classifies every audio
    file under ``folder`` (which must lie inside ``roots``, default
    :func:`genre.data.folders.allowed_roots`) with ``run_dir`` (default: the active run) into
    ``models/.jobs/library.json``, reusing the earlier scans' results."""
    models_dir = Path(models_dir).expanduser().absolute()
    folder = _inside(folder, models_dir, roots)
    if not folder.is_dir():
        raise SettingsError(f"{folder} is not a folder")
    if run_dir is None:
        served = active_run_id(models_dir)
        if served is None:
            raise SettingsError("no trained run to classify with")
        run_dir = models_dir / served
    jobs_dir = models_dir / JOBS_DIR
    progress = jobs_dir / LIBRARY_PROGRESS
    argv = [
        "library",
        str(folder),
        "--out",
        str(jobs_dir / LIBRARY_RESULTS),
        "--run",
        str(run_dir),
        "--progress-file",
        str(progress),
    ]
    jobs_dir.mkdir(parents=True, exist_ok=True)
    return _start(
        models_dir,
        "library",
        argv,
        jobs_dir / LIBRARY_LOG,
        fresh=[progress],
        target=str(folder),
        progress=str(progress),
    )


@contextlib.contextmanager
def training_lock(
    models_dir: str | os.PathLike, run_dir: str | os.PathLike, argv: list[str], config: dict | None = None
) -> Iterator[None]:
    """Hold ``models_dir``'s job lock while ``python -m genre train`` trains ``run_dir``, so that
    a terminal's run and the dashboard's jobs never train in one folder at once. A job that the
    dashboard started finds its own lock (the job id in ``$GENRE_JOB_ID``) and goes on under it.
    ``config`` (the run's :class:`~genre.train.config.TrainConfig` fields) goes into the lock's record.
    Raises :class:`JobRunning` when another job holds the lock."""
    models_dir = Path(models_dir).expanduser().absolute()
    run_dir = Path(run_dir).expanduser().absolute()
    lock = models_dir / LOCK_NAME
    with folder_flock(models_dir):
        held = _read_json_quietly(lock) or {}
        # The dashboard's job for this very run: its lock covers us. Read it as it is: until the
        # dashboard writes our pid into it, it names the (non-genre) server process, which a
        # look would take for a stale lock.
        ours = (
            bool(os.environ.get(JOB_ENV))
            and held.get("job_id") == os.environ.get(JOB_ENV)
            and held.get("run_dir") == str(run_dir)
        )
        running = None if ours else _running_job(models_dir)
        if ours:
            mine = None
        elif running is not None:
            raise JobRunning(running)
        else:
            stamp = time.time()
            mine = Job(
                "train", f"cli-{stamp:.3f}", os.getpid(), stamp, str(run_dir / TRAIN_LOG), ["-m", "genre", *argv],
                run_id=run_dir.name, run_dir=str(run_dir), progress=str(run_dir / "status.json"),
                proc_start=start_time(os.getpid()), group=False, config=config,
            )  # fmt: skip
            if not create_exclusive(lock, mine.record()):
                raise JobRunning(_running_job(models_dir) or mine)
    try:
        yield
    finally:
        if mine is not None:
            with folder_flock(models_dir):
                if (_read_json_quietly(lock) or {}).get("job_id") == mine.job_id:
                    lock.unlink(missing_ok=True)


def cancel(models_dir: str | os.PathLike, force: bool = False) -> Job | None:
    """Ask the running job to stop: SIGTERM, so training stops after the current batch and its
    run becomes ``cancelled`` (resumable); ``force`` sends SIGKILL, for a job that does not
    stop. Returns the job, or ``None`` when none was running."""
    models_dir = Path(models_dir)
    if not (models_dir / LOCK_NAME).exists():
        return None
    with folder_flock(models_dir):
        job = _running_job(models_dir)
        if job is None:
            return None
        job.cancel_requested = job.cancel_requested or time.time()
        write_json(models_dir / LOCK_NAME, job.record())
        write_json(models_dir / JOBS_DIR / LAST_JOB, job.record())
        _signal(job, signal.SIGKILL if force else signal.SIGTERM)
        return job


def wait(models_dir: str | os.PathLike, timeout: float = 60.0, poll: float = 0.2) -> Job | None:
    """Block until the running job ends (or ``timeout``); return how it ended. For scripts and tests."""
    deadline = time.monotonic() + timeout
    while current_job(models_dir) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the job in {models_dir} is still running after {timeout:.0f} s")
        time.sleep(poll)
    return last_job(models_dir)


# Settings -----------------------------------------------------------------------------------


def validate_settings(settings: Settings) -> dict:
    """Refuse bad settings with one clear message each (:class:`SettingsError`), before
    anything starts. Returns what the job will see: songs per genre and the split's sizes.

    The dataset folder is scanned (no decoding) and the split is made for real on its track
    ids, so "too few songs" means exactly what the job would hit.
    """
    from ..data.splits import fold_parts, make_split

    s = settings
    if s.strategy not in JOB_STRATEGIES:
        if s.strategy == "multi-worker":
            raise SettingsError(
                "multi-worker training starts from a terminal on every host, with TF_CONFIG; a job trains on this host"
            )
        raise SettingsError(f"unknown distribution strategy {s.strategy!r}; choose one of {', '.join(JOB_STRATEGIES)}")
    try:
        s.config().check()
    except ConfigError as error:
        raise SettingsError(str(error)) from None
    if not str(s.data_dir).strip():
        raise SettingsError(f"choose a dataset folder (or set ${DATA_ENV})")
    try:
        tracks = scan(s.data_dir)
    except DatasetError as error:
        raise SettingsError(str(error)) from None
    genres = sorted({t.genre for t in tracks})
    ids = [t.track_id for t in tracks]
    labels = [genres.index(t.genre) for t in tracks]
    try:
        manifest = make_split(
            s.protocol,
            ids,
            labels,
            test_fraction=s.test_fraction,
            val_fraction=s.val_fraction,
            seed=s.seed,
            folds=s.folds,
            genres=genres,
        )
    except ValueError as error:  # SplitError, or scikit-learn refusing a fold
        raise SettingsError(f"too few songs for the {s.protocol} split: {error}") from None
    for number, part in enumerate(fold_parts(manifest), 1):
        where = f" in fold {number}" if "folds" in manifest else ""
        for name in ("train", "test") + (("valid",) if s.val_fraction > 0 else ()):
            if not part.get(name):
                raise SettingsError(f"too few songs for the {s.protocol} split: no {name} songs{where}")
    first = fold_parts(manifest)[0]
    return {
        "songs": len(ids),
        "genres": {g: labels.count(i) for i, g in enumerate(genres)},
        "split": {name: len(first.get(name, [])) for name in ("train", "valid", "test")},
        "folds": len(manifest.get("folds", [])) or None,
    }


def parse_count(name: str, text: object) -> int | None:
    """A whole number typed into the sidebar (``name``: "epochs" or "batch size"); empty is
    ``None``, the model's recipe. Anything else that is not a whole number is refused."""
    low, high = EPOCHS_RANGE if name == "epochs" else BATCH_RANGE
    text = "" if text is None else str(text).strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise SettingsError(
            f"the {name} must be a whole number from {low} to {high} (empty takes the model's recipe), not {text!r}"
        ) from None


def remember_settings(models_dir: str | os.PathLike, settings: Settings) -> None:
    """Keep the settings of the latest job, so the sidebar offers them next time."""
    write_json(Path(models_dir) / JOBS_DIR / SETTINGS, asdict(settings))


def remembered_settings(models_dir: str | os.PathLike) -> Settings:
    """The last settings used with ``models_dir``; a fresh folder gets the defaults, with the
    dataset folder from :func:`default_data_dir`."""
    saved = read_json(Path(models_dir) / JOBS_DIR / SETTINGS, {}) or {}
    settings = Settings.from_dict({**saved, "data_dir": default_data_dir(models_dir)})
    return settings


def default_data_dir(models_dir: str | os.PathLike) -> str:
    """The dataset folder to offer: the last one used here if it still exists, else
    ``$GENRE_DATA``, else the active run's dataset if it is on this machine, else the last one
    used (so the sidebar says it is missing), else ``""``."""
    saved = (read_json(Path(models_dir) / JOBS_DIR / SETTINGS, {}) or {}).get("data_dir") or ""
    if saved and Path(saved).expanduser().is_dir():
        return saved
    if os.environ.get(DATA_ENV):
        return os.environ[DATA_ENV]
    active = active_run_id(models_dir)
    if active:
        served = (_read_json_quietly(Path(models_dir) / active / "config.json") or {}).get("data_root")
        if isinstance(served, str) and Path(served).is_dir():
            return served
    return saved


def dataset_folder(download_to: Path) -> Path:
    """The dataset folder a download into ``download_to`` produces."""
    return download_to / DATASET_DIRNAME


# Internals ----------------------------------------------------------------------------------


def _check_resumable(models_dir: Path, run_dir: Path) -> Run:
    if run_dir.resolve().parent != models_dir.resolve():
        raise SettingsError(f"{run_dir} is not a run of {models_dir}")
    try:
        return check_resumable(run_dir)
    except ValueError as error:
        raise SettingsError(str(error)) from error


def _new_run_id(models_dir: Path, settings: Settings, run_id: str | None) -> str:
    if run_id:
        try:
            check_run_id(run_id)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        if (models_dir / run_id).exists():
            raise SettingsError(f"run {run_id} exists already; choose another name")
        return run_id
    stem = run_id_stem(settings.model, settings.protocol)
    candidate, n = stem, 1
    while (models_dir / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def _inside(folder: str | os.PathLike, models_dir: Path, roots: list[Path] | None) -> Path:
    try:
        return check_inside(folder, allowed_roots(models_dir) if roots is None else roots)
    except FolderRefused as error:
        raise SettingsError(str(error)) from None


def _pin_served_run(models_dir: Path) -> None:
    """Without ``models/ACTIVE`` the app serves the newest finished run, so a finishing job
    would silently replace the served model; pin today's choice, so only *Make active* changes it."""
    if not (models_dir / ACTIVE_FILE).exists():
        served = active_run_id(models_dir)
        if served:
            set_active(served, models_dir)


def job_environment(job_id: str) -> dict[str, str]:
    """The environment of a dashboard job: the server's, without ``TF_CONFIG`` (a job trains on
    this host alone; with it, ``--strategy auto`` would wait for other hosts' workers)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return env | {"PYTHONUNBUFFERED": "1", JOB_ENV: job_id}


def _start(
    models_dir: Path,
    kind: str,
    argv: list[str],
    log: Path,
    fresh: list[Path] = (),
    new_folder: Path | None = None,
    **record,
) -> Job:
    """Take the lock, start ``python -m genre *argv`` detached, record it. ``new_folder`` (a
    new run's) is created exclusively under the lock: two jobs never share a run folder."""
    lock = models_dir / LOCK_NAME
    with folder_flock(models_dir):
        running = _running_job(models_dir)
        if running is not None:
            raise JobRunning(running)
        # The lock first holds this process (alive, so nobody clears it) until the child's
        # pid is known; an exclusive create so that only one starter can win.
        stamp = time.time()
        job = Job(
            kind,
            f"{kind}-{stamp:.3f}",
            os.getpid(),
            stamp,
            str(log),
            ["-m", "genre", *argv],
            proc_start=start_time(os.getpid()),
            **record,
        )
        if not create_exclusive(lock, job.record()):
            raise JobRunning(_running_job(models_dir) or job)
        try:
            if new_folder is not None:
                try:
                    new_folder.mkdir()
                except FileExistsError:
                    raise SettingsError(f"run {new_folder.name} exists already; choose another name") from None
            for path in fresh:
                path.unlink(missing_ok=True)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                out.write(f"=== {datetime.now():%Y-%m-%d %H:%M:%S} python -m genre {' '.join(argv)}\n".encode())
                out.flush()
                child = subprocess.Popen(
                    [sys.executable, "-m", "genre", *argv],
                    cwd=REPO,
                    env=job_environment(job.job_id),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: no terminal signals, killpg reaches its workers
                    close_fds=True,
                )
        except BaseException as error:
            lock.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise JobError(f"cannot start the job: {error}") from error
            raise
        _CHILDREN[child.pid] = child
        job.pid, job.proc_start = child.pid, start_time(child.pid)
        write_json(lock, job.record())
        write_json(models_dir / JOBS_DIR / LAST_JOB, job.record())
    job.alive = True
    _attach_live_files(job)
    return job


def _running_job(models_dir: Path) -> Job | None:
    """Read the lock (under the guard); clear it and finish the record if its job is gone."""
    lock = models_dir / LOCK_NAME
    try:
        data = json.loads(lock.read_text())
        job = Job.from_record(data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        lock.unlink(missing_ok=True)  # unreadable: no job can be proven to hold it
        return None
    job.alive, returncode = _alive(job)
    if job.alive:
        _attach_live_files(job)
        return job
    job.ended, job.returncode = time.time(), returncode
    last = models_dir / JOBS_DIR / LAST_JOB
    if (read_json(last) or {}).get("job_id") in (job.job_id, None):
        write_json(last, job.record())
    lock.unlink(missing_ok=True)
    _attach_live_files(job)
    if job.kind == "download" and job.state == "finished":
        # Select the new dataset for the next training job.
        saved = read_json(models_dir / JOBS_DIR / SETTINGS, {}) or {}
        write_json(models_dir / JOBS_DIR / SETTINGS, {**saved, "data_dir": str(job.result)})
    return None


def _attach_live_files(job: Job) -> None:
    """Attach the live files: a training run's status and history, a download's progress."""
    job.status = (_read_json_quietly(Path(job.progress)) or {}) if job.progress else {}
    if job.kind == "train" and job.run_dir:
        folder = Path(job.run_dir)
        if job.status.get("fold") and not (folder / "history.json").exists():
            # Cross-validation: each fold keeps its own history; the run's comes at the end.
            folder = folder / f"fold-{job.status['fold']}"
        job.history = _read_json_quietly(folder / "history.json") or []


def _read_json_quietly(path: Path):
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _alive(job: Job) -> tuple[bool, int | None]:
    """Whether the job's process still runs, and its exit code when this process knows it."""
    child = _CHILDREN.get(job.pid)
    if child is not None:
        code = child.poll()  # reaps our own finished child
        if code is None:
            return True, None
        _CHILDREN.pop(job.pid, None)
        return False, code
    stat = proc_stat(job.pid)
    if stat is not None and stat[0] in ("Z", "X"):
        try:  # a zombie of ours that this module lost track of (say, after a module reload)
            pid, wait_status = os.waitpid(job.pid, os.WNOHANG)
            return False, (os.waitstatus_to_exitcode(wait_status) if pid == job.pid else None)
        except OSError:  # another process's child: its parent reaps it
            return False, None
    # The test a run's status gets too (genre.jobs.runs): gone, a zombie, or the pid reused.
    if not process_alive(job.pid, job.proc_start):
        return False, None
    if stat is None:
        return (sys.platform != "linux"), None  # no /proc: trust the pid
    try:
        cmdline = Path(f"/proc/{job.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False, None
    # The placeholder lock names the starting server itself; otherwise it must be our command.
    return (job.pid == os.getpid() or b"genre" in cmdline), None


def _signal(job: Job, signum: int) -> None:
    # A dashboard job leads its own process group: signal the group, so that decoding workers
    # of a dataset still being cached stop too. A terminal's run may share its group with a pipe.
    try:
        if job.group and os.getpgid(job.pid) == job.pid:
            os.killpg(job.pid, signum)
        else:
            os.kill(job.pid, signum)
    except ProcessLookupError:
        pass


def _download_complete(to: Path) -> bool:
    return (dataset_folder(to) / MARKER_NAME).is_file()
