"""The Keras callbacks of a training run: live progress and the stop request
(:class:`ProgressCallback`), a checkpoint that survives a kill mid-write
(:class:`AtomicBackupAndRestore`), ``history.json`` (:class:`HistoryFile`) and the best epoch's
``model.keras`` (:class:`BestModel`). Importing this module loads Keras."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..errors import TrainingCancelled
from ..files import atomic_path, read_json, write_json
from .status import StatusFile, StopFlag


def _keras_callback():
    import keras

    return keras.callbacks.Callback


class ProgressCallback(_keras_callback()):
    """Feeds ``status.json`` during training and turns a stop request into ``TrainingCancelled``
    (an exception, so that BackupAndRestore keeps its checkpoint for a resume)."""

    def __init__(self, status: StatusFile, stop: StopFlag):
        super().__init__()
        self.status, self.stop = status, stop
        self.epoch_started = time.time()
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started = epoch, time.time()
        self.first_batch_done: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.requested:
            raise TrainingCancelled("training was cancelled")
        logs = logs or {}
        done = batch + 1
        now = time.time()
        # The time left comes from this start's own pace: a first batch carries the graph's
        # tracing (tens of seconds right after a resume), so batches are timed from its end.
        if self.first_batch_done is None:
            self.first_batch_done = now
        eta = {}
        if self.epoch_seconds or done > 1:
            per_batch = (
                (now - self.first_batch_done) / (done - 1)
                if done > 1
                else np.median(self.epoch_seconds) / self.status.batches
            )
            remaining = (self.status.batches - done) * per_batch
            remaining += (self.status.epochs - self.epoch - 1) * (
                np.median(self.epoch_seconds) if self.epoch_seconds else per_batch * self.status.batches
            )
            eta = {"eta_seconds": round(float(remaining), 1)}
        self.status.write(
            "running",
            throttle=1.0,
            epoch=self.epoch + 1,
            batch=done,
            loss=float(logs.get("loss", np.nan)),
            accuracy=float(logs.get("accuracy", np.nan)),
            **eta,
        )

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.time() - self.epoch_started)
        self.status.write(
            "running", epoch=epoch + 1, batch=self.status.batches, **{k: float(v) for k, v in (logs or {}).items()}
        )


def _backup_and_restore():
    import keras

    return keras.callbacks.BackupAndRestore


class AtomicBackupAndRestore(_backup_and_restore()):
    """Keras's BackupAndRestore, with each checkpoint written to a temporary name and renamed:
    a job killed while saving (even the first epoch's, which has no earlier copy to fall back
    on) leaves the previous checkpoint whole instead of a truncated file that stops the resume."""

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp, overwrite=True)
        write_json(self._training_metadata_path, {"epoch": self._current_epoch, "batch": self._last_batch_seen})


class HistoryFile(_keras_callback()):
    """``history.json``: per epoch loss, accuracy, val loss, val accuracy and seconds. On a resume
    the epochs after the restored one are dropped, so the file matches the weights."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        history = [e for e in read_json(self.path, []) if e["epoch"] <= epoch]
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        entry["seconds"] = round(time.time() - self.started, 2)
        write_json(self.path, history + [entry])


class BestModel(_keras_callback()):
    """Saves ``model.keras`` whenever ``monitor`` reaches a new minimum, via a temporary file:
    the model being fitted, or ``whole``, a model it is part of.
    The best value so far is read back from ``history.json``, so a resumed run continues it."""

    def __init__(self, path: Path, monitor: str = "val_loss", whole=None):
        super().__init__()
        self.path, self.monitor, self.whole = path, monitor, whole

    def on_epoch_end(self, epoch, logs=None):
        earlier = [
            e[self.monitor]
            for e in read_json(self.path.parent / "history.json", [])
            if e["epoch"] <= epoch and self.monitor in e
        ]
        value = float((logs or {})[self.monitor])
        if not earlier or not self.path.exists() or value <= min(earlier):
            with atomic_path(self.path, suffix=".keras") as tmp:
                (self.whole or self.model).save(tmp)
