"""What multi-worker training costs on one host (issue 13): ``python bench/multiworker.py --data DIR``.

``fast`` trained for ``--epochs`` epochs on the stratified split, four ways, each in fresh
processes, alternated A B C D A B C D: from the song cache and from TFRecord shards, on one
process (``--strategy none``) and as two workers on 127.0.0.1 (``--strategy multi-worker``,
two replicas, the same per-replica batch, so twice the global batch and half the steps). The
figure is the training windows an epoch takes over the median of the epochs after the first
(``history.json``'s ``seconds``): on one host the two workers share its cores, so this is the
price of the strategy's collectives and of two processes, not a speed-up. Writes
``bench/results/multiworker.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genre.train.distribute import local_workers, worker_tf_config  # noqa: E402


def run(source: list[str], workers: int, epochs: int, models: Path, run_id: str) -> tuple[list[float], int]:
    """Train one run with ``workers`` local processes; its epochs' seconds and the steps of one."""
    argv = [sys.executable, "-m", "genre", "train", *source, "--model", "fast", "--epochs", str(epochs),
            "--models-dir", str(models), "--run-id", run_id]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if workers == 1:
        procs = [
            subprocess.Popen(
                [*argv, "--strategy", "none"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        ]
    else:
        hosts = local_workers(workers)
        procs = [
            subprocess.Popen(
                [*argv, "--strategy", "multi-worker"],
                env=env | {"TF_CONFIG": worker_tf_config(hosts, i)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(workers)
        ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{run_id}: exit {proc.returncode}\n{err[-2000:]}")
    history = json.loads((models / run_id / "history.json").read_text())
    steps = json.loads((models / run_id / "status.json").read_text())["batches"]
    global_batch = json.loads((models / run_id / "config.json").read_text())["distribution"]["global_batch_size"]
    return [e["seconds"] for e in history], steps * global_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder <root>/<genre>/<files>")
    parser.add_argument("--shards", default="/tmp/genre-bench-shards", help="where the shards are (written if missing)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "multiworker.json"))
    args = parser.parse_args()

    from genre.data.dataset import load_dataset
    from genre.data.pipeline import WindowSet
    from genre.data.shards import write_shards
    from genre.files import write_json

    cache = load_dataset(args.data, progress=False)
    manifest, _ = write_shards(args.data, args.shards, val_fraction=0.1, progress=False)
    windows = len(WindowSet.for_tracks(cache, manifest["split"]["train"]))
    ways = {
        "cache, one process": (["--data", args.data], 1),
        "cache, 2 workers": (["--data", args.data], 2),
        "shards, one process": (["--shards", args.shards], 1),
        "shards, 2 workers": (["--shards", args.shards], 2),
    }
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    epoch_s: dict[str, list[float]] = {name: [] for name in ways}
    fed: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="genre-bench-mw-") as scratch:
        for repeat in range(args.repeats):
            for k, (name, (source, workers)) in enumerate(ways.items()):
                seconds, slots = run(source, workers, args.epochs, Path(scratch), f"r{repeat}-{k}")
                # Whole steps of the global batch; the last one of a single process may be short.
                fed[name] = min(windows, slots)
                epoch_s[name].extend(seconds[1:])
                print(f"  {name:20s} epochs {[round(s, 2) for s in seconds]}", flush=True)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "uptime_before": uptime,
        "training_windows": windows,
        "epochs": args.epochs,
    }
    print(f"{'':20s} {'windows':>8s} {'epoch s':>8s} {'windows/s':>10s}")
    for name, seconds in epoch_s.items():
        median = statistics.median(seconds)
        results[name] = {
            "windows": fed[name],
            "epoch_s": seconds,
            "median_epoch_s": median,
            "windows_per_s": fed[name] / median,
        }
        print(f"{name:20s} {fed[name]:8d} {median:8.2f} {fed[name] / median:10.0f}", flush=True)
    results["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
