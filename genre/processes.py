"""Processes and the files that say which process holds what.

Is a process still there? Read from ``/proc`` where it exists, so that a zombie or a pid
reused by another program does not pass for the process that wrote a status file or a lock
(:func:`process_alive`: a run's status in ``genre.jobs.runs`` and a job's lock in ``genre.jobs.jobs``).
A lock file is made with :func:`create_exclusive` under :func:`folder_flock`."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
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


def create_exclusive(path: Path, data: dict) -> bool:
    """Create ``path`` holding ``data`` whole, or return ``False`` if it exists: the content is
    written to a temporary file first and linked into place (an atomic, exclusive create)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # No hard links here (some network or FUSE file systems): O_EXCL still makes it exclusive.
            try:
                out = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(out, "w") as f:
                f.write(json.dumps(data, indent=2) + "\n")
        return True
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def folder_flock(folder: Path) -> Iterator[None]:
    """Serialise look-clear-create across processes with ``flock`` on ``folder`` itself, so
    two app instances cannot both judge a lock in it stale and both start a job."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: the exclusive create alone guards
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # file systems without flock: the exclusive create alone guards
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock
