"""Short clips and song tails: looping a clip to fill its window against padding it with zeros.

    .venv/bin/python bench/short_clips.py [--run models/transfer-stratified] [--data DIR] [--seconds 2 4.5]

For every test song of the run, an excerpt of each length is cut from the middle of the song and
classified one song at a time, as Classify serves it: once with ``genre.audio.windows`` (a clip shorter
than a window is looped, a last window ends at the clip's end) and once with the zero padding
that ``genre.audio.windows`` used before (issue 21). Prints song accuracy for both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genre import SAMPLE_RATE, WINDOW  # noqa: E402
from genre.audio.decode import decode  # noqa: E402
from genre.audio.windows import cut_windows  # noqa: E402
from genre.data.dataset import track_path  # noqa: E402
from genre.files import read_json  # noqa: E402
from genre.serve.prediction import Classifier  # noqa: E402


def padded_windows(clip: np.ndarray) -> np.ndarray:
    """The old rule: windows from 0 every 3 s, a tail of half a window or more (or a clip
    shorter than a window) zero-padded."""
    starts = range(0, max(len(clip) - WINDOW // 2, 1), WINDOW)
    return np.stack([np.pad(clip[s : s + WINDOW], (0, max(0, WINDOW - len(clip[s : s + WINDOW])))) for s in starts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(REPO / "models" / "transfer-stratified"))
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "gtzan"))
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 4.5])
    args = parser.parse_args()

    classifier = Classifier.load(args.run)
    test = read_json(Path(args.run) / "split.json")["test"]
    right = {(s, rule): 0 for s in args.seconds for rule in ("looped", "padded")}
    for track_id in test:
        song = decode(track_path(args.data, track_id))
        truth = track_id.split("/")[0]
        for seconds in args.seconds:
            n = int(seconds * SAMPLE_RATE)
            middle = len(song) // 2
            clip = song[middle - n // 2 : middle - n // 2 + n]
            for rule, windows in (("looped", cut_windows(clip)[0]), ("padded", padded_windows(clip))):
                p = classifier.predict_windows(windows)
                vote = classifier.summarise(p, np.zeros(len(p)), seconds).vote_genre
                right[seconds, rule] += vote == truth
    print(f"{Path(args.run).name}: {len(test)} test songs, one excerpt from the middle of each")
    print(f"{'excerpt':>8}  {'looped / ends at the end':>24}  {'zero-padded (before)':>20}")
    for seconds in args.seconds:
        looped, padded = (100 * right[seconds, r] / len(test) for r in ("looped", "padded"))
        print(f"{seconds:>7.1f}s  {looped:>23.1f}%  {padded:>19.1f}%")


if __name__ == "__main__":
    main()
