"""Synthetic music for tests: a few "genres" of clearly different signals. No real audio is
ever used in tests."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22_050
GENRES = ("drones", "noise", "clicks")


def song(genre: str, seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """One synthetic song of ``genre``: ``drones`` are sustained low chords, ``noise`` is
    bright hiss in bursts, ``clicks`` is a steady beat of short clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    if genre == "drones":
        base = rng.uniform(90, 160)
        y = sum(np.sin(2 * np.pi * base * ratio * t + rng.uniform(0, 6)) for ratio in (1, 1.25, 1.5))
        y = y / 3
    elif genre == "noise":
        y = rng.normal(0, 1, t.size)
        y = np.diff(y, prepend=0)  # tilt towards high frequencies
        y *= 0.6 + 0.4 * (np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) > 0)
        y /= np.abs(y).max()
    elif genre == "clicks":
        y = np.zeros(t.size)
        period = int(sr * 60 / rng.uniform(100, 140))
        click = np.sin(2 * np.pi * 2000 * np.arange(300) / sr) * np.exp(-np.arange(300) / 40)
        for start in range(int(rng.integers(0, period)), t.size - 300, period):
            y[start : start + 300] += click
    else:
        raise ValueError(genre)
    return (0.5 * y / max(np.abs(y).max(), 1e-9)).astype(np.float32)


def make_dataset(root: Path, genres=GENRES, songs: int = 6, fmt: str = "wav", seed: int = 0) -> Path:
    """Write ``songs`` songs of 6-9 s per genre as ``root/<genre>/<genre>.000NN.<fmt>``."""
    rng = np.random.default_rng(seed)
    for g, genre in enumerate(genres):
        (root / genre).mkdir(parents=True, exist_ok=True)
        for n in range(songs):
            seconds = float(rng.uniform(6, 9))
            sf.write(root / genre / f"{genre}.{n:05d}.{fmt}", song(genre, seconds, seed * 1000 + g * 100 + n), SR)
    return root


def write(path: Path, audio: np.ndarray, sr: int = SR, **kwargs) -> Path:
    sf.write(path, audio, sr, **kwargs)
    return path


def tiny_gtzan(tmp_path: Path) -> tuple[str, str]:
    """A GTZAN-shaped archive (genres/<genre>/<file>.wav) as a file:// URL and its md5."""
    data = make_dataset(tmp_path / "src", genres=("drones", "clicks"), songs=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(data, arcname="genres")
    archive = tmp_path / "genres.tar.gz"
    archive.write_bytes(buffer.getvalue())
    return archive.as_uri(), hashlib.md5(buffer.getvalue()).hexdigest()
