"""TFRecord shards: the parts of the split written once, read back as exactly the windows the
memory-mapped pipeline cuts, shared among workers by file, and the folders they refuse."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from genre.cli import main
from genre.data.dataset import load_dataset
from genre.data.pipeline import WindowSet
from genre.data.shards import MANIFEST, ShardError, shard_dataset, shard_plan, write_shards
from genre.data.splits import LeakageError, make_split

REPO = Path(__file__).resolve().parents[2]
# Small shards, so that every part of the synthetic split spans several files.
SETTINGS = dict(test_fraction=0.34, val_fraction=0.25, seed=1, songs_per_shard=2)


@pytest.fixture(scope="module")
def cache(synth_root):
    return load_dataset(str(synth_root), progress=False)


@pytest.fixture(scope="module")
def shards(synth_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    write_shards(synth_root, out, progress=False, **SETTINGS)
    return out


def read_windows(data) -> dict[str, list[np.ndarray]]:
    """Each track's windows in the order they came, and their one-hot labels checked one-hot."""
    out = defaultdict(list)
    for x, y, ids in data:
        assert x.shape[1:] == (66150, 1) and np.all(np.sum(y.numpy(), axis=1) == 1)
        for row, label, track in zip(x.numpy(), y.numpy().argmax(axis=1), ids.numpy()):
            out[track.decode()].append((row[:, 0], int(label)))
    return out


def cache_windows(cache, tracks) -> dict[str, list[np.ndarray]]:
    windows = WindowSet.for_tracks(cache, tracks)
    rows = windows.batch(np.arange(len(windows)))[:, :, 0]
    out = defaultdict(list)
    for row, track, label in zip(rows, windows.track_ids, windows.labels):
        out[track].append((row, int(label)))
    return out


def assert_same_windows(got, expected, ordered=True):
    """The same windows of the same tracks with the same labels; unless ``ordered`` (a shuffled
    read), in any order within a track."""
    assert sorted(got) == sorted(expected)
    key = lambda window: (window[1], window[0].tobytes())  # noqa: E731
    for track in expected:
        assert len(got[track]) == len(expected[track])
        pairs = (
            zip(got[track], expected[track])
            if ordered
            else zip(sorted(got[track], key=key), sorted(expected[track], key=key))
        )
        for (a, la), (b, lb) in pairs:
            assert la == lb
            np.testing.assert_array_equal(a, b)  # bit for bit: 16-bit sources round-trip exactly


def test_shard_writes_the_parts_of_the_split(shards, cache):
    manifest = json.loads((shards / MANIFEST).read_text())
    split = make_split("stratified", cache.track_ids, cache.labels, test_fraction=0.34, val_fraction=0.25, seed=1)
    assert manifest["split"] == split and manifest["genres"] == cache.genres
    files = sorted(p.name for p in shards.glob("*.tfrecord"))
    listed = []
    for part in ("train", "valid", "test"):
        entries = manifest["shards"][part]
        assert [t for s in entries for t in s["songs"]] == split[part]
        assert len(entries) == -(-len(split[part]) // 2) > 1
        for k, s in enumerate(entries):
            assert s["file"] == f"{part}-{k:05d}-of-{len(entries):05d}.tfrecord"
            assert s["windows"] == sum(s["song_windows"]) == len(WindowSet.for_tracks(cache, s["songs"]))
            assert s["sha256"] == hashlib.sha256((shards / s["file"]).read_bytes()).hexdigest()
            listed.append(s["file"])
    assert files == sorted(listed)  # no temporary file left behind


@pytest.mark.parametrize("part", ["train", "valid", "test"])
def test_the_reader_yields_exactly_the_windows_of_the_cache(shards, cache, part):
    split = json.loads((shards / MANIFEST).read_text())["split"]
    data = shard_dataset(shards, part, len(cache.genres), batch_size=5, with_track_ids=True)
    assert_same_windows(read_windows(data), cache_windows(cache, split[part]))
    assert int(data.cardinality()) == -(-len(WindowSet.for_tracks(cache, split[part])) // 5)


def test_workers_read_disjoint_files_and_feed_the_same_batches(shards, cache):
    manifest = json.loads((shards / MANIFEST).read_text())
    split = manifest["split"]
    expected = cache_windows(cache, split["train"])
    plans = [shard_plan(manifest, "train", 4, worker, 2) for worker in range(2)]
    # Every file goes to one worker; each feeds the fewest whole batches any worker can.
    assert sorted(f for p in plans for f in p.files) == sorted(s["file"] for s in manifest["shards"]["train"])
    assert sum(p.windows for p in plans) == sum(len(w) for w in expected.values())
    assert plans[0].fed == plans[1].fed == min(p.windows for p in plans)
    assert plans[0].batches == plans[0].steps == -(-plans[0].fed // 4)
    shares = []
    for worker in range(2):
        data = shard_dataset(
            shards,
            "train",
            len(cache.genres),
            4,
            shuffle=True,
            seed=3,
            worker_index=worker,
            num_workers=2,
            with_track_ids=True,
        )
        assert int(data.cardinality()) == plans[worker].batches
        shares.append(read_windows(data))
        assert sum(len(w) for w in shares[-1].values()) == plans[worker].fed
    assert shares[0] and shares[1] and not set(shares[0]) & set(shares[1])
    for share in shares:  # windows of the cache, each at most once
        for track, windows in share.items():
            keys = [w[0].tobytes() for w in expected[track]]
            assert all(keys.count(w[0].tobytes()) == 1 for w in windows) and len(
                {w[0].tobytes() for w in windows}
            ) == len(windows)
    # The training batches themselves: windows and one-hot labels only.
    x, y = next(iter(shard_dataset(shards, "train", len(cache.genres), 4, worker_index=1, num_workers=2)))
    assert x.shape == (4, 66150, 1) and y.shape == (4, len(cache.genres))
    # Two replicas a worker take its batches in turn: whole steps of 2 x 4 windows, and no
    # length for Keras, which would count each batch as a step.
    two = [shard_plan(manifest, "train", 4, worker, 2, multiple=2) for worker in range(2)]
    assert (
        two[0].fed == two[1].fed == min(p.windows for p in plans) // 8 * 8
        and two[0].steps == two[0].fed // 8 == two[0].batches // 2
    )
    data = shard_dataset(shards, "train", len(cache.genres), 4, worker_index=0, num_workers=2, multiple=2)
    assert int(data.cardinality()) < 0 and [int(x.shape[0]) for x, _ in data] == [4] * two[0].batches


def test_more_workers_than_files_share_the_windows_of_every_file(shards, cache):
    manifest = json.loads((shards / MANIFEST).read_text())
    files = len(manifest["shards"]["valid"])
    workers = files + 1
    expected = cache_windows(cache, manifest["split"]["valid"])
    total = sum(len(w) for w in expected.values())
    got = []
    for worker in range(workers):
        plan = shard_plan(manifest, "valid", 1, worker, workers)
        assert plan.by_window and plan.fed == total // workers
        got.append(
            read_windows(
                shard_dataset(
                    shards, "valid", len(cache.genres), 1, worker_index=worker, num_workers=workers, with_track_ids=True
                )
            )
        )
    rows = [(t, w[0].tobytes()) for share in got for t, ws in share.items() for w in ws]
    assert len(rows) == len(set(rows)) == total // workers * workers  # disjoint, the remainder left out


def test_one_worker_on_several_replicas_feeds_a_multiple_of_them(shards, cache):
    manifest = json.loads((shards / MANIFEST).read_text())
    total = sum(s["windows"] for s in manifest["shards"]["train"])
    plan = shard_plan(manifest, "train", 4, multiple=3)
    assert plan.fed == total - total % 3 and plan.batches == -(-plan.fed // 4)
    data = shard_dataset(shards, "train", len(cache.genres), 4, shuffle=True, multiple=3)
    assert sum(int(x.shape[0]) for x, _ in data) == plan.fed


def test_augmented_windows_are_shifted_and_coloured_anew_each_pass(shards, cache):
    split = json.loads((shards / MANIFEST).read_text())["split"]
    plain = cache_windows(cache, split["train"])
    data = shard_dataset(shards, "train", len(cache.genres), 4, augment=True, seed=5, with_track_ids=True)
    first, second = read_windows(data), read_windows(data)
    again = read_windows(
        shard_dataset(shards, "train", len(cache.genres), 4, augment=True, seed=5, with_track_ids=True)
    )
    assert sorted(first) == sorted(plain)
    for track in plain:
        assert len(first[track]) == len(plain[track])
        for (a, la), (b, lb), (p, lp) in zip(first[track], second[track], plain[track]):
            assert la == lb == lp and np.all(np.isfinite(a))
            assert not np.array_equal(a, p) and not np.array_equal(a, b)  # changed, and changed again next pass
    for track in plain:  # the same seed, the same run
        for (a, _), (b, _) in zip(first[track], again[track]):
            np.testing.assert_array_equal(a, b)


def test_class_weights_become_sample_weights(shards, cache):
    weights = {0: 0.5, 1: 2.0, 2: 1.0}
    x, y, w = next(iter(shard_dataset(shards, "train", len(cache.genres), 8, class_weight=weights)))
    np.testing.assert_allclose(w.numpy(), [weights[int(c)] for c in y.numpy().argmax(axis=1)])
    with pytest.raises(ShardError, match="track ids or sample weights, not both"):
        shard_dataset(shards, "train", len(cache.genres), 8, class_weight=weights, with_track_ids=True)


def test_the_audit_holds_for_shards(shards, cache, tmp_path):
    manifest = json.loads((shards / MANIFEST).read_text())
    split = manifest["split"]
    in_train = {t for s in manifest["shards"]["train"] for t in s["songs"]}
    assert in_train == set(split["train"]) and not in_train & (set(split["test"]) | set(split["valid"]))
    read = read_windows(shard_dataset(shards, "train", len(cache.genres), 8, with_track_ids=True))
    assert set(read) == set(split["train"])
    # A manifest whose train files claim a test song is refused before anything is read.
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for p in shards.glob("*.tfrecord"):
        os.symlink(p, tampered / p.name)
    manifest["shards"]["train"][0]["songs"].append(split["test"][0])
    (tampered / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(LeakageError, match="outside the training part have windows in training"):
        shard_dataset(tampered, "train", len(cache.genres), 8)


def shards_of(root, out, **settings) -> Path:
    write_shards(root, out, progress=False, **(SETTINGS | settings))
    return out


def test_cross_validation_shards_hold_the_fold_of_each_song(synth_root, cache, shards, tmp_path):
    out = tmp_path / "cv"
    manifest, written = write_shards(
        synth_root, out, protocol="cv", folds=3, val_fraction=0.25, songs_per_shard=5, progress=False
    )
    assert written and list(manifest["shards"]) == ["all"]
    split = manifest["split"]
    assert split == make_split("cv", cache.track_ids, cache.labels, folds=3, val_fraction=0.25, seed=1)
    for part in ("train", "valid", "test"):
        data = shard_dataset(out, part, len(cache.genres), 6, fold=2, with_track_ids=True)
        assert_same_windows(read_windows(data), cache_windows(cache, split["folds"][1][part]))
    with pytest.raises(ShardError, match="pass fold=1..3"):
        shard_dataset(out, "test", len(cache.genres), 6)
    with pytest.raises(ShardError, match="has no folds"):
        shard_dataset(shards, "test", len(cache.genres), 6, fold=1)


def test_the_same_shards_again_are_left_alone_and_other_ones_refused(synth_root, shards, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in shards.iterdir()}
    manifest, written = write_shards(synth_root, shards, progress=False, **SETTINGS)
    assert not written and manifest == json.loads((shards / MANIFEST).read_text())
    assert {p.name: p.stat().st_mtime_ns for p in shards.iterdir()} == before
    with pytest.raises(
        ShardError, match=r"already holds other shards \(not the same split\); pick another --out or empty it"
    ):
        write_shards(synth_root, shards, progress=False, **(SETTINGS | {"seed": 2}))
    with pytest.raises(ShardError, match=r"\(not the same songs per shard\)"):
        write_shards(synth_root, shards, progress=False, **(SETTINGS | {"songs_per_shard": 3}))
    # Shard files without their manifest: an interrupted shard, or someone else's.
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "train-00000-of-00001.tfrecord").write_bytes(b"")
    with pytest.raises(ShardError, match="holds shard files but no shards.json"):
        write_shards(synth_root, stray, progress=False, **SETTINGS)
    assert {p.name: p.stat().st_mtime_ns for p in shards.iterdir()} == before


def test_the_reader_refuses_what_it_cannot_read(shards, cache, tmp_path):
    with pytest.raises(ShardError, match="holds no shards"):
        shard_dataset(tmp_path, "train", len(cache.genres), 4)
    with pytest.raises(ShardError, match="cannot give each of 500 worker"):
        shard_dataset(shards, "train", len(cache.genres), 4, worker_index=0, num_workers=500)
    with pytest.raises(ShardError, match="worker 2 of 2 does not exist"):
        shard_dataset(shards, "train", len(cache.genres), 4, worker_index=2, num_workers=2)
    with pytest.raises(ShardError, match="the shards hold 3 genres, not 4"):
        shard_dataset(shards, "train", 4, 4)
    no_valid = shards_of(cache.root, tmp_path / "no-valid", val_fraction=0)
    assert not list(no_valid.glob("valid-*"))
    with pytest.raises(ShardError, match="the valid part holds no songs"):
        shard_dataset(no_valid, "valid", len(cache.genres), 4)


def test_cli_shard_refuses_other_settings_in_one_line(synth_root, shards, capsys):
    args = [
        "shard",
        str(synth_root),
        "--out",
        str(shards),
        "--test-fraction",
        "0.34",
        "--val-fraction",
        "0.25",
        "--songs-per-shard",
        "2",
    ]
    assert main(args) == 0
    assert "already holds these shards" in capsys.readouterr().out
    assert main([*args, "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genre: error: ") and "already holds other shards" in err and err.count("\n") == 1


def error_line(stderr: str) -> str:
    """The one line the CLI printed, after whatever TensorFlow's C++ start-up logged."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and all(
        line.startswith(("I0000", "W0000", "E0000", "WARNING: All")) for line in lines[:-1]
    )
    return lines[-1]


@pytest.mark.slow
def test_cli_shard_writes_and_its_errors_are_one_line(synth_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*a):
        return subprocess.run([sys.executable, "-m", "genre", "shard", *a], capture_output=True, text=True, env=env)

    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "test-00000-of-00001.tfrecord").write_bytes(b"")
    out = run(str(synth_root), "--out", str(stray))
    assert out.returncode == 2 and error_line(out.stderr) == (
        f"genre: error: {stray} holds shard files but no shards.json (an interrupted shard?); "
        "empty it or pick another --out"
    )
    out = run("/no/such/folder", "--out", str(tmp_path / "s"))
    assert out.returncode == 2 and error_line(out.stderr) == "genre: error: dataset folder not found: /no/such/folder"
    out = run(str(synth_root), "--out", str(tmp_path / "s"), "--val-fraction", "0")
    assert out.returncode == 0, out.stderr
    assert (
        "train" in out.stdout and (tmp_path / "s" / MANIFEST).is_file() and not list((tmp_path / "s").glob("valid-*"))
    )
