"""Training under tf.distribute: what ``--strategy`` resolves to, the choices the config and the
CLI accept, and a mirrored run on two logical CPU devices that writes what a single-device run
writes, with synchronised BatchNorm and honest metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genre.cli import build_parser, main
from genre.train import distribute
from genre.train.config import DEFAULTS, STRATEGIES, ConfigError, TrainConfig

REPO = Path(__file__).resolve().parents[2]


def test_auto_is_mirrored_only_with_more_than_one_gpu():
    assert [distribute.resolve("auto", gpus) for gpus in (0, 1, 2, 8)] == ["none", "none", "mirrored", "mirrored"]
    assert distribute.resolve("none", 4) == "none" and distribute.resolve("mirrored", 0) == "mirrored"


def test_auto_is_multi_worker_when_tf_config_is_set():
    cluster = tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)
    assert [distribute.resolve("auto", gpus, cluster) for gpus in (0, 2)] == ["multi-worker", "multi-worker"]
    assert distribute.resolve("auto", 2, "") == "mirrored" and distribute.resolve("none", 0, cluster) == "none"
    assert distribute.resolve("multi-worker", 0) == "multi-worker"


def test_the_chief_is_the_chief_task_or_else_worker_0():
    workers = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    assert [distribute.task_of(tf_config(workers, i)) for i in range(3)] == [
        distribute.Task(True, 0, 3), distribute.Task(False, 1, 3), distribute.Task(False, 2, 3)]  # fmt: skip
    with_chief = {"cluster": {"chief": ["h:0"], "worker": ["h:1", "h:2"]}}
    assert distribute.task_of(json.dumps(with_chief | {"task": {"type": "chief", "index": 0}})) == distribute.Task(
        True, 0, 3
    )
    assert distribute.task_of(json.dumps(with_chief | {"task": {"type": "worker", "index": 0}})) == distribute.Task(
        False, 1, 3
    )
    assert distribute.task_of(None) == distribute.Task(True, 0, 1)
    with pytest.raises(ConfigError, match="TF_CONFIG is not a cluster"):
        distribute.task_of("{}")
    # Who writes the run folder, known without loading TensorFlow (the CLI asks before training).
    assert distribute.writes_run_folder("auto", tf_config(workers, 0)) and not distribute.writes_run_folder(
        "auto", tf_config(workers, 2)
    )
    assert distribute.writes_run_folder("none", tf_config(workers, 2)) and not distribute.writes_run_folder(
        "multi-worker", tf_config(workers, 1)
    )
    assert distribute.writes_run_folder("auto", "")


def test_auto_without_a_gpu_trains_without_a_strategy(monkeypatch):
    monkeypatch.setattr(distribute, "visible_gpus", lambda: 0)
    chosen = distribute.distribution("auto")
    assert (chosen.resolved, chosen.strategy, chosen.replicas) == ("none", None, 1)
    assert chosen.describe() == {"requested": "auto", "resolved": "none", "replicas": 1}
    with chosen.scope():  # no strategy: a scope that does nothing
        pass


def test_an_unknown_strategy_is_refused_naming_the_choices():
    assert STRATEGIES == ("auto", "none", "mirrored", "multi-worker") and DEFAULTS["strategy"] == "auto"
    for strategy in STRATEGIES:
        TrainConfig("x", strategy=strategy).check()
    with pytest.raises(ConfigError) as caught:
        TrainConfig("x", strategy="horovod").check()
    assert (
        str(caught.value) == "unknown distribution strategy 'horovod'; choose one of auto, none, mirrored, multi-worker"
    )
    with pytest.raises(ConfigError, match="unknown distribution strategy"):
        distribute.resolve("tpu", 0)


def test_the_cli_passes_the_strategy_to_training(tmp_path, monkeypatch, capsys):
    import genre.train.training

    parser = build_parser()
    assert parser.parse_args(["train"]).strategy is None  # auto for a new run; a resume keeps its own
    assert parser.parse_args(["train", "--strategy", "multi-worker"]).strategy == "multi-worker"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--strategy", "horovod"])
    assert "invalid choice: 'horovod'" in capsys.readouterr().err

    seen = []

    def fake_train(config, progress=True, connect_timeout=None):
        seen.append((config, connect_timeout))
        return Path(config.models_dir) / config.run_id

    monkeypatch.setattr(genre.train.training, "train", fake_train)
    models = tmp_path / "models"
    assert (
        main(["train", "--data", str(tmp_path), "--strategy", "none", "--models-dir", str(models), "--run-id", "r"])
        == 0
    )
    assert (
        main(
            ["train", "--data", str(tmp_path), "--models-dir", str(models), "--run-id", "r2", "--connect-timeout", "9"]
        )
        == 0
    )
    assert [(c.strategy, timeout) for c, timeout in seen] == [("none", 300), ("auto", 9)]
    # The connect timeout is about this start, not the run: its config has no place for it.
    assert "connect_timeout" not in DEFAULTS


def test_each_pass_feeds_a_multiple_of_the_replicas(synth_root):
    """Every batch then splits evenly among the replicas; one replica feeds every window."""
    from genre.data.dataset import load_dataset
    from genre.data.pipeline import WindowSet

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

import genre.train.training as training
from genre.data.dataset import load_dataset
from genre.train.distribute import distribution
from genre.errors import TrainingCancelled
from genre.serve.evaluation import evaluate
from genre.files import read_json, write_json
from genre.serve.prediction import load_model
from genre.train.training import TrainConfig, train

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
        state = read_json(run / "status.json")["state"]
        found["cancelled"] = {"state": state, "history": read_json(run / "history.json")}
    training.ProgressCallback = progress
run = train(config, progress=False)
dist = distribution("mirrored")
with dist.scope():
    dataset = load_dataset(config.data_root, progress=False)
    found["metrics"] = evaluate(load_model(run / "model.keras"), dataset, read_json(run / "split.json")["test"])
write_json(out, found | {"replicas": dist.replicas})
"""


def train_mirrored(settings: dict, out: Path, cancel_at: int = 0) -> dict:
    """Train ``settings`` under a mirrored strategy on two logical CPU devices, in a process of
    its own; return what it found."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_RUN, json.dumps(settings | {"strategy": "mirrored"}), str(out), str(cancel_at)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def files_of(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}


@pytest.mark.slow
def test_a_mirrored_run_on_two_devices_writes_what_a_single_device_run_writes(synth_root, tmp_path):
    """With `transfer`, whose head trains on stored features (a `fast` run trains mirrored in the
    cancelled-and-resumed test below)."""
    from genre.data.dataset import load_dataset
    from genre.data.pipeline import WindowSet
    from genre.files import read_json
    from genre.models.registry import batch_norm_layers
    from genre.serve.evaluation import evaluate
    from genre.serve.prediction import load_model
    from genre.train.training import train

    settings = dict(
        data_root=str(synth_root),
        model="transfer",
        epochs=2,
        batch_size=4,
        augment=False,  # one recording per window: the features' path, not their count, is under test
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(tmp_path),
    )
    single = train(TrainConfig(**settings, run_id="single", strategy="none"), progress=False)
    found = train_mirrored(settings | {"run_id": "mirrored"}, tmp_path / "found.json")
    mirrored = tmp_path / "mirrored"

    assert files_of(mirrored) == files_of(single)
    config, single_config = read_json(mirrored / "config.json"), read_json(single / "config.json")
    assert config["distribution"] == {
        "requested": "mirrored",
        "resolved": "mirrored",
        "replicas": 2,
        "global_batch_size": 8,
    }
    assert single_config["distribution"] == {
        "requested": "none",
        "resolved": "none",
        "replicas": 1,
        "global_batch_size": 4,
    }
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

    settings = dict(
        data_root=str(synth_root),
        model="fast",
        epochs=2,
        batch_size=4,
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(tmp_path),
        run_id="resumed",
    )
    found = train_mirrored(settings, tmp_path / "found.json", cancel_at=1)
    assert found["cancelled"]["state"] == "cancelled" and [e["epoch"] for e in found["cancelled"]["history"]] == [1]
    run = tmp_path / "resumed"
    history = read_json(run / "history.json")
    # Resumed from the checkpoint, not restarted: epoch 1 was not trained again.
    assert [e["epoch"] for e in history] == [1, 2] and history[0] == found["cancelled"]["history"][0]
    assert (
        read_json(run / "status.json")["state"] == "finished"
        and read_json(run / "config.json")["distribution"]["replicas"] == 2
    )
    assert found["metrics"] == read_json(run / "metrics.json")
    from genre.models.registry import batch_norm_layers
    from genre.serve.prediction import load_model

    norms = batch_norm_layers(load_model(run / "model.keras"))
    assert norms and all(layer.synchronized for layer in norms)  # statistics over the whole global batch


def test_the_gpu_requirements_pin_what_the_cpu_ones_pin():
    def pins(name: str) -> list[str]:
        lines = (REPO / name).read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    assert [p.replace("tensorflow==", "tensorflow[and-cuda]==") for p in cpu] == gpu


tf_config = distribute.worker_tf_config


def start_workers(argv: list[str], tmp_path: Path, env: dict | None = None, n: int = 2) -> list[subprocess.Popen]:
    """``n`` local worker processes running ``python argv...``, each with its TF_CONFIG and its
    own temporary folder ``tmp_path/tmp-K`` (where a non-chief's scratch run folder goes)."""
    workers = distribute.local_workers(n)
    return [start_worker(argv, tmp_path, workers, index, env) for index in range(n)]


def start_worker(
    argv: list[str], tmp_path: Path, workers: list[str], index: int, env: dict | None = None
) -> subprocess.Popen:
    """Worker ``index`` of the cluster ``workers``, running ``python argv...``."""
    tmp = tmp_path / f"tmp-{index}"
    tmp.mkdir(parents=True, exist_ok=True)
    worker_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TF_CONFIG": tf_config(workers, index),
        "TMPDIR": str(tmp),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env
    )


def kill_after_its_first_epoch(other: subprocess.Popen, chief: subprocess.Popen, tmp_path: Path) -> None:
    """SIGKILL worker 1 once its first epoch is in the history of its scratch run folder."""
    while not list((tmp_path / "tmp-1").glob("genre-worker-*/mw/history.json")):
        assert other.poll() is None and chief.poll() is None, (finish(other)[1][-2000:], finish(chief)[1][-2000:])
        time.sleep(0.05)
    other.send_signal(signal.SIGKILL)
    finish(other)


def assert_all_succeeded(results: list[tuple[int, str]]) -> None:
    """Every worker exited 0; else fail with each one's own last lines in full (an assertion's
    message is cut short by pytest, and TensorFlow's cluster errors are long)."""
    if any(code for code, _ in results):
        lines = [
            f"worker {k} exited {code}:\n"
            + "\n".join([line for line in err.splitlines() if not line.startswith(("I0000", "W0000"))][-25:])
            for k, (code, err) in enumerate(results)
        ]
        pytest.fail("\n\n".join(lines), pytrace=False)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    """Wait for ``proc`` (the timeout only guards against a hang) and return its code and stderr.
    A hung worker is killed: TensorFlow's coordination service swallows SIGTERM."""
    try:
        _, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the worker hung; it was killed. stderr: {err[-2000:]}")
    return proc.returncode, err


# keras-team/keras#20585 and tensorflow/tensorflow#72388 on a plain Keras model: argv[1:] are
# the workarounds of genre.train.multiworker_fixes to apply ("" for none).
BARE_FIT = """
import sys
import numpy as np, tensorflow as tf, keras

strategy = tf.distribute.MultiWorkerMirroredStrategy()
if sys.argv[1]:
    from genre.train import multiworker_fixes
    multiworker_fixes.apply(sys.argv[1].split(","))
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
y = np.eye(3, dtype="float32")[np.arange(16) % 3]
model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
print("trained")
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "applied, upstream_bug",
    [
        # keras-team/keras#20585: once this passes without the workaround, remove "symbolic_build".
        ("", "Attempt to convert a value (PerReplica:"),
        # tensorflow/tensorflow#72388: once this passes without the workaround, remove "scalar_logs".
        ("symbolic_build", "Invalid reduction dimension 0 for input with 0 dimensions"),
    ],
)
def test_each_multi_worker_workaround_is_still_needed(applied, upstream_bug, tmp_path):
    results = [finish(p) for p in start_workers(["-c", BARE_FIT, applied], tmp_path)]
    assert all(code != 0 and upstream_bug in err for code, err in results), [err[-2000:] for _, err in results]


@pytest.mark.slow
def test_with_both_workarounds_a_plain_keras_model_trains_on_two_workers(tmp_path):
    results = [finish(p) for p in start_workers(["-c", BARE_FIT, "symbolic_build,scalar_logs"], tmp_path)]
    assert all(code == 0 for code, _ in results), [err[-2000:] for _, err in results]


def test_the_workarounds_refuse_versions_they_were_not_written_for(monkeypatch):
    import keras

    from genre.train import multiworker_fixes

    multiworker_fixes.check_versions()  # the installed ones
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(
        multiworker_fixes.UnpinnedVersions, match="'symbolic_build' is for Keras 3.15.x with TensorFlow 2.21.x"
    ):
        multiworker_fixes.check_versions()


def train_argv(synth_root: Path, models: Path, epochs: int, *extra: str) -> list[str]:
    return ["-m", "genre", "train", "--data", str(synth_root), "--model", "fast", "--epochs", str(epochs),
            "--batch", "4", "--test-fraction", "0.34", "--val-fraction", "0.25", "--models-dir", str(models),
            "--run-id", "mw", *extra]  # fmt: skip


@pytest.mark.slow
def test_cancelling_the_chief_stops_every_worker_and_leaves_the_run_resumable(synth_root, tmp_path):
    from genre.data.dataset import load_dataset
    from genre.files import read_json

    load_dataset(str(synth_root), progress=False)
    models = tmp_path / "models"
    chief, other = start_workers(
        train_argv(synth_root, models, 4, "--strategy", "multi-worker"), tmp_path, {"GENRE_COLLECTIVE_TIMEOUT": "60"}
    )
    while not (models / "mw" / "history.json").exists():
        assert other.poll() is None and chief.poll() is None, (finish(other)[1][-2000:], finish(chief)[1][-2000:])
        time.sleep(0.05)
    chief.send_signal(signal.SIGTERM)  # what the dashboard's Cancel and a terminal's kill send
    code, err = finish(chief)
    assert code == 3 and "training was cancelled; the run can be resumed with --resume" in err, err[-3000:]
    code, err = finish(other)
    assert code == 2 and "a worker of this multi-worker run failed or stopped" in err.strip().splitlines()[-1], err[
        -3000:
    ]
    assert read_json(models / "mw" / "status.json")["state"] == "cancelled"


@pytest.mark.slow
def test_a_killed_worker_ends_the_other_and_the_run_resumes_on_both(synth_root, tmp_path):
    """Both workers resume from the chief's folder and checkpoint (a shared models folder, as
    two hosts would mount it): the other worker starts from a copy of them."""
    from genre.data.dataset import load_dataset
    from genre.files import read_json

    load_dataset(str(synth_root), progress=False)
    models = tmp_path / "models"
    chief, other = start_workers(
        train_argv(synth_root, models, 3, "--strategy", "multi-worker"), tmp_path, {"GENRE_COLLECTIVE_TIMEOUT": "60"}
    )
    kill_after_its_first_epoch(other, chief, tmp_path)
    # The other worker's death ends the chief with one line that says how to go on.
    code, err = finish(chief)
    assert code == 2 and "a worker of this multi-worker run failed or stopped" in err and "--resume" in err, err[-3000:]
    run = models / "mw"
    assert read_json(run / "status.json")["state"] == "failed"
    # (Resuming such a run on one host, as the dashboard does: tests/jobs/test_jobs.py.)
    done = read_json(run / "history.json")
    assert 1 <= len(done) < 3
    results = [finish(p) for p in start_workers(["-m", "genre", "train", "--resume", str(run)], tmp_path)]
    assert_all_succeeded(results)
    history = read_json(run / "history.json")
    # Resumed, not restarted: the epochs trained before the loss are kept as they were.
    assert [e["epoch"] for e in history] == [1, 2, 3] and history[: len(done)] == done
    assert (
        read_json(run / "status.json")["state"] == "finished"
        and read_json(run / "config.json")["distribution"]["workers"] == 2
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra", [["--model", "transfer", "--no-augment"], ["--protocol", "cv", "--folds", "2"]], ids=["transfer", "cv"]
)
def test_two_workers_train_and_only_the_chief_writes(extra, synth_root, tmp_path):
    """A `transfer` run (its head on stored features) and a cross-validation run (a fold after
    another), each on two workers."""
    from genre.data.dataset import load_dataset
    from genre.files import read_json

    cache = load_dataset(str(synth_root), progress=False)  # the workers then share the cache, not build it at once
    models = tmp_path / "models"
    # train_argv says --model fast; a later --model in ``extra`` replaces it.
    results = [
        finish(p)
        for p in start_workers(train_argv(synth_root, models, 1, "--strategy", "multi-worker", *extra), tmp_path)
    ]
    assert_all_succeeded(results)
    run = models / "mw"
    assert {p.name for p in models.iterdir() if not p.name.startswith(".")} == {"mw"}
    config, metrics = read_json(run / "config.json"), read_json(run / "metrics.json")
    assert config["distribution"] == {
        "requested": "multi-worker",
        "resolved": "multi-worker",
        "replicas": 2,
        "workers": 2,
        "global_batch_size": 8,
    }
    assert read_json(run / "status.json")["state"] == "finished"
    if "cv" in extra:  # every song tested once, in the fold that held it out
        assert sorted(p.name for p in run.glob("fold-*")) == ["fold-1", "fold-2"] and metrics["test_songs"] == len(
            cache
        )
        assert all(read_json(run / f"fold-{n}" / "metrics.json") for n in (1, 2))
    else:
        assert {"genres.json", "split.json", "history.json", "model.keras"} <= files_of(run)
        assert [e["epoch"] for e in read_json(run / "history.json")] == [1]
        assert config["model"] == "transfer" and metrics["test_songs"] == len(read_json(run / "split.json")["test"])
    # The other worker's scratch run folder, with its checkpoints, was deleted.
    assert list((tmp_path / "tmp-1").glob("genre-worker-*")) == []


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_gives_up_after_the_connect_timeout(synth_root, tmp_path):
    """Alone in a cluster of two: the chief (the coordination leader) and the other worker (whose
    leader never comes) each end with one line, and the chief leaves no run folder behind."""
    from genre.data.dataset import load_dataset

    load_dataset(str(synth_root), progress=False)
    models = tmp_path / "models"
    argv = train_argv(synth_root, models, 1, "--strategy", "multi-worker", "--connect-timeout", "2")
    chief_cluster, other_cluster = distribute.local_workers(2), distribute.local_workers(2)
    chief, other = (
        start_worker(argv, tmp_path / "chief", chief_cluster, 0),
        start_worker(argv, tmp_path / "other", other_cluster, 1),
    )
    for proc, index, peer in ((chief, 0, chief_cluster[1]), (other, 1, other_cluster[0])):
        code, err = finish(proc)
        line = (
            f"genre: error: worker {index} waited 2 s for the other workers of TF_CONFIG ({peer}) to start; "
            "none came: start them, or check TF_CONFIG"
        )
        assert code == 2 and line in err.splitlines(), err[-3000:]
        assert "Traceback" not in err
    # The chief claimed the run folder and locked models/ before it waited; it released both.
    assert list(models.iterdir()) == []
    assert list((tmp_path / "other" / "tmp-1").iterdir()) == []


def test_the_connect_timeout_is_a_number_of_seconds_kept_out_of_the_run(capsys):
    parser = build_parser()
    assert parser.parse_args(["train"]).connect_timeout == distribute.CONNECT_TIMEOUT == 300
    assert parser.parse_args(["train", "--connect-timeout", "2.5"]).connect_timeout == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--connect-timeout", bad])
        assert f"must be a number of seconds above 0, not '{bad}'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert "--connect-timeout SECONDS multi-worker: how long" in " ".join(capsys.readouterr().out.split())
    cluster = json.dumps(
        {"cluster": {"chief": ["h:0"], "worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 1}}
    )
    assert distribute.not_formed_message(cluster, 300) == (
        "worker 1 waited 300 s for the other workers of TF_CONFIG (h:0, h:1) to start; "
        "not all came: start them, or check TF_CONFIG"
    )


def test_the_replicas_shares_of_each_batch_are_disjoint_and_make_it_whole(synth_root):
    """Under multi-worker every worker makes only its replicas' rows, in one seeded order."""
    import numpy as np

    from genre.data.dataset import load_dataset
    from genre.data.pipeline import WindowSet

    cache = load_dataset(str(synth_root), progress=False)
    windows = WindowSet.for_tracks(cache, cache.track_ids[:8])
    whole = [x.numpy() for x, _ in windows.dataset(len(cache.genres), 8, shuffle=True, seed=5, multiple=2)]
    shares = [
        [x.numpy() for x, _ in windows.dataset(len(cache.genres), 8, shuffle=True, seed=5, multiple=2, share=(k, 2))]
        for k in range(2)
    ]
    assert len(shares[0]) == len(shares[1]) == len(whole)
    for batch, first, second in zip(whole, *shares):
        assert np.array_equal(batch[0::2], first) and np.array_equal(batch[1::2], second)
