"""Calibrated confidences for a run: temperature scaling fitted on its validation songs, the
margin under which the served answer says "uncertain", and a reliability table of its test
songs. Stored as ``calibration.json`` in the run folder; ``genre.serve.prediction`` applies it.

Temperature scaling divides the log-probabilities by one number ``T`` and renormalises: it is
monotone, so no window's top genre and no vote changes, only the confidence shown.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.dataset import Songs
from ..errors import GenreError
from ..files import read_json, write_json

FILE = "calibration.json"
# The answer is "uncertain" when its lead over the runner-up is below the smallest margin
# above which the fitting songs were right at least this often.
TARGET_ACCURACY = 0.9
MARGINS = np.round(np.linspace(0.0, 0.5, 51), 2)
# Never below this lead: a few validation songs all right at every margin cannot place it, and
# music unlike the training set (a drum loop) spreads its probability over several genres.
MIN_MARGIN = 0.2
BINS = 10


class CalibrationError(GenreError, ValueError):
    """A run that cannot be calibrated (no songs to fit on, no dataset)."""


def temper(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with their log divided by ``temperature``, renormalised per row."""
    p = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the windows' negative log-likelihood (searched on a log grid
    from 0.05 to 20, then refined)."""
    rows = np.arange(len(labels))

    def nll(t: float) -> float:
        return float(-np.log(np.clip(temper(probabilities, t)[rows, labels], 1e-12, 1.0)).mean())

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = min(grid, key=nll)
    fine = best * np.exp(np.linspace(-0.03, 0.03, 31))
    return float(min(fine, key=nll))


def margin(mean_probability: np.ndarray) -> float:
    """The winner's lead over the runner-up."""
    top = np.sort(np.asarray(mean_probability))[::-1]
    return float(top[0] - top[1]) if len(top) > 1 else 1.0


def choose_margin(song_probabilities: np.ndarray, song_true: np.ndarray) -> float:
    """The smallest margin above which the songs' mean-probability winner was right at least
    ``TARGET_ACCURACY`` of the time (the largest margin tried when none is), at least
    ``MIN_MARGIN``."""
    margins = np.array([margin(p) for p in song_probabilities])
    right = song_probabilities.argmax(axis=1) == song_true
    for m in MARGINS:
        above = margins >= m
        if above.any() and right[above].mean() >= TARGET_ACCURACY:
            return max(float(m), MIN_MARGIN)
    return float(MARGINS[-1])


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """Songs binned by their shown confidence: each bin's range, count, mean confidence and
    accuracy (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            table.append(
                {
                    "low": round(float(edges[b]), 2),
                    "high": round(float(edges[b + 1]), 2),
                    "songs": int(inside.sum()),
                    "confidence": float(confidence[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return table


def _song_means(probabilities: np.ndarray, window_song: np.ndarray, n_songs: int) -> np.ndarray:
    return np.stack([probabilities[window_song == s].mean(axis=0) for s in range(n_songs)])


def fitting_songs(config: dict, manifest: dict) -> tuple[list[str], str]:
    """The songs to fit on, and which they are: the served model's validation songs, else
    (a run that kept none, like the report's ``seed``) its training songs."""
    part = manifest
    if "folds" in manifest:
        part = manifest["folds"][int(config.get("served_fold", 1)) - 1]
    if part.get("valid"):
        return list(part["valid"]), "validation"
    return list(part["train"]), "training"


def calibrate(classifier, cache: Songs, config: dict, manifest: dict) -> dict:
    """Fit the temperature and the margin on the run's fitting songs, and tabulate the
    reliability of its test songs' calibrated confidences. Returns calibration.json's contents."""
    from .evaluation import predict_songs

    songs, which = fitting_songs(config, manifest)
    songs = [t for t in songs if t in set(cache.track_ids)]
    if not songs:
        raise CalibrationError(
            "the run's songs to calibrate on are not in this dataset; pass the dataset it was trained on with --data"
        )
    probabilities, window_song = predict_songs(classifier, cache, songs)
    song_true = np.array([cache.labels[cache.index_of(t)] for t in songs])
    temperature = fit_temperature(probabilities, song_true[window_song])
    threshold = choose_margin(_song_means(temper(probabilities, temperature), window_song, len(songs)), song_true)
    result = {
        "temperature": round(temperature, 4),
        "margin_threshold": threshold,
        "fitted_on": which,
        "songs": len(songs),
        "windows": int(len(probabilities)),
        "how": (
            f"temperature: minimum negative log-likelihood of the {which} songs' windows; margin: the smallest lead "
            f"of the "
            f"winner's calibrated mean probability over the runner-up above which {which} songs were right at least "
            f"{TARGET_ACCURACY:.0%} of the time, and at least {MIN_MARGIN:.0%}"
            + (
                ""
                if which == "validation"
                else "; the run kept no validation songs, so these are songs it trained on and its confidences may "
                "still be too high"
            )
        ),
    }
    test = fold_test(config, manifest)
    test = [t for t in test if t in set(cache.track_ids)]
    if test:
        p, ws = predict_songs(classifier, cache, test)
        means = _song_means(temper(p, temperature), ws, len(test))
        truth = np.array([cache.labels[cache.index_of(t)] for t in test])
        result["reliability"] = {
            "songs": len(test),
            "bins": reliability(means.max(axis=1), means.argmax(axis=1) == truth),
        }
    return result


def fold_test(config: dict, manifest: dict) -> list[str]:
    """The served model's test songs."""
    part = manifest["folds"][int(config.get("served_fold", 1)) - 1] if "folds" in manifest else manifest
    return list(part.get("test", []))


def calibrate_run(run_dir: str | os.PathLike, cache: Songs | None = None, data_root: str | None = None) -> dict:
    """Calibrate a trained run folder and write its ``calibration.json``."""
    from ..data.dataset import load_dataset
    from .prediction import Classifier

    run_dir = Path(run_dir)
    config, manifest = read_json(run_dir / "config.json"), read_json(run_dir / "split.json")
    if config is None or manifest is None:
        raise CalibrationError(f"{run_dir} is not a trained run folder (it needs config.json and split.json)")
    if cache is None:
        cache = load_dataset(data_root or config["data_root"], progress=False)
    classifier = Classifier.load(run_dir)
    result = calibrate(classifier, cache, config, manifest)
    write_json(run_dir / FILE, result)
    return result


def read_calibration(run_dir: str | os.PathLike) -> dict | None:
    """A run's calibration.json, or None (the run serves uncalibrated)."""
    data = read_json(Path(run_dir) / FILE)
    if not isinstance(data, dict) or not isinstance(data.get("temperature"), (int, float)) or data["temperature"] <= 0:
        return None
    return data
