"""genre's layers import downwards only, before and after scripts/relayout.py: the layer of each
module is read from that script's mapping (audio < data < models < serve < train < jobs; the
front ends, cli and __main__, on top), and nothing in genre imports the dashboard's libraries."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRONT_ENDS = {"dashboard", "pages", "streamlit", "streamlit_app", "plotly", "streamlit_webrtc"}


def _relayout():
    spec = importlib.util.spec_from_file_location("relayout", REPO / "scripts" / "relayout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RELAYOUT = _relayout()
ORDER = ["base", *RELAYOUT.LAYERS, "top"]
# New module name (genre.audio.decode) -> old name (audio), to find a moved module's layer.
MOVED_BACK = {RELAYOUT.new_name(old): old for old in RELAYOUT.MOVES}


def _layer(dotted: str) -> str | None:
    """The layer of a module of genre, flat or moved; None where the mapping does not place it."""
    parts = dotted.split(".")
    if len(parts) >= 3 and ".".join(parts[:3]) in MOVED_BACK:
        return RELAYOUT.layer_of(MOVED_BACK[".".join(parts[:3])])
    if len(parts) >= 2 and parts[1] in RELAYOUT.LAYERS and (len(parts) == 2 or parts[1] not in RELAYOUT.MOVES):
        return parts[1]  # a subpackage (its __init__), or a module in it the mapping does not name
    if len(parts) >= 2 and (parts[1] in RELAYOUT.MOVES or parts[1] in RELAYOUT.BASE | RELAYOUT.TOP):
        return RELAYOUT.layer_of(parts[1])
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


def test_every_module_of_genre_has_a_layer_in_the_relayout_mapping():
    unplaced = [name for name in _modules() if name != "genre" and _layer(name) is None]
    flat = not (REPO / "genre" / "audio" / "__init__.py").exists()
    if flat:
        unplaced += [f"genre/{name}" for name in RELAYOUT.unknown(REPO)]
    assert not unplaced, f"add these to MOVES in scripts/relayout.py: {unplaced}"


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
    low, high = RELAYOUT.new_name("splits"), RELAYOUT.new_name("prediction")
    path = tmp_path / "splits.py"
    path.write_text(f"import {high}\nimport plotly\n", encoding="utf-8")
    found = {m for _, m in _imports(low, path, {high})}
    assert found == {high, "plotly"}
    assert ORDER.index(_layer(high)) > ORDER.index(_layer(low))
