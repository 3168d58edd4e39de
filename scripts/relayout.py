#!/usr/bin/env python3
"""One-off (issue 20): move genre's flat modules into subpackages by layer, history kept.

Run at the root of a clean checkout, then run the tests and commit (or pass --commit):

    .venv/bin/python scripts/relayout.py            # moves with git mv, rewrites imports, stages it all
    .venv/bin/python scripts/relayout.py --check    # only lists modules MOVES does not place (exit 1 if any)

It refuses a module it does not know: add it to MOVES (old module name: "layer.new_name") and run it
again. Imports and dotted names are rewritten in genre/, dashboard/, pages/, tests/, bench/,
scripts/, streamlit_app.py and the top-level *.md files: relative imports inside genre (``from
.audio import`` becomes ``from ..audio.decode import``), ``from genre import training``,
``genre.prediction.load_model`` in strings, ``genre/audio.py`` in prose. ``python -m genre`` stays.
tests/test_layers_import.py reads LAYERS, BASE, TOP and MOVES from here, before and after the move.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

# The layers, lowest first: a module may import its own layer, a lower one and the top-level
# helpers (BASE), never a higher layer. Each value is its __init__'s two lines.
LAYERS: dict[str, tuple[str, str]] = {
    "audio": (
        "Audio in: decoding files to 22,050 Hz mono (decode), cutting windows (windows), augmenting them.",
        "May import genre's top-level helpers only (errors, files, processes, SAMPLE_RATE, WINDOW).",
    ),
    "data": (
        "Datasets: song cache, splits (and the shipped lists), pipelines, shards, GTZAN download, allowed folders.",
        "May import genre.audio and the top-level helpers; never models, serve, train or jobs.",
    ),
    "models": (
        "The networks: the registry of model builders, custom layers, musicnn and its weights/, frozen features.",
        "May import genre.audio, genre.data and the top-level helpers; never serve, train or jobs.",
    ),
    "serve": (
        "Using a trained run: prediction, the vote, evaluation, calibration, live input, a music library, tags.",
        "May import genre.audio, genre.data, genre.models and the top-level helpers; never train or jobs.",
    ),
    "train": (
        "Training a run: the loop, its config, callbacks, tf.distribute and its pinned fixes, hardware, status.",
        "May import the layers below it (audio, data, models, serve) and the top-level helpers; never jobs.",
    ),
    "jobs": (
        "What the CLI and the dashboard manage: run folders, comparing runs, headlines, background jobs, logs.",
        "May import every layer below it and the top-level helpers; never the dashboard, pages or streamlit.",
    ),
}
# Modules that stay at genre/: helpers every layer may import ...
BASE = {"__init__", "errors", "files", "processes"}
# ... and the front ends, which may import everything.
TOP = {"__main__", "cli"}

# old module (genre/<name>.py): "<layer>.<new name>"
MOVES: dict[str, str] = {
    "audio": "audio.decode",
    "windows": "audio.windows",
    "augment": "audio.augment",
    "dataset": "data.dataset",
    "splits": "data.splits",
    "pipeline": "data.pipeline",
    "shards": "data.shards",
    "shard_songs": "data.shard_songs",
    "download": "data.download",
    "folders": "data.folders",
    "models": "models.registry",
    "layers": "models.layers",
    "musicnn": "models.musicnn",
    "features": "models.features",
    "penultimate": "models.penultimate",
    "tag_map": "models.tag_map",
    "prediction": "serve.prediction",
    "voting": "serve.voting",
    "evaluation": "serve.evaluation",
    "calibration": "serve.calibration",
    "live": "serve.live",
    "live_worker": "serve.live_worker",
    "library": "serve.library",
    "tags": "serve.tags",
    "heard": "serve.heard",
    "training": "train.training",
    "config": "train.config",
    "callbacks": "train.callbacks",
    "distribute": "train.distribute",
    "multiworker_fixes": "train.multiworker_fixes",
    "hardware": "train.hardware",
    "status": "train.status",
    "runs": "jobs.runs",
    "compare": "jobs.compare",
    "headline": "jobs.headline",
    "jobs": "jobs.jobs",
    "joblog": "jobs.joblog",
    "song_map": "jobs.song_map",
}
# Tests follow their module: tests/test_<old>.py -> tests/<layer>/test_<new name>.py. Tests named
# after no module join a layer here (test name without test_: layer); the rest (the app, the CLI,
# packaging, the layers) stay in tests/.
TEST_LAYERS: dict[str, str] = {"shard_training": "train", "transfer": "train", "taggers": "models"}
# Folders of package data: old path: new path (data/ becomes the data layer's own folder, in place).
FOLDERS: dict[str, str] = {"genre/weights": "genre/models/weights"}
KNOWN_FOLDERS = {"data", "weights", "__pycache__"}

# Where imports and names are rewritten; this script and its test hold old names on purpose.
LEFT_ALONE = {"scripts/relayout.py", "tests/test_relayout.py"}
SOURCES = ("genre", "dashboard", "pages", "tests", "bench", "scripts")
SINGLE_FILES = ("streamlit_app.py", "pytest.ini")
SUFFIXES = {".py", ".md", ".sh", ".ini"}

# A moved module is one folder deeper: its repository root is parents[2], not parent.parent.
FILE_FIXES = {"Path(__file__).resolve().parent.parent": "Path(__file__).resolve().parents[2]"}
# The same for a test that moves one folder down (its fixtures stay in tests/fixtures).
TEST_FILE_FIXES = {
    "Path(__file__).resolve().parent.parent": "Path(__file__).resolve().parents[2]",
    'Path(__file__).parent / "fixtures"': 'Path(__file__).parent.parent / "fixtures"',
}
# Uses of __file__ in a moved module that stay right after the move (its data moves with it).
FILE_USES_OK = ('Path(__file__).parent / "weights"',)
# Code that sees only genre's top level (it would miss the moved modules): the script names it
# and stops; walk the package instead (pkgutil.walk_packages(genre.__path__, "genre.")).
FLAT_ONLY = ("iter_modules(genre.__path__", 'files("genre").iterdir', '(REPO / "genre").glob("*.py")')


def layer_of(module: str) -> str:
    """The layer of an old module name (BASE and TOP are named so); KeyError if unmapped."""
    if module in BASE:
        return "base"
    if module in TOP:
        return "top"
    return MOVES[module].split(".")[0]


def new_name(module: str) -> str:
    """``genre.<...>`` for an old top-level module name."""
    return f"genre.{MOVES[module]}" if module in MOVES else f"genre.{module}"


def test_moves() -> dict[str, str]:
    """tests/test_<x>.py -> tests/<layer>/test_<y>.py for every test that follows a module."""
    moves = {f"tests/test_{old}.py": f"tests/{t.split('.')[0]}/test_{t.split('.')[1]}.py" for old, t in MOVES.items()}
    moves.update({f"tests/test_{name}.py": f"tests/{layer}/test_{name}.py" for name, layer in TEST_LAYERS.items()})
    return moves


def unknown(root: Path) -> list[str]:
    """genre/*.py modules and genre/ folders this script does not place."""
    package = root / "genre"
    names = [p.stem for p in package.glob("*.py") if p.stem not in MOVES and p.stem not in BASE | TOP]
    folders = [p.name + "/" for p in package.iterdir() if p.is_dir() and p.name not in KNOWN_FOLDERS]
    return sorted(names) + sorted(folders)


_DOTTED = None


def rewrite_dotted(text: str) -> tuple[str, int]:
    """``genre.audio`` -> ``genre.audio.decode`` in code and strings; ``genre/audio.py`` and
    ``genre/weights`` in prose and paths."""
    global _DOTTED
    if _DOTTED is None:
        names = "|".join(sorted(MOVES, key=len, reverse=True))
        _DOTTED = (
            re.compile(rf"(?<![\w.])genre\.({names})(?![\w])"),
            re.compile(rf"(?<![\w./])genre/({names})\.py(?![\w])"),
            re.compile(r"(?<![\w./])(" + "|".join(map(re.escape, FOLDERS)) + r")(?![\w])"),
            re.compile(r"(?<![\w./])(" + "|".join(map(re.escape, test_moves())) + r")(?![\w])"),
        )
    dotted, path, folder, tests = _DOTTED
    text, a = dotted.subn(lambda m: new_name(m.group(1)), text)
    text, b = path.subn(lambda m: "genre/" + MOVES[m.group(1)].replace(".", "/") + ".py", text)
    text, c = folder.subn(lambda m: FOLDERS[m.group(1)], text)
    text, d = tests.subn(lambda m: test_moves()[m.group(1)], text)
    return text, a + b + c + d


def _relative(importer_package: str, target: str) -> str:
    """``target`` (absolute) as a relative module spec from ``importer_package``."""
    here, there = importer_package.split("."), target.split(".")
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    return "." * (len(here) - common + 1) + ".".join(there[common:])


def _from_genre_names(names: list[ast.alias]) -> list[tuple[str, list[str]]]:
    """``from genre import a, b as c``: (absolute module, ["name [as alias]"]) groups, in order."""
    groups: dict[str, list[str]] = {}
    for alias in names:
        if alias.name in MOVES:
            parent, leaf = new_name(alias.name).rsplit(".", 1)
            local = alias.asname or alias.name
            groups.setdefault(parent, []).append(leaf if leaf == local else f"{leaf} as {local}")
        else:
            groups.setdefault("genre", []).append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
    return list(groups.items())


def rewrite_imports(text: str, old_package: str | None, new_package: str | None) -> tuple[str, int]:
    """Rewrite the ``from ... import`` statements that name moved modules. ``old_package`` and
    ``new_package`` are the importing module's package before and after (None outside genre)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    edits = []  # (first line, last line, new text for those lines)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            if old_package is None:
                continue
            base = old_package.split(".")[: len(old_package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        elif node.module and (node.module == "genre" or node.module.startswith("genre.")):
            target = node.module  # genre.<moved> was rewritten already by rewrite_dotted
        else:
            continue
        relative = node.level > 0
        if not relative and target != "genre":
            continue  # from genre.<moved> import ...: rewrite_dotted did it
        first, last = node.lineno - 1, node.end_lineno - 1
        prefix = lines[first][: node.col_offset]  # an import starts after indentation (ASCII)
        segment = "".join(lines[first : last + 1])[node.col_offset :]
        original = [a.name + (f" as {a.asname}" if a.asname else "") for a in node.names]
        if target == "genre":
            groups = _from_genre_names(node.names)
        else:
            head = target.split(".")
            if len(head) > 1 and head[1] in MOVES:
                target = ".".join([new_name(head[1])] + head[2:])
            groups = [(target, original)]
        if len(groups) == 1 and groups[0][1] == original:
            spec = _relative(new_package, groups[0][0]) if relative else groups[0][0]
            new, n = re.subn(r"^(from\s+)[.\w]+(\s+import\b)", lambda m, spec=spec: m.group(1) + spec + m.group(2), segment, count=1)
            assert n == 1, segment
        else:
            if prefix.strip():
                sys.exit(f"relayout: cannot split an import that shares its line: {lines[first].strip()}")
            comment = re.search(r"#.*$", lines[first].rstrip("\n"))
            statements = []
            for module, names in groups:
                spec = _relative(new_package, module) if relative else module
                statements.append(f"from {spec} import {', '.join(names)}")
            if comment:  # a noqa holds for each statement; any other comment once
                for i in range(len(statements) if "noqa" in comment.group(0) else 1):
                    statements[i] += "  " + comment.group(0)
            new = ("\n" + prefix).join(statements) + "\n"
        new = prefix + new
        if new != prefix + segment:
            edits.append((first, last, new))
    for first, last, new in sorted(edits, reverse=True):
        lines[first : last + 1] = [new]
    return "".join(lines), len(edits)


_FROM_GENRE = re.compile(r"(?:(?<![\w.])|(?<=\\n))from genre import (\w+(?: as \w+)?(?:, \w+(?: as \w+)?)*)")


def rewrite_from_genre_text(text: str) -> tuple[str, int]:
    """``from genre import hardware, jobs`` left in strings (code run by a child process): one
    statement a subpackage, joined by "; " so that it stays one line wherever it stands."""

    def one(match: re.Match) -> str:
        aliases = [ast.alias(*(part.split(" as ") + [None])[:2]) for part in match.group(1).split(", ")]
        if not any(a.name in MOVES for a in aliases):
            return match.group(0)
        return "; ".join(f"from {module} import {', '.join(names)}" for module, names in _from_genre_names(aliases))

    return _FROM_GENRE.subn(one, text)


def _files(root: Path) -> list[Path]:
    found = [root / name for name in SINGLE_FILES if (root / name).is_file()]
    found += sorted(p for p in root.glob("*.md"))
    for folder in SOURCES:
        found += sorted(
            p for p in (root / folder).rglob("*") if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
        )
    return [p for p in found if p.relative_to(root).as_posix() not in LEFT_ALONE]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def plan(root: Path) -> dict[Path, str]:
    """New text for every file that changes, keyed by its path before the move."""
    changed = {}
    for path in _files(root):
        text = path.read_text(encoding="utf-8")
        new, count = rewrite_dotted(text)
        if path.suffix == ".py":
            rel = path.relative_to(root)
            old_package = new_package = None
            if rel.parts[0] == "genre" and len(rel.parts) == 2:
                old_package = "genre"
                new_package = new_name(path.stem).rsplit(".", 1)[0] if path.stem in MOVES else "genre"
            new, n = rewrite_imports(new, old_package, new_package)
            new, m = rewrite_from_genre_text(new)
            count += n + m
            if old_package and path.stem in MOVES:
                for old, fixed in FILE_FIXES.items():
                    new = new.replace(old, fixed)
                left = [
                    line.strip()
                    for line in new.splitlines()
                    if "__file__" in line
                    and not any(fix in line for fix in FILE_FIXES.values())
                    and not any(ok in line for ok in FILE_USES_OK)
                ]
                if left:
                    sys.exit(f"relayout: {rel} uses __file__ in a way this script does not fix: {left}; add it to FILE_FIXES")
            if rel.as_posix() in test_moves():
                for old, fixed in TEST_FILE_FIXES.items():
                    new = new.replace(old, fixed)
                left = [line.strip() for line in new.splitlines() if "__file__" in line and "parents[2]" not in line
                        and 'parent.parent / "fixtures"' not in line]  # fmt: skip
                if left:
                    sys.exit(f"relayout: {rel} uses __file__ in a way this script does not fix: {left}")
        flat = [pattern for pattern in FLAT_ONLY if pattern in text]
        if flat:
            sys.exit(f"relayout: {path.relative_to(root)} sees only genre's top level ({flat[0]}); walk the package")
        if new != text:
            changed[path] = new
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the modules MOVES does not place")
    parser.add_argument("--commit", action="store_true", help="commit the result (after the tests pass, preferably)")
    parser.add_argument("--allow-dirty", action="store_true", help="run on a checkout with uncommitted changes")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if not (root / "genre" / "__init__.py").is_file() or not (root / ".git").exists():
        sys.exit("relayout: run it at the repository root of a git checkout")
    if any((root / "genre" / layer / "__init__.py").exists() for layer in LAYERS):
        sys.exit("relayout: the subpackages exist already (run once, on the flat layout)")
    missing = unknown(root)
    if missing:
        print("relayout: genre/ holds modules or folders MOVES does not place:", file=sys.stderr)
        for name in missing:
            print(f"  genre/{name}{'' if name.endswith('/') else '.py'}", file=sys.stderr)
        print('add each to MOVES at the top of scripts/relayout.py ("name": "layer.new_name")', file=sys.stderr)
        return 1
    if args.check:
        print("relayout: every module is placed")
        return 0
    if _git(root, "status", "--porcelain", "--untracked-files=no").strip() and not args.allow_dirty:
        sys.exit("relayout: the checkout has uncommitted changes; commit or stash them first")

    changed = plan(root)  # read everything before anything moves
    moved: dict[Path, Path] = {}
    for layer, (holds, may_import) in LAYERS.items():
        folder = root / "genre" / layer
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text(f'"""{holds}\n{may_import}"""\n', encoding="utf-8")
        _git(root, "add", str(folder / "__init__.py"))
    for module, target in MOVES.items():
        old = root / "genre" / f"{module}.py"
        new = root / "genre" / (target.replace(".", "/") + ".py")
        if not old.exists():
            print(f"relayout: genre/{module}.py is not there (removed?); nothing to move", file=sys.stderr)
            continue
        _git(root, "mv", str(old.relative_to(root)), str(new.relative_to(root)))
        moved[old] = new
    for old_test, new_test in test_moves().items():
        if (root / old_test).exists():
            (root / new_test).parent.mkdir(exist_ok=True)
            _git(root, "mv", old_test, new_test)
            moved[root / old_test] = root / new_test
    for old_folder, new_folder in FOLDERS.items():
        if (root / old_folder).exists():
            _git(root, "mv", old_folder, new_folder)
            for path in list(changed):
                if (root / old_folder) in path.parents:
                    moved[path] = root / new_folder / path.relative_to(root / old_folder)
    for path, text in changed.items():
        target = moved.get(path, path)
        target.write_text(text, encoding="utf-8")
        _git(root, "add", str(target.relative_to(root)))

    renamed = {
        tuple(line.split("\t")[1:3])
        for line in _git(root, "diff", "--cached", "-M", "--name-status").splitlines()
        if line.startswith("R")
    }
    lost = [f"{a.relative_to(root)}" for a, b in moved.items() if (str(a.relative_to(root)), str(b.relative_to(root))) not in renamed]
    if lost:
        print(f"relayout: warning: git does not see these as renames (too much changed): {lost}", file=sys.stderr)
    table = "\n".join(f"  genre/{m}.py -> genre/{t.replace('.', '/')}.py" for m, t in MOVES.items())
    table += "".join(f"\n  {a}/ -> {b}/" for a, b in FOLDERS.items())
    table += "".join(f"\n  {a} -> {b}" for a, b in test_moves().items() if root.joinpath(b).exists())
    print(f"relayout: moved {len(MOVES)} modules, rewrote {len(changed)} files; staged:\n{table}")
    if args.commit:
        message = "layout: genre's modules in subpackages by layer (scripts/relayout.py)\n\n" + table + "\n"
        subprocess.run(["git", "commit", "-q", "-F", "-"], cwd=root, input=message, text=True, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
