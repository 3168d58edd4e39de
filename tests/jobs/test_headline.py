"""What the Overview's headline says about a run."""

from pathlib import Path

from genre.jobs.headline import describe_test_set, headline
from genre.jobs.runs import Run


def run(run_id, protocol, model="fast", created="2026", accuracy=0.9, songs=(), state="finished", **metrics):
    return Run(
        run_id,
        Path(run_id),
        {"protocol": protocol, "model": model, "created": created},
        {"state": state},
        {"song_accuracy_vote": accuracy, "songs": list(songs), **metrics},
    )


def songs(**counts):
    return [{"true": g, "vote": g, "track_id": f"{g}/{k}"} for g, n in counts.items() for k in range(n)]


def test_the_test_set_is_described_by_the_genres_that_dominate_it():
    assert (
        describe_test_set(
            {
                "songs": songs(
                    blues=20, jazz=20, pop=2, rock=2, metal=2, disco=2, hiphop=2, country=2, reggae=2, classical=2
                )
            }
        )
        == "40 of 56 test songs are blues or jazz"
    )
    assert describe_test_set({"songs": songs(blues=30, jazz=4, pop=4)}) == "30 of 38 test songs are blues"
    assert describe_test_set({"songs": songs(blues=5, jazz=5, pop=4, rock=6)}) == "20 test songs, 4-6 per genre"
    assert describe_test_set({}) == "no test songs"


def test_a_split_run_borrows_the_newest_cv_run_of_its_model():
    split = run(
        "split", "stratified", band_limited={"11000": {"song_accuracy_vote": 0.8}, "8000": {"song_accuracy_vote": 0.7}}
    )
    old_cv = run("cv-old", "cv", created="2025", accuracy=0.5)
    new_cv = run(
        "cv-new", "cv", created="2027", accuracy=0.6, multi_artist={"song_accuracy_vote": 0.7, "genres": ["a", "b"]}
    )
    other_model = run("cv-seed", "cv", model="seed", created="2028", accuracy=0.3)
    unfinished = run("cv-running", "cv", created="2029", state="running")
    h = headline(split, [split, old_cv, new_cv, other_model, unfinished])
    assert h.unseen_run is new_cv and h.unseen_accuracy == 0.6 and h.multi_artist["song_accuracy_vote"] == 0.7
    assert h.band_limited == {8000: 0.7, 11000: 0.8}
    assert headline(split, [split, other_model]).unseen_run is None


def test_an_artist_disjoint_run_speaks_for_itself():
    for protocol in ("cv", "fault-filtered"):
        own = run("own", protocol, accuracy=0.55)
        assert headline(own, [own, run("cv-other", "cv", created="2099")]).unseen_accuracy == 0.55


def test_genres_of_fewer_than_three_artists_are_named_in_one_line():
    from genre.jobs.headline import few_artists_line, training_tracks

    # GTZAN-280's rock, reggae and classical are one artist each; blues 0-11 are three or more.
    tracks = [f"rock/rock.{k:05d}" for k in range(10)] + [f"blues/blues.{k:05d}" for k in range(30)]
    line = few_artists_line(tracks)
    assert line == (
        "Fewer than 3 artists in the training songs: rock (1 artist). For this genre the model may learn "
        "the artists rather than the genre, and miss other artists' songs."
    )
    assert few_artists_line([f"blues/blues.{k:05d}" for k in range(30)]) is None
    assert few_artists_line(["mine/song-a", "mine/song-b"]) is None  # not GTZAN: nothing is known
    split = {"folds": [{"train": ["a/1"], "valid": ["a/2"], "test": ["a/3"]}]}
    assert training_tracks(split) == ["a/1", "a/2", "a/3"]
    assert training_tracks({"train": ["a/1"], "valid": ["a/2"], "test": ["a/3"]}) == ["a/1", "a/2"]


def test_the_headline_carries_the_per_genre_recall_of_unheard_artists():
    per_genre = {
        "rock": {"recall": 0.25, "support": 8},
        "jazz": {"recall": 0.9, "support": 10},
        "pop": {"recall": 0.0, "support": 0},
    }
    split, cv = run("split", "stratified"), run("cv", "cv", per_genre=per_genre)
    assert headline(split, [split, cv]).unseen_recall == {"rock": (0.25, 8), "jazz": (0.9, 10)}
    assert headline(split, [split]).unseen_recall is None
