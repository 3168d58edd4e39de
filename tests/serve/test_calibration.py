"""Calibrated confidences: the temperature, the uncertainty margin, and a run serving them."""

import json
import shutil

import numpy as np
import pytest

from genre.serve.calibration import FILE, choose_margin, fit_temperature, reliability, temper


def _overconfident(n=600, genres=4, seed=0):
    """Windows whose top genre is right 60% of the time but shown at about 95%."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, genres, n)
    top = np.where(rng.random(n) < 0.6, labels, (labels + 1) % genres)
    p = np.full((n, genres), 0.05 / (genres - 1))
    p[np.arange(n), top] = 0.95
    return p, labels


def test_temperature_softens_an_overconfident_model_and_keeps_every_argmax():
    p, labels = _overconfident()
    t = fit_temperature(p, labels)
    assert t > 1.5
    calibrated = temper(p, t)
    assert (calibrated.argmax(axis=1) == p.argmax(axis=1)).all()
    assert abs(calibrated.max(axis=1).mean() - 0.6) < 0.05  # the shown confidence now means 60%
    assert np.allclose(calibrated.sum(axis=1), 1.0)


def test_the_margin_is_the_smallest_lead_above_which_songs_are_right_often_enough():
    # Leads of 0.05 are wrong half the time; leads of 0.4 always right.
    close = np.array([[0.4, 0.35, 0.25]] * 10)
    clear = np.array([[0.7, 0.3, 0.0]] * 10)
    truth = np.array([0, 1] * 5 + [0] * 10)
    m = choose_margin(np.concatenate([close, clear]), truth)
    assert 0.05 < m <= 0.4 and m >= 0.2  # never under the floor


def test_the_reliability_table_bins_songs_by_confidence():
    table = reliability(np.array([0.15, 0.18, 0.95]), np.array([False, True, True]))
    assert [(b["songs"], b["accuracy"]) for b in table] == [(2, 0.5), (1, 1.0)]


@pytest.mark.slow
def test_a_trained_run_is_calibrated_and_served_calibrated_with_the_same_vote(tiny_run, tmp_path):
    from genre.serve.prediction import Classifier
    from synth import song

    stored = json.loads((tiny_run / FILE).read_text())
    assert stored["fitted_on"] == "validation" and stored["songs"] > 0 and stored["temperature"] > 0
    assert "margin_threshold" in stored and "how" in stored and stored["reliability"]["songs"] > 0
    audio = song("drones", 6.5, seed=4)
    calibrated = Classifier.load(tiny_run).classify(audio)
    bare = _without_calibration(tiny_run, tmp_path)
    plain = Classifier.load(bare).classify(audio)
    assert plain.temperature == 1.0 and plain.margin_threshold is None and not plain.uncertain
    assert calibrated.temperature == stored["temperature"]
    assert calibrated.vote_genre == plain.vote_genre and (calibrated.votes == plain.votes).all()
    assert np.allclose(calibrated.probabilities, plain.probabilities)  # the windows' raw output is unchanged
    assert calibrated.calibrated_ranking()[0][0] == plain.ranking()[0][0]


def _without_calibration(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "bare")
    (copy / FILE).unlink()
    return copy


@pytest.mark.slow
def test_the_calibrate_command_writes_calibration_json(tiny_run, tmp_path, capsys):
    from genre.cli import main

    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / FILE).unlink()
    assert main(["calibrate", str(run)]) == 0
    assert "temperature" in capsys.readouterr().out
    assert json.loads((run / FILE).read_text())["temperature"] > 0
