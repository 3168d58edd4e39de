"""Finding trained runs under ``models/`` and which one the app serves."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import GenreError
from ..files import read_json, write_text
from ..processes import process_alive
from ..train.status import progress_text, stopped_text, training_fraction

ACTIVE_FILE = "ACTIVE"
MODELS_ENV = "GENRE_MODELS_DIR"
TRAINING_STATES = ("running", "evaluating")
_RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")

log = logging.getLogger(__name__)


class RunError(GenreError, ValueError):
    """A run id or run folder refused for what is asked of it; the message says why."""


def default_models_dir() -> Path:
    """``$GENRE_MODELS_DIR``; else, run from a checkout, its ``models/`` (the runs the app ships
    with); else (an installed package) ``models`` in the user's data folder, e.g.
    ``~/.local/share/genre/models``."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():  # never beside an installed package (site-packages)
        return checkout / "models"
    import platformdirs

    return Path(platformdirs.user_data_dir("genre")) / "models"


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a plain folder name under ``models/`` (letters, digits, ``.``, ``_``,
    ``-``; not starting with ``.``, so never ``.``, ``..`` or the hidden ``.jobs``); else
    :class:`RunError`. A run id never leads outside the models folder."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or len(run_id) > 200:
        raise RunError(
            f"a run id is a plain name of letters, digits, '.', '_' and '-' that does not start with '.', not "
            f"{run_id!r}"
        )
    return run_id


@dataclass
class Run:
    """A run folder and what it says about itself."""

    run_id: str
    path: Path
    config: dict
    status: dict
    metrics: dict | None

    @property
    def state(self) -> str:
        return self.status.get("state", "finished" if self.metrics else "unknown")

    @property
    def in_training(self) -> bool:
        """Whether a process is training this run now: its status says so and its pid lives."""
        return self.state in TRAINING_STATES and process_alive(self.status.get("pid"), self.status.get("proc_start"))

    @property
    def state_now(self) -> str:
        """``state``, except that a run whose status says training but whose process is gone
        (killed, even by SIGKILL) is ``killed``: what the CLI and the dashboard show."""
        return "killed" if self.state in TRAINING_STATES and not self.in_training else self.state

    @property
    def interrupted(self) -> bool:
        """Whether training stopped before the end: cancelled, failed, or killed (its status
        still says training but no process is doing it)."""
        return self.state in ("cancelled", "failed") or (self.state in TRAINING_STATES and not self.in_training)

    @property
    def fraction(self) -> float:
        """How far along its training is, 0..1."""
        return training_fraction(self.status, len(self.history()))

    @property
    def progress_text(self) -> str:
        """What its training is doing now, for a progress bar."""
        return progress_text(self.status, self.status.get("eta_seconds"))

    def stopped_text(self, detail: bool = True) -> str:
        """Why an interrupted run stopped, and how to resume it (see :func:`genre.train.status.stopped_text`)."""
        return stopped_text(self.state_now, self.status, detail)

    @property
    def servable(self) -> bool:
        return (self.path / "model.keras").is_file() and bool(read_json(self.path / "genres.json"))

    def history(self, fold: int | None = None) -> list[dict]:
        """Per-epoch figures: of the run (for a CV run, the mean over its folds) or of ``fold``."""
        return read_json(self.path / (f"fold-{fold}" if fold else "") / "history.json", [])

    def split(self) -> dict:
        return read_json(self.path / "split.json", {})

    @property
    def genres(self) -> list[str]:
        return read_json(self.path / "genres.json", [])


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder's json files (missing ones are empty)."""
    path = Path(path)
    return Run(
        run_id=path.name,
        path=path,
        config=read_json(path / "config.json", {}),
        status=read_json(path / "status.json", {}),
        metrics=read_json(path / "metrics.json"),
    )


def read_runs(
    models_dir: str | os.PathLike | None = None, load: Callable[[Path], Run] = load_run
) -> tuple[list[Run], dict[str, str]]:
    """Every run folder (one with a ``config.json``) under ``models_dir``, newest first, and
    the folders whose files could not be read, each with the reason."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    if not models_dir.is_dir():
        return [], {}
    runs, unreadable = [], {}
    for folder in sorted(models_dir.iterdir()):
        if (folder / "config.json").is_file():
            try:
                runs.append(load(folder))
            except (OSError, ValueError) as error:
                unreadable[folder.name] = str(error)
    return sorted(runs, key=lambda r: (r.config.get("created", ""), r.run_id), reverse=True), unreadable


def list_runs(models_dir: str | os.PathLike | None = None) -> list[Run]:
    """Every readable run under ``models_dir``, newest first; unreadable ones are logged."""
    runs, unreadable = read_runs(models_dir)
    for run_id, reason in unreadable.items():
        log.warning("skipping run %s: %s", run_id, reason)
    return runs


def active_run_id(models_dir: str | os.PathLike | None = None) -> str | None:
    """The run the app serves: the one ``models/ACTIVE`` names if it is a servable run of this
    folder, else the newest servable run. Anything but a plain run id in ``ACTIVE`` (a path
    such as ``../x`` or ``/elsewhere``) is refused: the app serves only runs under ``models/``."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    pointer = models_dir / ACTIVE_FILE
    if pointer.is_file():
        run_id = pointer.read_text(errors="replace").strip()
        try:
            if run_id and load_run(models_dir / check_run_id(run_id)).servable:
                return run_id
        except ValueError as error:
            log.warning("%s names %r, which is not served: %s", pointer, run_id, error)
    servable = [r for r in list_runs(models_dir) if r.servable and r.metrics]
    return servable[0].run_id if servable else None


def set_active(run_id: str, models_dir: str | os.PathLike | None = None) -> None:
    """Make ``run_id`` the served run, by atomically replacing ``models/ACTIVE``."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    run = load_run(models_dir / check_run_id(run_id))
    if not run.servable:
        raise RunError(f"run {run_id} has no trained model to serve")
    if run.in_training:
        raise RunError(
            f"run {run_id} is being trained (pid {run.status.get('pid')}); make it active once it has finished"
        )
    write_text(models_dir / ACTIVE_FILE, run_id + "\n")


def check_resumable(run_dir: str | os.PathLike) -> Run:
    """The run in ``run_dir`` if it may be resumed; else :class:`RunError` saying why. A finished
    run would be trained again from scratch over its kept model, a run being trained belongs
    to another process, and the served run must not change under the app."""
    run_dir = Path(run_dir)
    check_run_id(run_dir.name)
    run = load_run(run_dir)
    if not run.config:
        raise RunError(f"{run_dir} is not a run folder that can be resumed (no config.json)")
    if run.in_training:
        raise RunError(f"run {run.run_id} is being trained now (pid {run.status.get('pid')})")
    if run.state == "finished":
        raise RunError(f"run {run.run_id} has already finished; start a new run instead")
    if active_run_id(run_dir.parent) == run.run_id:
        raise RunError(f"run {run.run_id} is the active run; make another run active before resuming it")
    return run


# Fewer test songs than this per genre on average, and a run's accuracy says little.
TINY_TEST_PER_GENRE = 5


def small_test_caution(metrics: dict | None) -> str | None:
    """A caution for a run scored on a tiny test set (a 4-song test part scores 25% or 100%
    by luck), or None."""
    if not metrics:
        return None
    songs, genres = int(metrics.get("test_songs", 0)), len(metrics.get("genres", [])) or 1
    if songs >= TINY_TEST_PER_GENRE * genres:
        return None
    p = float(metrics.get("song_accuracy_vote", 0.0))
    spread = 1.96 * (max(p * (1 - p), 0.25 / max(songs, 1)) / max(songs, 1)) ** 0.5
    return (
        f"Scored on only {songs} test songs ({songs / genres:.1f} a genre): its {p:.0%} could as well be "
        f"{max(p - spread, 0):.0%} to {min(p + spread, 1):.0%}. Check it on more songs before serving it."
    )
