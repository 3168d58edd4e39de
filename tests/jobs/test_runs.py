"""Run listing and the CLI's reports: one liveness test everywhere, and errors that name files."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genre import files
from genre.cli import main
from genre.jobs.runs import load_run
from genre.processes import start_time


def _with_status(tiny_run: Path, models: Path, name: str, **status) -> Path:
    run = Path(shutil.copytree(tiny_run, models / name))
    (run / "metrics.json").unlink()  # not finished: `runs` shows its state
    (run / "status.json").write_text(json.dumps(status))
    return run


def test_runs_shows_a_run_whose_trainer_was_killed_as_killed(tiny_run, tmp_path, capsys):
    models = tmp_path / "models"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _with_status(tiny_run, models, "sigkilled", state="running", pid=gone.pid, epoch=3, epochs=8)
    _with_status(tiny_run, models, "alive", state="running", pid=os.getpid(), proc_start=start_time(os.getpid()))
    # The pid lives on in another process (reused): a different start time gives it away.
    _with_status(tiny_run, models, "reused", state="running", pid=os.getpid(), proc_start=1)
    assert main(["runs", "--models-dir", str(models)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["sigkilled"].rstrip().endswith("killed")
    assert lines["reused"].rstrip().endswith("killed")
    assert lines["alive"].rstrip().endswith("running")
    # The dashboard reads the same property.
    assert load_run(models / "sigkilled").state_now == "killed" and load_run(models / "alive").state_now == "running"


def test_a_full_disk_names_the_file_that_could_not_be_written(tiny_run, tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_run, models / "run")

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a write to a full disk raises

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError) as caught:
        files.write_json(models / "run" / "status.json", {"state": "running"})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(models / "run" / "status.json")
    assert main(["activate", "run", "--models-dir", str(models)]) == 2
    assert capsys.readouterr().err.strip() == f"genre: error: cannot write {models / 'ACTIVE'}: No space left on device"
    assert sorted(p.name for p in models.iterdir()) == ["run"]  # no temporary file left behind


def test_a_run_scored_on_a_tiny_test_set_is_cautioned():
    from genre.jobs.runs import small_test_caution

    genres = [f"g{i}" for i in range(10)]
    caution = small_test_caution({"test_songs": 4, "genres": genres, "song_accuracy_vote": 0.25})
    assert caution.startswith("Scored on only 4 test songs (0.4 a genre): its 25% could as well be")
    assert small_test_caution({"test_songs": 56, "genres": genres, "song_accuracy_vote": 0.9}) is None
