"""Regenerate genre/weights/musicnn_msd.weights.h5 and its test fixture from the musicnn wheel.

    .venv/bin/python scripts/convert_musicnn.py

Downloads ``musicnn==0.1.0`` from PyPI (``pip download --no-deps``), checks the wheel's sha256,
reads the MSD_musicnn checkpoint's 64 model variables (the Adam slots are skipped) into
``genre.musicnn.build_network()``, and saves them. It then runs the original TensorFlow-1 graph
and the Keras network on one fixed generated input and writes both outputs to
``tests/fixtures/musicnn_reference.npz``, which a CI test compares (no network needed there).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genre import musicnn  # noqa: E402
from genre.files import atomic_path  # noqa: E402

WHEEL = "musicnn==0.1.0"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
FIXTURE = ROOT / "tests" / "fixtures" / "musicnn_reference.npz"
# Tensors of the original graph (found by reading its MetaGraphDef).
INPUT, IS_TRAINING = "model/Placeholder:0", "model/Placeholder_2:0"
OUTPUTS = {
    "tags": "model/Sigmoid:0",
    "penultimate": "model/batch_normalization_10/batchnorm/add_1:0",
    "max_pool": "model/Max:0",
    "mean_pool": "model/moments/Squeeze:0",
}


def fetch_wheel(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", WHEEL, "-d", str(folder)],
        check=True,
    )
    (wheel,) = folder.glob("musicnn-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: sha256 {digest} is not the recorded {WHEEL_SHA256}")
    return wheel


def fixed_input() -> np.ndarray:
    """Two windows of musicnn features of generated audio: a chord with vibrato over noise,
    and clicks on a beat; fixed by a seed so the fixture can be regenerated."""
    rng = np.random.default_rng(20191)
    t = np.arange(3 * musicnn.MUSICNN_RATE + musicnn.N_FFT) / musicnn.MUSICNN_RATE
    chord = sum(0.2 * np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5 * t)) for f in (220.0, 277.2, 329.6))
    beat = np.zeros_like(t)
    beat[:: musicnn.MUSICNN_RATE // 2] = 1.0
    beat = np.convolve(beat, np.exp(-np.arange(400) / 60.0) * rng.standard_normal(400))[: len(t)]
    songs = [chord + 0.05 * rng.standard_normal(len(t)), 0.5 * beat + 0.01 * rng.standard_normal(len(t))]
    return np.stack([musicnn.reference_features(s)[: musicnn.FRAMES] for s in songs]).astype(np.float32)


def run_original(checkpoint_dir: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((checkpoint_dir / ".meta").read_bytes())
    # The shipped graph's recorded shapes disagree with TF 2's shape inference; drop them.
    for node in meta.graph_def.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(meta, clear_devices=True)
        with tf.compat.v1.Session(graph=graph) as session:
            # The "checkpoint" file names the author's own path: restore from the prefix.
            saver.restore(session, str(checkpoint_dir) + "/")
            values = session.run(list(OUTPUTS.values()), feed_dict={INPUT: x, IS_TRAINING: False})
    return {name: np.asarray(v, dtype=np.float32).reshape(len(x), -1) for name, v in zip(OUTPUTS, values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=musicnn.WEIGHTS, help="where to write the Keras weights")
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="where to write the reference outputs")
    args = parser.parse_args()

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp, [m for m in archive.namelist() if m.startswith("musicnn/MSD_musicnn/")])
        checkpoint_dir = Path(tmp) / "musicnn" / "MSD_musicnn"
        reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint_dir) + "/")
        names = [n for n in reader.get_variable_to_shape_map() if "Adam" not in n and not n.endswith("_power")]

        model = musicnn.build_network()
        copied = musicnn.set_checkpoint_weights(model, reader.get_tensor)
        variables = sum(1 for n in names)
        print(f"{wheel.name}: sha256 ok; {variables} model variables, {copied:,} parameters copied")
        if copied != sum(int(np.prod(reader.get_tensor(n).shape)) for n in names):
            raise SystemExit("not every model variable of the checkpoint found its layer")
        args.weights.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.weights, suffix=".weights.h5") as out:
            model.save_weights(out)

        x = fixed_input()
        original = run_original(checkpoint_dir, x)
    frames, penultimate, tags = (np.asarray(v) for v in musicnn.load_network(args.weights)(x, training=False))
    mine = {"tags": tags, "penultimate": penultimate, "max_pool": frames.max(axis=1), "mean_pool": frames.mean(axis=1)}
    for name in OUTPUTS:
        print(f"{name:12s} max |keras - original| = {np.abs(mine[name] - original[name]).max():.2e}")
    args.fixture.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.fixture, suffix=".npz") as out:
        np.savez_compressed(out, input=x, **original)
    print(f"wrote {args.weights} and {args.fixture}")


if __name__ == "__main__":
    main()
