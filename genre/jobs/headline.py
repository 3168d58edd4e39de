"""What a run's headline must say beside its split's figure: how its model does on artists it
never heard, on band-limited audio, and what its test set holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..data.splits import few_artist_genres
from .runs import Run

ARTIST_DISJOINT = ("cv", "fault-filtered")
MIN_ARTISTS = 3  # fewer artists than this in a genre's training songs, and a model may learn them


@dataclass
class Headline:
    unseen_run: Run | None  # the run whose test songs are by artists its model never heard
    unseen_accuracy: float | None
    multi_artist: dict | None  # the same, over genres that have several artists
    band_limited: dict[int, float]  # cutoff Hz -> song accuracy of the test songs so limited
    test_set: str  # e.g. "40 of 56 test songs are blues or jazz"
    unseen_recall: dict[str, tuple[float, int]] | None = None  # genre -> (recall, songs) on unheard artists
    few_artists: str | None = None  # one line on genres the training songs have few artists of


def unseen_artist_run(run: Run, runs: list[Run]) -> Run | None:
    """``run`` itself when its split is artist-disjoint; else the newest finished
    cross-validated run of the same model (its figure speaks for the model family)."""
    if run.config.get("protocol") in ARTIST_DISJOINT and run.metrics:
        return run
    family = [
        r
        for r in runs
        if r.metrics
        and r.config.get("protocol") == "cv"
        and r.config.get("model") == run.config.get("model")
        and r.state == "finished"
    ]
    return max(family, key=lambda r: r.config.get("created", ""), default=None)


def describe_test_set(metrics: dict) -> str:
    """Who the test songs are: the one or two genres that make up most of them (when they are
    over-represented), or how many songs each genre has."""
    counts = Counter(song["true"] for song in metrics.get("songs", []))
    total = sum(counts.values())
    if not total:
        return "no test songs"
    top = counts.most_common(2)
    for size in (1, 2):
        share = sum(n for _, n in top[:size])
        # Only worth saying when those genres hold half the songs and far more than their share.
        if share * 2 >= total and share >= 1.5 * total * size / len(counts) and size < len(counts):
            names = " or ".join(g for g, _ in top[:size])
            return f"{share} of {total} test songs are {names}"
    return f"{total} test songs, {min(counts.values())}-{max(counts.values())} per genre"


def headline(run: Run, runs: list[Run]) -> Headline:
    metrics = run.metrics or {}
    unseen = unseen_artist_run(run, runs)
    return Headline(
        unseen_run=unseen,
        unseen_accuracy=unseen.metrics["song_accuracy_vote"] if unseen else None,
        multi_artist=(unseen.metrics.get("multi_artist") if unseen else None),
        band_limited={
            int(hz): v["song_accuracy_vote"]
            for hz, v in sorted(metrics.get("band_limited", {}).items(), key=lambda kv: int(kv[0]))
        },
        test_set=describe_test_set(metrics),
        unseen_recall=_recall(unseen.metrics) if unseen else None,
        few_artists=few_artists_line(training_tracks(run.split())),
    )


def _recall(metrics: dict) -> dict[str, tuple[float, int]]:
    per_genre = metrics.get("per_genre", {})
    return {g: (v["recall"], int(v["support"])) for g, v in per_genre.items() if v.get("support")}


def training_tracks(split: dict) -> list[str]:
    """The songs a run learnt from: train and validation; under cross-validation every song
    (each is a training song of the other folds)."""
    parts = split.get("folds") or [split]
    return sorted(
        {
            t
            for part in parts
            for key in ("train", "valid", "test" if "folds" in split else "")
            for t in part.get(key, [])
        }
    )


def few_artists_line(track_ids: list[str], minimum: int = MIN_ARTISTS, where: str = "the training songs") -> str | None:
    """One line naming the genres whose songs (in ``where``) come from fewer than ``minimum``
    artists (artist index), or ``None`` when there are none (or the songs are not GTZAN's)."""
    few = few_artist_genres(track_ids, minimum)
    if not few:
        return None
    names = ", ".join(f"{g} ({n} artist{'s' if n != 1 else ''})" for g, n in few.items())
    return (
        f"Fewer than {minimum} artists in {where}: {names}. For "
        + ("this genre" if len(few) == 1 else "these genres")
        + " the model may learn the artists rather than the genre, and miss other artists' songs."
    )
