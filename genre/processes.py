"""Is a process still there? Read from ``/proc`` where it exists, so that a zombie or a pid
reused by another program does not pass for the process that wrote a status file."""

from __future__ import annotations

import os
from pathlib import Path


def proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks)`` from ``/proc/<pid>/stat``, or ``None``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[19])


def process_alive(pid: object) -> bool:
    """Whether ``pid`` names a live process (not a zombie) on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or reused by another user
        return False
    stat = proc_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")  # no /proc: trust the pid
