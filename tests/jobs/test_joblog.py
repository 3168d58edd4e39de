"""A job's log as the panel and the job's messages read it (genre.jobs.joblog)."""

from genre.jobs.joblog import error_line, log_tail


def test_log_tail_drops_tensorflow_chatter_and_splits_progress_bars(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "I0000 00:00:1795677582.029043    9584 port.cc:153] oneDNN custom operations are on.\n"
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "decoding:   0%|  | 0/18\rdecoding: 100%|##| 18/18\n"
        "genre: error: dataset folder not found: /x\n"
    )
    assert log_tail(log, 2) == "decoding: 100%|##| 18/18\ngenre: error: dataset folder not found: /x"
    assert log_tail(tmp_path, 1) == "genre: error: dataset folder not found: /x"  # a run folder
    assert error_line(str(log)) == "dataset folder not found: /x"
    assert log_tail(tmp_path / "missing.log") == ""
