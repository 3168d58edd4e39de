"""Song metrics from window probabilities (genre.serve.evaluation), checked by hand."""

import numpy as np
import pytest

from genre.serve.evaluation import song_metrics
from genre.serve.voting import majority_vote


def test_evaluation_numbers_recomputed_by_hand():
    genres = ["a", "b", "c"]
    p = np.array(
        [
            # song 0 (true a): windows vote a, b, a -> a
            [0.6, 0.3, 0.1],
            [0.2, 0.7, 0.1],
            [0.5, 0.4, 0.1],
            # song 1 (true b): a tie a/b, broken by mean probability -> b
            [0.5, 0.4, 0.1],
            [0.1, 0.9, 0.0],
            # song 2 (true c): votes b, b -> b (wrong), mean probability also b
            [0.2, 0.5, 0.3],
            [0.1, 0.6, 0.3],
        ]
    )
    window_song = np.array([0, 0, 0, 1, 1, 2, 2])
    window_true = np.array([0, 0, 0, 1, 1, 2, 2])
    m = song_metrics(genres, ["a/1", "b/1", "c/1"], window_song, window_true, p)
    assert m["window_accuracy"] == pytest.approx(3 / 7)  # windows 0, 2, 4 are right
    assert m["song_accuracy_vote"] == pytest.approx(2 / 3)
    assert [s["vote"] for s in m["songs"]] == ["a", "b", "b"]
    assert m["songs"][1]["votes"] == [1, 1, 0]
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert m["per_genre"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_genre"]["c"]["recall"] == 0.0
    assert m["song_balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["song_macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert majority_vote(p[3:5]) == 1


def test_multi_artist_figures_leave_out_genres_of_one_artist():
    """Under artist grouping a one-artist genre is never trained on; the fair figure skips it.
    Songs of no known artist count as artists of their own."""
    from genre.serve.evaluation import multi_artist_figures

    songs = [
        {"track_id": "blues/1", "true": "blues", "vote": "blues"},
        {"track_id": "blues/2", "true": "blues", "vote": "jazz"},
        {"track_id": "jazz/1", "true": "jazz", "vote": "jazz"},
        {"track_id": "jazz/2", "true": "jazz", "vote": "jazz"},
        {"track_id": "rock/1", "true": "rock", "vote": "blues"},
        {"track_id": "rock/2", "true": "rock", "vote": "blues"},
    ]
    artists = {"blues/1": "A", "blues/2": "B", "jazz/1": "C", "rock/1": "D", "rock/2": "D"}  # jazz/2: unknown
    figures = multi_artist_figures(["blues", "jazz", "rock"], songs, artists)
    assert figures["genres"] == ["blues", "jazz"] and figures["songs"] == 4
    assert figures["song_accuracy_vote"] == pytest.approx(3 / 4)
    assert figures["song_balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
