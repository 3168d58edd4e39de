"""Reading a background job's log: its last lines without TensorFlow's start-up chatter, and
the one-line error the CLI printed there."""

from __future__ import annotations

import os
import re
from pathlib import Path

TRAIN_LOG = "train.log"  # a run folder's log of the jobs that trained it

# absl's C++ log lines (I/W/E + date) and its preamble: TensorFlow start-up noise, not news.
_NOISE = re.compile(
    r"^\s*(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl"
    r"|To enable the following instructions)"
)


def log_tail(path: str | os.PathLike, lines: int = 20) -> str:
    """The last ``lines`` lines of a job's log (a log file, or a run folder's ``train.log``),
    progress-bar redraws split apart and TensorFlow's start-up chatter left out."""
    path = Path(path)
    if path.is_dir():
        path = path / TRAIN_LOG
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    kept = [line.rstrip() for line in re.split(r"[\r\n]+", text) if line.strip() and not _NOISE.match(line)]
    return "\n".join(kept[-lines:])


def error_line(log: str | os.PathLike) -> str | None:
    """The CLI's one-line error (``genre: error: ...``) from the end of a log."""
    for line in reversed(log_tail(log, 200).splitlines()):
        if line.startswith("genre: "):
            return line.removeprefix("genre: error: ").removeprefix("genre: ")
    return None
