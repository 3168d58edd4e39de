"""Training from TFRecord shards (``train --shards``): songs read back one at a time, the same
run folder as from the song cache, evaluation one song at a time from the shards."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genre.cli import main
from genre.data.dataset import load_dataset
from genre.data.shard_songs import ShardSongs
from genre.data.shards import MANIFEST, ShardError, shard_plan, write_shards
from genre.files import read_json

SPLIT = dict(test_fraction=0.34, val_fraction=0.25, seed=1)


@pytest.fixture(scope="module")
def shards(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    write_shards(synth_root, out, songs_per_shard=2, progress=False, **SPLIT)
    return out


def test_shard_songs_are_the_cache_songs_bit_for_bit(synth_root, shards):
    cache, songs = load_dataset(str(synth_root), progress=False), ShardSongs(shards)
    assert songs.track_ids == cache.track_ids and songs.genres == cache.genres and len(songs) == len(cache)
    np.testing.assert_array_equal(songs.labels, cache.labels)
    np.testing.assert_array_equal(songs.lengths, cache.lengths)
    for track_id in reversed(cache.track_ids):  # any order: each song is sought alone
        np.testing.assert_array_equal(songs.song(songs.index_of(track_id)), cache.song(cache.index_of(track_id)))
    assert songs.path_of(cache.track_ids[0]) == cache.path_of(cache.track_ids[0])
    assert songs.folder.is_relative_to(load_dataset.__globals__["default_cache_root"]())


def test_shard_songs_refuse_shards_that_changed_or_are_old(shards, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(shards, changed)
    manifest = json.loads((changed / MANIFEST).read_text())
    entry = manifest["shards"]["train"][0]
    entry["offsets"] = entry["offsets"][::-1]  # each song points at the other's record
    (changed / MANIFEST).write_text(json.dumps(manifest))
    songs = ShardSongs(changed)
    with pytest.raises(ShardError, match=f"holds {entry['songs'][1]} where shards.json puts {entry['songs'][0]}"):
        songs.song(songs.index_of(entry["songs"][0]))
    entry["offsets"] = [1, 3]
    (changed / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="holds no song at byte 1; the shards changed"):
        ShardSongs(changed).song(ShardSongs(changed).index_of(entry["songs"][0]))
    manifest["format"] = 1
    (changed / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="shards of format 1 .*shard again into an empty folder"):
        ShardSongs(changed)


def test_train_refuses_a_split_the_shards_do_not_hold(shards, tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["train", "--shards", str(shards), "--protocol", "cv", "--models-dir", str(models)]) == 2
    err = capsys.readouterr().err
    assert "hold another split: protocol 'cv' (theirs: 'stratified')" in err and err.count("\n") == 1
    assert main(["train", "--shards", str(shards), "--data", str(tmp_path), "--models-dir", str(models)]) == 2
    assert "pass --data or --shards, not both" in capsys.readouterr().err
    assert not models.exists() or not any(p for p in models.iterdir() if not p.name.startswith("."))


def test_a_part_too_small_for_the_workers_is_refused_before_the_run_is_written(shards, tmp_path, monkeypatch):
    from genre.train.config import TrainConfig
    from genre.train.distribute import Distribution
    from genre.train.training import train

    class Workers(Distribution):  # as a 1000-worker cluster would resolve, without one
        resolved, replicas, num_workers, worker_index, is_chief = "multi-worker", 1000, 1000, 0, True

    monkeypatch.setattr("genre.train.training.distribution", lambda *a, **k: Workers("multi-worker", "multi-worker"))
    config = TrainConfig(data_root="unused", shards=str(shards), models_dir=str(tmp_path), run_id="r", **SPLIT)
    with pytest.raises(ShardError, match="cannot give each of 1000 worker"):
        train(config, progress=False)
    assert not (tmp_path / "r").exists()


def test_a_shard_run_resumes_only_from_shards_of_its_own_split(synth_root, shards, tmp_path):
    from genre.train.config import TrainConfig
    from genre.train.training import train

    other = tmp_path / "other-shards"
    write_shards(synth_root, other, songs_per_shard=2, progress=False, **(SPLIT | {"seed": 2}))
    run = tmp_path / "models" / "r"
    run.mkdir(parents=True)
    config = TrainConfig(
        data_root=str(synth_root),
        shards=str(other),
        models_dir=str(run.parent),
        run_id="r",
        seed=2,
        test_fraction=0.34,
        val_fraction=0.25,
    ).resolved()
    # A run started on the first shards, whose folder now holds another split's.
    (run / "config.json").write_text(json.dumps({"train": json.loads(json.dumps(config.__dict__)), "created": "x"}))
    (run / "split.json").write_text(json.dumps(json.loads((shards / MANIFEST).read_text())["split"]))
    with pytest.raises(ShardError, match="hold another split than run r was trained on"):
        train(config, progress=False)


@pytest.mark.slow
def test_a_run_from_shards_writes_what_a_run_from_the_cache_writes(synth_root, shards, tmp_path, capsys):
    from genre.serve.evaluation import evaluate
    from genre.serve.prediction import load_model

    models = tmp_path / "models"
    common = ["--model", "fast", "--epochs", "2", "--batch", "4", "--models-dir", str(models)]
    assert main(["train", "--shards", str(shards), *common, "--run-id", "from-shards"]) == 0
    assert (
        main(
            [
                "train",
                "--data",
                str(synth_root),
                *common,
                "--test-fraction",
                "0.34",
                "--val-fraction",
                "0.25",
                "--run-id",
                "from-cache",
            ]
        )
        == 0
    )
    capsys.readouterr()
    run, other = models / "from-shards", models / "from-cache"
    assert {p.name for p in run.iterdir()} == {p.name for p in other.iterdir()}
    config = read_json(run / "config.json")
    assert config["shards"] == str(shards.resolve()) and config["data_root"] == str(synth_root.resolve())
    assert config["train"]["protocol"] == "stratified" and config["train"]["test_fraction"] == 0.34
    split = read_json(run / "split.json")
    assert split == read_json(other / "split.json") == json.loads((shards / MANIFEST).read_text())["split"]
    manifest = json.loads((shards / MANIFEST).read_text())
    assert read_json(run / "status.json")["batches"] == shard_plan(manifest, "train", 4).batches
    assert [e["epoch"] for e in read_json(run / "history.json")] == [1, 2]
    # Evaluated one song at a time from the shards: the same numbers as from the cache.
    metrics = read_json(run / "metrics.json")
    cache = load_dataset(str(synth_root), progress=False)
    assert metrics == evaluate(load_model(run / "model.keras"), cache, split["test"])
    assert set(metrics["band_limited"]) == {"8000", "11000"}
    # `evaluate` reads the run's shards when no --data is given, or where they moved to.
    (run / "metrics.json").unlink()
    assert main(["evaluate", str(run)]) == 0
    assert read_json(run / "metrics.json") == metrics
    moved = tmp_path / "moved"
    shutil.copytree(shards, moved)
    (run / "metrics.json").unlink()
    assert main(["evaluate", str(run), "--shards", str(moved)]) == 0
    assert read_json(run / "metrics.json") == metrics


def test_a_cut_shard_file_is_named_before_a_run_folder_is_written(shards, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(shards, damaged)
    first = json.loads((damaged / MANIFEST).read_text())["shards"]["train"][0]["file"]
    data = (damaged / first).read_bytes()
    (damaged / first).write_bytes(data[: len(data) // 2])  # cut mid-record
    models = tmp_path / "models"
    assert (
        main(
            [
                "train",
                "--shards",
                str(damaged),
                "--epochs",
                "1",
                "--batch",
                "4",
                "--models-dir",
                str(models),
                "--run-id",
                "r",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"genre: error: shard files in {damaged} are missing or not the size") and first in err
    assert not (models / "r").exists()


def test_a_damaged_shard_file_ends_training_with_one_line_naming_it(shards, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(shards, damaged)
    first = json.loads((damaged / MANIFEST).read_text())["shards"]["train"][0]["file"]
    data = bytearray((damaged / first).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one record's CRC no longer matches
    (damaged / first).write_bytes(bytes(data))
    models = tmp_path / "models"
    assert (
        main(
            [
                "train",
                "--shards",
                str(damaged),
                "--epochs",
                "1",
                "--batch",
                "4",
                "--models-dir",
                str(models),
                "--run-id",
                "r",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err.startswith(f"genre: error: reading the shards in {damaged} failed (damaged: {first}")
        and "shard the dataset again" in err
    )
    assert read_json(models / "r" / "status.json")["state"] == "failed"


@pytest.mark.slow
def test_a_cross_validation_run_from_shards_trains_every_fold(synth_root, tmp_path, capsys):
    out = tmp_path / "cv-shards"
    write_shards(synth_root, out, protocol="cv", folds=3, val_fraction=0.25, songs_per_shard=4, progress=False)
    models = tmp_path / "models"
    assert (
        main(
            [
                "train",
                "--shards",
                str(out),
                "--model",
                "fast",
                "--epochs",
                "1",
                "--batch",
                "4",
                "--models-dir",
                str(models),
                "--run-id",
                "cv",
            ]
        )
        == 0
    )
    capsys.readouterr()
    run = models / "cv"
    split = read_json(run / "split.json")
    metrics = read_json(run / "metrics.json")
    assert split["protocol"] == "cv" and metrics["test_songs"] == len(load_dataset(str(synth_root), progress=False))
    for k in (1, 2, 3):
        fold = read_json(run / f"fold-{k}" / "metrics.json")
        assert {s["track_id"] for s in fold["songs"]} == set(split["folds"][k - 1]["test"])


@pytest.mark.slow
def test_a_mirrored_run_from_shards_feeds_global_batches_of_a_multiple_of_the_replicas(synth_root, shards, tmp_path):
    from test_distribute import train_mirrored

    settings = dict(
        data_root=str(synth_root),
        shards=str(shards),
        model="fast",
        epochs=1,
        batch_size=4,
        test_fraction=0.34,
        val_fraction=0.25,
        models_dir=str(tmp_path),
        run_id="mirrored",
    )
    found = train_mirrored(settings, tmp_path / "found.json")
    run = tmp_path / "mirrored"
    config = read_json(run / "config.json")
    assert config["distribution"]["replicas"] == 2 and config["shards"] == str(shards.resolve())
    manifest = json.loads((shards / MANIFEST).read_text())
    assert read_json(run / "status.json")["batches"] == shard_plan(manifest, "train", 8, multiple=2).batches
    assert read_json(run / "status.json")["state"] == "finished" and found["metrics"] == read_json(run / "metrics.json")


@pytest.mark.slow
def test_two_workers_train_from_their_own_shard_files(synth_root, shards, tmp_path):
    from test_distribute import assert_all_succeeded, finish, start_workers

    models = tmp_path / "models"
    argv = ["-m", "genre", "train", "--shards", str(shards), "--model", "fast", "--epochs", "1", "--batch", "4",
            "--models-dir", str(models), "--run-id", "mw", "--strategy", "multi-worker"]  # fmt: skip
    results = [finish(p) for p in start_workers(argv, tmp_path)]
    assert_all_succeeded(results)
    run = models / "mw"
    config = read_json(run / "config.json")
    assert config["distribution"]["workers"] == 2 and config["shards"] == str(shards.resolve())
    manifest = json.loads((shards / MANIFEST).read_text())
    plans = [shard_plan(manifest, "train", 4, worker, 2) for worker in range(2)]
    assert plans[0].files != plans[1].files and plans[0].batches == plans[1].batches
    status = read_json(run / "status.json")
    assert status["state"] == "finished" and status["batches"] == plans[0].steps
    assert [e["epoch"] for e in read_json(run / "history.json")] == [1] and read_json(run / "metrics.json")[
        "test_songs"
    ] == len(manifest["split"]["test"])


@pytest.mark.slow
def test_a_transfer_run_from_shards_keeps_its_features_in_the_cache_folder(shards, tmp_path, monkeypatch, capsys):
    cache_root = tmp_path / "cache"
    monkeypatch.setenv("GENRE_CACHE_DIR", str(cache_root))
    before = sorted(p.name for p in shards.iterdir())
    models = tmp_path / "models"
    assert (
        main(
            [
                "train",
                "--shards",
                str(shards),
                "--model",
                "transfer",
                "--no-augment",  # one recording per window: where the features go is under test
                "--epochs",
                "1",
                "--batch",
                "4",
                "--models-dir",
                str(models),
                "--run-id",
                "t",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert read_json(models / "t" / "metrics.json")["test_songs"] == len(
        json.loads((shards / MANIFEST).read_text())["split"]["test"]
    )
    stored = list((cache_root / "shards" / "features").glob("shards-*/v*/*.npy"))
    assert stored and sorted(p.name for p in shards.iterdir()) == before  # nothing written beside the shards
