"""genre's layers import downwards only (audio < data < models < serve < train < jobs; the helpers
at genre's top level below them all, the front ends cli and __main__ above), and nothing in genre
imports the dashboard's libraries."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRONT_ENDS = {"dashboard", "pages", "streamlit", "streamlit_app", "plotly", "streamlit_webrtc"}
LAYERS = ["audio", "data", "models", "serve", "train", "jobs"]
BASE = {"genre", "genre.errors", "genre.files", "genre.processes"}
TOP = {"genre.cli", "genre.__main__"}
ORDER = ["base", *LAYERS, "top"]


def _layer(dotted: str) -> str | None:
    """The layer of a module of genre (``genre.serve.prediction`` is in serve); None if unplaced."""
    parts = dotted.split(".")
    if dotted in BASE:
        return "base"
    if dotted in TOP:
        return "top"
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    if len(parts) >= 3 and ".".join(parts[:2]) in BASE:
        return "base"  # a name imported from a helper module
    return None


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / "genre").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules) -> list[tuple[int, str]]:
    """(line, absolute module) for every import, the lazy ones inside functions too (``from x
    import a`` yields ``x.a`` where that is a module of genre, else ``x``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in modules]
            found += [(node.lineno, m) for m in submodules or [module]]
    return found


def test_every_module_of_genre_sits_in_a_layer():
    unplaced = [name for name in _modules() if _layer(name) is None]
    assert not unplaced, f"put these in a layer's subpackage (or among the top-level helpers): {unplaced}"
    for layer in LAYERS:
        lines = (REPO / "genre" / layer / "__init__.py").read_text(encoding="utf-8").strip('"\n ').splitlines()
        assert len(lines) == 2 and "import" in lines[1], f"genre/{layer}/__init__.py: what it holds, what it may import"


def test_no_layer_imports_a_higher_one_and_genre_never_imports_the_front_ends():
    wrong = []
    modules = _modules()
    for name, path in modules.items():
        own = "base" if name == "genre" else _layer(name)
        for line, imported in _imports(name, path, modules):
            top = imported.split(".")[0]
            where = f"{path.relative_to(REPO)}:{line}"
            if top in FRONT_ENDS:
                wrong.append(f"{where} imports {imported} (genre never imports the front ends)")
            layer = _layer(imported) if top == "genre" and imported != "genre" else None
            if layer is not None and own is not None and ORDER.index(layer) > ORDER.index(own):
                wrong.append(f"{where}: {name} ({own}) imports {imported} ({layer})")
    assert not wrong, "\n".join(wrong)


def test_the_check_finds_an_upward_import(tmp_path):
    # The test above can fail: a data module importing the serving layer is named.
    low, high = "genre.data.splits", "genre.serve.prediction"
    path = tmp_path / "splits.py"
    path.write_text(f"import {high}\nimport plotly\n", encoding="utf-8")
    found = {m for _, m in _imports(low, path, {high})}
    assert found == {high, "plotly"}
    assert ORDER.index(_layer(high)) > ORDER.index(_layer(low))
