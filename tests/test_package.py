"""The core package stands alone: the CLI, the training jobs and the benchmarks never load the
dashboard's libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_genre_package_loads_neither_streamlit_nor_plotly():
    code = (
        "import importlib, pkgutil, sys, genre\n"
        "names = [m.name for m in pkgutil.iter_modules(genre.__path__) if m.name != '__main__']\n"
        "for name in names:\n"
        "    importlib.import_module('genre.' + name)\n"
        "print(len(names), sorted({m.split('.')[0] for m in sys.modules} & {'streamlit', 'plotly', 'dashboard'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) >= 20  # every module of the package was imported
    assert loaded == "[]"
