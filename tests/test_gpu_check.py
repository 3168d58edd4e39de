"""The GPU device-check script runs end to end on a CPU (so it works when a GPU host runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_gpu_check_times_one_device_and_mirrored_and_writes_its_table(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "gpu_check.py"),
            "--models",
            "fast",
            "--precisions",
            "float32",
            "--windows",
            "8",
            "--batch-size",
            "4",
            "--epochs",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    rows = {row["strategy"]: row for row in results["rows"]}
    assert set(rows) == {"none", "mirrored"}
    for row in rows.values():
        assert row["model"] == "fast" and row["replicas"] == 1 and len(row["epoch_s"]) == 1
        assert row["windows_per_s"] == pytest.approx(8 / row["median_epoch_s"])
        # The recipe's 40 epochs of full GTZAN's 7,200 training windows at the measured rate.
        assert row["recipe_hours"] == pytest.approx(row["median_epoch_s"] * 40 * 7200 / 8 / 3600)
    assert "fast   float32   mirrored" in done.stdout
