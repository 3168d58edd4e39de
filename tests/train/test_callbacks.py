"""The training callbacks that lean on Keras internals say so loudly when those move."""

from __future__ import annotations

import keras

from genre.train.callbacks import AtomicBackupAndRestore

# What AtomicBackupAndRestore._save_model overrides and reads. Keras's own
# BackupAndRestore(double_checkpoint=True) keeps the previous checkpoint, but the first save has
# none, so a kill during it would still leave a truncated file that stops the resume.
PRIVATE_METHODS = ("_save_model",)
PRIVATE_ATTRIBUTES = ("_weights_path", "_training_metadata_path", "_current_epoch", "_last_batch_seen", "backup_dir")


def test_the_keras_internals_atomic_backup_uses_still_exist(tmp_path):
    for name in PRIVATE_METHODS:
        assert callable(getattr(keras.callbacks.BackupAndRestore, name, None)), (
            f"keras {keras.__version__} BackupAndRestore has no {name}(); AtomicBackupAndRestore overrides it "
            "to write checkpoints atomically: port the override to the new Keras"
        )
    backup = AtomicBackupAndRestore(str(tmp_path / "backup"))
    missing = [name for name in PRIVATE_ATTRIBUTES if not hasattr(backup, name)]
    assert not missing, (
        f"keras {keras.__version__} BackupAndRestore lacks {missing}, which AtomicBackupAndRestore._save_model reads"
    )


def test_a_checkpoint_is_written_whole_under_its_own_name(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    backup = AtomicBackupAndRestore(str(tmp_path / "backup"))
    backup.set_model(model)
    backup._current_epoch, backup._last_batch_seen = 4, 0
    backup._save_model()
    files = sorted(p.name for p in (tmp_path / "backup").iterdir())
    assert files == sorted([name.rsplit("/", 1)[-1] for name in (backup._weights_path, backup._training_metadata_path)])
    restored = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    restored.load_weights(backup._weights_path)
    assert all((a == b).all() for a, b in zip(model.get_weights(), restored.get_weights()))


def test_the_time_left_after_a_resume_comes_from_this_starts_pace_not_its_first_batch(monkeypatch):
    """A resumed run's first batch traces the graph (60 s here); later batches take 1 s. Two
    epochs of 10 batches: after six batches, 4 + 10 s are left, not minutes."""
    import genre.train.callbacks as callbacks
    from genre.train.callbacks import ProgressCallback

    class Status:
        batches, epochs = 10, 2
        writes: list = []

        def write(self, state, throttle=0.0, **fields):
            self.writes.append(fields)

    class Stop:
        requested = False

    clock = [1000.0]
    monkeypatch.setattr(callbacks.time, "time", lambda: clock[0])
    status = Status()
    progress = ProgressCallback(status, Stop())
    progress.on_epoch_begin(0)
    for batch in range(6):
        clock[0] += 60.0 if batch == 0 else 1.0
        progress.on_train_batch_end(batch, {"loss": 1.0, "accuracy": 0.5})
    assert "eta_seconds" not in status.writes[0]  # one traced batch says nothing about the pace
    assert abs(status.writes[-1]["eta_seconds"] - 14.0) < 0.5
