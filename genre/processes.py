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


def process_alive(pid: object, started: object = None) -> bool:
    """Whether ``pid`` names a live process (not a zombie) on this machine; with ``started``
    (its start time in clock ticks, :func:`proc_stat`), the same process, not a reused pid."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or reused by another user
        return False
    stat = proc_stat(pid)
    if stat is None:
        return True  # no /proc: trust the pid
    if stat[0] in ("Z", "X"):
        return False
    return not isinstance(started, int) or stat[1] == started


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (``None`` without ``/proc``)."""
    stat = proc_stat(pid)
    return stat[1] if stat else None
