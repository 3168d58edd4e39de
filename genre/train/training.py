"""Training runs: one self-describing folder per run under ``models/``.

A run folder holds ``config.json``, ``genres.json``, ``split.json``, ``history.json``,
``status.json`` (live progress), ``model.keras`` (the best epoch by validation loss) and
``metrics.json`` (test songs only). A cross-validation run keeps one such set per fold in
``fold-K/`` and pools the test songs of all folds in its own ``metrics.json``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE, WINDOW, __version__
from ..data.dataset import DatasetError, Songs, load_dataset
from ..data.pipeline import WindowSet
from ..data.shard_songs import ShardSongs
from ..data.shards import ShardError, check_files, damaged_files
from ..data.splits import artist_index, audit, fold_parts, make_split, split_settings
from ..errors import GenreError, TrainingCancelled
from ..files import atomic_path, read_json, write_json
from ..models.features import FeatureStore
from ..models.registry import build_model, get_spec
from ..serve.calibration import calibrate_run
from ..serve.evaluation import evaluate, multi_artist_figures, pool_metrics
from ..serve.prediction import load_model
from .callbacks import AtomicBackupAndRestore, BestModel, HistoryFile, ProgressCallback
from .config import ConfigError, TrainConfig
from .distribute import (
    CONNECT_TIMEOUT,
    Distribution,
    distribution,
    fed_windows,
    per_replica_input,
    per_worker_input,
    visible_gpus,
)
from .hardware import bfloat16_warning
from .status import StatusFile, StopFlag, install_stop_handler, restore_stop_handler

log = logging.getLogger(__name__)


def train(config: TrainConfig, progress: bool = True, connect_timeout: float = CONNECT_TIMEOUT) -> Path:
    """Run (or resume) the training run ``config`` describes and return its folder.

    A folder that already holds this run's ``config.json`` is resumed: finished folds are kept
    and the current one continues from its last completed epoch.

    With ``config.shards`` the songs and the split come from TFRecord shards (``genre.data.shards``):
    the training windows stream from them, and whole songs (evaluation, frozen features) are
    read one at a time (``genre.data.shard_songs``).

    Under ``multi-worker`` only the chief writes the run folder. Every other worker trains the
    same way (the same split, from the seed; the same callbacks, whose saves are collective)
    but writes into a temporary folder of its own, deleted at the end; resuming, it starts from
    a copy of what the chief's folder and checkpoint hold, so that every worker resumes alike.
    A worker waits up to ``connect_timeout`` seconds for the others to start, before it writes
    anything (``genre.train.distribute.ClusterNotFormed`` otherwise).
    """
    config = config.resolved()
    run_dir = Path(config.models_dir) / config.run_id
    saved = read_json(run_dir / "config.json")
    if saved is not None:
        # The strategy is the caller's, not the run's: it is about this start's hosts and devices
        # (a multi-worker run that lost a worker can finish on one).
        # So are the shards' whereabouts, when given (they may have moved; the split must match).
        own = TrainConfig.from_dict(saved["train"])
        config = replace(own, strategy=config.strategy, shards=config.shards or own.shards)
        log.info("resuming run %s", run_dir)
    cache = ShardSongs(config.shards) if config.shards else load_dataset(config.data_root, progress=progress)
    # A split.json without a config.json is left from a start that died before it was set up,
    # perhaps with other settings: only a run that has its config reuses its split.
    manifest = (read_json(run_dir / "split.json") if saved is not None else None) or (
        shard_split(config, cache)
        if config.shards
        else make_split(
            config.protocol,
            cache.track_ids,
            cache.labels,
            test_fraction=config.test_fraction,
            val_fraction=config.val_fraction,
            seed=config.seed,
            folds=config.folds,
        )
    )
    audit(manifest)
    if config.shards:
        check_files(config.shards, cache.manifest)  # before the run folder is written
    if config.shards and manifest != cache.manifest["split"]:
        raise ShardError(
            f"the shards in {config.shards} hold another split than run {run_dir.name} was trained on; resume from "
            f"its own shards"
        )
    # Resolved on every start, resume included: a run resumed on another host uses its devices.
    # Before anything is written: a chief whose cluster never forms leaves no run behind.
    dist = distribution(config.strategy, connect_timeout=connect_timeout)
    if config.shards and get_spec(config.model).frozen is None:
        for fold in range(1, len(manifest["folds"]) + 1) if "folds" in manifest else [None]:
            _shard_plans(config, dist, cache.manifest, fold)  # refused here, before the run folder is written
    if not dist.is_chief:
        scratch = Path(tempfile.mkdtemp(prefix=f"genre-worker-{dist.worker_index}-"))
        try:
            return _train_worker(config, saved, cache, manifest, dist, run_dir, scratch / run_dir.name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _train_run(config, saved, cache, manifest, dist, run_dir)


def shard_split(config: TrainConfig, shards: ShardSongs) -> dict:
    """The split of the shards ``config`` trains from; :class:`ConfigError` when ``config``
    asks for another (the shards hold the parts of one split only)."""
    split = shards.manifest["split"]
    differs = [
        f"{name} {getattr(config, name)!r} (theirs: {value!r})"
        for name, value in split_settings(split).items()
        if getattr(config, name) != value
    ]
    if differs:
        raise ConfigError(
            f"the shards in {config.shards} hold another split: {'; '.join(differs)}; leave those settings out, or "
            f"shard again with them"
        )
    return split


def _train_worker(
    config: TrainConfig,
    saved: dict | None,
    cache: Songs,
    manifest: dict,
    dist: Distribution,
    run_dir: Path,
    scratch: Path,
) -> Path:
    """A non-chief worker's run: in ``scratch``, started from a copy of the chief's ``run_dir``
    (its config, history, best models, finished folds) and checkpoints, if it has any."""
    if saved is not None:
        for name in ("config.json", "genres.json", "split.json"):
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / name, scratch / name)
        created = saved["created"]
        for folder in [run_dir, *sorted(run_dir.glob("fold-*"))]:
            mirror = scratch / folder.relative_to(run_dir)
            for name in ("history.json", "model.keras", "metrics.json"):
                if (folder / name).exists():
                    mirror.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(folder / name, mirror / name)
            if backup_dir(folder, created).is_dir():
                shutil.copytree(backup_dir(folder, created), scratch / "backups" / mirror.relative_to(scratch))
    _train_run(config, saved, cache, manifest, dist, scratch, backups=scratch / "backups")
    return run_dir


def _train_run(
    config: TrainConfig,
    saved: dict | None,
    cache: Songs,
    manifest: dict,
    dist: Distribution,
    run_dir: Path,
    backups: Path | None = None,
) -> Path:
    """Train into ``run_dir``, with the checkpoints in ``backups`` (default: the cache folder's)."""

    def backup(out_dir: Path) -> Path:
        return backup_dir(out_dir, created) if backups is None else backups / out_dir.relative_to(run_dir)

    warning = bfloat16_warning(config.mixed_precision, visible_gpus())
    if warning:
        log.warning(warning)
    if saved is not None:
        check_dataset(run_dir, cache, manifest)
        started = saved.get("distribution", {}).get("replicas", 1)
        if started != dist.replicas:
            log.warning(
                "run %s started on %d replicas and resumes on %d: the global batch changes",
                run_dir,
                started,
                dist.replicas,
            )
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "genres.json", cache.genres)
        write_json(run_dir / "split.json", manifest)
        write_json(run_dir / "config.json", _describe(config, cache, manifest, dist))
    created = read_json(run_dir / "config.json")["created"]
    status = StatusFile(run_dir / "status.json", config)
    stop = install_stop_handler()
    try:
        parts = fold_parts(manifest)
        if "folds" not in manifest:
            _train_part(config, dist, cache, parts[0], None, run_dir, backup(run_dir), status, stop)
        else:
            fold_metrics = []
            for number, part in enumerate(parts, 1):
                status.fold = (number, len(parts))
                fold_dir = run_dir / f"fold-{number}"
                if read_json(fold_dir / "metrics.json") is None:
                    _train_part(config, dist, cache, part, number, fold_dir, backup(fold_dir), status, stop)
                fold_metrics.append(read_json(fold_dir / "metrics.json"))
            if dist.is_chief:
                _finish_cv(run_dir, cache.genres, fold_metrics, len(parts))
        if dist.is_chief:
            status.write("evaluating", message="calibrating the confidences on the validation songs")
            calibrate_run(run_dir, cache)
        status.write("finished")
    except TrainingCancelled:
        status.write("cancelled", message="cancelled; resume with: python -m genre train --resume " + str(run_dir))
        raise
    except BaseException as error:
        status.write("failed", message=f"{type(error).__name__}: {error}")
        raise
    finally:
        restore_stop_handler(stop)
    return run_dir


def check_dataset(
    run_dir: Path, cache: Songs, manifest: dict, parts: tuple[str, ...] = ("train", "valid", "test")
) -> None:
    """Refuse a dataset that is not the one the run was split from: other genres (the label
    indices would shift) or songs of the split's ``parts`` missing."""
    genres = read_json(Path(run_dir) / "genres.json")
    if not genres:
        raise DatasetError(f"{run_dir} is not a complete run folder (no genres.json)")
    if cache.genres != genres:
        raise DatasetError(f"the dataset's genres {cache.genres} differ from the run's {genres}")
    wanted = {t for part in fold_parts(manifest) for name in parts for t in part.get(name, [])}
    missing = sorted(wanted - set(cache.track_ids))
    if missing:
        raise DatasetError(f"{len(missing)} songs of the run's split are not in the dataset, e.g. {missing[0]}")


def _train_part(
    config: TrainConfig,
    dist: Distribution,
    cache: Songs,
    part: dict,
    fold: int | None,
    out_dir: Path,
    backup: Path,
    status: StatusFile,
    stop: StopFlag,
) -> None:
    import keras
    from sklearn.utils.class_weight import compute_class_weight

    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    train_windows = WindowSet.for_tracks(cache, part["train"])
    valid_windows = WindowSet.for_tracks(cache, part["valid"])
    audit({"train": part["train"], "valid": part["valid"], "test": part["test"]}, train_windows.track_ids)

    n_genres = len(cache.genres)
    class_weight = None
    if config.balance:
        present = np.unique(train_windows.labels)
        weights = compute_class_weight("balanced", classes=present, y=train_windows.labels)
        class_weight = {int(c): float(w) for c, w in zip(present, weights)}

    spec = get_spec(config.model)
    # config.batch_size is per replica: the pipeline yields global batches, which the strategy
    # splits among its replicas, evenly (each pass feeds a multiple of the replicas).
    replicas = dist.replicas
    batch_size = config.batch_size * replicas
    with dist.scope():
        # One replica's BatchNorm statistics would see only its share of each batch.
        model = build_model(
            config.model, n_genres, config.mixed_precision, synchronized=replicas > 1, genres=cache.genres
        )
    trained = model
    if config.shards and spec.frozen is None:
        # The windows stream from the shards, the class weights in them as sample weights.
        train_data, valid_data, batches = _shard_input(config, dist, cache.manifest, fold, n_genres, class_weight)
        class_weight = None
    else:
        fed = fed_windows(len(train_windows), replicas)
        if len(valid_windows) > fed_windows(len(valid_windows), replicas, "validation"):
            log.info(
                "validation on %d replicas leaves out its last %d windows", replicas, len(valid_windows) % replicas
            )
        if spec.frozen is None:
            make_train = lambda share=(0, 1): train_windows.dataset(  # noqa: E731
                n_genres,
                batch_size,
                shuffle=True,
                augment=config.augment,
                seed=config.seed,
                multiple=replicas,
                share=share,
            )

            def make_valid(share=(0, 1)):
                return valid_windows.dataset(n_genres, batch_size, multiple=replicas, share=share)
        else:
            # Only the head trains: it learns from the frozen part's features, computed once.
            frozen, trained = model.layers[1], model.layers[2]
            store = FeatureStore(
                cache, frozen, variants=spec.feature_variants if config.augment else 1, seed=config.seed
            )

            def feature_progress(done: int, total: int) -> None:
                if stop.requested:
                    raise TrainingCancelled("training was cancelled")
                status.write(
                    "running",
                    throttle=1.0,
                    epoch=0,
                    batch=0,
                    message=f"computing the pretrained part's features once: {done} of {total} songs x recordings",
                )

            store.ensure(
                [int(i) for i in np.unique(np.concatenate([train_windows.song, valid_windows.song]))], feature_progress
            )
            status.fields.pop("message", None)
            make_train = lambda share=(0, 1): store.dataset(  # noqa: E731
                train_windows,
                n_genres,
                batch_size,
                shuffle=True,
                augment=config.augment,
                seed=config.seed,
                multiple=replicas,
                share=share,
            )

            def make_valid(share=(0, 1)):
                return store.dataset(valid_windows, n_genres, batch_size, multiple=replicas, share=share)

        batches = -(-fed // batch_size)
        if dist.resolved == "multi-worker":
            train_data = per_replica_input(dist, make_train, class_weight)
            valid_data = per_replica_input(dist, make_valid) if len(valid_windows) else None
            class_weight = None  # now in the input, as sample weights
        else:
            train_data = make_train()
            valid_data = make_valid() if len(valid_windows) else None
    with dist.scope():
        trained.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
    status.begin_part(config.epochs, batches)
    callbacks = [
        # History first: a kill between the two then leaves the checkpoint behind the history,
        # and the resume rewrites the epoch, rather than a checkpoint ahead of a gap.
        HistoryFile(out_dir / "history.json"),
        AtomicBackupAndRestore(str(backup)),
        # The whole model is saved (raw audio in), also when only its head trains.
        BestModel(out_dir / "model.keras", monitor="val_loss" if valid_data is not None else "loss", whole=model),
        ProgressCallback(status, stop),
    ]
    with _one_line_errors(config, dist):
        trained.fit(
            train_data,
            validation_data=valid_data,
            epochs=config.epochs,
            class_weight=class_weight,
            shuffle=False,  # the dataset reshuffles itself each epoch
            callbacks=callbacks,
            verbose=0,
        )
    if dist.is_chief:
        # Only this process writes the run folder (a mirrored run is one process; of a
        # multi-worker run, the chief). The best model is loaded outside the strategy's scope and
        # evaluation calls it directly, never predict*(): under a strategy those return one copy
        # of the rows per replica, and under multi-worker they would wait on the other workers.
        best = load_model(out_dir / "model.keras")
        status.write("evaluating")
        write_json(out_dir / "metrics.json", evaluate(best, cache, part["test"]))
    with _one_line_errors(config, dist):
        # The other workers wait for the chief's evaluation here, not in the next fold's first
        # collective, whose timeout is for a step, not for evaluating a test part.
        dist.wait_for_all()


@contextmanager
def _one_line_errors(config: TrainConfig, dist: Distribution):
    """TensorFlow's errors of a damaged shard file or a lost worker, as one line each (its
    messages are many lines of ops; their first line names the file or the worker)."""
    errors = tf_errors()
    try:
        yield
    except (errors.DataLossError, errors.NotFoundError) as error:
        if not config.shards:
            raise
        first = str(error).strip().splitlines()[0]
        # TensorFlow's line often names no file ("Graph execution error:"): the digests do.
        damaged = damaged_files(
            config.shards, read_json(Path(config.shards) / "shards.json") or {"shards": {}}, digest=True
        )
        which = f"damaged: {', '.join(damaged)}; " if damaged else ""
        raise ShardError(
            f"reading the shards in {config.shards} failed ({which}{first}); shard the dataset again, or resume "
            f"once they are whole"
        ) from error
    except (errors.UnavailableError, errors.DeadlineExceededError, errors.AbortedError) as error:
        if dist.resolved != "multi-worker":
            raise
        first = str(error).strip().splitlines()[0]
        raise WorkerLost(
            f"a worker of this multi-worker run failed or stopped, so every worker stops ({first}); "
            "the run can be resumed with --resume"
        ) from error


def _shard_input(
    config: TrainConfig, dist: Distribution, manifest: dict, fold: int | None, n_genres: int, class_weight: dict | None
):
    """The training and validation (None without validation songs) input read from
    ``config.shards`` (``genre.data.shards``), and the training steps of an epoch. Under multi-worker
    each worker reads its own shard files (``per_worker_input``)."""
    from ..data.shards import shard_dataset

    plans = _shard_plans(config, dist, manifest, fold)

    def make(part: str, worker: int):
        training = part == "train"
        return shard_dataset(
            config.shards,
            part,
            n_genres,
            _fed_batch(config, dist),
            shuffle=training,
            augment=training and config.augment,
            seed=config.seed,
            worker_index=worker,
            num_workers=dist.num_workers,
            fold=fold,
            multiple=dist.local_replicas,
            class_weight=class_weight if training else None,
            manifest=manifest,
        )

    if dist.resolved == "multi-worker":
        log.info(
            "multi-worker shards: worker %d feeds %d of its %d training windows an epoch",
            dist.worker_index,
            plans["train"].fed,
            plans["train"].windows,
        )
        inputs = {part: per_worker_input(dist, lambda worker, part=part: make(part, worker)) for part in plans}
    else:
        inputs = {part: make(part, 0) for part in plans}
    return inputs["train"], inputs.get("valid"), plans["train"].steps


def _shard_plans(config: TrainConfig, dist: Distribution, manifest: dict, fold: int | None) -> dict:
    """This worker's :class:`~genre.data.shards.ShardPlan` of each part it trains or validates on;
    :class:`~genre.data.shards.ShardError` when a part cannot feed one step."""
    from ..data.shards import shard_plan

    parts = ["train"] + (["valid"] if fold_parts(manifest["split"])[(fold or 1) - 1]["valid"] else [])
    return {
        part: shard_plan(
            manifest, part, _fed_batch(config, dist), dist.worker_index, dist.num_workers, fold, dist.local_replicas
        )
        for part in parts
    }


def _fed_batch(config: TrainConfig, dist: Distribution) -> int:
    """The batch a shard input feeds: one process, global batches that the strategy splits among
    its replicas; several workers, each one replica's batch."""
    return config.batch_size * (dist.local_replicas if dist.num_workers == 1 else 1)


def tf_errors():
    """``tf.errors``, loaded when needed."""
    import tensorflow as tf

    return tf.errors


class WorkerLost(GenreError):
    """Another worker of a multi-worker run died, stopped or timed out."""


def backup_dir(out_dir: Path, created: str) -> Path:
    """Where a run's resume checkpoint lives: in the cache folder, not in ``models/``, so that
    the repository never holds checkpoints and a resume survives a fresh checkout of it.

    The key includes the run's creation time: a new run in a reused folder must never resume
    from an old run's checkpoint (which may have trained on this run's test songs)."""
    from ..data.dataset import default_cache_root

    key = hashlib.sha256(f"{out_dir.resolve()}|{created}".encode()).hexdigest()[:12]
    return default_cache_root() / "backups" / f"{out_dir.name}-{key}"


def _finish_cv(run_dir: Path, genres: list[str], fold_metrics: list[dict], folds: int) -> None:
    """Pool the folds' test songs; serve the fold model with the lowest validation loss; average
    the folds' curves epoch by epoch for the history page."""
    pooled = pool_metrics(genres, fold_metrics)
    pooled["multi_artist"] = multi_artist_figures(genres, pooled["songs"], artist_index())
    write_json(run_dir / "metrics.json", pooled)
    histories = [read_json(run_dir / f"fold-{k}" / "history.json", []) for k in range(1, folds + 1)]
    best = min(range(folds), key=lambda k: min((e.get("val_loss", e["loss"]) for e in histories[k]), default=np.inf))
    with atomic_path(run_dir / "model.keras", suffix=".keras") as tmp:
        shutil.copyfile(run_dir / f"fold-{best + 1}" / "model.keras", tmp)
    epochs = min(len(h) for h in histories)
    mean_history = [
        {key: float(np.mean([h[e][key] for h in histories])) for key in histories[0][e] if key != "epoch"}
        | {"epoch": e + 1}
        for e in range(epochs)
    ]
    write_json(run_dir / "history.json", mean_history)
    config = read_json(run_dir / "config.json")
    config["served_fold"] = best + 1
    write_json(run_dir / "config.json", config)


def _describe(config: TrainConfig, cache: Songs, manifest: dict, dist: Distribution) -> dict:
    import keras

    model = build_model(config.model, len(cache.genres), config.mixed_precision, genres=cache.genres)
    return {
        "train": asdict(config),
        "model": config.model,
        "description": get_spec(config.model).description,
        "parameters": int(model.count_params()),
        "protocol": config.protocol,
        "data_root": str(Path(config.data_root).expanduser().resolve()),
        "shards": config.shards,
        "dataset_tracks": len(cache.track_ids),
        "dataset_failed": len(cache.failed),
        "genres": cache.genres,
        "songs": {name: len(p) for name, p in fold_parts(manifest)[0].items() if name in ("train", "valid", "test")}
        if "folds" not in manifest
        else {"folds": len(manifest["folds"]), "total": len(cache.track_ids)},
        "sample_rate": SAMPLE_RATE,
        "window": WINDOW,
        "seed": config.seed,
        # train.strategy is what was asked for; this is what it came to on the host that started it.
        "distribution": dist.describe() | {"global_batch_size": config.batch_size * dist.replicas},
        "genre_version": __version__,
        "keras_version": keras.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
