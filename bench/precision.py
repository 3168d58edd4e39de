"""float32 against mixed bfloat16 (issue 14), side by side in one process: ``python bench/precision.py``.

Every pair is measured interleaved (A B A B ..., after one warm-up call of each), so a change in
the machine's load hits both alike; figures are medians. Sections:

- ``matmul``: a 4096x4096 matrix product in each precision, the ceiling this CPU reaches through
  TensorFlow/oneDNN (the reference for "share of the machine's peak");
- ``conv``: one ``Conv1D(128, 9, dilation_rate=2)`` over (32, 22031, 128) -- the biggest layer of
  ``seed`` -- forward and backward (input and kernel gradients) in a ``tf.function``;
- ``seed`` and ``fast``: the whole network from ``genre.models.registry.build_model``, ``train_on_batch``
  on batch 32 of random 66,150-sample windows (a step's cost does not depend on the data).

Prints a table and writes ``bench/results/precision.json`` (with ``uptime`` before and after).
``--jit`` compiles the networks with XLA (``model.compile(jit_compile=True)``) instead of the
default ``jit_compile="auto"``, which is plain TensorFlow graphs on a CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genre import WINDOW  # noqa: E402
from genre.files import write_json  # noqa: E402

SECTIONS = ("matmul", "conv", "seed", "fast")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, after one warm-up each, run A B A B ... ``repeats`` times."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return times


def summary(seconds: list[float], **extra) -> dict:
    return {
        "median_s": statistics.median(seconds),
        "best_s": min(seconds),
        "runs": [round(s, 4) for s in seconds],
        **extra,
    }


def paired_speedup(times: dict[str, list[float]]) -> float:
    """Median over the interleaved pairs of (first's seconds / second's seconds)."""
    a, b = times.values()
    return statistics.median(x / y for x, y in zip(a, b))


def matmul_section(repeats: int) -> dict:
    import tensorflow as tf

    n = 4096
    rng = np.random.default_rng(0)
    a32 = tf.constant(rng.normal(size=(n, n)).astype(np.float32))
    b32 = tf.constant(rng.normal(size=(n, n)).astype(np.float32))
    a16, b16 = tf.cast(a32, tf.bfloat16), tf.cast(b32, tf.bfloat16)
    mm = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    times = interleaved(
        {"float32": lambda: mm(a32, b32).numpy(), "bfloat16": lambda: mm(a16, b16).numpy()}, repeats * 2
    )
    flop = 2 * n**3
    return {k: summary(v, gflop_per_s=flop / statistics.median(v) / 1e9) for k, v in times.items()} | {
        "speedup": paired_speedup(times)
    }


def conv_flop(batch: int, steps_in: int, c_in: int, c_out: int, kernel: int, dilation: int) -> float:
    """Forward FLOP (2 per multiply-add) of a valid Conv1D."""
    steps_out = steps_in - dilation * (kernel - 1)
    return 2.0 * batch * steps_out * c_out * c_in * kernel


def conv_section(repeats: int, batch: int, dilations: tuple[int, ...]) -> dict:
    import keras
    import tensorflow as tf

    steps = 22031  # conv2's input in seed: (66150 - 8) // 3
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, steps, 128)).astype(np.float32))
    out = {}
    for dilation in dilations:
        fns = {}
        for name, dtype in (("float32", "float32"), ("mixed bfloat16", "mixed_bfloat16")):
            layer = keras.layers.Conv1D(128, 9, dilation_rate=dilation, dtype=dtype)
            layer.build(x.shape)

            @tf.function
            def step(x, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(tf.cast(layer(x), tf.float32))
                dx, dk = tape.gradient(loss, [x, layer.kernel])
                return tf.reduce_sum(dx) + tf.reduce_sum(dk)

            fns[name] = lambda step=step: step(x).numpy()
        times = interleaved(fns, repeats)
        flop = 3 * conv_flop(batch, steps, 128, 128, 9, dilation)  # forward, input gradient, kernel gradient
        out[f"dilation {dilation}"] = {
            k: summary(v, gflop_per_s=flop / statistics.median(v) / 1e9) for k, v in times.items()
        }
        out[f"dilation {dilation}"] |= {"gflop": flop / 1e9, "speedup": paired_speedup(times)}
    return out


def seed_gflop_per_window() -> float:
    """Training FLOP per window of ``seed`` (forward + both gradients of every convolution, the
    first layer's input gradient excluded as nothing needs it); the dense layer is negligible."""
    steps, channels, total = WINDOW, 1, 0.0
    for i, (filters, kernel, dilation) in enumerate(
        [(128, 9, 1), (128, 9, 2), (64, 9, 4), (64, 9, 8), (32, 9, 16), (32, 7, 32)]
    ):
        forward = conv_flop(1, steps, channels, filters, kernel, dilation)
        total += forward * (2 if i == 0 else 3)
        steps, channels = (steps - dilation * (kernel - 1)) // 3, filters
    return total / 1e9


def network_section(model_name: str, repeats: int, batch: int, jit) -> dict:
    from genre.models.registry import build_model

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (batch, WINDOW, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    fns = {}
    for name, mixed in (("float32", False), ("mixed bfloat16", True)):
        model = build_model(model_name, 10, mixed_precision=mixed)
        model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit)
        fns[name] = lambda model=model: model.train_on_batch(x, y)
    times = interleaved(fns, repeats)
    out = {k: summary(v, windows_per_s=batch / statistics.median(v)) for k, v in times.items()}
    if model_name == "seed":
        for v in out.values():
            v["gflop_per_s"] = seed_gflop_per_window() * v["windows_per_s"]
    return out | {"speedup": paired_speedup(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=4, help="interleaved pairs per figure (median reported)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dilations", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--jit", action="store_true", help="model.compile(jit_compile=True) for the networks")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "precision.json"))
    args = parser.parse_args()

    import tensorflow as tf

    results = {
        "uptime_before": uptime(),
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        ),
        "cpu_flags": sorted(
            {f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("amx", "avx512_bf16", "avx512f"))}
        ),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on)"),
        "jit_compile": bool(args.jit),
        "batch": args.batch,
        "repeats": args.repeats,
        "seed_gflop_per_window": seed_gflop_per_window(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(
        f"{results['cpu']} ({results['cores']} cores), flags {results['cpu_flags']}; {results['uptime_before']}",
        flush=True,
    )
    if "matmul" in args.only:
        results["matmul_4096"] = matmul_section(args.repeats)
        for k, v in list(results["matmul_4096"].items())[:2]:
            print(f"  matmul 4096 {k:16s} {v['gflop_per_s']:7.0f} GFLOP/s", flush=True)
    if "conv" in args.only:
        results["conv1d_128x9"] = conv_section(args.repeats, args.batch, tuple(args.dilations))
        for d, pair in results["conv1d_128x9"].items():
            for k in ("float32", "mixed bfloat16"):
                print(
                    f"  conv1d {d:11s} {k:16s} {pair[k]['median_s']:7.2f} s {pair[k]['gflop_per_s']:7.0f} GFLOP/s",
                    flush=True,
                )
            print(f"  conv1d {d:11s} bfloat16 speedup {pair['speedup']:.2f}x (median of paired ratios)", flush=True)
    for model_name in ("seed", "fast"):
        if model_name in args.only:
            results[model_name] = network_section(
                model_name,
                args.repeats if model_name == "seed" else args.repeats * 8,
                args.batch,
                True if args.jit else "auto",
            )
            for k in ("float32", "mixed bfloat16"):
                v = results[model_name][k]
                extra = f" {v['gflop_per_s']:6.0f} GFLOP/s" if "gflop_per_s" in v else ""
                print(
                    f"  {model_name:5s} {k:16s} {v['median_s']:8.3f} s/step {v['windows_per_s']:8.1f} windows/s{extra}",
                    flush=True,
                )
            print(
                f"  {model_name:5s} bfloat16 speedup {results[model_name]['speedup']:.2f}x (median of paired ratios)",
                flush=True,
            )
    results["uptime_after"] = uptime()
    print(results["uptime_after"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
