"""A fixed map from the pretrained taggers' own tags to GTZAN's genre names.

musicnn's taggers learnt their tags from thousands of artists (the Million Song Dataset's last.fm
tags, MagnaTagATune's); GTZAN-280 gives some genres one artist. A head whose weights start at this
map and are pulled toward it, not toward zero, keeps what the taggers know of a genre beyond that
artist. Written from the tag names alone, before any run; no tag names reggae.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .musicnn import BACKBONES

GENRE_TAGS: dict[str, dict[str, list[str]]] = {
    "blues": {"MSD": ["blues"], "MTT": []},
    "classical": {
        "MSD": [],
        "MTT": ["classical", "classic", "strings", "violin", "cello", "harpsichord", "opera", "choral", "choir"],
    },
    "country": {"MSD": ["country"], "MTT": ["country"]},
    "disco": {"MSD": ["dance", "funk", "70s", "party"], "MTT": ["dance"]},
    "hiphop": {"MSD": ["Hip-Hop", "rnb"], "MTT": []},
    "jazz": {"MSD": ["jazz"], "MTT": []},
    "metal": {"MSD": ["metal", "heavy metal"], "MTT": ["metal"]},
    "pop": {"MSD": ["pop", "catchy"], "MTT": ["pop"]},
    "reggae": {"MSD": [], "MTT": []},
    "rock": {"MSD": ["rock", "classic rock", "hard rock", "alternative rock", "indie rock", "punk"], "MTT": ["rock"]},
}


def tag_prior(blocks: Sequence[str], genres: Sequence[str], widths: Sequence[int]) -> np.ndarray:
    """The map as a ``(sum(widths), len(genres))`` matrix over a feature vector made of ``blocks``
    (``"<backbone>:<part>"``, each ``widths[i]`` wide): a genre's logit is the mean of its tags'
    logits; rows of other parts, and genres the map does not name, are zero."""
    rows = []
    for block, width in zip(blocks, widths):
        backbone, part = block.split(":")
        m = np.zeros((width, len(genres)), dtype=np.float32)
        if part == "tags":
            names = BACKBONES[backbone].tags
            source = backbone.split("_")[0]
            for g, genre in enumerate(genres):
                for tag in GENRE_TAGS.get(genre, {}).get(source, []):
                    m[names.index(tag), g] = 1.0
        rows.append(m)
    prior = np.concatenate(rows)
    return prior / np.maximum(prior.sum(axis=0, keepdims=True), 1.0)
