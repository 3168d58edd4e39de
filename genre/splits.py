"""Song-level splits, made before any windowing, and the audit that proves them leak-free.

A manifest is a dict ``{"protocol", "seed", "train", "valid", "test", ...}`` of track ids
(for cross-validation, ``"folds"``: a list of such parts). It is saved with every run.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Iterable, Sequence

import numpy as np

from .errors import GenreError

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
) -> dict:
    """The founding report's protocol: hold out ``test_fraction`` of the songs, stratified by
    genre and seeded; then carve ``val_fraction`` of the training songs as validation (also
    stratified). ``val_fraction=0`` trains on all non-test songs, as the report did."""
    from sklearn.model_selection import train_test_split

    ids = np.asarray(track_ids)
    labels = np.asarray(labels)
    _check_counts(labels, 2, "the stratified split")
    try:
        train, test, y_train, _ = train_test_split(ids, labels, test_size=test_fraction, stratify=labels, random_state=seed)
        valid = np.asarray([], dtype=ids.dtype)
        if val_fraction > 0:
            train, valid = train_test_split(train, test_size=val_fraction, stratify=y_train, random_state=seed)
    except ValueError as error:
        raise SplitError(f"cannot split {len(ids)} songs this way: {error}") from None
    return {
        "protocol": "stratified",
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        **{name: sorted(part.tolist()) for name, part in zip(PARTS, (train, valid, test))},
    }


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
        raise SplitError("the fault-filtered split needs GTZAN track ids (<genre>/<genre>.000NN); none of its train or test tracks are in this dataset")
    return manifest


def cv_split(
    track_ids: Sequence[str],
    labels: Sequence[int],
    folds: int = 5,
    val_fraction: float = 0.1,
    seed: int = 1,
    artists: dict[str, str] | None = None,
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
    _check_counts(labels, folds, f"{folds}-fold cross-validation")
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


def _split_off_validation(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``index`` into (keep, carved), stratified by genre where every genre has two songs."""
    from sklearn.model_selection import train_test_split

    stratify = labels if np.bincount(labels)[np.unique(labels)].min() >= 2 else None
    return tuple(train_test_split(index, test_size=fraction, stratify=stratify, random_state=seed))


def make_split(protocol: str, track_ids: Sequence[str], labels: Sequence[int], **options) -> dict:
    """Dispatch to the protocol's split function (``stratified``, ``fault-filtered``, ``cv``)."""
    if protocol == "stratified":
        return stratified_split(track_ids, labels, **_given_options(options, "test_fraction", "val_fraction", "seed"))
    if protocol == "fault-filtered":
        return fault_filtered_split(track_ids)
    if protocol == "cv":
        return cv_split(track_ids, labels, **_given_options(options, "folds", "val_fraction", "seed"))
    raise SplitError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def split_settings(manifest: dict) -> dict:
    """The settings ``make_split`` made ``manifest`` with: ``protocol`` and those of its options
    that it uses (``seed``, ``test_fraction``, ``val_fraction``, ``folds``)."""
    settings = {"protocol": manifest["protocol"]}
    if manifest["protocol"] == "stratified":
        settings |= {k: manifest[k] for k in ("seed", "test_fraction", "val_fraction")}
    elif manifest["protocol"] == "cv":
        settings |= {"seed": manifest["seed"], "val_fraction": manifest["val_fraction"], "folds": len(manifest["folds"])}
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
                    f"{len(outside)} song(s) outside the training part have windows in training, e.g. {sorted(outside)[0]}"
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
        raise SplitError(f"{what} needs at least {needed} songs per genre; the smallest genre has {counts[counts > 0].min() if len(labels) else 0}")


def _given_options(options: dict, *names: str) -> dict:
    """The ``names`` among ``options`` that were given (not ``None``): the split function's own defaults fill the rest."""
    return {k: v for k, v in options.items() if k in names and v is not None}
