"""Finding trained runs under ``models/`` and which one the app serves."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .files import read_json, write_text

ACTIVE_FILE = "ACTIVE"
MODELS_ENV = "GENRE_MODELS_DIR"


def default_models_dir() -> Path:
    """``$GENRE_MODELS_DIR``, else ``models/`` beside the package (the runs the app ships with)."""
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "models"


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
    def servable(self) -> bool:
        return (self.path / "model.keras").is_file() and bool(read_json(self.path / "genres.json"))

    def history(self) -> list[dict]:
        return read_json(self.path / "history.json", [])

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


def list_runs(models_dir: str | os.PathLike | None = None) -> list[Run]:
    """Every run folder (one with a ``config.json``) under ``models_dir``, newest first."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    if not models_dir.is_dir():
        return []
    runs = [load_run(p) for p in models_dir.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: (r.config.get("created", ""), r.run_id), reverse=True)


def active_run_id(models_dir: str | os.PathLike | None = None) -> str | None:
    """The run the app serves: the one ``models/ACTIVE`` names if it is servable, else the
    newest servable run."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    pointer = models_dir / ACTIVE_FILE
    if pointer.is_file():
        run_id = pointer.read_text().strip()
        if run_id and load_run(models_dir / run_id).servable:
            return run_id
    servable = [r for r in list_runs(models_dir) if r.servable and r.metrics]
    return servable[0].run_id if servable else None


def set_active(run_id: str, models_dir: str | os.PathLike | None = None) -> None:
    """Make ``run_id`` the served run, by atomically replacing ``models/ACTIVE``."""
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    if not load_run(models_dir / run_id).servable:
        raise ValueError(f"run {run_id} has no trained model to serve")
    write_text(models_dir / ACTIVE_FILE, run_id + "\n")
