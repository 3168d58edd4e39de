"""Regenerate the four pretrained taggers in genre/models/weights/ and their test fixtures from the musicnn wheel.

    .venv/bin/python scripts/convert_musicnn.py [--backbone MSD_musicnn MTT_vgg ...]

Downloads ``musicnn==0.1.0`` from PyPI (``pip download --no-deps``), checks the wheel's sha256,
reads each checkpoint's model variables (64 for musicnn, 36 for vgg; the Adam slots are skipped)
into ``genre.models.musicnn.build_backbone()``, and saves them to ``genre.models.musicnn.BACKBONES[name].weights``.
It then runs the original TensorFlow-1 graph and the Keras network on one fixed generated input
and writes the original's outputs to ``tests/fixtures/<name>_reference.npz`` (MSD_musicnn's keeps
its first name, ``musicnn_reference.npz``), which a CI test compares (no network needed there).
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

from genre.files import atomic_path  # noqa: E402 (after the sys.path line above)
from genre.models import musicnn  # noqa: E402

WHEEL = "musicnn==0.1.0"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
FIXTURES = ROOT / "tests" / "fixtures"
# Tensors of the original graphs (found by reading their MetaGraphDefs).
INPUT, IS_TRAINING = "model/Placeholder:0", "model/Placeholder_2:0"
OUTPUTS = {
    "musicnn": {
        "tags": "model/Sigmoid:0",
        "penultimate": "model/batch_normalization_10/batchnorm/add_1:0",
        "max_pool": "model/Max:0",
        "mean_pool": "model/moments/Squeeze:0",
    },
    "vgg": {
        "tags": "model/Sigmoid:0",
        "pool4": "model/max_pooling2d_3/MaxPool:0",
        "pool5": "model/Flatten/flatten/Reshape:0",
    },
}


def fixture_path(backbone: str) -> Path:
    return FIXTURES / ("musicnn_reference.npz" if backbone == "MSD_musicnn" else f"{backbone}_reference.npz")


def fetch_wheel(folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            WHEEL,
            "-d",
            str(folder),
        ],
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


def run_original(checkpoint_dir: Path, x: np.ndarray, outputs: dict[str, str]) -> dict[str, np.ndarray]:
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
            values = session.run(list(outputs.values()), feed_dict={INPUT: x, IS_TRAINING: False})
    return {name: np.asarray(v, dtype=np.float32).reshape(len(x), -1) for name, v in zip(outputs, values)}


def keras_outputs(backbone: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """The converted network's outputs under the names of :data:`OUTPUTS`, flattened per input."""
    outs = [np.asarray(v) for v in musicnn.load_backbone(backbone)(x, training=False)]
    if musicnn.BACKBONES[backbone].architecture == "vgg":
        pool4, pool5, tags = outs
        return {"tags": tags, "pool4": pool4.reshape(len(x), -1), "pool5": pool5}
    frames, penultimate, tags = outs
    return {"tags": tags, "penultimate": penultimate, "max_pool": frames.max(axis=1), "mean_pool": frames.mean(axis=1)}


def convert(wheel: Path, tmp: Path, backbone: str) -> None:
    import tensorflow as tf

    spec = musicnn.BACKBONES[backbone]
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp, [m for m in archive.namelist() if m.startswith(f"musicnn/{backbone}/")])
    checkpoint_dir = tmp / "musicnn" / backbone
    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint_dir) + "/")
    names = [n for n in reader.get_variable_to_shape_map() if "Adam" not in n and not n.endswith("_power")]

    model = musicnn.build_backbone(backbone)
    copied = musicnn.set_backbone_weights(model, backbone, reader.get_tensor)
    print(f"{backbone}: {len(names)} model variables, {copied:,} parameters copied")
    if copied != sum(int(np.prod(reader.get_tensor(n).shape)) for n in names):
        raise SystemExit(f"{backbone}: not every model variable of the checkpoint found its layer")
    spec.weights.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(spec.weights, suffix=".weights.h5") as out:
        model.save_weights(out)

    x = fixed_input()
    outputs = OUTPUTS[spec.architecture]
    original = run_original(checkpoint_dir, x, outputs)
    mine = keras_outputs(backbone, x)
    for name in outputs:
        print(f"  {name:12s} max |keras - original| = {np.abs(mine[name] - original[name]).max():.2e}")
    fixture = fixture_path(backbone)
    fixture.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(fixture, suffix=".npz") as out:
        np.savez_compressed(out, input=x, **original)
    print(f"  wrote {spec.weights} and {fixture}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backbone",
        nargs="+",
        choices=list(musicnn.BACKBONES),
        default=list(musicnn.BACKBONES),
        help="which taggers to convert (default: all four)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(Path(tmp))
        print(f"{wheel.name}: sha256 ok")
        for backbone in args.backbone:
            convert(wheel, Path(tmp), backbone)


if __name__ == "__main__":
    main()
