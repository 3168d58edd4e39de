"""TrainConfig is the one source of a run's defaults, checks and default name."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import datetime

import pytest

from genre.cli import _data_and_split, build_parser, main
from genre.jobs import jobs
from genre.train.config import DEFAULTS, ConfigError, TrainConfig, run_id_stem


def test_the_cli_and_the_dashboard_take_their_defaults_from_train_config():
    args = build_parser().parse_args(["train", "--data", "x"])
    for name in ("model", "epochs", "batch_size", "learning_rate", "mixed_precision"):
        assert getattr(args, name) == DEFAULTS[name] == getattr(TrainConfig("x"), name), name
    assert (
        args.strategy is None and DEFAULTS["strategy"] == TrainConfig("x").strategy == "auto"
    )  # None: a resume keeps its own
    # The split's options are left unset by the parser: with --shards they are the shards' own.
    split = _data_and_split(args)
    for name in ("protocol", "seed", "test_fraction", "val_fraction", "folds"):
        assert getattr(args, name) is None and split[name] == DEFAULTS[name] == getattr(TrainConfig("x"), name), name
    settings = jobs.Settings("x")
    for field in fields(jobs.Settings):
        if field.name != "data_dir":
            assert getattr(settings, field.name) == DEFAULTS[field.name], field.name
    assert settings.config() == TrainConfig("x")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model": "huge"}, "unknown model 'huge'"),
        ({"protocol": "random"}, "unknown split protocol 'random'"),
        ({"epochs": 0}, "the epochs must be a whole number from 1 to 1000, not 0"),
        ({"epochs": 2.5}, "the epochs must be a whole number from 1 to 1000, not 2.5"),
        ({"batch_size": 1025}, "the batch size must be a whole number from 1 to 1024, not 1025"),
        ({"seed": -1}, "the seed must be a whole number of at least 0, not -1"),
        ({"seed": True}, "the seed must be a whole number of at least 0, not True"),
        ({"test_fraction": 1.0}, "the test share must be between 0 and 1 (exclusive), not 1.0"),
        ({"val_fraction": -0.1}, "the validation share must be at least 0 and below 1, not -0.1"),
        ({"protocol": "cv", "folds": 21}, "the number of folds must be a whole number from 2 to 20, not 21"),
    ],
)
def test_a_bad_value_is_refused_naming_it(changes, message):
    with pytest.raises(ConfigError) as caught:
        TrainConfig("x", **changes).check()
    assert str(caught.value).startswith(message)


def test_good_values_pass_and_folds_matter_only_for_cv():
    config = TrainConfig("x", epochs=1000, batch_size=1, seed=0, val_fraction=0, folds=1)
    assert config.check() is config
    with pytest.raises(ConfigError, match="number of folds"):
        TrainConfig("x", protocol="cv", folds=1).check()


def test_the_run_id_format_is_built_once():
    assert run_id_stem("seed", "cv", datetime(2024, 3, 5, 7, 8, 9)) == "seed-cv-20240305-070809"
    resolved = TrainConfig("x", model="fast", protocol="stratified").resolved()
    assert re.fullmatch(r"fast-stratified-\d{8}-\d{6}", resolved.run_id)


def test_the_cli_refuses_an_out_of_range_setting_before_making_a_run(synth_root, tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["train", "--data", str(synth_root), "--epochs", "5000", "--models-dir", str(models)]) == 2
    assert capsys.readouterr().err == "genre: error: the epochs must be a whole number from 1 to 1000, not 5000\n"
    assert not models.exists()
