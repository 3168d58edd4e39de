"""Where a training step of ``seed`` spends its time, layer by layer, float32 against mixed
bfloat16 (issue 14): ``python bench/profile_seed.py``.

Each layer runs alone in a ``tf.function``: forward on the activation it sees in the network
(training=True, so dropout drops), then backward from a fixed upstream gradient to its input and
its weights -- what the layer costs inside ``train_on_batch``. Under mixed bfloat16 the Dropout
layers keep the float32 policy (Keras's default for a layer given no dtype), so their time
includes the casts bfloat16 -> float32 and, in the next Conv1D, back. Also timed: Adam's update
of the 288,142 weights, and the whole ``train_on_batch`` step for comparison with the sum.
All in one process, float32 and bfloat16 interleaved per item; medians. Writes
``bench/results/profile_seed.json``.
"""

from __future__ import annotations

import argparse
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

PRECISIONS = (("float32", False), ("mixed bfloat16", True))


def layer_steps(model, x):
    """{layer name: a function running that layer's forward + backward once}, on the real activations."""
    import tensorflow as tf

    steps = {}
    activation = tf.constant(x)
    rng = np.random.default_rng(1)
    for layer in model.layers[1:]:
        inputs = activation
        out = layer(inputs, training=False)
        upstream = tf.cast(tf.constant(rng.normal(0, 1e-3, out.shape).astype(np.float32)), out.dtype)
        weights = layer.trainable_weights

        @tf.function
        def step(inputs, upstream, layer=layer, weights=weights):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                y = layer(inputs, training=True)
            grads = tape.gradient(y, [inputs, *weights], output_gradients=upstream)
            return [tf.reduce_sum(tf.cast(g[:1], tf.float32)) for g in grads if g is not None]

        steps[layer.name] = lambda step=step, inputs=inputs, upstream=upstream: [
            t.numpy() for t in step(inputs, upstream)
        ]
        activation = out
    return steps


def optimizer_step(model):
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(1e-3)
    grads = [tf.constant(np.full(v.shape, 1e-3, np.float32)) for v in model.trainable_variables]
    optimizer.build(model.trainable_variables)

    @tf.function
    def apply():
        optimizer.apply(grads, model.trainable_variables)

    return lambda: apply()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "profile_seed.json"))
    args = parser.parse_args()
    import tensorflow as tf

    from genre.models.registry import build_model

    tf.get_logger().setLevel("ERROR")  # one tf.function per layer: the retracing warning is expected

    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(uptime_before, flush=True)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (args.batch, WINDOW, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.batch)]
    items: dict[str, dict[str, callable]] = {}
    for precision, mixed in PRECISIONS:
        model = build_model("seed", 10, mixed_precision=mixed)
        for name, fn in layer_steps(model, x).items():
            items.setdefault(name, {})[precision] = fn
        items.setdefault("adam update", {})[precision] = optimizer_step(model)
        whole = build_model("seed", 10, mixed_precision=mixed)
        whole.compile(optimizer="adam", loss="categorical_crossentropy")
        items.setdefault("whole train_on_batch", {})[precision] = lambda whole=whole: whole.train_on_batch(x, y)

    table = {}
    for name, fns in items.items():
        for fn in fns.values():
            fn()  # trace
        times = {p: [] for p in fns}
        for _ in range(args.repeats):
            for p, fn in fns.items():
                started = time.perf_counter()
                fn()
                times[p].append(time.perf_counter() - started)
        table[name] = {p: statistics.median(t) for p, t in times.items()}
        print(f"  {name:22s} " + "  ".join(f"{p} {s * 1000:8.1f} ms" for p, s in table[name].items()), flush=True)
    sums = {p: sum(v[p] for k, v in table.items() if k != "whole train_on_batch") for p, _ in PRECISIONS}
    print("  sum of the parts      " + "  ".join(f"{p} {s * 1000:8.1f} ms" for p, s in sums.items()))
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(uptime_after)
    write_json(
        args.out,
        {
            "batch": args.batch,
            "repeats": args.repeats,
            "uptime_before": uptime_before,
            "uptime_after": uptime_after,
            "seconds": table,
            "sum_of_parts_s": sums,
            "date": time.strftime("%Y-%m-%d %H:%M"),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
