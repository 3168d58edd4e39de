"""The names of musicnn's 50 output tags, in the order of its ``tags`` layer.

Copied from ``MSD_LABELS`` in ``musicnn/configuration.py`` of the PyPI wheel ``musicnn==0.1.0``
(ISC license, Music Technology Group, Universitat Pompeu Fabra): the Million Song Dataset's 50
most frequent last.fm tags, which the MSD network (the one ``genre.musicnn`` converts) predicts.
"""

MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist",
    "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
    "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)  # fmt: skip
