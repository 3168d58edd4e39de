"""From window probabilities to a song's genre."""

from __future__ import annotations

import numpy as np


def vote_counts(probabilities: np.ndarray) -> np.ndarray:
    """How many windows pick each genre (argmax per window)."""
    probabilities = np.asarray(probabilities)
    return np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])


def majority_vote(probabilities: np.ndarray) -> int:
    """The report's song decision: the genre most windows pick; a tie goes to the tied genre
    with the highest mean probability."""
    probabilities = np.asarray(probabilities)
    counts = vote_counts(probabilities)
    tied = np.flatnonzero(counts == counts.max())
    return int(tied[np.argmax(probabilities.mean(axis=0)[tied])])


def mean_vote(probabilities: np.ndarray) -> int:
    """The genre with the highest probability averaged over windows."""
    return int(np.asarray(probabilities).mean(axis=0).argmax())
