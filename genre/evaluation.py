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
    labels = list(range(len(genres)))
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
    window = _scores(window_true, probabilities.argmax(axis=1), labels)
    return {
        "genres": genres,
        "test_songs": len(track_ids),
        "test_windows": int(len(window_true)),
        "window_accuracy": window["accuracy"],
        "window_balanced_accuracy": window["balanced_accuracy"],
        "window_macro_f1": window["macro_f1"],
        **_song_level(genres, song_true, song_vote, song_mean),
        "songs": songs,
    }


def _scores(true, pred, labels: list[int]) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(true, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(true, pred)) if len(true) else 0.0,
        "macro_f1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
    }


def _song_level(genres: list[str], true: list[int], vote: list[int], mean: list[int]) -> dict:
    """Song-level numbers from each song's true, voted and mean-probability genre index."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(genres)))
    by_vote = _scores(true, vote, labels)
    precision, recall, f1, support = precision_recall_fscore_support(true, vote, labels=labels, zero_division=0)
    return {
        "song_accuracy_vote": by_vote["accuracy"],
        "song_accuracy_mean": float(accuracy_score(true, mean)),
        "song_balanced_accuracy": by_vote["balanced_accuracy"],
        "song_macro_f1": by_vote["macro_f1"],
        "confusion_matrix": confusion_matrix(true, vote, labels=labels).tolist(),
        "per_genre": {
            g: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, g in enumerate(genres)
        },
    }


def evaluate(model, windows: WindowSet, genres: list[str], track_ids: list[str]) -> dict:
    """Evaluate ``model`` on the windows of the songs ``track_ids`` (the test part)."""
    probabilities = predict_windows(model, windows)
    position = {t: k for k, t in enumerate(track_ids)}
    window_song = np.asarray([position[t] for t in windows.track_ids], dtype=np.int64)
    return song_metrics(genres, track_ids, window_song, windows.labels, probabilities)


def pool_metrics(genres: list[str], fold_metrics: list[dict]) -> dict:
    """Cross-validation: recompute the song-level numbers over all folds' test songs pooled
    (each song was tested once; its vote and mean decisions are already made), weight window
    accuracy by each fold's windows, average the other window numbers over folds, and keep each
    fold's headline numbers."""
    songs = [s for m in fold_metrics for s in m["songs"]]
    index = {g: i for i, g in enumerate(genres)}
    song_level = _song_level(
        genres, [index[s["true"]] for s in songs], [index[s["vote"]] for s in songs], [index[s["mean"]] for s in songs]
    )
    windows = sum(m["test_windows"] for m in fold_metrics)
    window_acc = sum(m["window_accuracy"] * m["test_windows"] for m in fold_metrics) / max(windows, 1)
    headline = ("song_accuracy_vote", "song_accuracy_mean", "window_accuracy", "song_balanced_accuracy", "song_macro_f1")
    return {
        "genres": genres,
        "test_songs": len(songs),
        "test_windows": windows,
        "window_accuracy": float(window_acc),
        "window_balanced_accuracy": float(np.mean([m["window_balanced_accuracy"] for m in fold_metrics])),
        "window_macro_f1": float(np.mean([m["window_macro_f1"] for m in fold_metrics])),
        **song_level,
        # Kept for readers of earlier runs: it equals song_balanced_accuracy (mean recall).
        "song_macro_recall": song_level["song_balanced_accuracy"],
        "songs": songs,
        "folds": [{k: m[k] for k in headline} | {"test_songs": m["test_songs"]} for m in fold_metrics],
        "pooled": True,
    }
