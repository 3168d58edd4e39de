"""Windows per second of the two input pipelines (issue 13): ``python bench/pipelines.py --data DIR``.

The memory-mapped song cache (``WindowSet.dataset``, the default) against TFRecord shards
(``genre.data.shards.shard_dataset``: list_files -> interleave -> parse -> windows cut in the graph
-> shuffle -> batch -> prefetch), both reading the training part of the stratified split,
shuffled, batch 32, no model: the figure is what each pipeline can feed; plain, and with the
training augmentation (random shift and colour: NumPy in the cache's generator, the graph's
``colour_graph`` in the shards').
One full pass of each, alternated A B C D A B C D, medians. The shards are written into ``--shards``
first (once; a later run reuses them). Writes ``bench/results/pipelines.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def one_pass(dataset) -> tuple[int, float]:
    started = time.perf_counter()
    windows = sum(int(x.shape[0]) for x, _ in dataset)
    return windows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder <root>/<genre>/<files>")
    parser.add_argument("--shards", default="/tmp/genre-bench-shards", help="where the shards are written")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "pipelines.json"))
    args = parser.parse_args()

    from genre.data.dataset import load_dataset
    from genre.data.pipeline import WindowSet
    from genre.data.shards import shard_dataset, write_shards
    from genre.files import write_json

    cache = load_dataset(args.data, progress=False)
    manifest, _ = write_shards(args.data, args.shards, val_fraction=0.1, progress=False)
    train = manifest["split"]["train"]
    n_genres = len(cache.genres)
    pipelines = {
        "memory-mapped cache": lambda: WindowSet.for_tracks(cache, train).dataset(n_genres, 32, shuffle=True, seed=1),
        "TFRecord shards": lambda: shard_dataset(args.shards, "train", n_genres, 32, shuffle=True, seed=1),
        "cache, augmented": lambda: WindowSet.for_tracks(cache, train).dataset(
            n_genres, 32, shuffle=True, augment=True, seed=1
        ),
        "shards, augmented": lambda: shard_dataset(
            args.shards, "train", n_genres, 32, shuffle=True, augment=True, seed=1
        ),
    }
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    seconds: dict[str, list[float]] = {name: [] for name in pipelines}
    windows: dict[str, int] = {}
    for make in pipelines.values():  # warm-up: trace, open files
        one_pass(make())
    for _ in range(args.passes):
        for name, make in pipelines.items():
            windows[name], took = one_pass(make())
            seconds[name].append(took)
    results = {"uptime_before": uptime, "date": time.strftime("%Y-%m-%d %H:%M"), "training_songs": len(train)}
    for name in pipelines:
        median = statistics.median(seconds[name])
        results[name] = {
            "windows": windows[name],
            "median_s": median,
            "windows_per_s": windows[name] / median,
            "runs": seconds[name],
        }
        print(
            f"  {name:22s} {windows[name]} windows  {median:6.2f} s a pass  {windows[name] / median:8.0f} windows/s",
            flush=True,
        )
    results["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
