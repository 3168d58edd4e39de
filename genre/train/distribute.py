"""Spreading a training run over the devices of one host with ``tf.distribute``.

``TrainConfig.strategy`` names what the user asked for (``auto``, ``none``, ``mirrored``,
``multi-worker``);
:func:`distribution` resolves it, at training time, into a :class:`Distribution`: the strategy
object and its number of replicas. ``none`` holds no strategy at all, so a single-device run
builds, compiles and fits exactly as it did before strategies existed.

Kept apart from ``genre.train.config`` because it loads TensorFlow (the dashboard's server never does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from ..errors import GenreError
from .config import STRATEGIES, ConfigError

# How long a worker waits in a collective (a gradient all-reduce, say) for the others before it
# fails: a dead or killed worker then ends the survivors with an error instead of a hang. Long
# enough for a slow first step (tracing) on a busy CPU; GENRE_COLLECTIVE_TIMEOUT overrides it.
COLLECTIVE_TIMEOUT = 300.0
# How long a worker waits for the other workers of TF_CONFIG to start before it gives up (the
# collective timeout does not cover forming the cluster; without this a missing worker is a
# silent hang). ``train --connect-timeout`` sets it for one start.
CONNECT_TIMEOUT = 300.0
# How long the other workers wait for the chief between folds, while it evaluates a fold's test
# songs alone (a dead chief still ends them within seconds, by TensorFlow's heartbeats).
WAIT_TIMEOUT = 24 * 3600.0


class ClusterNotFormed(GenreError):
    """The workers of ``TF_CONFIG`` did not all start within the connect timeout."""


def resolve(requested: str, gpus: int, tf_config: str | None = None) -> str:
    """The strategy ``requested`` stands for on a host with ``gpus`` visible GPUs, ``tf_config``
    being the ``TF_CONFIG`` environment variable: ``auto`` is ``multi-worker`` when ``TF_CONFIG``
    is set, else ``mirrored`` with more than one GPU, else ``none``; the others stand for
    themselves."""
    if requested not in STRATEGIES:
        raise ConfigError(f"unknown distribution strategy {requested!r}; choose one of {', '.join(STRATEGIES)}")
    if requested == "auto":
        if tf_config:
            return "multi-worker"
        return "mirrored" if gpus > 1 else "none"
    return requested


@dataclass(frozen=True)
class Task:
    """This process's place in a multi-worker cluster, from ``TF_CONFIG``: ``index`` counts the
    chief first (if the cluster has one), then the workers; the chief writes the run folder."""

    is_chief: bool = True
    index: int = 0
    count: int = 1


def writes_run_folder(requested: str, tf_config: str | None = None) -> bool:
    """Whether this process writes the run folder: all but a multi-worker run's non-chief
    workers (``tf_config`` defaults to ``TF_CONFIG``). Loads no TensorFlow."""
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
    if requested not in ("auto", "multi-worker") or not tf_config:
        return True
    return task_of(tf_config).is_chief


def task_of(tf_config: str | None) -> Task:
    """Read ``TF_CONFIG``: the chief is the task of type ``chief``, or worker 0 when the cluster
    has no chief (TensorFlow's own convention)."""
    if not tf_config:
        return Task()
    try:
        spec = json.loads(tf_config)
        cluster, task = spec["cluster"], spec["task"]
        kind, number = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is not a cluster and task description: {error}") from None
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if kind not in ("chief", "worker"):
        raise ConfigError(f"TF_CONFIG's task type {kind!r} is not one that trains: chief or worker")
    index = number if kind == "chief" else chiefs + number
    return Task(
        is_chief=kind == "chief" or (kind == "worker" and number == 0 and not chiefs),
        index=index,
        count=chiefs + workers,
    )


def not_formed_message(tf_config: str, seconds: float) -> str:
    """What a worker says when the others of ``tf_config`` did not all start in ``seconds``."""
    spec = json.loads(tf_config)
    kind, index = spec["task"]["type"], int(spec["task"]["index"])
    peers = [
        address
        for job in ("chief", "worker")
        for i, address in enumerate(spec["cluster"].get(job, []))
        if (job, i) != (kind, index)
    ]
    came = "none came" if len(peers) == 1 else "not all came"
    return (
        f"{kind} {index} waited {seconds:g} s for the other workers of TF_CONFIG ({', '.join(peers)}) to start; "
        f"{came}: start them, or check TF_CONFIG"
    )


def visible_gpus() -> int:
    """How many GPUs TensorFlow sees on this host."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


@dataclass(frozen=True)
class Distribution:
    """A resolved strategy: ``requested`` (as configured), ``resolved`` (``none``, ``mirrored``
    or ``multi-worker``), ``strategy``, the ``tf.distribute.Strategy`` (``None`` for ``none``),
    and ``task``, this process's place among the workers (the only one, but for multi-worker)."""

    requested: str
    resolved: str
    strategy: Any = None
    task: Task = Task()

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder."""
        return self.task.is_chief

    @property
    def worker_index(self) -> int:
        return self.task.index

    @property
    def num_workers(self) -> int:
        return self.task.count

    @property
    def replicas(self) -> int:
        """How many copies of the model train in step (1 without a strategy)."""
        return int(self.strategy.num_replicas_in_sync) if self.strategy is not None else 1

    @property
    def local_replicas(self) -> int:
        """How many of the replicas this worker holds (all of them but under multi-worker)."""
        return self.replicas // self.num_workers

    def scope(self) -> AbstractContextManager:
        """Where models and optimizers must be built and compiled: the strategy's scope, or
        nothing at all without one."""
        return self.strategy.scope() if self.strategy is not None else nullcontext()

    def wait_for_all(self, seconds: float | None = None) -> None:
        """Under multi-worker, wait until every worker is here (a collective over one scalar,
        with a timeout of ``seconds``, default :data:`WAIT_TIMEOUT`); elsewhere, return."""
        if self.resolved != "multi-worker":
            return
        import tensorflow as tf

        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=seconds or WAIT_TIMEOUT)

        def arrive():
            return tf.distribute.get_replica_context().all_reduce("SUM", tf.constant(1.0), options=options)

        tf.function(lambda: self.strategy.run(arrive))()

    def describe(self) -> dict:
        """What ``config.json`` records about it."""
        described = {"requested": self.requested, "resolved": self.resolved, "replicas": self.replicas}
        return described | ({"workers": self.num_workers} if self.resolved == "multi-worker" else {})


def distribution(
    requested: str, tf_config: str | None = None, connect_timeout: float = CONNECT_TIMEOUT
) -> Distribution:
    """Build the strategy ``requested`` resolves to on this host; ``tf_config`` defaults to the
    ``TF_CONFIG`` environment variable.

    ``mirrored`` mirrors the model on every visible GPU; on a host without GPUs, on every
    logical CPU device (one, unless a program configured more before TensorFlow started,
    as the tests do), which gives one replica on an ordinary CPU-only host.
    ``multi-worker`` is ``MultiWorkerMirroredStrategy`` over the cluster ``TF_CONFIG`` describes
    (it waits up to ``connect_timeout`` seconds for every worker to start, else raises
    :class:`ClusterNotFormed`), with the Keras workarounds of ``genre.train.multiworker_fixes`` and a
    timeout on its collectives.
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
    resolved = resolve(requested, visible_gpus(), tf_config)
    if resolved == "none":
        return Distribution(requested, resolved)
    import tensorflow as tf

    if resolved == "multi-worker":
        if not tf_config:
            raise ConfigError(
                "--strategy multi-worker needs the TF_CONFIG environment variable (the cluster and this task)"
            )
        from . import multiworker_fixes

        multiworker_fixes.apply()
        task = task_of(tf_config)
        timeout = float(os.environ.get("GENRE_COLLECTIVE_TIMEOUT", COLLECTIVE_TIMEOUT))
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
        multiworker_fixes.register_with_timeout(tf_config, connect_timeout)
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except tf.errors.DeadlineExceededError:
            strategy = None
        # Raised outside the handler, so that TensorFlow's half-made strategy is freed first:
        # its shutdown logs its complaints before the error line, not after it.
        if strategy is None:
            raise ClusterNotFormed(not_formed_message(tf_config, connect_timeout))
        return Distribution(requested, resolved, strategy, task)

    # MirroredStrategy() alone takes the GPUs or else only the first CPU device.
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")
    ]
    return Distribution(requested, resolved, tf.distribute.MirroredStrategy(devices))


def fed_windows(windows: int, replicas: int, part: str = "training") -> int:
    """How many of a part's ``windows`` each pass feeds under ``replicas`` replicas: all of them
    on one replica, else the largest multiple of the replicas (fewer than ``replicas`` are left
    out; a shuffled part leaves out others each epoch).

    Why: every batch then splits evenly among the replicas. Keras 3.15
    (``TensorFlowTrainer._maybe_symbolic_build``, run by every ``fit`` and ``evaluate``)
    averages the replicas' shares of the first batch element by element and fails on shares of
    unequal length; and a batch too small to give every replica a row gives one an empty
    share, on which ``fast``'s log-mel front end fails (reflect padding of nothing)."""
    fed = windows - windows % replicas
    if windows and not fed:
        raise ConfigError(
            f"the {part} part has {windows} windows, fewer than the {replicas} replicas: "
            "train on one device (--strategy none) or give the part more songs"
        )
    return fed


def per_replica_input(
    dist: Distribution, make: Callable[[tuple[int, int]], Any], class_weight: dict[int, float] | None = None
) -> Any:
    """The input of a multi-worker run: ``make(share)`` builds the dataset of global batches
    that yields only replica ``share[0]`` of ``share[1]``'s rows of each (``WindowSet.dataset``).

    Why not hand ``fit`` one dataset of global batches: ``tf.distribute`` cannot shard a Python
    generator's dataset by files, so AUTO sharding falls back to DATA, and every worker would run
    the whole generator (decode and augment every window) to keep half of each batch; with
    sharding OFF, each worker would train on every window. Here each worker's generators make
    only its replicas' rows, in the same seeded order on every worker, so the shares are
    disjoint and together are the global batch. ``class_weight`` becomes a sample weight per
    row: ``fit`` cannot map a distributed dataset itself."""
    import tensorflow as tf

    from ..data.pipeline import class_weight_lookup

    strategy = dist.strategy
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        parts = [make((first + r, replicas)) for r in range(local)]
        # A worker's replicas take its dataset's batches in turn.
        data = (
            parts[0]
            if local == 1
            else tf.data.Dataset.choose_from_datasets(parts, tf.data.Dataset.range(local).repeat())
        )
        if class_weight:
            weight = class_weight_lookup(class_weight)
            data = data.map(lambda x, y: (x, y, weight(y)))
        return data

    return strategy.distribute_datasets_from_function(dataset_fn)


def per_worker_input(dist: Distribution, make: Callable[[int], Any]) -> Any:
    """The input of a multi-worker run that reads its own files: ``make(worker)`` builds worker
    ``worker``'s dataset of per-replica batches, which its replicas (``dist.local_replicas``)
    take in turn (``genre.data.shards.shard_dataset``)."""
    return dist.strategy.distribute_datasets_from_function(lambda context: make(context.input_pipeline_id))


def local_workers(n: int) -> list[str]:
    """``n`` worker addresses on free 127.0.0.1 ports, for a multi-worker rehearsal on one host
    (the system hands out each free port once before reusing it)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return addresses


def worker_tf_config(workers: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` of a cluster of ``workers`` (no chief task)."""
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
