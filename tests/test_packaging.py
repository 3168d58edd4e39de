"""pyproject.toml agrees with the pinned requirement files, names one version, and builds a wheel
that holds the package's data and the `genre` command."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import genre

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _pins(name: str) -> dict[str, Requirement]:
    """The requirement file's own pins by canonical name (its ``-r`` includes left out)."""
    pins = {}
    for line in (REPO / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _ranges(requirements: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, requirements)}


def _pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not a pin"
    return spec.version


def _agree(pins: dict[str, Requirement], ranges: dict[str, Requirement]) -> None:
    assert sorted(pins) == sorted(ranges), "a package pinned in one and missing in the other"
    for name, pin in pins.items():
        version = _pinned_version(pin)
        assert ranges[name].specifier.contains(version), f"pin {pin} is outside pyproject's {ranges[name]}"
        assert pin.extras == ranges[name].extras, f"{pin} and {ranges[name]} ask for different extras"


def test_every_runtime_pin_lies_in_the_pyproject_range_and_none_is_missing_either_way():
    _agree(_pins("requirements.txt"), _ranges(PYPROJECT["project"]["dependencies"]))


def test_the_dev_and_gpu_extras_agree_with_their_requirement_files():
    extras = PYPROJECT["project"]["optional-dependencies"]
    _agree(_pins("requirements-dev.txt"), _ranges(extras["dev"]))
    gpu = _pins("requirements-gpu.txt")
    # requirements-gpu.txt repeats the runtime pins, TensorFlow with its CUDA extra.
    runtime = _ranges(PYPROJECT["project"]["dependencies"]) | _ranges(extras["gpu"])
    _agree(gpu, runtime)


def test_the_version_has_one_source_genre_dunder_version():
    assert "version" in PYPROJECT["project"]["dynamic"] and "version" not in PYPROJECT["project"]
    source = REPO / PYPROJECT["tool"]["hatch"]["version"]["path"]
    assigned = [
        node.value.value
        for node in ast.parse(source.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets)
    ]
    assert assigned == [genre.__version__]


def test_the_genre_command_is_what_python_dash_m_genre_runs():
    module, function = PYPROJECT["project"]["scripts"]["genre"].split(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert module == "genre.__main__"
    # And that entry point runs the CLI: its --help is the CLI's, exit 0.
    code = f"import sys; sys.argv = ['genre', '--help']; from {module} import {function}; {function}()"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: genre ") and "classify" in done.stdout


def test_the_wheel_holds_every_module_the_weights_the_licence_and_the_split_lists(tmp_path):
    wheel_builder = pytest.importorskip("hatchling.builders.wheel")
    (wheel,) = wheel_builder.WheelBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"])
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "genre"
    modules = {p.relative_to(REPO).as_posix() for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names
    data = {p.relative_to(REPO).as_posix() for p in package.rglob("*") if p.is_file() and p.suffix in {".h5", ".txt"}}
    assert any(n.endswith("musicnn_msd.weights.h5") for n in data) and any(
        n.endswith("LICENSE-musicnn.txt") for n in data
    )
    assert any(n.endswith("artist-index.txt") for n in data) and any("fault-filtered" in n for n in data)
    assert data <= names
    assert not {n for n in names if n.split("/")[0] in {"tests", "dashboard", "pages", "models", "bench"}}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "genre = genre.__main__:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_runs_are_found_in_the_checkout_else_in_the_user_data_folder_when_installed(tmp_path, monkeypatch):
    import platformdirs

    from genre.jobs import runs

    monkeypatch.delenv(runs.MODELS_ENV, raising=False)
    assert runs.default_models_dir() == REPO / "models"
    # Installed: the module lies in site-packages, with no pyproject.toml beside the package.
    monkeypatch.setattr(runs, "__file__", str(tmp_path / "site-packages" / "genre" / "runs.py"))
    assert runs.default_models_dir() == Path(platformdirs.user_data_dir("genre")) / "models"
    monkeypatch.setenv(runs.MODELS_ENV, str(tmp_path / "mine"))
    assert runs.default_models_dir() == tmp_path / "mine"


def test_ruff_checks_every_python_file_of_the_project_not_only_some():
    """The exclusions keep the shipped runs and the benchmark results out, nothing else: a pattern
    such as a bare "models" also matched genre/models/ and tests/models/, which went unchecked."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.is_file():
        pytest.skip("ruff is not installed in this environment (requirements-dev.txt installs it)")
    listed = subprocess.run([str(ruff), "check", "--show-files", "."], cwd=REPO, capture_output=True, text=True)
    checked = {Path(line.strip()).resolve() for line in listed.stdout.splitlines() if line.strip().endswith(".py")}
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    expected = {(REPO / name).resolve() for name in tracked.stdout.split()}
    assert expected and sorted(map(str, expected - checked)) == []
