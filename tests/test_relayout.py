"""scripts/relayout.py: the import and name rewrites, and a run on a small checkout (moves kept as
moves in git, a module it does not place refused). This file holds old names on purpose: the
script leaves it alone."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("relayout", REPO / "scripts" / "relayout.py")
relayout = importlib.util.module_from_spec(spec)
spec.loader.exec_module(relayout)


def _rewrite(text: str, module: str | None = None) -> str:
    """What the script writes for ``text``, the file being genre/<module>.py (None: outside genre)."""
    text, _ = relayout.rewrite_dotted(text)
    if module is None:
        return relayout.rewrite_from_genre_text(relayout.rewrite_imports(text, None, None)[0])[0]
    new_package = relayout.new_name(module).rsplit(".", 1)[0] if module in relayout.MOVES else "genre"
    return relayout.rewrite_imports(text, "genre", new_package)[0]


def test_relative_imports_inside_genre_follow_both_modules():
    assert _rewrite("from .audio import AudioError\n", "dataset") == "from ..audio.decode import AudioError\n"
    assert _rewrite("from .dataset import SongCache\n", "splits") == "from .dataset import SongCache\n"
    assert _rewrite("from .errors import GenreError\n", "splits") == "from ..errors import GenreError\n"
    assert _rewrite("from . import WINDOW\n", "windows") == "from .. import WINDOW\n"
    assert _rewrite("from .models import REGISTRY\n", "cli") == "from .models.registry import REGISTRY\n"
    # A lazy import keeps its indentation and its comment.
    lazy = "def f():\n    from . import layers, musicnn  # noqa: F401  registers\n"
    assert _rewrite(lazy, "prediction") == "def f():\n    from ..models import layers, musicnn  # noqa: F401  registers\n"
    split = "def f():\n    from . import library, runs\n"
    assert _rewrite(split, "cli") == "def f():\n    from .serve import library\n    from .jobs import runs\n"
    noqa = "from genre import SAMPLE_RATE, musicnn  # noqa: E402\n"
    assert _rewrite(noqa) == "from genre import SAMPLE_RATE  # noqa: E402\nfrom genre.models import musicnn  # noqa: E402\n"
    parenthesised = "from .splits import (\n    audit,  # the leak check\n    make_split,\n)\n"
    assert _rewrite(parenthesised, "training") == parenthesised.replace("from .splits", "from ..data.splits")


def test_absolute_names_strings_and_prose_are_rewritten_and_python_dash_m_genre_stays():
    assert _rewrite("from genre.prediction import Classifier\n") == "from genre.serve.prediction import Classifier\n"
    assert _rewrite("import genre.training as training\n") == "import genre.train.training as training\n"
    assert _rewrite("from genre import audio, files\n") == "from genre.audio import decode as audio\nfrom genre import files\n"
    assert _rewrite('monkeypatch.setattr("genre.prediction.load_model", fake)\n') == (
        'monkeypatch.setattr("genre.serve.prediction.load_model", fake)\n'
    )
    assert _rewrite('probe = "from genre.distribute import visible_gpus"\n') == (
        'probe = "from genre.train.distribute import visible_gpus"\n'
    )
    prose, _ = relayout.rewrite_dotted("see genre/audio.py and `genre/weights/LICENSE-musicnn.txt`; genre.data stays")
    assert prose == "see genre/audio/decode.py and `genre/models/weights/LICENSE-musicnn.txt`; genre.data stays"
    prose, _ = relayout.rewrite_dotted("tests/test_models.py and tests/test_app.py")
    assert prose == "tests/models/test_registry.py and tests/test_app.py"
    child = 'code = "import sys\\nfrom genre import hardware, jobs as j\\nprint(1)"\n'
    assert _rewrite(child) == 'code = "import sys\\nfrom genre.train import hardware; from genre.jobs import jobs as j\\nprint(1)"\n'
    same = 'cmd = [sys.executable, "-m", "genre", "train"]\nfor genre in genres:\n    genre.split("/")\n'
    assert _rewrite(same) == same
    # The moves never touch a name twice: genre.audio.decode is not rewritten again.
    assert relayout.rewrite_dotted("genre.audio_x and genre.splitsy")[0] == "genre.audio_x and genre.splitsy"


def test_every_module_has_one_place_and_every_layer_its_two_lines():
    targets = list(relayout.MOVES.values())
    assert len(targets) == len(set(targets))
    assert {t.split(".")[0] for t in targets} <= set(relayout.LAYERS)
    assert not set(relayout.MOVES) & (relayout.BASE | relayout.TOP)
    assert all(len(lines) == 2 for lines in relayout.LAYERS.values())


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    files = {
        "genre/__init__.py": "WINDOW = 3\n",
        "genre/errors.py": "class GenreError(Exception):\n    pass\n",
        "genre/audio.py": "from .errors import GenreError\n\n\ndef decode():\n    return 1\n",
        "genre/windows.py": "from . import WINDOW\nfrom .audio import decode\n\n\ndef windows():\n"
        "    return decode() * WINDOW\n",
        "genre/runs.py": "from pathlib import Path\n\nROOT = Path(__file__).resolve().parent.parent\n",
        "genre/cli.py": "def main():\n    from .windows import windows\n\n    return windows()\n",
        "genre/weights/w.h5": "weights\n",
        "tests/test_windows.py": "from genre import windows\n\n\ndef test_it():\n    assert windows.windows() == 3\n",
        "README.md": "The windows are cut in genre/windows.py.\n",
    }
    doc = '"""A module of the small checkout.\n\nIts body is long enough for git to see a rename.\n"""\n\n'
    files = {name: (doc + text if name.endswith(".py") and text.count("\n") > 1 else text) for name, text in files.items()}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "flat")
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    script = REPO / "scripts" / "relayout.py"
    return subprocess.run([sys.executable, str(script), *args], cwd=root, capture_output=True, text=True, timeout=60)


def test_a_run_moves_with_git_mv_and_the_moved_package_imports(checkout):
    done = _run(checkout)
    assert done.returncode == 0, done.stderr
    status = _git(checkout, "status", "--porcelain")
    assert "R  genre/audio.py -> genre/audio/decode.py" in status
    assert "R  genre/weights/w.h5 -> genre/models/weights/w.h5" in status
    assert "R  tests/test_windows.py -> tests/audio/test_windows.py" in status
    assert "from genre.audio import windows\n" in (checkout / "tests" / "audio" / "test_windows.py").read_text()
    assert "\nfrom .. import WINDOW\nfrom .decode import decode\n" in (checkout / "genre" / "audio" / "windows.py").read_text()
    assert "parents[2]" in (checkout / "genre" / "jobs" / "runs.py").read_text()
    assert (checkout / "README.md").read_text() == "The windows are cut in genre/audio/windows.py.\n"
    init = (checkout / "genre" / "audio" / "__init__.py").read_text()
    assert len(init.strip().splitlines()) == 2
    code = "from genre.cli import main; from genre.jobs.runs import ROOT; print(main(), ROOT.name)"
    out = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "repo"]
    assert "warning" not in done.stderr
    assert _run(checkout).returncode != 0  # once only


def test_a_module_it_does_not_place_is_named_and_nothing_moves(checkout):
    (checkout / "genre" / "song_map.py").write_text("X = 1\n", encoding="utf-8")
    _git(checkout, "add", ".")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "new module")
    done = _run(checkout)
    assert done.returncode == 1 and "genre/song_map.py" in done.stderr and "MOVES" in done.stderr
    assert (checkout / "genre" / "audio.py").exists() and not (checkout / "genre" / "audio").exists()
    assert _run(checkout, "--check").returncode == 1
