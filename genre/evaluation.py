"""Honest evaluation: a trained model on the test songs only, at window and song level."""

from __future__ import annotations

import numpy as np

from .pipeline import WindowSet
from .voting import majority_vote, mean_vote, vote_counts


def predict_windows(model, windows: WindowSet, batch_size: int = 64) -> np.ndarray:
    """Genre probabilities ``(n_windows, n_genres)`` of every window of ``windows``."""
    out = []
    for first in range(0, len(windows), batch_size):
        rows = np.arange(first, min(first + batch_size, len(windows)))
        out.append(np.asarray(model.predict_on_batch(windows.batch(rows)), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), dtype=np.float32)


def song_metrics(
    genres: list[str],
    track_ids: list[str],
    window_song: np.ndarray,
    window_true: np.ndarray,
    probabilities: np.ndarray,
) -> dict:
    """Every number ``metrics.json`` holds, from window probabilities.

    ``window_song`` gives each window's position in ``track_ids``; ``window_true`` its true
    genre index. Song decisions are the majority vote (ties to the higher mean probability)
    and, beside it, the mean probability.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = list(range(len(genres)))
    window_pred = probabilities.argmax(axis=1)
    songs, song_true, song_vote, song_mean = [], [], [], []
    for position, track_id in enumerate(track_ids):
        rows = np.flatnonzero(window_song == position)
        p = probabilities[rows]
        true, by_vote, by_mean = int(window_true[rows[0]]), majority_vote(p), mean_vote(p)
        song_true.append(true)
        song_vote.append(by_vote)
        song_mean.append(by_mean)
        songs.append(
            {
                "track_id": track_id,
                "true": genres[true],
                "vote": genres[by_vote],
                "mean": genres[by_mean],
                "votes": vote_counts(p).tolist(),
                "mean_probability": np.round(p.mean(axis=0), 4).tolist(),
            }
        )
    precision, recall, f1, support = precision_recall_fscore_support(
        song_true, song_vote, labels=labels, zero_division=0
    )

    def both(true, pred) -> dict:
        return {
            "accuracy": float(accuracy_score(true, pred)),
            "balanced_accuracy": float(balanced_accuracy_score(true, pred)) if len(true) else 0.0,
            "macro_f1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
        }

    song, window, mean = both(song_true, song_vote), both(window_true, window_pred), both(song_true, song_mean)
    return {
        "genres": genres,
        "test_songs": len(track_ids),
        "test_windows": int(len(window_true)),
        "song_accuracy_vote": song["accuracy"],
        "song_accuracy_mean": mean["accuracy"],
        "window_accuracy": window["accuracy"],
        "song_balanced_accuracy": song["balanced_accuracy"],
        "song_macro_f1": song["macro_f1"],
        "window_balanced_accuracy": window["balanced_accuracy"],
        "window_macro_f1": window["macro_f1"],
        "confusion_matrix": confusion_matrix(song_true, song_vote, labels=labels).tolist(),
        "per_genre": {
            g: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, g in enumerate(genres)
        },
        "songs": songs,
    }


def evaluate(model, windows: WindowSet, genres: list[str], track_ids: list[str]) -> dict:
    """Evaluate ``model`` on the windows of the songs ``track_ids`` (the test part)."""
    probabilities = predict_windows(model, windows)
    position = {t: k for k, t in enumerate(track_ids)}
    window_song = np.asarray([position[t] for t in windows.track_ids], dtype=np.int64)
    return song_metrics(genres, track_ids, window_song, windows.labels, probabilities)


def pool_metrics(genres: list[str], fold_metrics: list[dict]) -> dict:
    """Cross-validation: recompute every number over all folds' test songs pooled (each song
    was tested once), and keep each fold's headline numbers."""
    songs = [s for m in fold_metrics for s in m["songs"]]
    index = {g: i for i, g in enumerate(genres)}
    # Rebuild one window-free table per song: vote and mean decisions are already made.
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(genres)))
    true = [index[s["true"]] for s in songs]
    vote = [index[s["vote"]] for s in songs]
    mean = [index[s["mean"]] for s in songs]
    precision, recall, f1, support = precision_recall_fscore_support(true, vote, labels=labels, zero_division=0)
    windows = sum(m["test_windows"] for m in fold_metrics)
    window_acc = sum(m["window_accuracy"] * m["test_windows"] for m in fold_metrics) / max(windows, 1)
    headline = ("song_accuracy_vote", "song_accuracy_mean", "window_accuracy", "song_balanced_accuracy", "song_macro_f1")
    return {
        "genres": genres,
        "test_songs": len(songs),
        "test_windows": windows,
        "song_accuracy_vote": float(accuracy_score(true, vote)),
        "song_accuracy_mean": float(accuracy_score(true, mean)),
        "window_accuracy": float(window_acc),
        "song_balanced_accuracy": float(balanced_accuracy_score(true, vote)),
        "song_macro_f1": float(f1_score(true, vote, labels=labels, average="macro", zero_division=0)),
        "song_macro_recall": float(np.mean(recall[support > 0])) if np.any(support > 0) else 0.0,
        "window_balanced_accuracy": float(np.mean([m["window_balanced_accuracy"] for m in fold_metrics])),
        "window_macro_f1": float(np.mean([m["window_macro_f1"] for m in fold_metrics])),
        "confusion_matrix": confusion_matrix(true, vote, labels=labels).tolist(),
        "per_genre": {
            g: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, g in enumerate(genres)
        },
        "songs": songs,
        "folds": [{k: m[k] for k in headline} | {"test_songs": m["test_songs"]} for m in fold_metrics],
        "pooled": True,
    }
