"""Song-level splits before windowing, and the leakage audit."""

import numpy as np
import pytest

from genre.data.dataset import load_dataset
from genre.data.pipeline import WindowSet
from genre.data.splits import (
    LeakageError,
    SplitError,
    artist_index,
    audit,
    cv_split,
    fault_filtered_split,
    published_fault_filtered,
    stratified_split,
)

GENRES10 = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def gtzan_ids(per_genre=100):
    """Track ids of a full GTZAN-shaped dataset (no audio needed to split)."""
    ids = [f"{g}/{g}.{n:05d}" for g in GENRES10 for n in range(per_genre)]
    return ids, np.repeat(np.arange(10), per_genre)


def test_stratified_is_the_reports_80_20_with_validation_from_training():
    ids, labels = gtzan_ids()
    m = stratified_split(ids, labels, test_fraction=0.2, val_fraction=0.1, seed=1)
    assert (len(m["train"]), len(m["valid"]), len(m["test"])) == (720, 80, 200)
    # Stratified: every genre has 20 test songs.
    assert all(sum(t.startswith(g + "/") for t in m["test"]) == 20 for g in GENRES10)
    audit(m)
    again = stratified_split(ids, labels, seed=1)
    assert again["test"] == m["test"]
    assert stratified_split(ids, labels, seed=2)["test"] != m["test"]
    # No validation part: the test songs stay the same, so runs with and without one compare.
    assert stratified_split(ids, labels, val_fraction=0, seed=1)["test"] == m["test"]


def test_fault_filtered_is_the_published_artist_disjoint_split():
    published = published_fault_filtered()
    assert {k: len(v) for k, v in published.items()} == {"train": 443, "valid": 197, "test": 290}
    ids, _ = gtzan_ids()
    m = fault_filtered_split(ids)
    assert (len(m["train"]), len(m["valid"]), len(m["test"])) == (443, 197, 290)
    assert m["missing"] == {"train": 0, "valid": 0, "test": 0}
    audit(m)
    artists = artist_index()
    train_artists = {artists[t] for t in m["train"] if t in artists}
    assert not train_artists & {artists[t] for t in m["test"] if t in artists}


def test_fault_filtered_counts_tracks_the_dataset_lacks(caplog):
    ids, _ = gtzan_ids(per_genre=80)
    m = fault_filtered_split(ids)
    assert sum(m["missing"].values()) == 930 - len(m["train"]) - len(m["valid"]) - len(m["test"])
    assert sum(m["missing"].values()) > 0
    assert "not in this dataset" in caplog.text
    with pytest.raises(SplitError):
        fault_filtered_split(["a/a.1", "b/b.2"])


def test_fault_filtered_is_refused_where_most_of_its_tracks_are_missing():
    ids, _ = gtzan_ids(per_genre=10)  # 100 of GTZAN's 1000: its test part would be a handful of songs
    with pytest.raises(
        SplitError,
        match=r"lists 930 GTZAN tracks and this dataset holds only \d+ of them .*use the stratified or cv split",
    ):
        fault_filtered_split(ids)


def test_cv_tests_every_song_once_and_keeps_artists_apart():
    ids, labels = gtzan_ids()
    artists = artist_index()
    m = cv_split(ids, labels, folds=5, seed=1)
    tested = [t for fold in m["folds"] for t in fold["test"]]
    assert sorted(tested) == sorted(ids)
    audit(m)
    for fold in m["folds"]:
        seen = {artists[t] for t in fold["train"] + fold["valid"] if t in artists}
        assert not seen & {artists[t] for t in fold["test"] if t in artists}
        # Validation picks epochs, so it must span the genres, not be one big artist.
        assert {t.split("/")[0] for t in fold["valid"]} == set(GENRES10)


def test_splits_refuse_too_few_songs():
    with pytest.raises(
        SplitError, match="each genre needs at least 7 songs for this split; genre 0 has 2, genre 1 has 1"
    ):
        stratified_split(["a/1", "a/2", "b/1"], [0, 0, 1])


def test_audit_refuses_a_leaky_manifest_and_leaky_windows(synth_root):
    ids = ["x/1", "x/2", "y/1", "y/2"]
    with pytest.raises(LeakageError, match="both train and test"):
        audit({"train": ids[:3], "valid": [], "test": ids[2:]})
    with pytest.raises(LeakageError, match="twice"):
        audit({"train": ["x/1", "x/1"], "valid": [], "test": ["y/1"]})
    cache = load_dataset(synth_root, progress=False)
    m = stratified_split(cache.track_ids, cache.labels, test_fraction=0.34, val_fraction=0)
    # Windows of one test song slipped into the training windows: refused.
    leaky = WindowSet.for_tracks(cache, m["train"] + m["test"][:1])
    with pytest.raises(LeakageError, match="outside the training part"):
        audit(m, leaky.track_ids)
    audit(m, WindowSet.for_tracks(cache, m["train"]).track_ids)


def test_training_refuses_a_leaky_manifest(synth_root, tmp_path):
    from genre.files import write_json
    from genre.train.training import TrainConfig, train

    cache = load_dataset(synth_root, progress=False)
    run = tmp_path / "leaky"
    config = TrainConfig(data_root=str(synth_root), epochs=1, models_dir=str(tmp_path), run_id="leaky")
    config = config.resolved()
    write_json(run / "config.json", {"train": config.__dict__})
    write_json(
        run / "split.json",
        {"protocol": "stratified", "train": cache.track_ids, "valid": [], "test": cache.track_ids[:2]},
    )
    with pytest.raises(LeakageError):
        train(config, progress=False)
    assert not (run / "model.keras").exists()


def test_a_small_folder_is_refused_in_genre_names_and_songs():
    from genre.data.splits import SplitError, make_split, songs_needed

    genres = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
    labels = np.repeat(np.arange(10), [12] * 9 + [4])  # GTZAN's genres, rock with 4 songs
    ids = [f"{genres[g]}/{i}" for i, g in enumerate(labels)]
    needed = songs_needed("stratified", 10, test_fraction=0.2, val_fraction=0.1)
    assert needed == 12
    with pytest.raises(SplitError) as caught:
        make_split("stratified", ids, labels, test_fraction=0.2, val_fraction=0.1, seed=1, genres=genres)
    assert str(caught.value) == f"each genre needs at least {needed} songs for this split; rock has 4"
    assert "test_size" not in str(caught.value) and "too few members" not in str(caught.value)
    # The number is enough: every genre at `needed` songs splits.
    even = np.repeat(np.arange(10), needed)
    make_split(
        "stratified",
        [f"{genres[g]}/{i}" for i, g in enumerate(even)],
        even,
        test_fraction=0.2,
        val_fraction=0.1,
        seed=1,
    )
