"""Serving a trained run: audio in, per-window probabilities and the song's genre out."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..audio.decode import AudioSource, decode
from ..audio.windows import cut_windows
from ..errors import GenreError
from ..files import read_json
from ..models.traced import traced
from .voting import majority_vote, mean_vote, vote_counts


@dataclass
class Classification:
    """What ``Classifier.classify`` finds in one piece of audio."""

    genres: list[str]
    probabilities: np.ndarray  # (n_windows, n_genres)
    starts: np.ndarray  # window start times, seconds
    votes: np.ndarray  # windows won per genre
    vote_genre: str  # majority vote, ties to the higher mean probability
    mean_genre: str  # highest mean probability
    seconds: float  # duration of the audio
    temperature: float = 1.0  # the run's calibration (1: uncalibrated); votes never use it
    margin_threshold: float | None = None  # a lead below this is "uncertain"
    # Each window's penultimate activation (the final Dense layer's input), from the same model
    # call as ``probabilities``; None for a model whose output is not a Dense layer's.
    embeddings: np.ndarray | None = None  # (n_windows, width)
    song: np.ndarray | None = None  # the decoded mono 22,050 Hz audio the windows were cut from
    # musicnn's 50 MSD tag probabilities per window, from the same model call, for a model whose
    # graph holds musicnn's MSD embedding (``genre.models.msd_tags``); None otherwise.
    tags: np.ndarray | None = None  # (n_windows, 50)

    @property
    def mean_probability(self) -> np.ndarray:
        return self.probabilities.mean(axis=0)

    @property
    def calibrated_probability(self) -> np.ndarray:
        """The mean of the windows' calibrated probabilities: the confidence to show."""
        from .calibration import temper

        return temper(self.probabilities, self.temperature).mean(axis=0)

    def calibrated_ranking(self) -> list[tuple[str, float]]:
        """Genres by calibrated mean probability, highest first."""
        p = self.calibrated_probability
        return [(self.genres[i], float(p[i])) for i in np.argsort(-p)]

    @property
    def uncertain(self) -> bool:
        """Whether the winner is not clearly ahead of the runner-up (by the run's margin)."""
        from .calibration import margin

        return self.margin_threshold is not None and margin(self.calibrated_probability) < self.margin_threshold

    def ranking(self) -> list[tuple[str, float]]:
        """Genres by mean probability, highest first."""
        p = self.mean_probability
        return [(self.genres[i], float(p[i])) for i in np.argsort(-p)]


class ModelFileError(GenreError, ValueError):
    """A ``model.keras`` that Keras cannot load (damaged, cut off, not a Keras archive)."""


def load_model(path: str | os.PathLike):
    """Load a ``model.keras`` in safe mode (no code is deserialised; the project's own layers
    are registered first)."""
    import keras

    from ..models import layers, musicnn  # noqa: F401  registers the project's layers

    try:
        return keras.saving.load_model(path, safe_mode=True)
    # What Keras raises for an unusable file: a config naming a class or function it refuses
    # (``builtins.exec`` as a layer or a Lambda's function) is a TypeError.
    except (ValueError, TypeError, KeyError, AttributeError, ImportError, zipfile.BadZipFile) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelFileError(f"{path} cannot be loaded: {first_line}") from error


class Classifier:
    """A trained run, loaded for prediction."""

    def __init__(self, model, genres: list[str], run_dir: Path | None = None, calibration: dict | None = None):
        self.model, self.genres, self.run_dir = model, list(genres), run_dir
        self.calibration = calibration  # calibration.json's contents; None serves uncalibrated
        self._with_penultimate = None  # built on first use: (model or None, why not)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> Classifier:
        """Load ``run_dir/model.keras`` (safe mode: no code is deserialised), its genres and its
        calibration.json, when it has one."""
        run_dir = Path(run_dir)
        model_path = run_dir / "model.keras"
        if not model_path.is_file():
            raise FileNotFoundError(f"{run_dir} holds no trained model (model.keras)")
        genres = read_json(run_dir / "genres.json")
        if not genres:
            raise FileNotFoundError(f"{run_dir} has no genres.json")
        from .calibration import read_calibration

        return cls(load_model(model_path), genres, run_dir, read_calibration(run_dir))

    def predict_windows(self, windows: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Probabilities of ``(n, 66150)`` windows."""
        call = traced(self.model)
        out = []
        for first in range(0, len(windows), batch_size):
            chunk = np.asarray(windows[first : first + batch_size], dtype=np.float32)[..., None]
            out.append(np.asarray(call(chunk), dtype=np.float32))
        return np.concatenate(out) if out else np.zeros((0, len(self.genres)), dtype=np.float32)

    @property
    def penultimate_model(self):
        """The model with a second output, its penultimate layer (``genre.models.penultimate``), and
        a third, musicnn's MSD tags, when its graph holds them (``genre.models.msd_tags``); None
        when the model has no penultimate layer."""
        if self._with_penultimate is None:
            from ..models.msd_tags import msd_tags_output
            from ..models.penultimate import NoPenultimateLayer, with_penultimate

            try:
                explained = with_penultimate(self.model)
            except NoPenultimateLayer as error:
                self._with_penultimate = (None, str(error))
            else:
                tags = msd_tags_output(self.model)
                if tags is not None:
                    import keras

                    explained = keras.Model(
                        explained.inputs, [*explained.outputs, tags], name=f"{self.model.name}_explained"
                    )
                self._with_penultimate = (explained, None)
        return self._with_penultimate[0]

    @property
    def penultimate_problem(self) -> str | None:
        """Why the model has no penultimate layer to read, or None when it has one."""
        return None if self.penultimate_model is not None else self._with_penultimate[1]

    def predict_with_embeddings(
        self, windows: np.ndarray, batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Probabilities of ``(n, 66150)`` windows, their penultimate activations and musicnn's MSD
        tags, in one model call per batch (activations or tags are None where the model has none)."""
        explained = self.penultimate_model
        if explained is None:
            return self.predict_windows(windows, batch_size), None, None
        outputs = [[], [], []]
        for first in range(0, len(windows), batch_size):
            chunk = np.asarray(windows[first : first + batch_size], dtype=np.float32)[..., None]
            for out, value in zip(outputs, traced(explained)(chunk), strict=False):
                out.append(np.asarray(value, dtype=np.float32).reshape(len(chunk), -1))
        if not outputs[0]:
            return np.zeros((0, len(self.genres)), dtype=np.float32), None, None
        probabilities, embeddings, tags = (np.concatenate(out) if out else None for out in outputs)
        return probabilities, embeddings, tags

    def classify(self, audio: AudioSource | np.ndarray, name: str | None = None) -> Classification:
        """Classify a path, encoded bytes, or an already decoded mono 22,050 Hz array."""
        song = audio if isinstance(audio, np.ndarray) else decode(audio, name=name)
        windows, starts = cut_windows(song)
        probabilities, embeddings, tags = self.predict_with_embeddings(windows)
        return self.summarise(
            probabilities, starts, len(song) / SAMPLE_RATE, embeddings=embeddings, song=song, tags=tags
        )

    def summarise(
        self,
        probabilities: np.ndarray,
        starts: np.ndarray,
        seconds: float,
        embeddings: np.ndarray | None = None,
        song: np.ndarray | None = None,
        tags: np.ndarray | None = None,
    ) -> Classification:
        """Vote over already computed window probabilities (the live microphone adds windows
        one at a time)."""
        probabilities = np.asarray(probabilities, dtype=np.float32).reshape(-1, len(self.genres))
        if len(probabilities) == 0:
            raise ValueError("no windows to vote on")
        return Classification(
            genres=self.genres,
            probabilities=probabilities,
            starts=np.asarray(starts, dtype=np.float64),
            votes=vote_counts(probabilities),
            vote_genre=self.genres[majority_vote(probabilities)],
            mean_genre=self.genres[mean_vote(probabilities)],
            seconds=float(seconds),
            temperature=float(self.calibration["temperature"]) if self.calibration else 1.0,
            margin_threshold=self.calibration.get("margin_threshold") if self.calibration else None,
            embeddings=embeddings,
            song=None if song is None else np.asarray(song, dtype=np.float32),
            tags=tags,
        )

    def warm_up(self) -> None:
        """Run one silent window through the model so the first real request is not slow."""
        silence = np.zeros((1, self.model.input_shape[1]), dtype=np.float32)
        self.predict_windows(silence)  # the live microphone's path
        self.predict_with_embeddings(silence)  # classify's
