"""Every dashboard page, driven in-process by Streamlit's AppTest against tiny trained runs.

The microphone component (streamlit-webrtc) needs a browser, so it is replaced by a fake that
hands the page's frame callback to the test; tests/test_browser.py drives the real one.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import soundfile as sf
import streamlit_webrtc
from streamlit.testing.v1 import AppTest

from dashboard.charts import clock, normalise_rows
from dashboard.heard import PLAYHEAD_COLOR
from genre.files import read_json, write_json
from genre.jobs.headline import describe_test_set
from genre.jobs.song_map import MAP_FILE, compute_song_map, read_song_map, save_song_map
from genre.serve.prediction import Classifier
from synth import song

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 180  # the first run on a page imports TensorFlow and loads the model


@pytest.fixture(scope="module")
def models(tiny_run, tmp_path_factory) -> Path:
    """A models folder with the tiny run (active) and a variant of it: no validation part, a
    later date and one more misclassified song, so that runs can be told apart."""
    folder = tmp_path_factory.mktemp("app-models")
    shutil.copytree(tiny_run, folder / "tiny-fast")
    variant = folder / "tiny-variant"
    shutil.copytree(tiny_run, variant)
    config = read_json(variant / "config.json")
    config["created"] = "2099-01-01T00:00:00+00:00"
    write_json(variant / "config.json", config)
    write_json(
        variant / "history.json",
        [{k: v for k, v in e.items() if not k.startswith("val_")} for e in read_json(tiny_run / "history.json")],
    )
    metrics = read_json(variant / "metrics.json")
    genres = metrics["genres"]
    right = next(s for s in metrics["songs"] if s["vote"] == s["true"])
    right["vote"] = genres[(genres.index(right["true"]) + 1) % len(genres)]
    matrix = np.zeros((len(genres), len(genres)), dtype=int)
    for s in metrics["songs"]:
        matrix[genres.index(s["true"]), genres.index(s["vote"])] += 1
    metrics["confusion_matrix"] = matrix.tolist()
    metrics["song_accuracy_vote"] = float(np.trace(matrix) / matrix.sum())
    write_json(variant / "metrics.json", metrics)
    (folder / "ACTIVE").write_text("tiny-fast\n")
    # The active run carries its song map (the variant has none).
    save_song_map(folder / "tiny-fast", compute_song_map(folder / "tiny-fast"))
    return folder


@pytest.fixture
def app(models, monkeypatch) -> AppTest:
    monkeypatch.setenv("GENRE_MODELS_DIR", str(models))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


class FakeWebrtc:
    """Stands in for streamlit-webrtc: records how the page configures it and keeps the frame
    callback so the test can play the part of aiortc."""

    def __init__(self):
        self.playing = False
        self.callback = None
        self.kwargs: dict = {}

    def create_audio_sink_track(self, callback, key, **kwargs):
        self.callback = callback
        return SimpleNamespace(key=key)

    def webrtc_streamer(self, key, **kwargs):
        self.kwargs = kwargs
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing, signalling=False))


@pytest.fixture
def fake_webrtc(monkeypatch) -> FakeWebrtc:
    fake = FakeWebrtc()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake.webrtc_streamer)
    monkeypatch.setattr(streamlit_webrtc, "create_audio_sink_track", fake.create_audio_sink_track)
    return fake


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by key, as the JSON the browser gets, with plotly's typed
    arrays (``{"dtype", "bdata", "shape"}``) decoded into lists."""
    return {element.key: json.loads(element.proto.spec, object_hook=_typed_array) for element in at.get("plotly_chart")}


def _typed_array(obj: dict):
    if set(obj) >= {"dtype", "bdata"}:
        array = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
        if "shape" in obj:
            array = array.reshape([int(n) for n in str(obj["shape"]).split(",")])
        return array.tolist()
    return obj


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def encoded(audio: np.ndarray, fmt: str, rate: int = 22_050) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- overview


def test_overview_shows_the_active_run_and_its_numbers(app, models):
    at = app.run()
    no_errors(at)
    metrics = read_json(models / "tiny-fast" / "metrics.json")
    shown = {m.label: m.value for m in at.metric}
    limited = metrics["band_limited"]
    assert shown == {
        "Song accuracy (vote)": f"{metrics['song_accuracy_vote']:.1%}",
        "Window accuracy": f"{metrics['window_accuracy']:.1%}",
        "Test songs": str(metrics["test_songs"]),
        "Unheard artists": "—",  # no cross-validated fast run here
        "Audio cut at 8 kHz": f"{limited['8000']['song_accuracy_vote']:.1%}",
        "Audio cut at 11 kHz": f"{limited['11000']['song_accuracy_vote']:.1%}",
    }
    assert "not measured: no cross-validated `fast` run yet" in [c.value for c in at.caption]
    selector = at.sidebar.selectbox(key="run_choice")
    assert selector.value == "tiny-fast"  # ACTIVE wins over the newer variant
    assert selector.options == [
        "tiny-variant · fast · " + f"{read_json(models / 'tiny-variant' / 'metrics.json')['song_accuracy_vote']:.0%}",
        f"tiny-fast · fast · {metrics['song_accuracy_vote']:.0%} · active",
    ]
    config = read_json(models / "tiny-fast" / "config.json")
    facts = " ".join(m.value for m in at.markdown)
    assert f"{config['parameters']:,}" in facts
    assert f"{config['songs']['train']} (+ {config['songs']['valid']} for validation)" in facts
    assert "stratified" in facts and "clicks, drones, noise" in facts
    recall = charts(at)["recall_chart"]["data"][0]
    tested = [g for g in metrics["genres"] if metrics["per_genre"][g]["support"]][::-1]
    assert recall["y"] == tested
    assert recall["x"] == [metrics["per_genre"][g]["recall"] for g in tested]


def test_overview_names_the_unseen_artist_figure_of_the_models_cv_run(tiny_run, tmp_path, monkeypatch):
    """A split run's headline sits beside how the same model does on artists it never heard
    (its cross-validated run) and what the test set holds."""
    folder = tmp_path / "models"
    shutil.copytree(tiny_run, folder / "tiny-fast")
    shutil.copytree(tiny_run, folder / "tiny-cv")
    config = read_json(folder / "tiny-cv" / "config.json")
    write_json(folder / "tiny-cv" / "config.json", config | {"protocol": "cv"})
    metrics = read_json(folder / "tiny-cv" / "metrics.json")
    metrics |= {
        "song_accuracy_vote": 0.4321,
        "multi_artist": {"genres": ["clicks", "noise"], "songs": 9, "song_accuracy_vote": 0.556},
    }
    write_json(folder / "tiny-cv" / "metrics.json", metrics)
    (folder / "ACTIVE").write_text("tiny-fast\n")
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    assert {m.label: m.value for m in at.metric}["Unheard artists"] == "43.2%"
    captions = " ".join(c.value for c in at.caption)
    assert "55.6% over the 2 genres with several artists" in captions
    text = " ".join(m.value for m in at.markdown)
    assert describe_test_set(read_json(tiny_run / "metrics.json")) + "; test songs may share artists" in text
    # Beside the split's per-genre recall, the CV run's: what each genre scores on unheard artists.
    assert "Per genre, on artists it never heard" in text and "Run `tiny-cv`: cv grouped by artist" in captions
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) == 2


def test_overview_and_panel_name_the_genres_learnt_from_fewer_than_three_artists(tiny_run, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    shutil.copytree(tiny_run, folder / "tiny-fast")
    split = read_json(folder / "tiny-fast" / "split.json")
    # As in GTZAN-280: every rock song is Morphine's.
    write_json(folder / "tiny-fast" / "split.json", split | {"train": [f"rock/rock.{k:05d}" for k in range(8)]})
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    captions = " ".join(c.value for c in at.caption)
    assert "Fewer than 3 artists in the training songs: rock (1 artist)." in captions


def test_overview_says_how_to_measure_what_an_older_run_lacks(tiny_run, tmp_path, monkeypatch):
    """A run evaluated before band-limited figures existed shows a dash and how to add them."""
    folder = tmp_path / "models"
    shutil.copytree(tiny_run, folder / "old")
    metrics = read_json(folder / "old" / "metrics.json")
    del metrics["band_limited"]
    write_json(folder / "old" / "metrics.json", metrics)
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Audio cut at 8 kHz"] == shown["Audio cut at 11 kHz"] == "—"
    assert [c.value for c in at.caption].count("not measured: `python -m genre evaluate` on this run adds it") == 2


def test_a_band_limited_figure_equal_to_full_band_has_no_arrow(tiny_run, tmp_path, monkeypatch):
    from streamlit.proto.Metric_pb2 import Metric

    folder = tmp_path / "models"
    shutil.copytree(tiny_run, folder / "run")
    metrics = read_json(folder / "run" / "metrics.json")
    metrics["band_limited"]["11000"]["song_accuracy_vote"] = metrics["song_accuracy_vote"]
    metrics["band_limited"]["8000"]["song_accuracy_vote"] = metrics["song_accuracy_vote"] - 0.25
    write_json(folder / "run" / "metrics.json", metrics)
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    cards = {m.label: m.proto for m in at.metric}
    same, lower = cards["Audio cut at 11 kHz"], cards["Audio cut at 8 kHz"]
    assert (same.delta, same.direction, same.color) == (
        "same as full band",
        Metric.MetricDirection.NONE,
        Metric.MetricColor.GRAY,
    )
    assert (lower.delta, lower.direction, lower.color) == (
        "-25.0% vs full band",
        Metric.MetricDirection.DOWN,
        Metric.MetricColor.RED,
    )


def test_run_choice_holds_across_pages(app, models):
    at = app.run()
    at.sidebar.selectbox(key="run_choice").set_value("tiny-variant").run()
    no_errors(at)
    variant = read_json(models / "tiny-variant" / "metrics.json")
    assert {m.label: m.value for m in at.metric}["Song accuracy (vote)"] == f"{variant['song_accuracy_vote']:.1%}"
    at.switch_page("pages/held_out.py").run()
    no_errors(at)
    assert at.sidebar.selectbox(key="run_choice").value == "tiny-variant"
    z = charts(at)["confusion_chart"]["data"][0]["z"]
    assert z == variant["confusion_matrix"]
    at.switch_page("pages/history.py").run()
    assert at.multiselect(key="history_runs").value == ["tiny-variant"]


def test_pages_explain_how_to_train_when_there_is_no_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    assert "python -m genre train" in at.code[0].value
    for page in ("pages/history.py", "pages/held_out.py", "pages/compare.py", "pages/classify.py"):
        at.switch_page(page).run()
        no_errors(at)
        assert "Overview page says how to train" in at.info[0].value


def test_an_unreadable_run_is_named_and_a_run_in_training_is_not_offered_to_serve(tiny_run, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    shutil.copytree(tiny_run, folder / "tiny-fast")
    (folder / "ACTIVE").write_text("tiny-fast\n")
    (Path(shutil.copytree(tiny_run, folder / "broken")) / "metrics.json").write_text('{"song_accuracy_vote": ')
    busy = Path(shutil.copytree(tiny_run, folder / "busy"))
    write_json(
        busy / "status.json",
        {"state": "running", "pid": os.getpid(), "epoch": 3, "epochs": 8, "batch": 1, "batches": 4},
    )
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    warning = "\n".join(w.value for w in at.sidebar.warning)
    assert "Run `broken` is left out" in warning and "metrics.json is not valid JSON" in warning
    assert sorted(o.split(" · ")[0] for o in at.sidebar.selectbox(key="run_choice").options) == ["busy", "tiny-fast"]
    at.sidebar.selectbox(key="run_choice").set_value("busy").run()
    assert not at.exception
    assert "Make active" not in [b.label for b in at.button]
    (progress,) = at.get("progress")
    assert "Training: epoch 3 of 8" in progress.proto.text
    write_json(busy / "status.json", {"state": "running", "pid": 2**22 + 12345, "epoch": 3, "epochs": 8})  # killed
    at.run()
    assert not at.get("progress")
    assert "Training stopped without a word (the process was killed) at epoch 3 of 8" in " ".join(
        w.value for w in at.warning
    )


# ----------------------------------------------------------------------------- history


def test_history_chart_holds_each_runs_epochs(app, models):
    at = app.run()
    at.switch_page("pages/history.py").run()
    no_errors(at)
    history = read_json(models / "tiny-fast" / "history.json")
    figure = charts(at)["history_chart"]
    by_name = {}
    for trace in figure["data"]:
        by_name.setdefault(trace["name"], []).append(trace)
    assert [t["y"] for t in by_name["tiny-fast · training"]] == [
        [e["loss"] for e in history],
        [e["accuracy"] for e in history],
    ]
    assert [t["y"] for t in by_name["tiny-fast · validation"]] == [
        [e["val_loss"] for e in history],
        [e["val_accuracy"] for e in history],
    ]
    best = min(history, key=lambda e: e["val_loss"])["epoch"]
    assert [t["x"] for t in by_name[f"tiny-fast · best epoch ({best})"]] == [[best], [best]]

    at.multiselect(key="history_runs").set_value(["tiny-fast", "tiny-variant"]).run()
    no_errors(at)
    names = {t["name"] for t in charts(at)["history_chart"]["data"]}
    assert {"tiny-fast · training", "tiny-variant · training", "tiny-fast · validation"} <= names
    assert "tiny-variant · validation" not in names  # the variant had no validation part
    table = at.dataframe[0].value
    assert list(table["run"]) == ["tiny-fast", "tiny-variant"]
    # The variant kept no validation songs: a dash, not "None" (or NaN).
    assert table["validation loss"].tolist() == [f"{min(e['val_loss'] for e in history):.3f}", "—"]
    assert table["validation accuracy"].tolist()[1] == "—"
    # One legend entry per run, and the run column as wide as the longest run name.
    assert [t["name"] for t in charts(at)["history_chart"]["data"] if t.get("showlegend", True)] == [
        "tiny-fast",
        "tiny-variant",
    ]
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["run"]["width"] >= 7 * len("tiny-variant")


# ----------------------------------------------------------------------------- held-out songs


def test_held_out_confusion_matrix_table_and_misclassified_songs(app, models):
    at = app.run()
    at.sidebar.selectbox(key="run_choice").set_value("tiny-variant").run()
    at.switch_page("pages/held_out.py").run()
    no_errors(at)
    metrics = read_json(models / "tiny-variant" / "metrics.json")
    assert charts(at)["confusion_chart"]["data"][0]["z"] == metrics["confusion_matrix"]
    at.toggle(key="confusion_normalised").set_value(True).run()
    shares = np.asarray(charts(at)["confusion_chart"]["data"][0]["z"])
    assert np.allclose(shares, normalise_rows(metrics["confusion_matrix"]))
    # The reliability diagram: the calibrated confidence of the test songs against their accuracy.
    bins = read_json(models / "tiny-variant" / "calibration.json")["reliability"]["bins"]
    points = charts(at)["reliability_chart"]["data"][1]
    assert np.allclose(points["x"], [b["confidence"] for b in bins]) and np.allclose(
        points["y"], [b["accuracy"] for b in bins]
    )

    per_genre, wrong = at.dataframe[0].value, at.dataframe[1].value
    assert list(per_genre["genre"]) == metrics["genres"]
    assert np.allclose(per_genre["recall"], [metrics["per_genre"][g]["recall"] for g in metrics["genres"]])
    expected = [s for s in metrics["songs"] if s["vote"] != s["true"]]
    assert list(wrong["track"]) == [s["track_id"] for s in expected]
    assert list(wrong["windows"]) == [sum(s["votes"]) for s in expected]
    # The synthetic dataset is on this machine, so a misclassified song can be played.
    assert at.selectbox(key="held_out_track").options == [s["track_id"] for s in expected]
    assert len(at.get("audio")) == 1


# ----------------------------------------------------------------------------- compare


def test_compare_page_sets_the_sidebar_run_against_another(app, models):
    at = app.run()
    at.switch_page("pages/compare.py").run()
    no_errors(at)
    assert at.selectbox(key="compare_run_b").value == "tiny-variant"
    a, b = (read_json(models / r / "metrics.json") for r in ("tiny-fast", "tiny-variant"))
    shown = {m.label: m.value for m in at.metric}
    assert (
        shown["A · tiny-fast"] == f"{a['song_accuracy_vote']:.1%}"
        and shown["B · tiny-variant"] == f"{b['song_accuracy_vote']:.1%}"
    )
    figures = charts(at)
    assert figures["compare_confusion_a"]["data"][0]["z"] == a["confusion_matrix"]
    assert figures["compare_confusion_b"]["data"][0]["z"] == b["confusion_matrix"]
    # The variant moved one right song to the next genre: one song in the difference.
    difference = np.asarray(figures["compare_difference_chart"]["data"][0]["z"])
    assert np.abs(difference).sum() == 2 and difference.sum() == 0
    bars = {t["name"]: t["y"] for t in figures["compare_per_genre_chart"]["data"]}
    assert bars["tiny-fast"] == [a["per_genre"][g]["recall"] for g in a["genres"]]
    assert len(figures["compare_accuracy_chart"]["data"][0]["error_x"]["array"]) == 2
    paired = next(m.value for m in at.markdown if m.value.startswith("**Paired test**"))
    assert f"within what chance gives on {a['test_songs']} songs" in paired
    table = at.dataframe[0].value
    moved = [s["track_id"] for s, t in zip(a["songs"], b["songs"]) if s["vote"] != t["vote"]]
    assert list(table["track"]) == moved and list(table["right"]) == ["A"]
    assert at.selectbox(key="compare_track").options == moved and len(at.get("audio")) == 1
    at.segmented_control(key="compare_measure").set_value("F1").run()
    no_errors(at)
    bars = {t["name"]: t["y"] for t in charts(at)["compare_per_genre_chart"]["data"]}
    # Recomputed from the stored songs (the fixture's variant changed its votes, not its per_genre).
    from sklearn.metrics import f1_score

    expected = f1_score(
        [s["true"] for s in b["songs"]], [s["vote"] for s in b["songs"]], labels=b["genres"], average=None
    )
    assert bars["tiny-variant"] == pytest.approx(list(expected))


def test_compare_page_says_when_there_is_nothing_to_compare_with(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run, tmp_path / "only")
    monkeypatch.setenv("GENRE_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/compare.py").run()
    no_errors(at)
    assert "only run with test results" in at.info[0].value


# ----------------------------------------------------------------------------- classify


@pytest.fixture
def classify_page(app, fake_webrtc) -> AppTest:
    at = app.run()
    at.switch_page("pages/classify.py").run()
    no_errors(at)
    return at


@pytest.mark.parametrize("fmt", ["WAV", "MP3"])
def test_upload_shows_the_vote_and_one_bar_per_window(classify_page, models, fmt):
    at = classify_page
    data = encoded(song("clicks", 9.2, seed=42, sr=44_100), fmt, rate=44_100)
    at.file_uploader(key="upload").upload(
        f"clicks.{fmt.lower()}", data, "audio/mpeg" if fmt == "MP3" else "audio/wav"
    ).run()
    no_errors(at)
    assert len(at.get("audio")) == 1  # the upload can be played
    assert "upload_windows" not in charts(at)  # nothing is classified before the click
    at.button(key="classify_upload").click().run()
    no_errors(at)

    expected = Classifier.load(models / "tiny-fast").classify(data, name="clicks")
    assert len(expected.starts) == 3
    shown = {m.label: m.value for m in at.metric}
    assert shown["Majority vote"] == expected.vote_genre
    assert shown["Mean probability"] == expected.mean_genre
    figure = charts(at)["upload_windows"]
    assert [t["name"] for t in figure["data"]] == expected.genres
    for g, trace in enumerate(figure["data"]):
        assert len(trace["x"]) == 3  # one column per 3 s window
        assert np.allclose(trace["x"], expected.starts + 1.5)
        assert np.allclose(trace["y"], expected.probabilities[:, g], atol=1e-5)
    ranking = charts(at)["upload_ranking"]["data"][0]
    assert ranking["y"][-1] == expected.ranking()[0][0]  # the top genre is drawn on top


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.wav", b"this is not audio at all", "not a readable audio file"),
        ("quiet.wav", encoded(np.zeros(22_050 * 4, dtype=np.float32), "WAV"), "silent"),
        ("blip.wav", encoded(np.full(5_000, 0.2, dtype=np.float32), "WAV"), "too short"),
    ],
)
def test_bad_uploads_get_one_clear_message(classify_page, name, data, message):
    at = classify_page
    at.file_uploader(key="upload").upload(name, data, "audio/wav").run()
    at.button(key="classify_upload").click().run()
    no_errors(at)
    assert len(at.error) == 1 and message in at.error[0].value and name in at.error[0].value
    assert "upload_windows" not in charts(at)


def test_an_upload_shows_what_the_model_heard_and_where_it_lies_on_the_map(classify_page, models):
    at = classify_page
    data = encoded(song("drones", 7.6, seed=8), "WAV")
    at.file_uploader(key="upload").upload("drones.wav", data, "audio/wav").run()
    at.button(key="classify_upload").click().run()
    no_errors(at)
    expected = Classifier.load(models / "tiny-fast").classify(data, name="drones")
    assert np.allclose(expected.starts, [0, 3, 4.6], atol=1e-3)  # the last window overlaps
    shown = charts(at)
    # Bars first, then the spectrogram and the map (the order the page sends them in).
    assert list(shown).index("upload_windows") < list(shown).index("upload_heard") < list(shown).index("upload_map")
    spectrogram, strip = shown["upload_heard"]["data"]  # a `fast` model: no musicnn taggram
    assert spectrogram["type"] == "heatmap" and strip["type"] == "bar"
    assert np.allclose(strip["base"], expected.starts)
    assert strip["y"] == ["windows", "windows", "overlap"]
    assert strip["text"] == [expected.genres[i] for i in expected.probabilities.argmax(axis=1)]
    assert max(spectrogram["x"]) <= expected.seconds + 0.05

    # The player under the figure starts at the chosen window, which the figure marks on every row.
    def playhead():
        lines = [s for s in charts(at)["upload_heard"]["layout"]["shapes"] if s["line"]["color"] == PLAYHEAD_COLOR]
        players = [a.proto.start_time for a in at.get("audio")]
        return sorted({line["x0"] for line in lines}), len(lines), players

    slider = at.select_slider(key="upload_playhead")
    winners = [expected.genres[i] for i in expected.probabilities.argmax(axis=1)]
    assert slider.options == [f"{clock(t)} · {g}" for t, g in zip(expected.starts, winners)]
    assert playhead() == ([0], 2, [0, 0])  # the upload's own player, then the aligned one
    slider.set_value(float(expected.starts[2])).run()
    no_errors(at)
    lines, rows, players = playhead()
    assert lines == [int(expected.starts[2])] and rows == 2
    assert players[0] == 0 and players[1] == int(expected.starts[2])

    placed = read_song_map(models / "tiny-fast").place(expected.embeddings)
    star = next(t for t in shown["upload_map"]["data"] if t["name"] == "your song")
    assert np.allclose([star["x"][0], star["y"][0]], placed.xy, atol=1e-4)
    nearest = at.dataframe[0].value  # the page's only table
    assert list(nearest["track"]) == [n.track_id for n in placed.nearest] and len(nearest) == 5
    split = read_json(models / "tiny-fast" / "split.json")
    assert set(nearest["track"]) <= set(split["train"])


def test_a_musicnn_model_also_shows_musicnns_tags_and_a_missing_or_stale_map_is_one_line(
    models, tmp_path, monkeypatch, fake_webrtc
):
    """A `transfer` model (built, untrained: what matters is its musicnn front end) in a copy of
    the tiny run: the taggram has musicnn's top 10 tags, read from the classification's own model
    call (no second pass); the run has no map of its own."""
    from genre.models.registry import build_model
    from genre.serve.heard import TagNetwork, taggram

    folder = tmp_path / "musicnn-models"
    shutil.copytree(
        models / "tiny-variant", folder / "tiny-musicnn", ignore=shutil.ignore_patterns("calibration.json", MAP_FILE)
    )
    build_model("transfer", 3).save(folder / "tiny-musicnn" / "model.keras")
    (folder / "ACTIVE").write_text("tiny-musicnn\n")
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    audio = song("clicks", 6.0, seed=9)
    direct = taggram(TagNetwork(), audio)

    def second_pass(*_):  # the page must read the tags its classification's model call gave
        raise AssertionError("musicnn was run a second time for the taggram")

    monkeypatch.setattr(TagNetwork, "tags", second_pass)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/classify.py").run()
    at.file_uploader(key="upload").upload("clicks.wav", encoded(audio, "WAV"), "audio/wav").run()
    at.button(key="classify_upload").click().run()
    no_errors(at)
    spectrogram, strip, tags = charts(at)["upload_heard"]["data"]
    assert tags["type"] == "heatmap" and np.allclose(tags["x"], [0, 3, 6])
    assert spectrogram["type"] == "heatmap" and np.allclose(strip["base"], [0, 3])
    assert tags["y"] == direct.tags and len(tags["y"]) == 10
    assert np.allclose(tags["z"], direct.values, atol=1e-3)
    captions = " ".join(c.value for c in at.caption)
    assert "has no song map yet: `python -m genre map tiny-musicnn`" in captions
    assert "upload_map" not in charts(at)

    shutil.copyfile(models / "tiny-fast" / MAP_FILE, folder / "tiny-musicnn" / MAP_FILE)  # another model's map
    at.run()
    no_errors(at)
    assert "was computed with another model.keras" in " ".join(c.value for c in at.caption)
    assert "upload_map" not in charts(at)


def test_the_song_map_page_shows_every_song_of_the_split(app, models):
    at = app.run()
    at.switch_page("pages/song_map.py").run()
    no_errors(at)
    split = read_json(models / "tiny-fast" / "split.json")
    traces = charts(at)["song_map_chart"]["data"]
    songs = [(c[0], s) for t in traces if t.get("customdata") for c, s in zip(t["customdata"], t["marker"]["symbol"])]
    assert sorted(t for t, _ in songs) == sorted(split["train"] + split["valid"] + split["test"])
    assert sorted(t for t, symbol in songs if symbol == "x") == sorted(split["test"])  # test songs marked
    assert "PCA fitted on them alone" in at.caption[0].value

    at.sidebar.selectbox(key="run_choice").set_value("tiny-variant").run()  # no map; its dataset is here
    no_errors(at)
    assert "python -m genre map tiny-variant" in at.info[0].value and "song_map_chart" not in charts(at)


def test_the_song_map_page_says_when_the_dataset_is_not_here(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run, tmp_path / "away", ignore=shutil.ignore_patterns(MAP_FILE))
    config = read_json(tmp_path / "away" / "config.json")
    write_json(tmp_path / "away" / "config.json", config | {"data_root": str(tmp_path / "gone")})
    monkeypatch.setenv("GENRE_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/song_map.py").run()
    no_errors(at)
    assert len(at.main.info) == 1 and "is not on this machine" in at.main.info[0].value


def stereo_frames(seconds: float):
    """aiortc's frames: 20 ms of 48 kHz stereo s16, interleaved."""
    mono = song("clicks", seconds, seed=7, sr=48_000)
    pcm = (np.stack([mono, mono * 0.8], axis=1) * 32767).astype(np.int16)
    for start in range(0, len(pcm), 960):
        frame = av.AudioFrame.from_ndarray(pcm[start : start + 960].reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        yield frame


def test_microphone_windows_appear_while_recording_and_the_take_is_classified_after(classify_page, fake_webrtc, models):
    at = classify_page
    fake_webrtc.playing = True
    at.session_state["classify_mode"] = "Microphone (live)"
    at.run()
    no_errors(at)
    mode = fake_webrtc.kwargs
    assert mode["mode"] == streamlit_webrtc.WebRtcMode.SENDONLY
    assert mode["rtc_configuration"] == {"iceServers": []}
    assert mode["media_stream_constraints"] == {
        "audio": {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False},
        "video": False,
    }
    # Listening, no window yet: an empty chart of the first 30 s waits for the bars.
    assert [len(t["x"]) for t in charts(at)["live_windows"]["data"]] == [0, 0, 0]

    for frame in stereo_frames(7.0):  # what aiortc's thread does while the page refreshes
        fake_webrtc.callback(frame)
    assert at.session_state["live_results"].wait_for(2)  # the live worker's thread classifies them
    at.run()
    no_errors(at)
    bars = charts(at)["live_windows"]["data"]
    assert [len(t["x"]) for t in bars] == [2, 2, 2]  # two completed windows so far
    assert np.allclose(bars[0]["x"], [1.5, 4.5])
    vote = next(m.value for m in at.markdown if m.value.startswith("Running vote"))
    classifier = Classifier.load(models / "tiny-fast")
    live = at.session_state["live_audio"]
    take = live.take()
    probabilities = np.concatenate(
        [classifier.predict_windows(take[None, :66_150]), classifier.predict_windows(take[None, 66_150:132_300])]
    )
    expected = classifier.summarise(probabilities, [0.0, 3.0], live.seconds)
    assert f"**{expected.vote_genre}**" in vote

    fake_webrtc.playing = False  # Stop pressed
    at.run()
    no_errors(at)
    assert len(at.get("audio")) == 1  # the take plays back
    at.button(key="classify_take").click().run()
    no_errors(at)
    whole = classifier.classify(take)
    assert {m.label: m.value for m in at.metric}["Majority vote"] == whole.vote_genre
    assert [len(t["x"]) for t in charts(at)["take_windows"]["data"]] == [len(whole.starts)] * 3


def test_recorded_clip_is_classified(classify_page, models):
    at = classify_page
    at.session_state["classify_mode"] = "Record a clip"
    at.run()
    clip = at.audio_input(key="clip")
    assert clip.sample_rate == 22_050
    data = encoded(song("drones", 6.5, seed=3), "WAV")
    clip.set_value(("recording.wav", data, "audio/wav")).run()
    no_errors(at)
    expected = Classifier.load(models / "tiny-fast").classify(data)
    assert {m.label: m.value for m in at.metric}["Majority vote"] == expected.vote_genre
    assert [len(t["x"]) for t in charts(at)["clip_windows"]["data"]] == [2, 2, 2]


def test_the_folds_table_of_a_cross_validation_run_has_readable_headers(tmp_path, monkeypatch):
    """The shipped 5-fold run: every column of its Folds table is named in words, none by its
    metrics.json key."""
    shutil.copytree(Path(APP).parent / "models" / "fast-cv", tmp_path / "fast-cv")
    (tmp_path / "ACTIVE").write_text("fast-cv\n")
    monkeypatch.setenv("GENRE_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_errors(at)
    folds = read_json(tmp_path / "fast-cv" / "metrics.json")["folds"]
    table = at.dataframe[-1]
    assert len(table.value) == len(folds) == 5
    labels = {
        key: column.get("label")
        for key, column in json.loads(table.proto.columns).items()
        if key in table.value.columns
    }
    assert set(labels) == {"fold", *folds[0]}
    for key, label in labels.items():
        assert label and "_" not in label and label != key, (key, label)


def test_an_answer_the_winner_does_not_clearly_lead_says_uncertain(tiny_run, tmp_path, monkeypatch, fake_webrtc):
    """A run whose calibration puts the margin above any lead: the headline is "Uncertain: a or
    b" with the top three, and the vote moves to a caption."""
    folder = tmp_path / "doubtful-models"
    shutil.copytree(tiny_run, folder / "doubtful")
    (folder / "ACTIVE").write_text("doubtful\n")
    calibration = read_json(folder / "doubtful" / "calibration.json")
    write_json(folder / "doubtful" / "calibration.json", calibration | {"margin_threshold": 1.01})
    monkeypatch.setenv("GENRE_MODELS_DIR", str(folder))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/classify.py").run()
    data = encoded(song("clicks", 9.2, seed=42, sr=44_100), "WAV", rate=44_100)
    at.file_uploader(key="upload").upload("clicks.wav", data, "audio/wav").run()
    at.button(key="classify_upload").click().run()
    no_errors(at)
    expected = Classifier.load(folder / "doubtful").classify(data, name="clicks")
    ranking = expected.calibrated_ranking()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Uncertain"] == f"{ranking[0][0]} or {ranking[1][0]}"
    captions = [c.value for c in at.caption]
    assert any(c.startswith(f"{ranking[0][0]} {ranking[0][1]:.0%} · ") for c in captions)
    assert any(c.startswith(f"Majority vote: {expected.vote_genre}") for c in captions)


def test_the_served_model_is_warmed_in_the_background_from_the_first_visit(app, models):
    from dashboard import state

    at = app.run()  # the Overview: it does not wait for the model
    no_errors(at)
    thread = state.warm_served_model(str(models))  # the same cache entry the visit started
    thread.join(timeout=TIMEOUT)
    assert not thread.is_alive()
    assert str(models / "tiny-fast") in state.warmed
