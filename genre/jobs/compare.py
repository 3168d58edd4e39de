"""Comparing two runs on their stored test results (``metrics.json``), without running a model.

What is compared depends on what the runs share: per-genre recall/F1 on the genres both know,
the confusion difference only when both have the same genres (counts on the same test songs,
else row shares), and the paired test (exact McNemar) and the disagreeing songs only on the
test songs both runs held out. :func:`compare_runs` says in ``notes`` what it left out and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import GenreError
from .runs import Run

SIGNIFICANCE = 0.05


class CompareError(GenreError, ValueError):
    """Two runs that cannot be compared at all (one has no test results); the message says why."""


def wilson_interval(right: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion ``right / total``; it stays
    inside [0, 1] and is sensible at 0 and 100%, unlike the normal approximation."""
    if total <= 0:
        return (0.0, 1.0)
    p = right / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs (songs only one
    run gets right) against an even split. No discordant pair: 1.0."""
    from scipy.stats import binomtest

    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)


def mcnemar_words(p_value: float, songs: int, only_a: int, only_b: int, names: tuple[str, str]) -> str:
    """The test's result in plain words."""
    if only_a + only_b == 0:
        return f"the two runs get exactly the same {songs} songs right"
    split = f"{names[0]} alone gets {only_a} right, {names[1]} alone {only_b}"
    if p_value >= SIGNIFICANCE:
        return f"the difference is within what chance gives on {songs} songs ({split}; p = {p_value:.2f})"
    return (
        f"a split this uneven would come by chance on {songs} songs only {p_value:.1%} of the time, "
        f"so the runs really differ ({split}; p = {p_value:.3g})"
    )


@dataclass
class RunSummary:
    """One run's song-level results: accuracy with its interval, per genre, confusion matrix."""

    run_id: str
    model: str
    protocol: str
    test_songs: int
    right: int
    accuracy: float
    interval: tuple[float, float]
    genres: list[str]
    per_genre: dict[str, dict[str, float]]
    confusion: list[list[int]]


@dataclass
class Comparison:
    """Everything the Compare page and ``python -m genre compare`` show."""

    a: RunSummary
    b: RunSummary
    genres: list[str]  # the genres both runs know, in A's order
    same_genres: bool
    shared_songs: int
    same_songs: bool
    difference: list[list[float]] | None  # B minus A, on ``genres``
    difference_kind: str | None  # "songs" (counts on the same test songs) or "share" (row shares)
    only_a: int | None = None  # shared songs A gets right and B wrong
    only_b: int | None = None
    p_value: float | None = None
    verdict: str | None = None
    disagreements: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _songs(run: Run) -> list[Mapping]:
    metrics = run.metrics or {}
    songs = metrics.get("songs")
    if not songs:
        raise CompareError(
            f"run {run.run_id} has no per-song test results (metrics.json); evaluate it first: python -m genre "
            f"evaluate {run.path}"
        )
    return songs


def summarise(run: Run) -> RunSummary:
    """A run's song-level results, recomputed from its stored test songs with scikit-learn."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    songs = _songs(run)
    genres = list(run.metrics.get("genres") or run.genres)
    true = [s["true"] for s in songs]
    vote = [s["vote"] for s in songs]
    right = sum(t == v for t, v in zip(true, vote))
    precision, recall, f1, support = precision_recall_fscore_support(true, vote, labels=genres, zero_division=0)
    per_genre = {
        g: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for g, p, r, f, s in zip(genres, precision, recall, f1, support)
    }
    return RunSummary(
        run_id=run.run_id,
        model=str(run.config.get("model", "?")),
        protocol=str(run.config.get("protocol", "?")),
        test_songs=len(songs),
        right=right,
        accuracy=right / len(songs),
        interval=wilson_interval(right, len(songs)),
        genres=genres,
        per_genre=per_genre,
        confusion=confusion_matrix(true, vote, labels=genres).tolist(),
    )


def _confidence(song: Mapping, genres: Sequence[str]) -> float:
    """How sure a run was of its vote: the mean probability of the voted genre, else the share
    of windows that voted for it."""
    k = genres.index(song["vote"]) if song["vote"] in genres else None
    p = song.get("mean_probability")
    if k is not None and p:
        return float(p[k])
    votes = song.get("votes") or []
    return float(votes[k] / sum(votes)) if k is not None and sum(votes) else float("nan")


def _reorder(matrix: Sequence[Sequence[int]], own: Sequence[str], order: Sequence[str]) -> np.ndarray:
    index = [list(own).index(g) for g in order]
    return np.asarray(matrix, dtype=float)[np.ix_(index, index)]


def _row_shares(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def compare_runs(run_a: Run, run_b: Run) -> Comparison:
    """Compare two runs on what they share (see the module docstring)."""
    from sklearn.metrics import confusion_matrix

    a, b = summarise(run_a), summarise(run_b)
    genres = [g for g in a.genres if g in b.genres]
    same_genres = set(a.genres) == set(b.genres)
    notes = []
    if not genres:
        notes.append("the runs share no genre, so only their song accuracies are compared")
    elif not same_genres:
        notes.append(
            f"the runs have different genres ({', '.join(sorted(set(a.genres) ^ set(b.genres)))} in one only); "
            "per-genre figures cover the genres both know, and the confusion matrices are not subtracted"
        )
    songs_a = {s["track_id"]: s for s in _songs(run_a)}
    songs_b = {s["track_id"]: s for s in _songs(run_b)}
    shared = [t for t in songs_a if t in songs_b]
    same_songs = set(songs_a) == set(songs_b)
    if not shared:
        notes.append("the runs share no test song, so there is no paired test and no song-by-song table")
    elif not same_songs:
        notes.append(
            f"the runs share {len(shared)} of their test songs ({a.test_songs} and {b.test_songs}); the paired test "
            f"and the table cover those"
        )

    difference = kind = None
    if same_genres and genres:
        if same_songs:
            # Same songs: the difference in counts says which songs moved between cells.
            difference, kind = (
                (_reorder(b.confusion, b.genres, genres) - _reorder(a.confusion, a.genres, genres)),
                "songs",
            )
        else:
            difference, kind = (
                (
                    _row_shares(_reorder(b.confusion, b.genres, genres))
                    - _row_shares(_reorder(a.confusion, a.genres, genres))
                ),
                "share",
            )
            notes.append("different test songs: the confusion difference is of row shares, not song counts")
        difference = difference.tolist()

    comparison = Comparison(
        a=a,
        b=b,
        genres=genres,
        same_genres=same_genres,
        shared_songs=len(shared),
        same_songs=same_songs,
        difference=difference,
        difference_kind=kind,
        notes=notes,
    )
    if shared:
        right_a = [songs_a[t]["vote"] == songs_a[t]["true"] for t in shared]
        right_b = [songs_b[t]["vote"] == songs_b[t]["true"] for t in shared]
        # A 2x2 table of (A right, B right) over the paired songs; its off-diagonal is McNemar's.
        table = confusion_matrix(right_a, right_b, labels=[True, False])
        comparison.only_a, comparison.only_b = int(table[0, 1]), int(table[1, 0])
        comparison.p_value = mcnemar_exact(comparison.only_a, comparison.only_b)
        comparison.verdict = mcnemar_words(
            comparison.p_value, len(shared), comparison.only_a, comparison.only_b, (a.run_id, b.run_id)
        )
        comparison.disagreements = [
            {
                "track": t,
                "true": songs_a[t]["true"],
                "vote_a": songs_a[t]["vote"],
                "confidence_a": _confidence(songs_a[t], a.genres),
                "vote_b": songs_b[t]["vote"],
                "confidence_b": _confidence(songs_b[t], b.genres),
                "right": "A" if ra else "B" if rb else "neither",
            }
            for t, ra, rb in zip(shared, right_a, right_b)
            if songs_a[t]["vote"] != songs_b[t]["vote"]
        ]
    return comparison


def comparison_text(c: Comparison) -> str:
    """The comparison as the CLI prints it."""
    lines = []
    for label, s in (("A", c.a), ("B", c.b)):
        lo, hi = s.interval
        lines.append(
            f"{label} {s.run_id} ({s.model}, {s.protocol}): {s.right}/{s.test_songs} songs right, {s.accuracy:.1%} "
            f"(95% CI {lo:.1%}-{hi:.1%})"
        )
    if c.genres:
        lines.append("")
        lines.append(f"{'genre':12s} {'recall A':>9s} {'recall B':>9s} {'F1 A':>6s} {'F1 B':>6s}")
        for g in c.genres:
            pa, pb = c.a.per_genre[g], c.b.per_genre[g]
            lines.append(f"{g:12s} {pa['recall']:9.0%} {pb['recall']:9.0%} {pa['f1']:6.2f} {pb['f1']:6.2f}")
    if c.p_value is not None:
        lines.append("")
        lines.append(f"paired test (exact McNemar) on {c.shared_songs} shared songs: {c.verdict}")
        lines.append(f"songs where the votes differ: {len(c.disagreements)}")
        for d in c.disagreements:
            lines.append(
                f"  {d['track']:28s} true {d['true']:10s} A {d['vote_a']:10s} {d['confidence_a']:4.0%}  "
                f"B {d['vote_b']:10s} {d['confidence_b']:4.0%}  right: {d['right']}"
            )
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
