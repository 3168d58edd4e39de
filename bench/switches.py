"""The libraries' own switches for ``seed``'s training step (issue 14): ``python bench/switches.py``.

None changes the network (same layers, shapes, weights, recipe). Two kinds of comparison:

- in one process, interleaved: ``model.compile(jit_compile=...)`` -- Keras's default ``"auto"``
  (plain TensorFlow graphs on a CPU) against XLA (``True``), in float32 and mixed bfloat16; and,
  in mixed bfloat16, the Dropout layers in float32 (as built) against the model's own policy;
- settings that must be fixed before TensorFlow starts (``TF_ENABLE_ONEDNN_OPTS``, the thread
  pools of ``tf.config.threading``): fresh worker processes, the variants alternated A B A B so a
  change in the machine's load hits all of them alike.

Seconds per ``train_on_batch`` step at batch 32, medians. Writes ``bench/results/switches.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from precision import interleaved  # noqa: E402  (bench/, this script's folder, is on sys.path)

VARIANTS = {  # name: (environment, intra-op threads, inter-op threads, precisions); 0 = TensorFlow's choice
    "default": ({}, 0, 0, None),
    # Without oneDNN a bfloat16 step takes about 25x longer (Eigen emulates it): float32 only.
    "TF_ENABLE_ONEDNN_OPTS=0": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, 0, 0, ["float32"]),
    "intra 2, inter 1": ({}, 2, 1, None),
    "intra 1, inter 1": ({}, 1, 1, None),
    # glibc maps every allocation over 32 MiB afresh, so each step faults in its big activations
    # page by page; this asks it for transparent huge pages there (the kernel's THP is "madvise").
    "GLIBC_TUNABLES=glibc.malloc.hugetlb=1": ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, 0, 0, None),
}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def steps(mixed: bool, jit, batch: int, dropout_dtype: str | None = None):
    from genre import WINDOW
    from genre.models.registry import build_model

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (batch, WINDOW, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    model = build_model("seed", 10, mixed_precision=mixed)
    if dropout_dtype:
        # Dropout given no dtype keeps the float32 policy under mixed precision: bfloat16 in,
        # a cast to float32, dropout, and a cast back in the next Conv1D. The same network with
        # its Dropout layers in the model's policy skips both casts.
        import keras

        config = model.get_config()
        for layer in config["layers"]:
            if layer["class_name"] == "Dropout":
                layer["config"]["dtype"] = dropout_dtype
        model = keras.Model.from_config(config)
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit)
    return lambda: model.train_on_batch(x, y)


def worker(args) -> None:
    import tensorflow as tf

    if args.intra:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    import resource

    fns = {p: steps(p == "mixed bfloat16", "auto", args.batch) for p in args.precisions}
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = interleaved(fns, args.repeats)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(json.dumps({**times, "minor_faults_per_step": faults / (len(fns) * (args.repeats + 1))}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="A B A B rounds of worker processes")
    parser.add_argument(
        "--only", nargs="+", choices=("jit", "dropout", "processes"), default=["jit", "dropout", "processes"]
    )
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed bfloat16"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--intra", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--inter", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "switches.json"))
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from genre.files import write_json

    results = {"batch": args.batch, "uptime_before": uptime(), "date": time.strftime("%Y-%m-%d %H:%M")}
    print(results["uptime_before"], flush=True)
    previous = Path(args.out)
    if previous.is_file():  # a section not rerun keeps its figures
        results = json.loads(previous.read_text()) | results
    if "jit" in args.only:
        fns = {
            f"{p}, jit_compile={jit}": steps(p == "mixed bfloat16", jit, args.batch)
            for p in args.precisions
            for jit in ("auto", True)
        }
        times = interleaved(fns, args.repeats)
        results["jit_compile"] = {k: {"median_s": statistics.median(v), "runs": v} for k, v in times.items()}
        for k, v in results["jit_compile"].items():
            print(f"  {k:36s} {v['median_s']:7.3f} s/step {args.batch / v['median_s']:6.1f} windows/s", flush=True)
    if "dropout" in args.only:
        fns = {
            "mixed bfloat16": steps(True, "auto", args.batch),
            "mixed bfloat16, Dropout in mixed bfloat16": steps(True, "auto", args.batch, "mixed_bfloat16"),
        }
        times = interleaved(fns, args.repeats + 1)
        results["dropout_policy"] = {k: {"median_s": statistics.median(v), "runs": v} for k, v in times.items()}
        for k, v in results["dropout_policy"].items():
            print(f"  {k:44s} {v['median_s']:7.3f} s/step {args.batch / v['median_s']:6.1f} windows/s", flush=True)
    if "processes" in args.only:
        runs: dict[str, dict[str, list[float]]] = {name: {p: [] for p in args.precisions} for name in VARIANTS}
        faults: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, (env, intra, inter, precisions) in VARIANTS.items():
                precisions = [p for p in args.precisions if precisions is None or p in precisions]
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--batch",
                    str(args.batch),
                    "--repeats",
                    str(args.repeats),
                    "--intra",
                    str(intra),
                    "--inter",
                    str(inter),
                    "--precisions",
                    *precisions,
                ]
                out = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                faults.setdefault(name, []).append(measured.pop("minor_faults_per_step"))
                for p, seconds in measured.items():
                    runs[name][p] += seconds
                print(
                    f"  ({name}: {', '.join(f'{p} {statistics.median(s):.3f} s' for p, s in runs[name].items() if s)})",
                    flush=True,
                )
        results["processes"] = {
            name: {p: {"median_s": statistics.median(s), "runs": s} for p, s in v.items() if s}
            for name, v in runs.items()
        }
        results["minor_page_faults_per_step"] = {name: statistics.median(f) for name, f in faults.items()}
        for name, v in results["processes"].items():
            print(
                f"  {name:38s} {results['minor_page_faults_per_step'][name]:9.0f} faults/step "
                + "  ".join(
                    f"{p} {r['median_s']:7.3f} s/step ({args.batch / r['median_s']:5.1f}/s)" for p, r in v.items()
                ),
                flush=True,
            )
    results["uptime_after"] = uptime()
    print(results["uptime_after"])
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
