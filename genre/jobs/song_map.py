"""The song map of a run: every song of its split placed by what the model made of it.

A song's point is the mean, over its 3 s windows, of the model's penultimate activation (the
input of its final softmax layer, ``genre.models.penultimate``), each song classified on its own
exactly as the Classify page does it (``Classifier.classify``: same windows, same model call).
A PCA from scikit-learn is fitted on the run's *training* songs only, and every song (training,
validation, test, and later an uploaded one) is projected with it. The map is the first two
components. Nearest songs are measured by Euclidean distance in the first ``NEAREST_COMPONENTS``
components (the first two of which are the map): the whole penultimate space of ``transfer``
is 1,706 wide, too much to keep per song in a file of a few hundred kB, and those components
keep most of its spread (``SongMap.variance_kept`` says how much).

The map is cached in the run folder as ``song_map.npz`` with the sha256 of the ``model.keras``
it was computed with; a map of another model file is refused as stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import GenreError
from ..files import atomic_path, read_json

MAP_FILE = "song_map.npz"
NEAREST_COMPONENTS = 16
FORMAT = 1


class SongMapError(GenreError, ValueError):
    """A song map that cannot be computed or used; the message says why."""


class StaleSongMap(SongMapError):
    """A map computed with another version of the run's model file."""


@dataclass
class Neighbour:
    track_id: str
    genre: str  # its true genre
    vote: str  # the run's vote on it
    distance: float


@dataclass
class Placement:
    """Where a new song falls on a run's map."""

    xy: np.ndarray  # (2,)
    nearest: list[Neighbour]


@dataclass
class SongMap:
    """Every song of a run's split on the plane of its training songs' first two components."""

    run_id: str
    model_sha256: str
    track_ids: list[str]
    parts: list[str]  # "train", "valid" or "test", per song
    genres: list[str]  # true genre per song
    votes: list[str]  # the run's majority vote per song
    coords: np.ndarray  # (n_songs, k) in the training songs' PCA space; the map is [:, :2]
    mean: np.ndarray  # (width,) PCA centre
    components: np.ndarray  # (k, width)
    explained: np.ndarray  # (k,) share of the training songs' variance per component

    @property
    def xy(self) -> np.ndarray:
        return self.coords[:, :2]

    @property
    def variance_kept(self) -> float:
        """Share of the training songs' variance in the nearest-song space."""
        return float(self.explained.sum())

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Penultimate vectors ``(n, width)`` -> their PCA coordinates ``(n, k)``."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if vectors.shape[1] != self.mean.shape[0]:
            raise SongMapError(
                f"these activations are {vectors.shape[1]} wide; the map's model has {self.mean.shape[0]}"
            )
        return (vectors - self.mean) @ self.components.T

    def place(self, window_embeddings: np.ndarray, count: int = 5) -> Placement:
        """Place a song by its windows' penultimate activations (``Classification.embeddings``)
        and find its ``count`` nearest training songs (Euclidean, in the first ``k``
        components of the PCA space)."""
        point = self.project(np.asarray(window_embeddings).mean(axis=0))[0]
        train = np.flatnonzero(np.asarray(self.parts) == "train")
        distances = np.linalg.norm(self.coords[train] - point, axis=1)
        order = train[np.argsort(distances, kind="stable")[:count]]
        nearest = [
            Neighbour(self.track_ids[i], self.genres[i], self.votes[i], float(np.linalg.norm(self.coords[i] - point)))
            for i in order
        ]
        return Placement(point[:2], nearest)


# ----------------------------------------------------------------------------- computing


def split_parts(config: dict, manifest: dict) -> dict[str, list[str]]:
    """The served model's train/valid/test songs: the run's split, or for a cross-validation
    run the fold whose model it serves."""
    part = manifest["folds"][int(config.get("served_fold", 1)) - 1] if "folds" in manifest else manifest
    return {name: list(part.get(name, [])) for name in ("train", "valid", "test")}


def fit_map(
    run_id: str,
    model_sha256: str,
    parts: dict[str, list[str]],
    describe: Callable[[str], tuple[str, np.ndarray]],
    components: int = NEAREST_COMPONENTS,
    progress: Iterable | None = None,
) -> SongMap:
    """The map of the songs in ``parts``. ``describe(track_id)`` gives a song's vote and its
    mean penultimate activation; the PCA sees only the ``train`` songs' vectors."""
    from sklearn.decomposition import PCA

    track_ids = [t for name in ("train", "valid", "test") for t in parts.get(name, [])]
    labels = [name for name in ("train", "valid", "test") for _ in parts.get(name, [])]
    if len(parts.get("train", [])) < 3:
        raise SongMapError(
            f"a song map is fitted on the run's training songs, and it has {len(parts.get('train', []))} (at least "
            f"3 needed)"
        )
    votes, vectors = [], []
    for track_id in progress(track_ids) if progress else track_ids:
        vote, vector = describe(track_id)
        votes.append(vote)
        vectors.append(np.asarray(vector, dtype=np.float64).ravel())
    matrix = np.stack(vectors)
    train = matrix[np.asarray(labels) == "train"]
    k = max(2, min(components, train.shape[0] - 1, train.shape[1]))
    # "full": the first two components of this fit are exactly a PCA(2) of the same songs.
    pca = PCA(n_components=k, svd_solver="full").fit(train)
    return SongMap(
        run_id=run_id,
        model_sha256=model_sha256,
        track_ids=track_ids,
        parts=labels,
        genres=[t.split("/")[0] for t in track_ids],
        votes=votes,
        coords=pca.transform(matrix).astype(np.float32),
        mean=pca.mean_.astype(np.float32),
        components=pca.components_.astype(np.float32),
        explained=pca.explained_variance_ratio_.astype(np.float32),
    )


def model_sha256(run_dir: str | os.PathLike) -> str:
    """sha256 of the run's ``model.keras`` (what a cached map was computed with)."""
    digest = hashlib.sha256()
    with open(Path(run_dir) / "model.keras", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compute_song_map(run_dir: str | os.PathLike, data_root: str | None = None, progress: bool = False) -> SongMap:
    """Classify every song of the run's split with its model (one song at a time, decoded as
    the dataset cache decodes it) and fit the map. Reads the dataset the run names, or
    ``data_root``."""
    from ..data.dataset import load_dataset
    from ..serve.prediction import Classifier
    from ..train.training import check_dataset

    run_dir = Path(run_dir)
    config, manifest = read_json(run_dir / "config.json"), read_json(run_dir / "split.json")
    if config is None or manifest is None or not (run_dir / "model.keras").is_file():
        raise SongMapError(f"{run_dir} is not a trained run folder (it needs config.json, split.json and model.keras)")
    root = data_root or config.get("data_root")
    if not root or not Path(root).is_dir():
        raise SongMapError(
            f"the dataset of run {run_dir.name} ({root or 'not named'}) is not on this machine; pass it with --data"
        )
    cache = load_dataset(root, progress=progress)
    check_dataset(run_dir, cache, manifest)
    digest = model_sha256(run_dir)
    classifier = Classifier.load(run_dir)
    if classifier.penultimate_model is None:
        raise SongMapError(
            f"run {run_dir.name}'s model has no penultimate layer to map: {classifier.penultimate_problem}"
        )

    def describe(track_id: str) -> tuple[str, np.ndarray]:
        result = classifier.classify(np.asarray(cache.song(cache.index_of(track_id))))
        return result.vote_genre, result.embeddings.mean(axis=0)

    bar = None
    if progress:
        from tqdm import tqdm

        def bar(items):
            return tqdm(items, desc="songs", unit="song")

    return fit_map(run_dir.name, digest, split_parts(config, manifest), describe, progress=bar)


# ----------------------------------------------------------------------------- the file


def save_song_map(run_dir: str | os.PathLike, song_map: SongMap) -> Path:
    """Write ``run_dir/song_map.npz`` atomically."""
    path = Path(run_dir) / MAP_FILE
    meta = {"format": FORMAT, "run_id": song_map.run_id, "model_sha256": song_map.model_sha256}
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            meta=np.array(json.dumps(meta)),
            track_ids=np.array(song_map.track_ids),
            parts=np.array(song_map.parts),
            votes=np.array(song_map.votes),
            coords=song_map.coords,
            mean=song_map.mean,
            components=song_map.components,
            explained=song_map.explained,
        )
    return path


def read_song_map(run_dir: str | os.PathLike, check: bool = True) -> SongMap | None:
    """The run's cached map, or None when it has none. With ``check``, a map computed with
    another ``model.keras`` raises :class:`StaleSongMap`; an unreadable file raises
    :class:`SongMapError`."""
    path = Path(run_dir) / MAP_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            track_ids = [str(t) for t in data["track_ids"]]
            song_map = SongMap(
                run_id=meta["run_id"],
                model_sha256=meta["model_sha256"],
                track_ids=track_ids,
                parts=[str(p) for p in data["parts"]],
                genres=[t.split("/")[0] for t in track_ids],
                votes=[str(v) for v in data["votes"]],
                coords=data["coords"],
                mean=data["mean"],
                components=data["components"],
                explained=data["explained"],
            )
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise SongMapError(
            f"{path} cannot be read ({error}); compute it again with: python -m genre map {Path(run_dir)}"
        ) from error
    if check and song_map.model_sha256 != model_sha256(run_dir):
        raise StaleSongMap(
            f"{path} was computed with another model.keras; compute it again with: python -m genre map {Path(run_dir)}"
        )
    return song_map
