"""Workarounds that make Keras ``fit`` run under ``tf.distribute.MultiWorkerMirroredStrategy``,
and a worker give up on peers that never start.

Applied only for ``--strategy multi-worker`` (:func:`apply`), and only to the versions they were
written for (:data:`PINNED`): on others :func:`apply` refuses, so an upgrade makes us check
whether upstream fixed them. ``tests/train/test_distribute.py`` reproduces each bug without its
workaround; once such a test fails, upstream fixed the bug and its workaround goes.

- ``symbolic_build`` (keras-team/keras#20585): ``fit`` and ``evaluate`` first take one batch to
  build the optimizer and metric variables, and average the replicas' shares of it with
  ``strategy.reduce``, which under multi-worker fails with ``ValueError: Attempt to convert a
  value (PerReplica:{...}) ... to a Tensor``. Building only needs the batch's shapes and dtypes:
  this worker's first share does.
- ``scalar_logs`` (tensorflow/tensorflow#72388): every step's logs (loss, accuracy: scalars) are
  averaged across workers with ``strategy.reduce("MEAN", v, axis=0)``, which fails with
  ``Invalid reduction dimension 0 for input with 0 dimensions``. A scalar is averaged across the
  replicas only (``axis=None``), which is what the logs mean.
- ``register_timeout`` (:func:`register_with_timeout`, called before the strategy is made): a
  worker waits for the others with no deadline; TensorFlow 2.21 has the deadline but no public
  switch for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from ..errors import GenreError

# Workaround name -> (Keras version prefix, TensorFlow version prefix) it is written for.
PINNED = {
    "symbolic_build": ("3.15.", "2.21."),
    "scalar_logs": ("3.15.", "2.21."),
    "register_timeout": ("3.15.", "2.21."),
}

_applied: set[str] = set()


class UnpinnedVersions(GenreError, RuntimeError):
    """The installed Keras or TensorFlow is not a version the workarounds were written for."""


def check_versions(names: Iterable[str] = tuple(PINNED)) -> None:
    """Refuse Keras/TensorFlow versions a workaround in ``names`` was not written for."""
    import keras
    import tensorflow as tf

    for name in names:
        keras_prefix, tf_prefix = PINNED[name]
        if not (keras.__version__.startswith(keras_prefix) and tf.__version__.startswith(tf_prefix)):
            raise UnpinnedVersions(
                f"genre's multi-worker workaround {name!r} is for Keras {keras_prefix}x with TensorFlow "
                f"{tf_prefix}x, not Keras {keras.__version__} with TensorFlow {tf.__version__}: check whether "
                "upstream fixed it (tests/train/test_distribute.py reproduces it), then update "
                "genre/train/multiworker_fixes.py"
            )


def _symbolic_build() -> None:
    import tensorflow as tf
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    original = TensorFlowTrainer._maybe_symbolic_build

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            # This worker's first share: the same shapes and dtypes as the batch the step sees.
            data_batch = tf.nest.map_structure(
                lambda x: (
                    strategy.experimental_local_results(x)[0] if isinstance(x, tf.distribute.DistributedValues) else x
                ),
                batch,
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build


def _scalar_logs() -> None:
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)

        def mean(v):
            # axis=0 would also average along a tensor's first dimension; a scalar has none.
            return strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0)

        return tf.nest.map_structure(mean, values)

    trainer.reduce_per_replica = reduce_per_replica


FIXES: dict[str, Callable[[], None]] = {"symbolic_build": _symbolic_build, "scalar_logs": _scalar_logs}


def register_with_timeout(tf_config: str, seconds: float) -> None:
    """Configure TensorFlow's coordination service as ``MultiWorkerMirroredStrategy`` would (it
    keeps a service configured before it), but with every task registering at a barrier that
    times out after ``seconds``: the strategy then raises ``DeadlineExceededError`` instead of
    waiting forever for a worker that never starts. The leader fails after ``seconds``, the
    others (their registration call has TensorFlow's grace added) about 5 s later.

    Why not TensorFlow's defaults: without the barrier the leader registers alone, then waits
    with no deadline (a try was stopped after 15 minutes). TensorFlow 2.21 has no public switch
    for either, hence its internals here, pinned like the workarounds; the test of the connect
    timeout fails if this stops working."""
    import tensorflow as tf
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    check_versions(["register_timeout"])
    cluster = tf.train.ClusterSpec(json.loads(tf_config)["cluster"])
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
        for job in ("chief", "worker")
        if job in cluster.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=max(1, round(seconds * 1000)),
    )
    context.context().coordination_service.cluster_register_with_barrier = True


def apply(names: Iterable[str] = tuple(FIXES)) -> None:
    """Apply the workarounds ``names`` (all by default) once per process, after checking the
    installed versions."""
    names = [n for n in names if n not in _applied]
    check_versions(names)
    for name in names:
        FIXES[name]()
        _applied.add(name)
