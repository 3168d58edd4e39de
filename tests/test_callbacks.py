"""The training callbacks that lean on Keras internals say so loudly when those move."""

from __future__ import annotations

import keras

from genre.callbacks import AtomicBackupAndRestore

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
    assert not missing, f"keras {keras.__version__} BackupAndRestore lacks {missing}, which AtomicBackupAndRestore._save_model reads"


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
