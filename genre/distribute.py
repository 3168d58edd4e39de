"""Spreading a training run over the devices of one host with ``tf.distribute``.

``TrainConfig.strategy`` names what the user asked for (``auto``, ``none``, ``mirrored``);
:func:`distribution` resolves it, at training time, into a :class:`Distribution`: the strategy
object and its number of replicas. ``none`` holds no strategy at all, so a single-device run
builds, compiles and fits exactly as it did before strategies existed.

Kept apart from ``genre.config`` because it loads TensorFlow (the dashboard's server never does).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ContextManager

from .config import STRATEGIES, ConfigError


def resolve(requested: str, gpus: int) -> str:
    """The strategy ``requested`` stands for on a host with ``gpus`` visible GPUs: ``auto`` is
    ``mirrored`` with more than one GPU, else ``none``; the others stand for themselves."""
    if requested not in STRATEGIES:
        raise ConfigError(f"unknown distribution strategy {requested!r}; choose one of {', '.join(STRATEGIES)}")
    if requested == "auto":
        return "mirrored" if gpus > 1 else "none"
    return requested


def visible_gpus() -> int:
    """How many GPUs TensorFlow sees on this host."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


@dataclass(frozen=True)
class Distribution:
    """A resolved strategy: ``requested`` (as configured), ``resolved`` (``none`` or
    ``mirrored``) and ``strategy``, the ``tf.distribute.Strategy`` (``None`` for ``none``)."""

    requested: str
    resolved: str
    strategy: Any = None

    @property
    def replicas(self) -> int:
        """How many copies of the model train in step (1 without a strategy)."""
        return int(self.strategy.num_replicas_in_sync) if self.strategy is not None else 1

    def scope(self) -> ContextManager:
        """Where models and optimizers must be built and compiled: the strategy's scope, or
        nothing at all without one."""
        return self.strategy.scope() if self.strategy is not None else nullcontext()

    def describe(self) -> dict:
        """What ``config.json`` records about it."""
        return {"requested": self.requested, "resolved": self.resolved, "replicas": self.replicas}


def distribution(requested: str) -> Distribution:
    """Build the strategy ``requested`` resolves to on this host.

    ``mirrored`` mirrors the model on every visible GPU; on a host without GPUs, on every
    logical CPU device (one, unless a program configured more before TensorFlow started,
    as the tests do), which gives one replica on an ordinary CPU-only host.
    """
    resolved = resolve(requested, visible_gpus())
    if resolved == "none":
        return Distribution(requested, resolved)
    import tensorflow as tf

    # MirroredStrategy() alone takes the GPUs or else only the first CPU device.
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [d.name for d in tf.config.list_logical_devices("CPU")]
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
