"""Benchmarks of issue 3, run by one command: ``python bench/run.py``.

Prints a table and writes ``bench/results.json``. Every figure is the median of several runs,
and figures that are compared (seed float32 vs mixed bfloat16 vs fast; our classify path vs
the founding report's) are measured side by side in this one process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genre import WINDOW  # noqa: E402
from genre.files import write_json  # noqa: E402


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def training_throughput(batch: int, repeats: int) -> dict:
    """Windows per second of one training step, per model and precision, on random windows (the
    step's cost does not depend on the data). The four steps run interleaved, one after another in
    each round, so a change in the machine's load hits them alike: this section once measured them
    one after another and saw bfloat16 "1.05x" faster while other work came and went
    (bench/precision.py holds the full comparison)."""
    from genre.models.registry import build_model

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (batch, WINDOW, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    steps = {}
    for name, model_name, mixed in (
        ("seed float32", "seed", False),
        ("seed mixed bfloat16", "seed", True),
        ("fast float32", "fast", False),
        ("fast mixed bfloat16", "fast", True),
    ):
        model = build_model(model_name, 10, mixed_precision=mixed)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.train_on_batch(x, y)  # trace and compile
        steps[name] = (model, 1 if model_name == "seed" else 4)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, (model, calls) in steps.items():
            seconds[name] += timed(lambda model=model: model.train_on_batch(x, y), calls)
    results = {}
    for name, runs in seconds.items():
        results[name] = {
            "windows_per_s": batch / statistics.median(runs),
            "step_s": statistics.median(runs),
            "runs": len(runs),
        }
        print(f"  train {name:22s} {results[name]['windows_per_s']:8.1f} windows/s", flush=True)
    return results


def classify_latency(audio_path: Path, runs: dict[str, Path], repeats: int) -> dict:
    """End-to-end classify of one file, warm: ours (decode, windows, direct model calls, vote)
    against the report's path (librosa.load, pad to 3 s, model.predict, scipy mode)."""
    import librosa
    from scipy import stats

    from genre.serve.prediction import Classifier

    results = {}
    for name, run_dir in runs.items():
        classifier = Classifier.load(run_dir)
        model = classifier.model

        def ours(classifier=classifier):
            return classifier.classify(audio_path).vote_genre

        def report(model=model):
            y, _ = librosa.load(str(audio_path), sr=22050)
            y = np.pad(y, (0, -len(y) % WINDOW))  # the report padded every song to a multiple of 3 s
            p = model.predict(y.reshape(-1, WINDOW, 1), verbose=0)
            return int(stats.mode(p.argmax(axis=1), keepdims=False).mode)

        ours(), report()  # warm both paths
        ours_s, report_s = [], []
        for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
            ours_s += timed(ours, 1)
            report_s += timed(report, 1)
        results[name] = {
            "ours_s": statistics.median(ours_s),
            "report_path_s": statistics.median(report_s),
            "runs": repeats,
        }
        print(
            f"  classify 30 s {name:6s} ours {results[name]['ours_s']:.3f} s, report's path "
            f"{results[name]['report_path_s']:.3f} s",
            flush=True,
        )
    return results


def cache_times(data_root: Path, repeats: int) -> dict:
    from genre.data.dataset import load_dataset

    builds, reloads = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            builds += timed(lambda: load_dataset(data_root, cache_root=tmp, progress=False), 1)
            # A reload maps the file and touches every song, as training's first epoch would.
            reloads += timed(
                lambda: [
                    float(c.song(i)[::4096].sum())
                    for c in [load_dataset(data_root, cache_root=tmp, progress=False)]
                    for i in range(len(c))
                ],
                1,
            )
    out = {"build_s": statistics.median(builds), "reload_s": statistics.median(reloads), "runs": repeats}
    print(f"  cache build {out['build_s']:.2f} s, reload {out['reload_s']:.3f} s", flush=True)
    return out


# VmHWM, not getrusage: Linux carries ru_maxrss across fork+exec, so a child would report the
# benchmark process's own peak.
PEAK_FN = """
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""
PEAK_TRAIN = """
import sys, numpy as np
sys.path.insert(0, {repo!r})
{peak}
from genre.train.training import TrainConfig, train
config = TrainConfig(data_root={data!r}, model="fast", epochs=4, models_dir={models!r}, run_id="peak")
run = train(config, progress=False)
from genre.files import read_json
print(sorted(e["seconds"] for e in read_json(run / "history.json")[1:])[1])  # median epoch after the first (tracing)
print(peak_kib())
"""
PEAK_SEED_STEP = """
import sys, numpy as np
sys.path.insert(0, {repo!r})
{peak}
from genre.models.registry import build_model
m = build_model("seed", 10); m.compile(optimizer="adam", loss="categorical_crossentropy")
x = np.random.default_rng(0).normal(0, .1, (32, 66150, 1)).astype("float32")
y = np.eye(10, dtype="float32")[np.arange(32) % 10]
for _ in range(2): m.train_on_batch(x, y)
print(peak_kib())
"""
PEAK_CLASSIFY = """
import sys
sys.path.insert(0, {repo!r})
{peak}
from genre.serve.prediction import Classifier
c = Classifier.load({run!r}); c.warm_up(); c.classify({audio!r})
print(peak_kib())
"""


def run_script(script: str, **values) -> list[str]:
    """Run ``script`` in a fresh process; its printed lines (the last is its peak RSS in KiB)."""
    code = script.format(repo=str(REPO), peak=PEAK_FN, **values)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def peak_memory(script: str, **values) -> float:
    """Peak resident memory (MiB) of a fresh process running ``script``."""
    return int(run_script(script, **values)[-1]) / 1024


def machine() -> dict:
    import tensorflow as tf

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


SECTIONS = ("throughput", "classify", "cache", "epoch-memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "gtzan"), help="GTZAN-280 folder")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (the median is reported)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="run only these sections (others keep their figures in --out)",
    )
    args = parser.parse_args()
    data = Path(args.data)
    models = Path(args.models_dir)
    audio = next(iter(sorted(data.glob("blues/*.ogg"))), None) if data.is_dir() else None
    if audio is None:
        sys.exit(f"bench: no GTZAN tracks in {data}; pass --data")
    runs = {
        name: models / f"{name}-stratified"
        for name in ("fast", "seed", "transfer", "taggers", "taggers-tags")
        if (models / f"{name}-stratified" / "model.keras").is_file()
    }

    print(f"benchmarks on {machine()['cpu']} ({os.cpu_count()} cores); {args.repeats} runs per figure, medians")
    results = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    results.update({"machine": machine(), "repeats": args.repeats})
    if "throughput" in args.only:
        results["training_throughput_batch32"] = training_throughput(32, max(3, args.repeats // 2))
    if "classify" in args.only:
        results["classify_30s"] = classify_latency(audio, runs, args.repeats)
    if "cache" in args.only:
        results["cache_gtzan280"] = cache_times(data, max(3, args.repeats // 2))
    with tempfile.TemporaryDirectory() as tmp:
        if "epoch-memory" not in args.only:
            write_json(args.out, results)
            return
        os.environ["GENRE_CACHE_DIR"] = tmp
        epoch_s, train_kib = run_script(PEAK_TRAIN, data=str(data), models=tmp)[-2:]
        results["fast_epoch_gtzan280_s"] = float(epoch_s)
        print(f"  fast: one epoch over GTZAN-280 (train part, with validation) {float(epoch_s):.2f} s", flush=True)
        results["peak_memory_mib"] = {
            "train fast (GTZAN-280, incl. cache build)": int(train_kib) / 1024,
            "train seed (steps of batch 32)": peak_memory(PEAK_SEED_STEP),
            **{
                f"classify 30 s ({name})": peak_memory(PEAK_CLASSIFY, run=str(run), audio=str(audio))
                for name, run in runs.items()
            },
        }
    for name, mib in results["peak_memory_mib"].items():
        print(f"  peak memory {name:34s} {mib:7.0f} MiB")
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
