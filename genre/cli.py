"""``python -m genre``: cache a dataset, shard it, train, evaluate, classify, list and activate
runs, download GTZAN. A :class:`GenreError` or an ``OSError`` is one line on stderr and exit
code 2 (3 for a cancelled training run); any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .data.dataset import DATA_ENV, DatasetError
from .errors import GenreError, TrainingCancelled
from .train.config import DEFAULTS, STRATEGIES


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TrainingCancelled as error:
        print(f"genre: {error}; the run can be resumed with --resume", file=sys.stderr)
        return 3
    except GenreError as error:
        if args.verbose:
            raise
        print(f"genre: error: {str(error) or type(error).__name__}", file=sys.stderr)
        return 2
    except OSError as error:
        if args.verbose:
            raise
        print(f"genre: error: {_os_error_line(error)}", file=sys.stderr)
        return 2


def _os_error_line(error: OSError) -> str:
    """The file and what went wrong with it (a full disk says which file it could not write)."""
    if error.filename and error.strerror:
        return (
            f"cannot write {error.filename}: {error.strerror}"
            if error.errno == errno.ENOSPC
            else f"{error.filename}: {error.strerror}"
        )
    return str(error) or type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    from .data.splits import PROTOCOLS
    from .models.registry import REGISTRY
    from .train.distribute import CONNECT_TIMEOUT

    prog = "genre" if Path(sys.argv[0]).name == "genre" else "python -m genre"  # the console script, or -m
    parser = argparse.ArgumentParser(
        prog=prog, description="Music-genre classification: cache a dataset, train, evaluate, classify, manage runs."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_help = f"dataset folder <root>/<genre>/<files> (default: ${DATA_ENV})"

    scan = commands.add_parser("scan", help="decode a dataset into the cache and summarise it")
    scan.add_argument("data", nargs="?", default=os.environ.get(DATA_ENV), help=data_help)
    scan.set_defaults(handler=cmd_scan)

    shard = commands.add_parser(
        "shard", help="decode a dataset once into TFRecord shards of its split's parts, for data beyond memory"
    )
    shard.add_argument("data", nargs="?", default=os.environ.get(DATA_ENV), help=data_help)
    shard.add_argument("--out", required=True, help="folder for the shards and their shards.json")
    shard.add_argument(
        "--protocol", default=DEFAULTS["protocol"], choices=PROTOCOLS, help="song split protocol (default: %(default)s)"
    )
    shard.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="random seed of the split (default: %(default)s)"
    )
    shard.add_argument(
        "--test-fraction",
        type=_fraction,
        default=DEFAULTS["test_fraction"],
        help="stratified: share of songs held out for test (default: %(default)s)",
    )
    shard.add_argument(
        "--val-fraction",
        type=_fraction,
        default=DEFAULTS["val_fraction"],
        help="share of training songs kept for validation (default: %(default)s)",
    )
    shard.add_argument(
        "--folds", type=_positive_int, default=DEFAULTS["folds"], help="cv: number of folds (default: %(default)s)"
    )
    shard.add_argument(
        "--songs-per-shard", type=_positive_int, default=None, help="songs in each shard file (default: 100)"
    )
    shard.set_defaults(handler=cmd_shard)

    train = commands.add_parser("train", help="train a model; writes a run folder under models/")
    train.add_argument("--data", default=os.environ.get(DATA_ENV), help=data_help)
    train.add_argument(
        "--model", default=DEFAULTS["model"], choices=sorted(REGISTRY), help="model to train (default: %(default)s)"
    )
    train.add_argument(
        "--shards",
        metavar="DIR",
        help="train from the TFRecord shards in DIR (python -m genre shard) instead of --data, streaming the windows; "
        "the split is the shards' own",
    )
    train.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help=f"song split protocol (default: {DEFAULTS['protocol']}; with --shards, theirs)",
    )
    train.add_argument("--epochs", type=_positive_int, help="epochs (default: the model's recipe)")
    train.add_argument(
        "--batch",
        type=_positive_int,
        dest="batch_size",
        help="batch size per replica: the global batch is this times the replicas (default: the model's recipe)",
    )
    train.add_argument(
        "--lr",
        type=float,
        dest="learning_rate",
        help="Adam learning rate, not scaled with the replicas; for linear scaling pass the recipe's rate times the "
        "replicas (default: the model's recipe)",
    )
    train.add_argument(
        "--seed",
        type=int,
        help=f"random seed of the split and the training (default: {DEFAULTS['seed']}; with --shards, theirs)",
    )
    train.add_argument(
        "--test-fraction",
        type=_fraction,
        help=f"stratified: share of songs held out for test (default: {DEFAULTS['test_fraction']}; with --shards, "
        f"theirs)",
    )
    train.add_argument(
        "--val-fraction",
        type=_fraction,
        help=f"share of training songs kept for validation; 0 trains on all (default: {DEFAULTS['val_fraction']}; "
        f"with --shards, theirs)",
    )
    train.add_argument(
        "--folds", type=_positive_int, help=f"cv: number of folds (default: {DEFAULTS['folds']}; with --shards, theirs)"
    )
    train.add_argument(
        "--mixed-precision",
        action="store_true",
        help="train in mixed bfloat16: seed's steps 1.5x faster on a CPU with AVX512-BF16 or AMX (emulated and "
        "slower on "
        "others); not the default, as a seed run in it scored 4 test songs below float32 (RESULTS.md)",
    )
    train.add_argument(
        "--no-balance", dest="balance", action="store_false", help="do not weight genres by inverse frequency"
    )
    train.add_argument(
        "--no-augment", dest="augment", action="store_const", const=False, help="no random window offsets or gain"
    )
    train.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="how training spreads over devices: none (one device), mirrored (a copy of the model on every GPU of "
        "this host, batches split among them, BatchNorm statistics synchronised), multi-worker (the same across the "
        "hosts TF_CONFIG describes; only the chief writes the run folder), auto (multi-worker when TF_CONFIG is set, "
        "else mirrored when more than one GPU is visible, else none) (default: auto; with --resume, the run's own, "
        "unless one is given)",
    )
    train.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=CONNECT_TIMEOUT,
        metavar="SECONDS",
        help="multi-worker: how long this worker waits, once its dataset is loaded, for the other workers of TF_CONFIG "
        "to start before it gives up with exit status 2 (default: %(default)g; not kept in the run's config)",
    )
    train.add_argument("--models-dir", default=None, help="where run folders go (default: models/)")
    train.add_argument("--run-id", help="name of the run folder (default: <model>-<protocol>-<time>)")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="resume the interrupted run in RUN_DIR (other options but --strategy, --connect-timeout and --shards, "
        "for shards "
        "that moved, are ignored)",
    )
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("evaluate", help="re-evaluate a run on its test songs and rewrite metrics.json")
    evaluate.add_argument("run", help="run folder")
    evaluate.add_argument("--data", help="dataset folder (default: the one the run was trained on, or its shards)")
    evaluate.add_argument(
        "--shards", help="the run's shards, if they moved (default: where the run was trained from them)"
    )
    evaluate.set_defaults(handler=cmd_evaluate)

    calibrate = commands.add_parser(
        "calibrate", help="fit a run's confidence calibration on its validation songs (writes calibration.json)"
    )
    calibrate.add_argument("run", help="run folder")
    calibrate.add_argument(
        "--data", default=None, help="the dataset the run was trained on (default: the folder its config names)"
    )
    calibrate.set_defaults(handler=cmd_calibrate)

    classify = commands.add_parser("classify", help="classify audio files with a trained run")
    classify.add_argument("files", nargs="+", help="audio files (wav, au, flac, ogg, mp3)")
    classify.add_argument("--run", help="run folder (default: the active run)")
    classify.add_argument("--windows", action="store_true", help="also print each window's top genre")
    classify.set_defaults(handler=cmd_classify)

    library = commands.add_parser(
        "library",
        help="classify every audio file under folders; CSV/JSON results, resumable; genre tags written safely",
    )
    library.add_argument(
        "folders", nargs="*", metavar="DIR", help="folders to walk recursively (linked folders are not entered)"
    )
    library.add_argument(
        "--out",
        help="results file, .csv or .json; its cache (<stem>.library.jsonl) beside it makes a second call classify "
        "only new files",
    )
    library.add_argument("--run", help="run folder (default: the active run)")
    library.add_argument(
        "--write-tags",
        action="store_true",
        help="set the genre tag of files above --min-confidence: a dry run that prints the changes, unless --apply",
    )
    library.add_argument(
        "--apply",
        action="store_true",
        help="with --write-tags: really write, after saving the original tags to a journal beside --out",
    )
    library.add_argument(
        "--min-confidence",
        type=_fraction,
        default=None,
        help="tag only files whose genre's mean probability is at least this (default: "
        "genre.serve.tags.DEFAULT_MIN_CONFIDENCE, 0.5)",
    )
    library.add_argument(
        "--restore-tags",
        metavar="JOURNAL",
        help="put back the genre tags a --write-tags --apply journal recorded, and exit",
    )
    library.add_argument("--threads", type=_positive_int, default=2, help="decoding threads (default: %(default)s)")
    library.add_argument("--progress-file", help=argparse.SUPPRESS)  # the dashboard's job reads it
    library.set_defaults(handler=cmd_library)

    runs = commands.add_parser("runs", help="list trained runs")
    runs.add_argument("--models-dir", default=None, help="folder of runs (default: models/)")
    runs.set_defaults(handler=cmd_runs)

    activate = commands.add_parser("activate", help="make a run the one the dashboard serves")
    activate.add_argument("run_id", help="run folder name under models/")
    activate.add_argument("--models-dir", default=None, help="folder of runs (default: models/)")
    activate.set_defaults(handler=cmd_activate)

    compare = commands.add_parser("compare", help="compare two runs on their stored test results")
    compare.add_argument("run_a", metavar="RUN_A", help="run id under models/, or a run folder")
    compare.add_argument("run_b", metavar="RUN_B", help="run id under models/, or a run folder")
    compare.add_argument("--models-dir", default=None, help="folder of runs (default: models/)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(handler=cmd_compare)

    song_map = commands.add_parser(
        "map", help="compute a run's song map (PCA of its songs' penultimate activations) into its folder"
    )
    song_map.add_argument("run", metavar="RUN", help="run id under models/, or a run folder")
    song_map.add_argument(
        "--data", default=None, help="the dataset the run was trained on (default: the folder its config names)"
    )
    song_map.add_argument("--models-dir", default=None, help="folder of runs (default: models/)")
    song_map.set_defaults(handler=cmd_map)

    download = commands.add_parser("download", help="download a dataset (gtzan), verified and safely unpacked")
    download.add_argument("dataset", choices=["gtzan"], help="dataset to download")
    download.add_argument("--to", default=None, help="folder to put it in (default: the user data folder)")
    download.add_argument(
        "--url", default=None, help="mirror URL (default: $GENRE_GTZAN_URL or the Hugging Face mirror)"
    )
    download.add_argument(
        "--md5", default=None, help="expected md5 of the archive (default: $GENRE_GTZAN_MD5 or GTZAN's)"
    )
    download.add_argument(
        "--progress-file",
        default=None,
        help="keep {done, total, updated} (bytes) in this JSON file while downloading (for the dashboard)",
    )
    download.set_defaults(handler=cmd_download)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {value}")
    return value


def _need_data(data: str | None) -> str:
    if not data:
        raise DatasetError(f"no dataset folder: pass --data DIR or set ${DATA_ENV}")
    return data


def cmd_scan(args) -> None:
    from collections import Counter

    from .data.dataset import load_dataset

    started = time.perf_counter()
    cache = load_dataset(_need_data(args.data))
    seconds = time.perf_counter() - started
    counts = Counter(t.split("/")[0] for t in cache.track_ids)
    print(
        f"{len(cache)} tracks, {len(cache.genres)} genres, {cache.lengths.sum() / cache.sample_rate / 3600:.2f} h "
        f"of audio ({seconds:.1f} s)"
    )
    for genre in cache.genres:
        print(f"  {genre:12s} {counts[genre]:5d}")
    print(f"cache: {cache.folder}")
    for track_id, reason in sorted(cache.failed.items()):
        print(f"  skipped {track_id}: {reason}")


def cmd_shard(args) -> None:
    from .data.shards import SONGS_PER_SHARD, write_shards
    from .train.config import TrainConfig

    config = TrainConfig(
        data_root=_need_data(args.data),
        protocol=args.protocol,
        seed=args.seed,
        test_fraction=args.test_fraction,
        val_fraction=args.val_fraction,
        folds=args.folds,
    ).check()
    manifest, written = write_shards(
        config.data_root,
        args.out,
        protocol=config.protocol,
        seed=config.seed,
        test_fraction=config.test_fraction,
        val_fraction=config.val_fraction,
        folds=config.folds,
        songs_per_shard=args.songs_per_shard or SONGS_PER_SHARD,
    )
    print(f"{args.out}: {'written' if written else 'already holds these shards; left as they are'}")
    for part, shards in manifest["shards"].items():
        songs = sum(len(s["songs"]) for s in shards)
        windows = sum(s["windows"] for s in shards)
        print(f"  {part:6s} {songs:6d} songs {windows:8d} windows in {len(shards)} file(s)")


def cmd_train(args) -> None:
    """Until training installs its own handler (which stops after the current batch), a cancel
    (SIGTERM) stops at once, and the job lock is released on the way out instead of left behind."""

    def cancel(signum, frame):
        raise TrainingCancelled("training was cancelled")

    try:
        previous = signal.signal(signal.SIGTERM, cancel)
    except ValueError:  # not the main thread: signals are not ours to handle
        return _train(args)
    try:
        return _train(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train(args) -> None:
    from .jobs.jobs import JOB_ENV, training_lock
    from .jobs.runs import check_run_id
    from .train.config import TrainConfig, run_id_stem
    from .train.distribute import writes_run_folder
    from .train.training import train

    if args.resume:
        from .jobs.runs import check_resumable, load_run

        run_dir = Path(args.resume)
        check_run_id(run_dir.name)

        def resumed_strategy(own: str) -> str:
            # Without --strategy the run keeps its own; one given, auto included, replaces it.
            return own if args.strategy is None else args.strategy

        def resumed() -> TrainConfig:
            config = TrainConfig.from_dict(check_resumable(run_dir).config["train"])
            config.models_dir, config.run_id = str(run_dir.parent), run_dir.name
            # --strategy is about this start's hosts and devices: a multi-worker run that lost a
            # worker can finish on one host.
            config.strategy = resumed_strategy(config.strategy)
            if args.shards:  # the run's shards, moved
                config.shards = str(Path(args.shards).expanduser().resolve())
            return config

        saved = load_run(run_dir).config.get("train")
        if not writes_run_folder(resumed_strategy((saved or {}).get("strategy", DEFAULTS["strategy"]))):
            # A multi-worker run's other worker: it writes nothing in models/, nor locks it.
            train(resumed(), connect_timeout=args.connect_timeout)
            return
        with training_lock(run_dir.parent, run_dir, sys.argv[1:], saved):
            _print_metrics(train(resumed(), connect_timeout=args.connect_timeout))
        return
    from .jobs.runs import default_models_dir

    config = TrainConfig(
        **_data_and_split(args),
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        mixed_precision=args.mixed_precision,
        balance=args.balance,
        augment=args.augment,
        models_dir=args.models_dir or str(default_models_dir()),
        run_id=check_run_id(args.run_id) if args.run_id else None,
        strategy=args.strategy or DEFAULTS["strategy"],
    ).check()
    models_dir = Path(config.models_dir)
    stem = config.run_id or run_id_stem(config.model, config.protocol)
    if not writes_run_folder(config.strategy):
        config.run_id = stem
        # A multi-worker run's other worker: it writes nothing in models/, nor locks it.
        train(config, connect_timeout=args.connect_timeout)
        return
    config.run_id, created = _new_run_folder(models_dir, stem, numbered=not args.run_id, job=os.environ.get(JOB_ENV))
    try:
        with training_lock(models_dir, models_dir / config.run_id, sys.argv[1:], asdict(config)):
            run_dir = train(config, connect_timeout=args.connect_timeout)
    except BaseException:
        folder = models_dir / config.run_id
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # refused or failed before anything was written: leave no empty run
        raise
    _print_metrics(run_dir)


# train's options that choose the split: without --shards, the defaults fill the ones not given.
SPLIT_OPTIONS = ("protocol", "seed", "test_fraction", "val_fraction", "folds")


def _data_and_split(args) -> dict:
    """``train``'s dataset and split settings: from --data and the options given (the defaults
    for the others), or, with --shards, the shards' own, where an option given must agree."""
    given = {name: getattr(args, name) for name in SPLIT_OPTIONS if getattr(args, name) is not None}
    if not args.shards:
        return {"data_root": _need_data(args.data)} | {name: DEFAULTS[name] for name in SPLIT_OPTIONS} | given
    if args.data and args.data != os.environ.get(DATA_ENV):
        raise DatasetError("pass --data or --shards, not both: the shards hold their dataset")
    from .data.shards import read_manifest
    from .data.splits import split_settings

    manifest = read_manifest(args.shards)
    # Settings given that differ from the shards' are refused by training, with the shards' values.
    return {"data_root": manifest["data_root"], "shards": args.shards} | split_settings(manifest["split"]) | given


def _new_run_folder(models_dir: Path, stem: str, numbered: bool, job: str | None) -> tuple[str, bool]:
    """Create the run folder exclusively, so two runs never share one; a default name gets
    ``-2``, ``-3``... when taken. A dashboard job's folder was made by the dashboard (under its
    lock) and holds only its log so far. Returns the run id and whether this call made it."""
    models_dir.mkdir(parents=True, exist_ok=True)
    candidate, n = stem, 1
    while True:
        target = models_dir / candidate
        try:
            target.mkdir()
            return candidate, True
        except FileExistsError:
            if job and not numbered and not (target / "config.json").exists():
                return candidate, False
            if not numbered:
                raise FileExistsError(f"run {target} exists; use --resume {target} or another --run-id") from None
        n += 1
        candidate = f"{stem}-{n}"


def cmd_evaluate(args) -> None:
    from .data.dataset import load_dataset
    from .data.splits import audit
    from .files import read_json, write_json
    from .jobs.runs import RunError
    from .serve.evaluation import evaluate
    from .serve.prediction import load_model
    from .train.training import check_dataset

    run_dir = Path(args.run)
    config = read_json(run_dir / "config.json")
    manifest = read_json(run_dir / "split.json")
    if config is None or manifest is None or not (run_dir / "model.keras").is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a trained run folder (it needs config.json, split.json and model.keras)"
        )
    if "folds" in manifest:
        raise RunError("a cross-validation run is evaluated fold by fold during training; re-run it to re-evaluate")
    audit(manifest)
    shards = args.shards or (config.get("train") or {}).get("shards")
    if shards and not args.data:
        from .data.shard_songs import ShardSongs

        cache = ShardSongs(shards)
    else:
        cache = load_dataset(args.data or config["data_root"])
    check_dataset(run_dir, cache, manifest, parts=("test",))
    write_json(run_dir / "metrics.json", evaluate(load_model(run_dir / "model.keras"), cache, manifest["test"]))
    _print_metrics(run_dir)


def _print_metrics(run_dir: Path) -> None:
    from .files import read_json

    m = read_json(run_dir / "metrics.json", {})
    print(f"run: {run_dir}")
    if m:
        print(
            f"test songs {m['test_songs']}: song accuracy {m['song_accuracy_vote']:.1%} (vote), "
            f"{m['song_accuracy_mean']:.1%} (mean probability); window accuracy {m['window_accuracy']:.1%}; "
            f"balanced {m['song_balanced_accuracy']:.1%}; macro F1 {m['song_macro_f1']:.3f}"
        )


def cmd_calibrate(args) -> None:
    from .serve.calibration import calibrate_run

    result = calibrate_run(args.run, data_root=args.data)
    print(
        f"{args.run}: temperature {result['temperature']:.3f}, uncertain below a {result['margin_threshold']:.0%} lead "
        f"(fitted on {result['songs']} {result['fitted_on']} songs, {result['windows']} windows)"
    )


def cmd_classify(args) -> None:
    from .audio.decode import AudioError, native_stderr_silenced
    from .jobs.runs import MODELS_ENV, active_run_id, default_models_dir
    from .serve.prediction import Classifier

    run = args.run
    if run is None:
        run_id = active_run_id()
        if run_id is None:
            raise FileNotFoundError(
                f"no active run in {default_models_dir()}; pass --run RUN_FOLDER, set ${MODELS_ENV} to a folder of "
                f"runs "
                "(a checkout's models/), or train one with: genre train --data DIR"
            )
        run = default_models_dir() / run_id
    classifier = Classifier.load(run)
    failures = 0
    for file in args.files:
        if Path(file).is_dir():
            print(
                f"genre: error: {file}: a folder, not an audio file; name the files in it "
                f"(e.g. {Path(file) / '*.wav'})",
                file=sys.stderr,
            )
            failures += 1
            continue
        try:
            with native_stderr_silenced():
                result = classifier.classify(file)
        except AudioError as error:
            print(f"genre: error: {error}", file=sys.stderr)
            failures += 1
            continue
        winner = result.genres.index(result.vote_genre)
        ranking = result.calibrated_ranking()
        top = ", ".join(f"{g} {p:.0%}" for g, p in ranking[:3])
        doubt = f"; uncertain: {ranking[0][0]} or {ranking[1][0]}" if result.uncertain else ""
        print(
            f"{file}: {result.vote_genre} ({result.votes[winner]}/{len(result.starts)} windows); mean probability: "
            f"{top}{doubt}"
        )
        if args.windows:
            for start, p in zip(result.starts, result.probabilities):
                print(f"  {start:6.1f}s  {result.genres[int(p.argmax())]:10s} {p.max():.0%}")
    return 2 if failures else 0


def cmd_library(args) -> int:
    from .serve import library, tags

    if args.restore_tags:
        restored = tags.restore(args.restore_tags)
        for change in restored:
            print(
                f"{change.path}: {change.skipped}"
                if change.skipped
                else f"{change.path}: genre back to {change.new or '(none)'}"
            )
        print(f"{sum(c.skipped is None for c in restored)} of {len(restored)} files restored")
        return 2 if any(c.skipped for c in restored) else 0
    if not args.folders or not args.out:
        raise library.LibraryError("give one or more folders and --out results.csv|.json (or --restore-tags JOURNAL)")
    if args.apply and not args.write_tags:
        raise library.LibraryError("--apply writes tags only with --write-tags")
    out = Path(args.out)
    library.check_output(out)
    for folder in args.folders:
        if not Path(folder).is_dir():
            raise library.LibraryError(f"{folder}: no such folder")
    classifier, run_id = _load_classifier(args.run)
    on_progress = None
    if args.progress_file:
        from .files import write_json

        def on_progress(done: int, total: int) -> None:
            write_json(args.progress_file, {"done": done, "total": total, "updated": time.time()})

    stop = {"asked": False}

    def ask_stop(signum, frame):
        stop["asked"] = True

    signal.signal(signal.SIGTERM, ask_stop)
    result = library.scan(
        args.folders,
        out,
        classifier,
        run_id,
        on_progress=on_progress,
        progress_bar=sys.stderr.isatty() or not args.progress_file,
        threads=args.threads,
        should_stop=lambda: stop["asked"],
    )
    rows = result.rows
    if args.progress_file and not stop["asked"]:
        from .files import write_json

        write_json(
            args.progress_file, {"done": len(rows), "total": result.found, "finished": True, "updated": time.time()}
        )
    errors = [r for r in rows if r.error]
    for row in errors:
        print(f"genre: {row.path}: {row.error}", file=sys.stderr)
    print(
        f"{len(rows) - len(errors)} files classified, {len(errors)} could not be read ({result.classified} new, "
        f"{len(rows) - result.classified} from earlier results); results in {out}"
    )
    if stop["asked"]:
        print("genre: the scan was cancelled; run it again to classify the rest", file=sys.stderr)
        return 3
    if args.write_tags:
        _write_tags(rows, out, args)
    return 0


def _load_classifier(run: str | None):
    from .jobs.runs import MODELS_ENV, active_run_id, default_models_dir
    from .serve.prediction import Classifier

    if run is None:
        run_id = active_run_id()
        if run_id is None:
            raise FileNotFoundError(
                f"no active run in {default_models_dir()}; pass --run RUN_FOLDER, set ${MODELS_ENV} to a folder of "
                f"runs "
                "(a checkout's models/), or train one with: genre train --data DIR"
            )
        run = default_models_dir() / run_id
    return Classifier.load(run), Path(run).resolve().name


def _write_tags(rows, out: Path, args) -> None:
    from .serve import library, tags

    threshold = tags.DEFAULT_MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    changes = tags.plan(rows, threshold)
    todo = [c for c in changes if c.skipped is None]
    verb = "set" if args.apply else "would set"
    if args.apply and todo:
        journal = tags.journal_path(out)
        tags.write_tags(changes, journal)
        done = {c.path for c in todo if c.skipped is None}
        updated = []
        for row in rows:  # the tag write changed size and mtime, not the audio: keep the result
            if row.path in done:
                st = os.stat(row.path)
                row.size, row.mtime_ns = st.st_size, st.st_mtime_ns
                updated.append(row)
        library.record(out, updated)
    for change in changes:
        if change.skipped:
            print(f"{change.path}: skipped ({change.skipped})")
        else:
            print(f"{change.path}: {verb} genre {', '.join(change.old) if change.old else '(none)'} -> {change.new}")
    written = sum(c.skipped is None for c in todo)
    if args.apply:
        print(
            f"{written} files tagged"
            + (f"; undo with: python -m genre library --restore-tags {journal}" if todo else "")
        )
    else:
        print(f"dry run: {len(todo)} files would be tagged (confidence >= {threshold:.2f}); add --apply to write them")


def cmd_runs(args) -> None:
    from .jobs.runs import active_run_id, list_runs

    runs = list_runs(args.models_dir)
    if not runs:
        print("no runs; train one with: python -m genre train --data DIR")
        return
    active = active_run_id(args.models_dir)
    for run in runs:
        m = run.metrics or {}
        numbers = f"song {m['song_accuracy_vote']:.1%}  window {m['window_accuracy']:.1%}" if m else run.state_now
        mark = "*" if run.run_id == active else " "
        print(
            f"{mark} {run.run_id:40s} {run.config.get('model', '?'):5s} {run.config.get('protocol', '?'):15s} {numbers}"
        )


def cmd_activate(args) -> None:
    from .jobs.runs import check_run_id, set_active

    check_run_id(args.run_id)
    set_active(args.run_id, args.models_dir)
    print(f"active run: {args.run_id}")


def _run_folder(text: str, models_dir: str | None) -> Path:
    """A run given as a folder path, else as a run id under the models folder."""
    from .jobs.runs import RunError, check_run_id, default_models_dir

    path = Path(text)
    if (path / "config.json").is_file():
        return path
    folder = Path(models_dir) if models_dir else default_models_dir()
    path = folder / check_run_id(text)
    if not (path / "config.json").is_file():
        raise RunError(f"no run {text!r} in {folder}")
    return path


def cmd_compare(args) -> None:
    import json

    from .jobs.compare import compare_runs, comparison_text
    from .jobs.runs import load_run

    comparison = compare_runs(
        load_run(_run_folder(args.run_a, args.models_dir)), load_run(_run_folder(args.run_b, args.models_dir))
    )
    print(json.dumps(comparison.to_dict(), indent=2) if args.json else comparison_text(comparison))


def cmd_map(args) -> None:
    from .jobs.song_map import compute_song_map, save_song_map

    run_dir = _run_folder(args.run, args.models_dir)
    song_map = compute_song_map(run_dir, data_root=args.data, progress=True)
    path = save_song_map(run_dir, song_map)
    counts = {name: song_map.parts.count(name) for name in ("train", "valid", "test")}
    print(
        f"{path}: {len(song_map.track_ids)} songs ({counts['train']} training, {counts['valid']} validation, "
        f"{counts['test']} test); "
        f"PCA fitted on the training songs; the map's two components keep {song_map.explained[:2].sum():.0%} of "
        f"their variance, "
        f"the {len(song_map.explained)} used for nearest songs {song_map.variance_kept:.0%} "
        f"({path.stat().st_size / 1024:.0f} kB)"
    )


def cmd_download(args) -> None:
    from .data.download import default_download_dir, download_gtzan

    to = Path(args.to) if args.to else default_download_dir()
    on_progress = None
    if args.progress_file:
        from .files import write_json

        def on_progress(done: int, total: int | None) -> None:
            write_json(args.progress_file, {"done": done, "total": total, "updated": time.time()})

    folder = download_gtzan(to=to, url=args.url, md5=args.md5, on_progress=on_progress)
    print(f"GTZAN is ready in {folder}\ntrain on it with: python -m genre train --data {folder}")
