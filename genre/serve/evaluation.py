"""Honest evaluation: a trained model on the test songs only, at window and song level, one
song at a time exactly as the Classify page serves it, at full band and band-limited."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..audio.augment import band_limit
from ..data.dataset import Songs
from .prediction import Classifier
from .voting import majority_vote, mean_vote, vote_counts

# A low-rate mp3 or a laptop microphone keeps about this much of the spectrum.
BAND_LIMITS_HZ = (8_000, 11_000)


def predict_songs(
    classifier: Classifier,
    cache: Songs,
    track_ids: list[str],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Window probabilities of the songs ``track_ids``, each song classified on its own by
    ``classifier`` (after ``transform``, if given). Returns ``(probabilities, window_song)``,
    the song's position in ``track_ids`` per window."""
    probabilities, window_song = [], []
    for position, track_id in enumerate(track_ids):
        song = np.asarray(cache.song(cache.index_of(track_id)))
        p = classifier.classify(transform(song) if transform else song).probabilities
        probabilities.append(p)
        window_song.append(np.full(len(p), position, dtype=np.int64))
    if not probabilities:
        return np.zeros((0, len(classifier.genres)), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return np.concatenate(probabilities), np.concatenate(window_song)


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
            g: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, g in enumerate(genres)
        },
    }


def evaluate(model, cache: Songs, track_ids: list[str], band_limits: tuple[int, ...] = BAND_LIMITS_HZ) -> dict:
    """Evaluate ``model`` on the songs ``track_ids`` (the test part): the full-band metrics,
    and under ``band_limited`` the same test songs low-passed at each of ``band_limits`` Hz
    (each song's vote there is kept in its ``band_limited_vote``)."""
    classifier = Classifier(model, cache.genres)
    labels = cache.labels[[cache.index_of(t) for t in track_ids]]
    probabilities, window_song = predict_songs(classifier, cache, track_ids)
    metrics = song_metrics(cache.genres, track_ids, window_song, labels[window_song], probabilities)
    metrics["band_limited"] = {}
    for hz in band_limits:
        p, rows = predict_songs(classifier, cache, track_ids, lambda song, hz=hz: band_limit(song, hz))
        limited = song_metrics(cache.genres, track_ids, rows, labels[rows], p)
        metrics["band_limited"][str(hz)] = {k: limited[k] for k in BAND_LIMITED_KEYS}
        for song, other in zip(metrics["songs"], limited["songs"]):
            song.setdefault("band_limited_vote", {})[str(hz)] = other["vote"]
    return metrics


BAND_LIMITED_KEYS = ("song_accuracy_vote", "song_balanced_accuracy", "window_accuracy", "test_windows")


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
    headline = (
        "song_accuracy_vote",
        "song_accuracy_mean",
        "window_accuracy",
        "song_balanced_accuracy",
        "song_macro_f1",
    )
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
        **_pool_band_limited(genres, songs, fold_metrics),
    }


def _pool_band_limited(genres: list[str], songs: list[dict], fold_metrics: list[dict]) -> dict:
    """The band-limited figures over all folds' test songs (none for runs made before them)."""
    limits = [set(m.get("band_limited", {})) for m in fold_metrics]
    if not limits or not set.intersection(*limits):
        return {}
    index = {g: i for i, g in enumerate(genres)}
    pooled = {}
    for hz in sorted(set.intersection(*limits), key=int):
        true = [index[s["true"]] for s in songs]
        vote = [index[s["band_limited_vote"][hz]] for s in songs]
        scores = _scores(true, vote, list(range(len(genres))))
        windows = sum(m["band_limited"][hz]["test_windows"] for m in fold_metrics)
        pooled[hz] = {
            "song_accuracy_vote": scores["accuracy"],
            "song_balanced_accuracy": scores["balanced_accuracy"],
            "window_accuracy": sum(
                m["band_limited"][hz]["window_accuracy"] * m["band_limited"][hz]["test_windows"] for m in fold_metrics
            )
            / max(windows, 1),
            "test_windows": windows,
        }
    return {"band_limited": pooled}


def multi_artist_figures(genres: list[str], songs: list[dict], artists: dict[str, str]) -> dict:
    """Song accuracy over the genres whose tested songs come from several artists (songs of no
    known artist count as their own). Under artist grouping a one-artist genre is never in its
    fold's training, so it scores 0 by construction; these figures leave such genres out."""
    groups: dict[str, set[str]] = {}
    for song in songs:
        groups.setdefault(song["true"], set()).add(artists.get(song["track_id"]) or f"unknown:{song['track_id']}")
    kept = [g for g in genres if len(groups.get(g, ())) > 1]
    chosen = [s for s in songs if s["true"] in kept]
    index = {g: i for i, g in enumerate(kept)}
    scores = _scores(
        [index[s["true"]] for s in chosen], [index.get(s["vote"], -1) for s in chosen], list(range(len(kept)))
    )
    return {
        "genres": kept,
        "songs": len(chosen),
        "song_accuracy_vote": scores["accuracy"],
        "song_balanced_accuracy": scores["balanced_accuracy"],
    }
