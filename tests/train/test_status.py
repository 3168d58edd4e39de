"""What a run's status.json means (genre.train.status): one reading for the CLI, the jobs and the pages."""

import pytest

from genre.train.status import progress_text, stopped_text, training_fraction


@pytest.mark.parametrize(
    "status, epochs_done, expected",
    [
        ({"state": "running", "epochs": 10, "batches": 4, "epoch": 3, "batch": 2}, 2, 0.25),
        (
            {"state": "running", "epochs": 10, "batches": 4, "epoch": 0, "batch": 0},
            4,
            0.4,
        ),  # resumed, before its first batch
        ({"state": "running", "epochs": 10, "batches": 4, "epoch": 1, "batch": 0, "fold": 3, "folds": 5}, 0, 0.4),
        ({"state": "evaluating", "epochs": 10, "fold": 5, "folds": 5}, 0, 1.0),
        ({}, 0, 0.0),
    ],
)
def test_training_fraction(status, epochs_done, expected):
    assert training_fraction(status, epochs_done) == pytest.approx(expected)


def test_progress_text_says_fold_epoch_and_time_left():
    status = {"state": "running", "fold": 2, "folds": 5, "epoch": 3, "epochs": 30}
    assert progress_text(status, 240) == "Training: fold 2 of 5, epoch 3 of 30, about 4 min left"
    assert progress_text({"state": "evaluating"}) == "Evaluating the best epoch on the test songs"


def test_stopped_text_names_how_it_stopped_and_how_to_resume():
    status = {"epoch": 10, "epochs": 22, "message": "cancelled; resume with: python -m genre train --resume models/x"}
    assert (
        stopped_text("cancelled", status)
        == "Training was cancelled at epoch 10 of 22; resume with: python -m genre train --resume models/x"
    )
    assert stopped_text("cancelled", status, detail=False) == "Training was cancelled at epoch 10 of 22."
    assert stopped_text("killed", {}) == "Training stopped without a word (the process was killed)."
    assert stopped_text("failed", {"message": "DatasetError: no songs"}) == "Training failed; DatasetError: no songs"
