"""Epoch time of ``seed`` and ``fast`` on a GPU host, one device against mirrored (issue 13):
``python bench/gpu_check.py``.

Full-size synthetic data: an epoch is the training part of full GTZAN's stratified split
(720 songs x 10 windows = 7,200 windows of 66,150 samples), batch 32 per replica, drawn from a
pool of random windows (a step's cost does not depend on the data). Each configuration trains
one warm-up epoch (tracing, compiling, autotuning) and then ``--epochs`` timed ones; no
validation. Configurations: each model in float32 and mixed bfloat16, on one device and, with
TensorFlow, under ``MirroredStrategy`` over every visible GPU (with one GPU that measures the
strategy's own overhead). The table gives seconds an epoch, windows a second, and the recipe's
epochs of full GTZAN at that rate. On a GPU it takes under 5 minutes.

``--backend jax`` runs the same Keras models on JAX, one device only, for a machine with a GPU
and JAX but no TensorFlow (``tf.distribute`` is TensorFlow's). ``--windows`` shrinks the epoch
(the tests run it on a CPU). Writes ``--out`` (default ``bench/results/gpu_check.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FULL_GTZAN_TRAIN_WINDOWS = 720 * 10  # 1,000 songs: 200 test, 80 validation, 720 training
POOL = 256  # distinct random windows the batches are drawn from


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--models", nargs="+", default=["seed", "fast"])
    parser.add_argument("--precisions", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    parser.add_argument("--strategies", nargs="+", choices=("none", "mirrored"), default=["none", "mirrored"])
    parser.add_argument("--windows", type=int, default=FULL_GTZAN_TRAIN_WINDOWS, help="windows an epoch")
    parser.add_argument("--batch-size", type=int, default=32, help="per replica")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after one warm-up epoch")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "gpu_check.json"))
    args = parser.parse_args(argv)
    # Before genre is imported: it defaults the backend to TensorFlow.
    os.environ["KERAS_BACKEND"] = args.backend
    strategies = args.strategies if args.backend == "tensorflow" else ["none"]

    import keras
    import numpy as np

    from genre import WINDOW
    from genre.files import write_json
    from genre.models.registry import get_spec

    rng = np.random.default_rng(0)
    pool = (0.1 * rng.standard_normal((POOL, WINDOW, 1))).astype(np.float32)
    pool_labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, POOL)]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "backend": args.backend,
        "keras": keras.__version__,
        "host": platform.node(),
        "devices": devices(args.backend),
        "windows_per_epoch": args.windows,
        "batch_size_per_replica": args.batch_size,
        "rows": [],
    }
    print(f"{args.backend} (Keras {keras.__version__}) on {', '.join(results['devices']) or 'no GPU'}", flush=True)
    print(
        f"{'model':6s} {'precision':9s} {'strategy':8s} {'replicas':>8s} {'epoch s':>8s} {'windows/s':>10s} "
        f"{'recipe epochs':>13s} {'recipe h':>8s}",
        flush=True,
    )
    for name in args.models:
        recipe_epochs = get_spec(name).epochs
        for precision in args.precisions:
            for strategy in strategies:
                replicas, seconds = time_epochs(
                    args.backend,
                    strategy,
                    name,
                    precision == "bfloat16",
                    pool,
                    pool_labels,
                    args.windows,
                    args.batch_size,
                    args.epochs,
                )
                epoch_s = statistics.median(seconds)
                row = {
                    "model": name,
                    "precision": precision,
                    "strategy": strategy,
                    "replicas": replicas,
                    "epoch_s": seconds,
                    "median_epoch_s": epoch_s,
                    "windows_per_s": args.windows / epoch_s,
                    "recipe_epochs": recipe_epochs,
                    "recipe_hours": epoch_s * recipe_epochs * FULL_GTZAN_TRAIN_WINDOWS / args.windows / 3600,
                }
                results["rows"].append(row)
                print(
                    f"{name:6s} {precision:9s} {strategy:8s} {replicas:8d} {epoch_s:8.2f} {row['windows_per_s']:10.0f}"
                    f" {recipe_epochs:13d} {row['recipe_hours']:8.3f}",
                    flush=True,
                )
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return results


def time_epochs(
    backend: str, strategy: str, name: str, bf16: bool, pool, pool_labels, windows: int, batch: int, epochs: int
) -> tuple[int, list[float]]:
    """Seconds of each timed epoch of ``name`` trained on ``windows`` pool windows an epoch."""
    import keras

    from genre.models.registry import build_model

    keras.utils.set_random_seed(1)
    if strategy == "mirrored":
        import tensorflow as tf

        scope = tf.distribute.MirroredStrategy()
        replicas = scope.num_replicas_in_sync
        context = scope.scope()
    else:
        from contextlib import nullcontext

        replicas, context = 1, nullcontext()
    global_batch = batch * replicas
    with context:
        model = build_model(name, 10, mixed_precision=bf16, synchronized=replicas > 1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    timer = epoch_timer()
    model.fit(
        batches(backend, pool, pool_labels, windows, global_batch), epochs=1 + epochs, callbacks=[timer], verbose=0
    )
    keras.backend.clear_session()
    return replicas, timer.seconds[1:]


def batches(backend: str, pool, pool_labels, windows: int, batch: int):
    """One epoch of ``windows`` pool windows a pass, in batches of ``batch``: a ``tf.data``
    pipeline with TensorFlow (the training's own kind), a ``PyDataset`` with JAX."""
    import numpy as np

    steps = -(-windows // batch)
    if backend == "tensorflow":
        import tensorflow as tf

        x, y = tf.constant(pool), tf.constant(pool_labels)
        rows = tf.data.Dataset.range(windows).map(lambda i: (x[i % len(pool)], y[i % len(pool)]))
        return rows.batch(batch).prefetch(tf.data.AUTOTUNE)

    import keras

    class Pool(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int):
            rows = np.arange(index * batch, min(windows, (index + 1) * batch)) % len(pool)
            return pool[rows], pool_labels[rows]

    return Pool()


def devices(backend: str) -> list[str]:
    """The GPUs the backend sees, by name."""
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    return [
        tf.config.experimental.get_device_details(d).get("device_name", d.name)
        for d in tf.config.list_physical_devices("GPU")
    ]


def epoch_timer():
    """A Keras callback that keeps each epoch's wall seconds (built once Keras is loaded)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall seconds of each epoch."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._started)

    return EpochTimer()


if __name__ == "__main__":
    main()
