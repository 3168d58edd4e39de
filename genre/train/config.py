"""Every choice a training run makes, in one place: :class:`TrainConfig` holds the defaults,
checks the values (the ranges the dashboard offers) and names new runs. The CLI's ``train``
arguments and the dashboard's job settings take their defaults from it.

Light on purpose (no Keras, no scikit-learn): the Streamlit server checks settings with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from ..errors import GenreError

EPOCHS_RANGE = (1, 1000)
BATCH_RANGE = (1, 1024)
FOLDS_RANGE = (2, 20)
# How training spreads over devices (resolved at training time by genre.train.distribute):
# "auto" is multi-worker when TF_CONFIG is set, else mirrored when more than one GPU is visible,
# else none.
STRATEGIES = ("auto", "none", "mirrored", "multi-worker")


class ConfigError(GenreError, ValueError):
    """A training setting out of range or unknown; the message names the setting and the value."""


def run_id_stem(model: str, protocol: str, when: datetime | None = None) -> str:
    """A new run's default name, ``<model>-<protocol>-<YYYYmmdd-HHMMSS>``; a taken name gets
    ``-2``, ``-3``... where the run folder is made."""
    return f"{model}-{protocol}-{(when or datetime.now()):%Y%m%d-%H%M%S}"


@dataclass
class TrainConfig:
    """Every choice a run makes. ``None`` takes the model's recipe (see ``genre.models.registry``)."""

    data_root: str
    model: str = "fast"
    protocol: str = "stratified"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 1
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    folds: int = 5
    mixed_precision: bool = False
    balance: bool = True
    augment: bool | None = None
    label_smoothing: float | None = None
    models_dir: str = "models"
    run_id: str | None = None
    # ``batch_size`` is per replica (the global batch is batch_size x replicas); the learning
    # rate is not scaled with the replicas.
    strategy: str = "auto"
    # A shard folder (``python -m genre shard``) to train from instead of the song cache; the
    # split is then the shards' own, and ``data_root`` names the folder they were made from.
    shards: str | None = None

    def check(self) -> TrainConfig:
        """Refuse an unknown model or protocol and a value out of range, one clear message
        each (:class:`ConfigError`); return ``self``. The dataset is not looked at here."""
        from ..data.splits import PROTOCOLS
        from ..models.registry import REGISTRY

        if self.model not in REGISTRY:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(REGISTRY)}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown split protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown distribution strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        check_count("epochs", self.epochs, EPOCHS_RANGE)
        check_count("batch size", self.batch_size, BATCH_RANGE)
        if not _whole(self.seed) or self.seed < 0:
            raise ConfigError(f"the seed must be a whole number of at least 0, not {self.seed!r}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"the test share must be between 0 and 1 (exclusive), not {self.test_fraction}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"the validation share must be at least 0 and below 1, not {self.val_fraction}")
        if self.protocol == "cv":
            check_count("number of folds", self.folds, FOLDS_RANGE, optional=False)
        return self

    def resolved(self) -> TrainConfig:
        """A copy with the model's recipe filled in where this config says ``None``."""
        from ..models.registry import get_spec

        spec = get_spec(self.model)
        values = asdict(self)
        for name, default in (
            ("epochs", spec.epochs),
            ("batch_size", spec.batch_size),
            ("learning_rate", spec.learning_rate),
            ("augment", spec.augment),
            ("label_smoothing", spec.label_smoothing),
        ):
            if values[name] is None:
                values[name] = default
        values["data_root"] = str(Path(self.data_root).expanduser().resolve())
        if self.shards:
            values["shards"] = str(Path(self.shards).expanduser().resolve())
        if not values["run_id"]:
            values["run_id"] = run_id_stem(self.model, self.protocol)
        return TrainConfig(**values)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name != "data_root"}


def check_count(name: str, value: object, bounds: tuple[int, int], optional: bool = True) -> None:
    """Refuse ``value`` unless it is a whole number within ``bounds`` (``None`` passes when
    ``optional``: it takes the model's recipe)."""
    if value is None and optional:
        return
    low, high = bounds
    if not _whole(value) or not low <= value <= high:
        raise ConfigError(f"the {name} must be a whole number from {low} to {high}, not {value!r}")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
