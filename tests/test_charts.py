"""The dashboard's figures and tables, built from run data without Streamlit."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import charts

GTZAN = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]

HISTORY = [
    {"epoch": 1, "loss": 2.0, "accuracy": 0.3, "val_loss": 2.2, "val_accuracy": 0.25, "seconds": 30.0},
    {"epoch": 2, "loss": 1.5, "accuracy": 0.5, "val_loss": 1.4, "val_accuracy": 0.55, "seconds": 30.0},
    {"epoch": 3, "loss": 1.1, "accuracy": 0.6, "val_loss": 1.6, "val_accuracy": 0.52, "seconds": 30.0},
]
NO_VALIDATION = [
    {"epoch": 1, "loss": 1.8, "accuracy": 0.4, "seconds": 10.0},
    {"epoch": 2, "loss": 1.2, "accuracy": 0.6, "seconds": 10.0},
]


def make_metrics() -> dict:
    genres = ["clicks", "drones", "noise"]
    return {
        "genres": genres,
        "test_songs": 6,
        "confusion_matrix": [[2, 0, 0], [1, 1, 0], [0, 0, 0]],
        "per_genre": {
            "clicks": {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2},
            "drones": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2},
            "noise": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        },
        "songs": [
            {
                "track_id": "clicks/a",
                "true": "clicks",
                "vote": "clicks",
                "mean": "clicks",
                "votes": [3, 0, 0],
                "mean_probability": [0.9, 0.05, 0.05],
            },
            {
                "track_id": "drones/b",
                "true": "drones",
                "vote": "clicks",
                "mean": "clicks",
                "votes": [2, 1, 0],
                "mean_probability": [0.6, 0.3, 0.1],
            },
        ],
    }


def test_genre_colours_are_fixed_for_gtzan_and_distinct_for_others():
    full = charts.genre_colors(GTZAN)
    subset = charts.genre_colors(["rock", "jazz", "metal"])
    assert all(subset[g] == full[g] for g in subset)  # a 3-genre run paints rock like a 10-genre one
    mixed = charts.genre_colors(GTZAN + ["drones", "noise", "clicks", "ambient"])
    assert len(set(mixed.values())) == len(mixed)
    assert charts.genre_colors(["drones", "noise", "clicks"]) == charts.genre_colors(["drones", "noise", "clicks"])


def test_best_epoch_follows_validation_loss_else_training_loss():
    assert charts.best_epoch(HISTORY) == 2
    assert charts.monitored(HISTORY) == "val_loss"
    assert charts.best_epoch(NO_VALIDATION) == 2
    assert charts.monitored(NO_VALIDATION) == "loss"
    assert charts.best_epoch([]) is None
    # A tie goes to the later epoch: BestModel saves on "no worse than before".
    tie = [dict(e, val_loss=1.4) if e["epoch"] == 3 else e for e in HISTORY]
    assert charts.best_epoch(tie) == 3


def test_history_figure_holds_every_curve_and_marks_the_best_epoch():
    fig = charts.history_figure({"seed": HISTORY, "fast": NO_VALIDATION})
    by_name = {}
    for trace in fig.data:
        by_name.setdefault(trace.name, []).append(trace)
    # seed: training and validation in both panels; fast: training only.
    assert [list(t.y) for t in by_name["seed · training"]] == [
        [e["loss"] for e in HISTORY],
        [e["accuracy"] for e in HISTORY],
    ]
    assert [list(t.y) for t in by_name["seed · validation"]] == [
        [e["val_loss"] for e in HISTORY],
        [e["val_accuracy"] for e in HISTORY],
    ]
    assert "fast · validation" not in by_name
    stars = by_name["seed · best epoch (2)"]
    assert [(list(t.x), list(t.y)) for t in stars] == [([2], [1.4]), ([2], [0.55])]
    assert [list(t.y) for t in by_name["fast · best epoch (2)"]] == [[1.2], [0.6]]
    # One colour per run, one legend entry per run (clicking it hides all the run's curves).
    assert by_name["seed · training"][0].line.color != by_name["fast · training"][0].line.color
    assert [t.name for t in fig.data if t.showlegend is not False] == ["seed", "fast"]
    assert {t.legendgroup for t in by_name["seed · validation"] + by_name["seed · best epoch (2)"]} == {"seed"}


def test_history_legend_of_many_runs_sits_below_the_axes_and_the_figure_grows_for_it():
    names = [
        "fast-cv",
        "fast-stratified",
        "seed-stratified",
        "transfer-cv",
        "transfer-stratified",
        "transfer-dilated-stratified",
        "tiny-fast",
    ]
    few = charts.history_figure({"seed": HISTORY})
    many = charts.history_figure({n: HISTORY for n in names})
    # 7 entries, not 21 (training, validation and best epoch of each run).
    assert [t.name for t in many.data if t.showlegend is not False] == names
    rows, text = charts.legend_layout(names)
    assert (rows, text) == (4, 199)  # two a row: an entry of the 27-letter name takes 239 px of 600
    for fig, n in ((few, 1), (many, rows)):
        legend = fig.layout.legend
        assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == ("h", "container", 0, "bottom")
        # The bottom margin holds the axis titles and then every legend row: nothing overlaps.
        assert fig.layout.margin.b >= charts.AXIS_TITLE_PX + n * charts.LEGEND_ROW_PX
        assert fig.layout.height - fig.layout.margin.b - fig.layout.margin.t >= 300  # the panels keep their size
    assert many.layout.height > few.layout.height


def test_history_table_summarises_each_run():
    rows = charts.history_table({"seed": HISTORY, "fast": NO_VALIDATION, "empty": []})
    assert [r["run"] for r in rows] == ["seed", "fast"]
    assert rows[0]["best epoch"] == 2 and rows[0]["validation loss"] == 1.4 and rows[0]["minutes"] == 1.5
    assert rows[1]["validation loss"] is None
    shown = charts.history_table_shown(rows)
    assert (shown[0]["validation loss"], shown[0]["validation accuracy"]) == ("1.400", "55.00%")
    assert (shown[1]["validation loss"], shown[1]["validation accuracy"]) == ("—", "—")  # not None, not NaN


def test_confusion_figure_counts_and_row_normalised():
    metrics = make_metrics()
    counts = charts.confusion_figure(metrics).data[0]
    assert np.array_equal(np.asarray(counts.z), metrics["confusion_matrix"])
    assert list(counts.x) == list(counts.y) == metrics["genres"]
    assert list(counts.text[1]) == ["1", "1", "0"]
    shares = np.asarray(charts.confusion_figure(metrics, normalised=True).data[0].z)
    assert np.allclose(shares[:2].sum(axis=1), 1.0)
    assert np.allclose(shares[1], [0.5, 0.5, 0.0])
    assert np.all(shares[2] == 0)  # a genre with no test songs stays an empty row


def test_per_genre_and_misclassified_rows():
    metrics = make_metrics()
    rows = charts.per_genre_rows(metrics)
    assert [r["genre"] for r in rows] == metrics["genres"]
    assert rows[1] == {"genre": "drones", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    wrong = charts.misclassified_rows(metrics)
    assert wrong == [
        {
            "track": "drones/b",
            "true": "drones",
            "voted": "clicks",
            "windows": 3,
            "votes": "clicks 2 · drones 1",
            "p(true)": 0.3,
            "p(voted)": 0.6,
        }
    ]


def test_recall_figure_shows_genres_with_test_songs_in_their_colours():
    bar = charts.recall_figure(make_metrics()).data[0]
    assert list(bar.y) == ["drones", "clicks"]  # noise has no test songs; the first genre on top
    assert list(bar.x) == [0.5, 1.0]
    fig = charts.recall_figure(make_metrics())
    # The figures are in the axis labels, which plotly never cuts off.
    assert (
        list(fig.layout.yaxis.ticktext) == ["drones · 50% of 2", "clicks · 100% of 2"] and fig.layout.yaxis.automargin
    )
    colors = charts.genre_colors(["clicks", "drones", "noise"])
    assert list(bar.marker.color) == [colors["drones"], colors["clicks"]]


def test_window_figure_has_one_stacked_column_per_window():
    genres = ["clicks", "drones", "noise"]
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=5)
    starts = np.arange(5) * 3.0
    fig = charts.window_figure(genres, p, starts)
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == genres
    colors = charts.genre_colors(genres)
    for g, trace in enumerate(fig.data):
        assert trace.marker.color == colors[trace.name]
        assert np.allclose(trace.x, starts + 1.5)  # the bar covers its window
        assert np.allclose(trace.y, p[:, g])
    assert np.allclose(sum(np.asarray(t.y) for t in fig.data), 1.0)
    assert list(fig.layout.xaxis.ticktext[:3]) == ["0:00", "0:03", "0:06"]
    assert fig.data[0].customdata[1] == "0:03–0:06"


def test_window_figure_thins_ticks_for_long_songs():
    p = np.full((100, 2), 0.5)
    fig = charts.window_figure(["a", "b"], p, np.arange(100) * 3.0)
    assert len(fig.data[0].x) == 100
    assert len(fig.layout.xaxis.tickvals) <= 21
    assert fig.layout.xaxis.ticktext[-1] == "5:00"


def test_window_figure_can_keep_a_fixed_time_span_for_live_bars():
    fig = charts.window_figure(["a", "b"], np.full((2, 2), 0.5), [0.0, 3.0], min_seconds=30)
    assert fig.layout.xaxis.range[1] == pytest.approx(30, abs=0.1)
    assert fig.layout.xaxis.ticktext[-1] == "0:30"


def test_ranking_figure_orders_genres_by_mean_probability():
    fig = charts.ranking_figure(["a", "b", "c"], [0.2, 0.5, 0.3], votes=[1, 3, 2])
    bar = fig.data[0]
    assert list(bar.y) == ["a", "c", "b"]  # plotly draws the first bar at the bottom
    assert list(fig.layout.yaxis.tickvals) == ["a", "c", "b"]
    assert list(fig.layout.yaxis.ticktext) == ["a · 20% · 1 won", "c · 30% · 2 won", "b · 50% · 3 won"]


def test_clock_and_vote_text():
    assert charts.clock(0) == "0:00" and charts.clock(63) == "1:03" and charts.clock(599.6) == "10:00"
    assert charts.vote_text(["a", "b", "c"], [0, 2, 5]) == "c 5 · b 2"


def test_comparison_figures_hold_both_runs_and_the_signed_difference():
    from genre.jobs.compare import Comparison, RunSummary

    def summary(run_id, confusion, recall):
        per_genre = {g: {"precision": 1.0, "recall": r, "f1": r, "support": 2} for g, r in zip(["a", "b"], recall)}
        right = int(np.trace(confusion))
        return RunSummary(
            run_id, "fast", "stratified", 4, right, right / 4, (0.2, 0.9), ["a", "b"], per_genre, confusion
        )

    c = Comparison(
        a=summary("one", [[2, 0], [1, 1]], [1.0, 0.5]),
        b=summary("two", [[1, 1], [0, 2]], [0.5, 1.0]),
        genres=["a", "b"], same_genres=True, shared_songs=4, same_songs=True,
        difference=[[-1, 1], [-1, 1]], difference_kind="songs",
    )  # fmt: skip
    bars = charts.per_genre_compare_figure(c, "recall")
    assert [t.name for t in bars.data] == ["one", "two"] and list(bars.data[1].y) == [0.5, 1.0]
    accuracy = charts.accuracy_compare_figure(c)
    assert list(accuracy.data[0].x) == [0.75, 0.75]
    assert list(accuracy.data[0].error_x.arrayminus) == pytest.approx([0.55, 0.55])
    difference = charts.difference_figure(c)
    heat = difference.data[0]
    assert heat.zmid == 0 and heat.zmin == -1 and heat.zmax == 1
    assert [list(r) for r in heat.text] == [["-1", "+1"], ["-1", "+1"]]
    assert charts.summary_confusion_metrics(c.b) == {"genres": ["a", "b"], "confusion_matrix": [[1, 1], [0, 2]]}


def test_a_tie_lists_the_winner_first_and_says_how_it_won():
    text = charts.vote_text(["blues", "country", "pop"], [2, 4, 4], winner="pop")
    assert text == "pop 4 · country 4 · blues 2 (pop won the tie on mean probability)"
    assert charts.vote_text(["a", "b"], [3, 1], winner="a") == "a 3 · b 1"
