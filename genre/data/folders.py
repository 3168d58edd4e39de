"""The server folders the dashboard may train from and download into: the operator's roots.

A folder typed into the dashboard is used only if it lies inside one of these roots, and a
folder outside them gets the same answer whether it exists or not, so the sidebar cannot be
used to probe the server's disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import GenreError
from ..files import read_json
from .dataset import DATA_ENV

ROOTS_ENV = "GENRE_DATA_ROOTS"


class FolderRefused(GenreError, ValueError):
    """A folder outside the operator's roots; the message is meant for users."""


def allowed_roots(models_dir: str | os.PathLike | None = None) -> list[Path]:
    """``$GENRE_DATA_ROOTS`` (folders separated by ``os.pathsep``) when the operator set it;
    otherwise the download folder (the user data folder of ``genre``), ``$GENRE_DATA``, and
    the dataset folders that the runs in ``models_dir`` were trained on."""
    configured = os.environ.get(ROOTS_ENV)
    if configured is not None:
        candidates = [Path(p) for p in configured.split(os.pathsep) if p.strip()]
    else:
        import platformdirs

        candidates = [Path(platformdirs.user_data_dir("genre"))]
        if os.environ.get(DATA_ENV):
            candidates.append(Path(os.environ[DATA_ENV]))
        if models_dir is not None and Path(models_dir).is_dir():
            for config in sorted(Path(models_dir).glob("*/config.json")):
                try:
                    root = (read_json(config) or {}).get("data_root")
                except (OSError, ValueError):
                    continue
                if isinstance(root, str) and root:
                    candidates.append(Path(root))
    roots: list[Path] = []
    for candidate in candidates:
        resolved = candidate.expanduser().resolve()
        if resolved not in roots:
            roots.append(resolved)
    return roots


def check_inside(folder: str | os.PathLike, roots: Sequence[Path]) -> Path:
    """``folder`` resolved (symbolic links followed) if it lies inside one of ``roots``; else
    :class:`FolderRefused`, with a message that does not depend on whether it exists."""
    text = str(folder).strip()
    if text:
        resolved = Path(text).expanduser().resolve()  # a relative path: from the working folder
        if any(resolved == root or root in resolved.parents for root in roots):
            return resolved
    where = ", ".join(f"`{root}`" for root in roots) or "none are set"
    raise FolderRefused(
        f"{text or 'the folder'} is not inside the folders this app may use ({where}); "
        f"give a full path inside one of them (the operator sets them with ${ROOTS_ENV})"
    )


def is_usable(folder: str | os.PathLike, roots: Sequence[Path]) -> bool:
    """Whether ``folder`` is inside the roots and is a folder."""
    try:
        return check_inside(folder, roots).is_dir()
    except FolderRefused:
        return False
