"""A training run's live progress, ``status.json``, and the stop request that ends it early.

No Keras here: the training loop and its callbacks (``genre.train.callbacks``) write through
:class:`StatusFile`; the dashboard and the CLI read the file (``genre.jobs.runs``, ``genre.jobs.jobs``).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ..files import write_json
from ..processes import start_time
from .config import TrainConfig


class StatusFile:
    """``status.json``: state, fold, epoch, batch, loss/accuracy so far, ETA; read by the dashboard."""

    def __init__(self, path: Path, config: TrainConfig):
        self.path = path
        self.config = config
        self.fold: tuple[int, int] | None = None
        self.epochs = config.epochs or 0
        self.batches = 0
        self.fields: dict = {}
        self.started = time.time()
        self._last = 0.0

    def begin_part(self, epochs: int, batches: int) -> None:
        self.epochs, self.batches = epochs, batches
        self.write("running", epoch=0, batch=0)

    def write(self, state: str, throttle: float = 0.0, **fields) -> None:
        now = time.time()
        self.fields.update(fields)
        if throttle and now - self._last < throttle:
            return
        self._last = now
        data = {
            "state": state,
            "run_id": self.config.run_id,
            "pid": os.getpid(),
            "proc_start": start_time(os.getpid()),  # tells this process from a later one with its pid
            "epochs": self.epochs,
            "batches": self.batches,
            "started": self.started,
            "updated": now,
            **self.fields,
        }
        if self.fold:
            data["fold"], data["folds"] = self.fold
        write_json(self.path, data)


class StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self.previous = signal.SIG_DFL


def install_stop_handler() -> StopFlag:
    flag = StopFlag()

    def request_stop(signum, frame):
        flag.requested = True

    # Signals can only be handled in the main thread (tests may train from another one).
    try:
        flag.previous = signal.signal(signal.SIGTERM, request_stop)
    except ValueError:
        pass
    return flag


def restore_stop_handler(flag: StopFlag) -> None:
    try:
        signal.signal(signal.SIGTERM, flag.previous)
    except ValueError:
        pass


# What a run's status means, said in one place for the CLI, the jobs and the pages.


def training_fraction(status: dict, epochs_done: int = 0) -> float:
    """How far along a training run is, 0..1, from its ``status.json`` (``epochs_done``: the
    epochs in its history, which a resumed run has before its status catches up)."""
    if status.get("state") in ("evaluating", "finished"):
        part = 1.0
    else:
        epochs, batches = status.get("epochs") or 0, status.get("batches") or 0
        epoch, batch = status.get("epoch") or 0, status.get("batch") or 0
        part = ((epoch - 1) + batch / batches) / epochs if epochs and batches and epoch else 0.0
        if epochs:
            # A resumed run starts at epoch 0 in its status until its first batch is done.
            part = max(part, epochs_done / epochs)
    if status.get("folds"):
        return min(1.0, (status["fold"] - 1 + part) / status["folds"])
    return min(1.0, max(0.0, part))


def progress_text(status: dict, eta_seconds: float | None = None) -> str:
    """ "Training: fold 2 of 5, epoch 3 of 30, about 4 min left", or what it does instead."""
    if status.get("state") == "evaluating":
        return "Evaluating the best epoch on the test songs"
    fold = f"fold {status['fold']} of {status['folds']}, " if status.get("folds") else ""
    text = f"Training: {fold}epoch {int(status.get('epoch') or 0)} of {int(status.get('epochs') or 0)}"
    return text + (f", about {eta_seconds / 60:.0f} min left" if eta_seconds else "")


def stopped_text(state: str, status: dict, detail: bool = True) -> str:
    """ "Training was cancelled at epoch 10 of 22; resume with: ..." for a ``cancelled``,
    ``failed`` or ``killed`` run (``detail=False``: without the status message)."""
    if state == "cancelled":
        text = "Training was cancelled"
    elif state == "failed":
        text = "Training failed"
    else:  # its status says running, but its process is gone
        text = "Training stopped without a word (the process was killed)"
    if status.get("epoch") and status.get("epochs"):
        text += f" at epoch {status['epoch']} of {status['epochs']}"
    message = (status.get("message") or "").strip()
    if message.startswith("cancelled"):  # the state again
        message = message[len("cancelled") :].lstrip("; ,")
    return f"{text}; {message}" if detail and message else text + "."
