"""The core package stands alone: the CLI, the training jobs and the benchmarks never load the
dashboard's libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_the_genre_package_loads_neither_streamlit_nor_plotly():
    code = (
        "import importlib, pkgutil, sys, genre\n"
        "names = [m.name for m in pkgutil.walk_packages(genre.__path__, 'genre.') if m.name != 'genre.__main__']\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), sorted({m.split('.')[0] for m in sys.modules} & {'streamlit', 'plotly', 'dashboard'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) >= 20  # every module of the package was imported
    assert loaded == "[]"


def test_a_user_run_is_ignored_by_git_and_the_shipped_runs_are_not():
    import shutil
    import subprocess

    root = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=root).returncode == 0

    assert ignored("models/transfer-2026-12-03-1/config.json") and ignored("models/my-run/model.keras")
    assert not ignored("models/ACTIVE")
    for shipped in ("transfer-stratified", "seed-stratified", "fast-cv"):
        assert not ignored(f"models/{shipped}/model.keras") and not ignored(f"models/{shipped}/calibration.json")
