"""Every run shipped in models/ loads with the serving loader in safe mode: the registered names of
the project's layers (package "genre" + class name) survive any move of the modules that define them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from genre.serve.prediction import load_model

REPO = Path(__file__).resolve().parent.parent


def _shipped() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "models"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        listed = "\n".join(str(p.relative_to(REPO)) for p in REPO.glob("models/**/model.keras"))
    return sorted(line for line in listed.splitlines() if line.endswith("/model.keras"))


SHIPPED = _shipped()


def test_there_are_shipped_runs():
    assert len(SHIPPED) >= 3, SHIPPED


@pytest.mark.parametrize("model_file", SHIPPED)
def test_a_shipped_run_loads_in_safe_mode_and_predicts(model_file):
    import numpy as np

    from genre import WINDOW

    model = load_model(REPO / model_file)
    probabilities = np.asarray(model(np.zeros((1, WINDOW, 1), dtype="float32"), training=False))
    assert probabilities.shape[0] == 1 and np.isclose(probabilities.sum(), 1.0, atol=1e-4)
