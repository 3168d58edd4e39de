"""A training run's live progress, ``status.json``, and the stop request that ends it early.

No Keras here: the training loop and its callbacks (``genre.callbacks``) write through
:class:`StatusFile`; the dashboard and the CLI read the file (``genre.runs``, ``genre.jobs``).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .config import TrainConfig
from .files import write_json
from .processes import start_time


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
