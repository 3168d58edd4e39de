"""One root error: every error the project raises on purpose is a ``GenreError``, which the CLI
prints as one line; a bug is not caught and keeps its traceback."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import genre
from genre import cli
from genre.errors import GenreError, TrainingCancelled


def _project_exceptions() -> list[type]:
    found = []
    for module in pkgutil.walk_packages(genre.__path__, "genre."):
        if module.name == "genre.__main__":
            continue  # running it is the CLI, not a definition
        loaded = importlib.import_module(module.name)
        for _, value in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == loaded.__name__:
                found.append(value)
    return found


def test_every_project_exception_subclasses_the_root():
    exceptions = _project_exceptions()
    assert len(exceptions) >= 10  # the walk found the project's errors, not nothing
    assert [e.__name__ for e in exceptions if not issubclass(e, GenreError)] == []


def test_errors_that_were_value_or_key_errors_still_are():
    from genre.audio.decode import AudioError
    from genre.data.dataset import DatasetError
    from genre.data.folders import FolderRefused
    from genre.data.splits import LeakageError, SplitError
    from genre.files import JSONFileError
    from genre.jobs.runs import RunError
    from genre.models.registry import UnknownModel, get_spec

    for error in (AudioError, DatasetError, JSONFileError, FolderRefused, RunError, SplitError, LeakageError):
        assert issubclass(error, ValueError)
    with pytest.raises(KeyError) as caught:
        get_spec("nope")
    assert isinstance(caught.value, UnknownModel) and str(caught.value).startswith(
        "unknown model 'nope'; choose one of"
    )


def _main_raising(monkeypatch, error: BaseException, *args: str) -> int:
    def handler(_):
        raise error

    monkeypatch.setattr(cli, "cmd_runs", handler)
    return cli.main([*args, "runs"])


def test_the_cli_prints_a_project_error_as_one_line(monkeypatch, capsys):
    assert _main_raising(monkeypatch, GenreError("the reason, for users")) == 2
    assert capsys.readouterr().err == "genre: error: the reason, for users\n"


def test_the_cli_names_the_file_of_an_os_error(monkeypatch, capsys):
    assert _main_raising(monkeypatch, PermissionError(13, "Permission denied", "/some/file")) == 2
    assert capsys.readouterr().err == "genre: error: /some/file: Permission denied\n"


def test_a_cancelled_run_exits_3(monkeypatch, capsys):
    assert _main_raising(monkeypatch, TrainingCancelled("training was cancelled")) == 3
    assert capsys.readouterr().err == "genre: training was cancelled; the run can be resumed with --resume\n"


def test_a_bug_is_not_caught(monkeypatch):
    with pytest.raises(ZeroDivisionError):
        _main_raising(monkeypatch, ZeroDivisionError("a bug"))


def test_verbose_shows_the_traceback_of_a_project_error(monkeypatch):
    with pytest.raises(GenreError):
        _main_raising(monkeypatch, GenreError("why"), "-v")
