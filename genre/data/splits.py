"""Song-level splits, made before any windowing, and the audit that proves them leak-free.

A manifest is a dict ``{"protocol", "seed", "train", "valid", "test", ...}`` of track ids
(for cross-validation, ``"folds"``: a list of such parts). It is saved with every run.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from importlib import resources

import numpy as np

from ..errors import GenreError

log = logging.getLogger(__name__)

PROTOCOLS = ("stratified", "fault-filtered", "cv")
PARTS = ("train", "valid", "test")


class SplitError(GenreError, ValueError):
    """A split that cannot be made from the songs at hand."""


class LeakageError(GenreError, ValueError):
    """A manifest or window set that would let test or validation songs into training."""


def stratified_split(
    track_ids: Sequence[str],
    labels: Sequence[int],
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 1,
    genres: Sequence[str] | None = None,
) -> dict:
    """The founding report's protocol: hold out ``test_fraction`` of the songs, stratified by
    genre and seeded; then carve ``val_fraction`` of the training songs as validation (also
    stratified). ``val_fraction=0`` trains on all non-test songs, as the report did.
    ``genres`` (the labels' names) only words a refusal."""
    ids = np.asarray(track_ids)
    labels = np.asarray(labels)
    try:
        _check_counts(labels, 2, "the stratified split")
        train, valid, test = _stratified(ids, labels, test_fraction, val_fraction, seed)
    except ValueError:
        needed = songs_needed(
            "stratified", len(np.unique(labels)), test_fraction=test_fraction, val_fraction=val_fraction, seed=seed
        )
        raise SplitError(_too_few(labels, needed, genres)) from None
    return {
        "protocol": "stratified",
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        **{name: sorted(part.tolist()) for name, part in zip(PARTS, (train, valid, test))},
    }


def _stratified(ids: np.ndarray, labels: np.ndarray, test_fraction: float, val_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    train, test, y_train, _ = train_test_split(ids, labels, test_size=test_fraction, stratify=labels, random_state=seed)
    valid = np.asarray([], dtype=ids.dtype)
    if val_fraction > 0:
        train, valid = train_test_split(train, test_size=val_fraction, stratify=y_train, random_state=seed)
    return train, valid, test


def songs_needed(
    protocol: str, n_genres: int, test_fraction: float = 0.2, val_fraction: float = 0.1, folds: int = 5, seed: int = 1
) -> int | None:
    """The fewest songs every genre needs for this split of ``n_genres`` equally large genres
    (found by making the split, so it is scikit-learn's own rule); None for ``fault-filtered``,
    whose songs are a fixed GTZAN list."""
    if protocol == "fault-filtered" or n_genres < 1:
        return None
    for n in range(2, 1001):
        labels = np.repeat(np.arange(n_genres), n)
        ids = np.asarray([f"g{g}/s{i}" for i, g in enumerate(labels)])
        try:
            if protocol == "stratified":
                parts = _stratified(ids, labels, test_fraction, val_fraction, seed)
                if all(len(p) for p in parts[: 1 if val_fraction <= 0 else 2] + parts[2:]):
                    return n
            elif n >= folds:
                manifest = cv_split(ids, labels, folds=folds, val_fraction=val_fraction, seed=seed, artists={})
                if all(
                    part["train"] and part["test"] and (part["valid"] or val_fraction <= 0)
                    for part in manifest["folds"]
                ):
                    return n
        except ValueError:
            continue
    return None


def needs_text(
    protocol: str, n_genres: int, test_fraction: float, val_fraction: float, folds: int, seed: int = 1
) -> str:
    """What the split needs, in a sentence for the Retrain panel."""
    if protocol == "fault-filtered":
        return (
            "fault-filtered uses the published GTZAN track lists (443/197/290 songs): "
            "it needs a GTZAN folder holding most of them"
        )
    needed = songs_needed(
        protocol, n_genres, test_fraction=test_fraction, val_fraction=val_fraction, folds=folds, seed=seed
    )
    return (
        f"this {protocol} split needs at least {needed} songs in each of the {n_genres} genres"
        if needed
        else f"no number of songs makes this {protocol} split work"
    )


def _too_few(labels: np.ndarray, needed: int | None, genres: Sequence[str] | None) -> str:
    """ "each genre needs at least N songs for this split; rock has 4", in genre names."""
    counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=int)
    name = (lambda i: genres[i]) if genres is not None else (lambda i: f"genre {i}")
    short = [i for i in range(len(counts)) if counts[i] > 0 and (needed is None or counts[i] < needed)]
    short = short or [int(np.argmin(np.where(counts > 0, counts, np.iinfo(int).max)))] if len(counts) else []
    listed = ", ".join(f"{name(i)} has {counts[i]}" for i in short[:4]) + (
        f" and {len(short) - 4} more" if len(short) > 4 else ""
    )
    return (
        f"each genre needs at least {needed} songs for this split; {listed}"
        if needed
        else f"too few songs for this split; {listed}"
    )


def fault_filtered_split(track_ids: Sequence[str]) -> dict:
    """The artist-disjoint GTZAN split of Kereliuk, Sturm & Larsen (2015): 443/197/290 songs.

    Tracks the lists name that the dataset lacks are counted in ``"missing"`` and logged, never
    silently dropped; dataset tracks the lists leave out (the 70 faulty ones) are not used.
    """
    available = set(track_ids)
    manifest: dict = {"protocol": "fault-filtered", "seed": None, "missing": {}, "listed": {}}
    for part, listed in published_fault_filtered().items():
        present = [t for t in listed if t in available]
        manifest[part] = sorted(present)
        manifest["listed"][part] = len(listed)
        manifest["missing"][part] = len(listed) - len(present)
    missing = sum(manifest["missing"].values())
    if missing:
        log.warning(
            "fault-filtered split: %d of the %d listed tracks are not in this dataset (%s)",
            missing,
            sum(manifest["listed"].values()),
            ", ".join(f"{p} {manifest['missing'][p]}" for p in PARTS),
        )
    if not manifest["train"] or not manifest["test"]:
        raise SplitError(
            "the fault-filtered split needs GTZAN track ids (<genre>/<genre>.000NN); "
            "none of its train or test tracks are in this dataset"
        )
    listed, present = sum(manifest["listed"].values()), sum(len(manifest[p]) for p in PARTS)
    if present * 2 < listed:
        # Its parts would be a few songs each: a score on them means nothing.
        raise SplitError(
            f"the fault-filtered split lists {listed} GTZAN tracks and this dataset holds only {present} of them "
            f"(test {len(manifest['test'])} of {manifest['listed']['test']}); "
            "it needs most of them: use the stratified or cv split"
        )
    return manifest


def cv_split(
    track_ids: Sequence[str],
    labels: Sequence[int],
    folds: int = 5,
    val_fraction: float = 0.1,
    seed: int = 1,
    artists: dict[str, str] | None = None,
    genres: Sequence[str] | None = None,
) -> dict:
    """Song-level k-fold cross-validation, stratified by genre and grouped by artist, so every
    song is tested once by a model that never saw its artist. Songs of unknown artist are their
    own group.

    Each fold's validation part is carved from its training songs stratified by genre but not
    grouped: artist groups are large (one GTZAN artist holds 28 jazz songs), and a grouped carve
    gives a validation part of one artist, useless for choosing an epoch. Validation only picks
    the epoch; the test fold stays artist-disjoint from everything the model was fitted or
    selected on.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    ids = np.asarray(track_ids)
    labels = np.asarray(labels)
    try:
        _check_counts(labels, folds, f"{folds}-fold cross-validation")
    except SplitError:
        raise SplitError(
            _too_few(
                labels,
                songs_needed("cv", len(np.unique(labels)), val_fraction=val_fraction, folds=folds, seed=seed),
                genres,
            )
        ) from None
    artists = artist_index() if artists is None else artists
    groups = np.asarray([artists.get(t) or f"unknown:{t}" for t in ids])
    outer = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    parts = []
    for train_idx, test_idx in outer.split(ids, labels, groups):
        valid_idx = np.asarray([], dtype=np.int64)
        if val_fraction > 0:
            train_idx, valid_idx = _split_off_validation(train_idx, labels[train_idx], val_fraction, seed)
        parts.append({name: sorted(ids[idx].tolist()) for name, idx in zip(PARTS, (train_idx, valid_idx, test_idx))})
    return {"protocol": "cv", "seed": seed, "folds": parts, "val_fraction": val_fraction, "grouped_by": "artist"}


def _split_off_validation(
    index: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``index`` into (keep, carved), stratified by genre where every genre has two songs."""
    from sklearn.model_selection import train_test_split

    stratify = labels if np.bincount(labels)[np.unique(labels)].min() >= 2 else None
    return tuple(train_test_split(index, test_size=fraction, stratify=stratify, random_state=seed))


def make_split(protocol: str, track_ids: Sequence[str], labels: Sequence[int], **options) -> dict:
    """Dispatch to the protocol's split function (``stratified``, ``fault-filtered``, ``cv``)."""
    if protocol == "stratified":
        return stratified_split(
            track_ids, labels, **_given_options(options, "test_fraction", "val_fraction", "seed", "genres")
        )
    if protocol == "fault-filtered":
        return fault_filtered_split(track_ids)
    if protocol == "cv":
        return cv_split(track_ids, labels, **_given_options(options, "folds", "val_fraction", "seed", "genres"))
    raise SplitError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def split_settings(manifest: dict) -> dict:
    """The settings ``make_split`` made ``manifest`` with: ``protocol`` and those of its options
    that it uses (``seed``, ``test_fraction``, ``val_fraction``, ``folds``)."""
    settings = {"protocol": manifest["protocol"]}
    if manifest["protocol"] == "stratified":
        settings |= {k: manifest[k] for k in ("seed", "test_fraction", "val_fraction")}
    elif manifest["protocol"] == "cv":
        settings |= {
            "seed": manifest["seed"],
            "val_fraction": manifest["val_fraction"],
            "folds": len(manifest["folds"]),
        }
    return settings


def fold_parts(manifest: dict) -> list[dict]:
    """The train/valid/test parts of a manifest: one for a plain split, one per fold for CV."""
    return manifest["folds"] if "folds" in manifest else [manifest]


def audit(manifest: dict, train_window_tracks: Iterable[str] | None = None) -> None:
    """Prove a manifest leak-free, or raise :class:`LeakageError`.

    Checks that train, valid and test share no track (in every fold), and, when given the track
    id of every window about to be trained on, that each belongs to a training song.
    """
    for number, parts in enumerate(fold_parts(manifest), 1):
        where = f" (fold {number})" if "folds" in manifest else ""
        sets = {name: set(parts.get(name, [])) for name in PARTS}
        for a, b in (("train", "test"), ("train", "valid"), ("valid", "test")):
            shared = sets[a] & sets[b]
            if shared:
                raise LeakageError(f"{len(shared)} song(s) are in both {a} and {b}{where}, e.g. {sorted(shared)[0]}")
        for name in PARTS:
            if len(sets[name]) != len(parts.get(name, [])):
                raise LeakageError(f"the {name} part lists a song twice{where}")
        if train_window_tracks is not None and "folds" not in manifest:
            outside = set(train_window_tracks) - sets["train"]
            if outside:
                raise LeakageError(
                    f"{len(outside)} song(s) outside the training part have windows in training, "
                    f"e.g. {sorted(outside)[0]}"
                )


def published_fault_filtered() -> dict[str, list[str]]:
    """The three published fault-filtered lists, as track ids ``<genre>/<stem>``."""
    folder = resources.files("genre") / "data" / "fault-filtered"
    out = {}
    for part, name in (("train", "train_filtered.txt"), ("valid", "valid_filtered.txt"), ("test", "test_filtered.txt")):
        lines = (folder / name).read_text().split()
        out[part] = [line.rsplit(".", 1)[0] for line in lines if line]
    return out


def artist_index() -> dict[str, str]:
    """Sturm's artist index of GTZAN: track id -> artist (tracks with no named artist omitted)."""
    return dict(_parsed_artist_index())  # a copy: callers may change theirs


@functools.cache
def _parsed_artist_index() -> dict[str, str]:
    # The Overview and the Retrain panel ask on every rerun; the file never changes.
    text = (resources.files("genre") / "data" / "artist-index.txt").read_text(encoding="utf-8", errors="replace")
    artists = {}
    for line in text.splitlines():
        if line.startswith("#") or ":::" not in line:
            continue
        file, artist, *_ = (field.strip() for field in line.split(":::"))
        if artist:
            stem = file.rsplit(".", 1)[0]
            artists[f"{stem.split('.')[0]}/{stem}"] = artist
    return artists


def few_artist_genres(track_ids: list[str], minimum: int = 3, artists: dict[str, str] | None = None) -> dict[str, int]:
    """Genres of ``track_ids`` whose songs come from fewer than ``minimum`` artists (artist
    index), with their artist count: a model may learn those artists rather than the genre.
    A song the index does not know counts as an artist of its own, and a genre none of whose
    songs the index knows (not GTZAN) is left out: nothing is known of it."""
    artists = artist_index() if artists is None else artists
    known: dict[str, set[str]] = {}
    unknown: dict[str, int] = {}
    for track_id in track_ids:
        genre = track_id.split("/", 1)[0]
        if track_id in artists:
            known.setdefault(genre, set()).add(artists[track_id])
        else:
            unknown[genre] = unknown.get(genre, 0) + 1
    counts = {g: len(a) + unknown.get(g, 0) for g, a in known.items()}
    return {g: n for g, n in sorted(counts.items()) if n < minimum}


def _check_counts(labels: np.ndarray, needed: int, what: str) -> None:
    counts = np.bincount(labels)
    if len(labels) == 0 or counts[counts > 0].min() < needed:
        smallest = counts[counts > 0].min() if len(labels) else 0
        raise SplitError(f"{what} needs at least {needed} songs per genre; the smallest genre has {smallest}")


def _given_options(options: dict, *names: str) -> dict:
    """The ``names`` among ``options`` that were given (not ``None``): the split function's own
    defaults fill the rest."""
    return {k: v for k, v in options.items() if k in names and v is not None}
