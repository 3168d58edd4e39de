"""Training under tf.distribute: what ``--strategy`` resolves to, the choices the config and the
CLI accept, and a mirrored run on two logical CPU devices that writes what a single-device run
writes, with synchronised BatchNorm and honest metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genre import distribute
from genre.cli import build_parser, main
from genre.config import DEFAULTS, STRATEGIES, ConfigError, TrainConfig

REPO = Path(__file__).resolve().parent.parent


def test_auto_is_mirrored_only_with_more_than_one_gpu():
    assert [distribute.resolve("auto", gpus) for gpus in (0, 1, 2, 8)] == ["none", "none", "mirrored", "mirrored"]
    assert distribute.resolve("none", 4) == "none" and distribute.resolve("mirrored", 0) == "mirrored"


def test_auto_without_a_gpu_trains_without_a_strategy(monkeypatch):
    monkeypatch.setattr(distribute, "visible_gpus", lambda: 0)
    chosen = distribute.distribution("auto")
    assert (chosen.resolved, chosen.strategy, chosen.replicas) == ("none", None, 1)
    assert chosen.describe() == {"requested": "auto", "resolved": "none", "replicas": 1}
    with chosen.scope():  # no strategy: a scope that does nothing
        pass


def test_an_unknown_strategy_is_refused_naming_the_choices():
    assert STRATEGIES == ("auto", "none", "mirrored") and DEFAULTS["strategy"] == "auto"
    for strategy in STRATEGIES:
        TrainConfig("x", strategy=strategy).check()
    with pytest.raises(ConfigError) as caught:
        TrainConfig("x", strategy="multi-worker").check()
    assert str(caught.value) == "unknown distribution strategy 'multi-worker'; choose one of auto, none, mirrored"
    with pytest.raises(ConfigError, match="unknown distribution strategy"):
        distribute.resolve("tpu", 0)


def test_the_cli_passes_the_strategy_to_training(tmp_path, monkeypatch, capsys):
    import genre.training

    parser = build_parser()
    assert parser.parse_args(["train"]).strategy == "auto"
    assert parser.parse_args(["train", "--strategy", "mirrored"]).strategy == "mirrored"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--strategy", "multi-worker"])
    assert "invalid choice: 'multi-worker'" in capsys.readouterr().err

    seen = []

    def fake_train(config, progress=True):
        seen.append(config)
        return Path(config.models_dir) / config.run_id

    monkeypatch.setattr(genre.training, "train", fake_train)
    models = tmp_path / "models"
    assert main(["train", "--data", str(tmp_path), "--strategy", "none", "--models-dir", str(models), "--run-id", "r"]) == 0
    assert [c.strategy for c in seen] == ["none"]


def test_each_pass_feeds_a_multiple_of_the_replicas(synth_root):
    """Every batch then splits evenly among the replicas; one replica feeds every window."""
    from genre.dataset import load_dataset
    from genre.pipeline import WindowSet

    assert [distribute.fed_windows(n, 2) for n in (0, 2, 7, 8)] == [0, 2, 6, 8]
    assert distribute.fed_windows(7, 1) == 7
    with pytest.raises(ConfigError, match="the validation part has 3 windows, fewer than the 4 replicas"):
        distribute.fed_windows(3, 4, "validation")

    cache = load_dataset(str(synth_root), progress=False)
    # Songs of two or three windows: a few of them make more than one batch and leave some over.
    windows = next(w for k in range(4, len(cache)) if len(w := WindowSet.for_tracks(cache, cache.track_ids[:k])) % 4)
    n = len(windows)
    for multiple in (1, 4):
        data = windows.dataset(len(cache.genres), 8, shuffle=True, seed=3, multiple=multiple)
        sizes = [int(x.shape[0]) for x, _ in data]
        assert sum(sizes) == n - n % multiple and all(size % multiple == 0 for size in sizes)
        assert len(sizes) == int(data.cardinality())


# Logical devices must be configured before TensorFlow starts: a mirrored run has a process of
# its own. Arguments: the TrainConfig's fields (JSON), a file for what it found, and an epoch to
# cancel the run before (as a stop request would) and resume it, or 0. After training, it
# evaluates the saved model again inside the strategy's scope.
MIRRORED_RUN = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras

import genre.training as training
from genre.dataset import load_dataset
from genre.distribute import distribution
from genre.errors import TrainingCancelled
from genre.evaluation import evaluate
from genre.files import read_json, write_json
from genre.prediction import load_model
from genre.training import TrainConfig, train

config, out, cancel_at = TrainConfig(**json.loads(sys.argv[1])), sys.argv[2], int(sys.argv[3])
found = {}
if cancel_at:
    class Cancel(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == cancel_at:
                raise TrainingCancelled("cancelled for the test")

    progress = training.ProgressCallback
    training.ProgressCallback = lambda status, stop: Cancel()
    try:
        train(config, progress=False)
    except TrainingCancelled:
        run = training.Path(config.models_dir) / config.run_id
        found["cancelled"] = {"state": read_json(run / "status.json")["state"], "history": read_json(run / "history.json")}
    training.ProgressCallback = progress
run = train(config, progress=False)
dist = distribution("mirrored")
with dist.scope():
    found["metrics"] = evaluate(load_model(run / "model.keras"), load_dataset(config.data_root, progress=False), read_json(run / "split.json")["test"])
write_json(out, found | {"replicas": dist.replicas})
"""


def train_mirrored(settings: dict, out: Path, cancel_at: int = 0) -> dict:
    """Train ``settings`` under a mirrored strategy on two logical CPU devices, in a process of
    its own; return what it found."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", MIRRORED_RUN, json.dumps(settings | {"strategy": "mirrored"}), str(out), str(cancel_at)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def files_of(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["fast", "transfer"])  # transfer: its head trains on stored features
def test_a_mirrored_run_on_two_devices_writes_what_a_single_device_run_writes(model, synth_root, tmp_path):
    from genre.dataset import load_dataset
    from genre.evaluation import evaluate
    from genre.files import read_json
    from genre.models import batch_norm_layers
    from genre.pipeline import WindowSet
    from genre.prediction import load_model
    from genre.training import train

    settings = dict(data_root=str(synth_root), model=model, epochs=2, batch_size=4, test_fraction=0.34,
                    val_fraction=0.25, models_dir=str(tmp_path))
    single = train(TrainConfig(**settings, run_id="single", strategy="none"), progress=False)
    found = train_mirrored(settings | {"run_id": "mirrored"}, tmp_path / "found.json")
    mirrored = tmp_path / "mirrored"

    assert files_of(mirrored) == files_of(single)
    config, single_config = read_json(mirrored / "config.json"), read_json(single / "config.json")
    assert config["distribution"] == {"requested": "mirrored", "resolved": "mirrored", "replicas": 2, "global_batch_size": 8}
    assert single_config["distribution"] == {"requested": "none", "resolved": "none", "replicas": 1, "global_batch_size": 4}
    assert config["train"]["batch_size"] == 4 and config["train"]["strategy"] == "mirrored"
    assert read_json(mirrored / "split.json") == read_json(single / "split.json")
    status, single_status = read_json(mirrored / "status.json"), read_json(single / "status.json")
    assert status["state"] == "finished" and [e["epoch"] for e in read_json(mirrored / "history.json")] == [1, 2]
    # Global batches of 2 x 4 windows, from an even number of windows per pass; the synthetic
    # split has an odd number in a part, so the run covered leaving one out.
    cache, split = load_dataset(str(synth_root), progress=False), read_json(mirrored / "split.json")
    n_train, n_valid = (len(WindowSet.for_tracks(cache, split[part])) for part in ("train", "valid"))
    assert n_train % 2 or n_valid % 2
    assert single_status["batches"] == -(-n_train // 4) and status["batches"] == -(-(n_train - n_train % 2) // 8)

    # The chief's metrics are the saved model's, re-evaluated here without a strategy and in the
    # run's process inside the strategy's scope (predict* there would repeat rows per replica).
    metrics = read_json(mirrored / "metrics.json")
    model = load_model(mirrored / "model.keras")
    assert evaluate(model, cache, split["test"]) == metrics
    assert found["replicas"] == 2 and found["metrics"] == metrics

    norms = batch_norm_layers(model)
    assert norms and all(layer.synchronized for layer in norms)
    assert not any(layer.synchronized for layer in batch_norm_layers(load_model(single / "model.keras")))


@pytest.mark.slow
def test_a_cancelled_mirrored_run_resumes_from_its_last_epoch(synth_root, tmp_path):
    from genre.files import read_json

    settings = dict(data_root=str(synth_root), model="fast", epochs=2, batch_size=4, test_fraction=0.34,
                    val_fraction=0.25, models_dir=str(tmp_path), run_id="resumed")
    found = train_mirrored(settings, tmp_path / "found.json", cancel_at=1)
    assert found["cancelled"]["state"] == "cancelled" and [e["epoch"] for e in found["cancelled"]["history"]] == [1]
    run = tmp_path / "resumed"
    history = read_json(run / "history.json")
    # Resumed from the checkpoint, not restarted: epoch 1 was not trained again.
    assert [e["epoch"] for e in history] == [1, 2] and history[0] == found["cancelled"]["history"][0]
    assert read_json(run / "status.json")["state"] == "finished" and read_json(run / "config.json")["distribution"]["replicas"] == 2
    assert found["metrics"] == read_json(run / "metrics.json")


def test_the_gpu_requirements_pin_what_the_cpu_ones_pin():
    def pins(name: str) -> list[str]:
        lines = (REPO / name).read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    assert [p.replace("tensorflow==", "tensorflow[and-cuda]==") for p in cpu] == gpu
