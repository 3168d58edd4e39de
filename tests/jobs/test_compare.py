"""Comparing two runs on their stored test results: figures, the paired test, what is comparable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genre.files import write_json
from genre.jobs.compare import CompareError, compare_runs, comparison_text, mcnemar_exact, wilson_interval
from genre.jobs.runs import load_run

GENRES = ["blues", "jazz", "rock"]


def make_run(folder: Path, songs: list[tuple[str, str, str]], genres: list[str] = GENRES, model: str = "fast") -> Path:
    """A run folder with ``metrics.json`` holding ``songs`` as (track, true, vote)."""
    folder.mkdir(parents=True)
    write_json(folder / "config.json", {"model": model, "protocol": "stratified"})
    write_json(folder / "genres.json", genres)
    rows = []
    for track, true, vote in songs:
        p = [0.1] * len(genres)
        p[genres.index(vote)] = 0.8
        rows.append(
            {
                "track_id": track,
                "true": true,
                "vote": vote,
                "votes": [9 if g == vote else 0 for g in genres],
                "mean_probability": p,
            }
        )
    write_json(folder / "metrics.json", {"genres": genres, "songs": rows, "test_songs": len(rows)})
    return folder


def songs(n_right: int, n_wrong: int, prefix: str = "t") -> list[tuple[str, str, str]]:
    return [(f"blues/{prefix}{k}", "blues", "blues") for k in range(n_right)] + [
        (f"jazz/{prefix}{k}", "jazz", "rock") for k in range(n_wrong)
    ]


def test_wilson_interval_matches_the_textbook_and_stays_in_bounds():
    lo, hi = wilson_interval(55, 56)
    assert lo == pytest.approx(0.9055, abs=1e-4) and hi == pytest.approx(0.9968, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    from scipy.stats import binomtest

    for k, n in ((3, 17), (40, 56), (1, 2)):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(1 - hi)


def test_exact_mcnemar_is_the_binomial_test_of_the_discordant_songs():
    assert mcnemar_exact(4, 0) == pytest.approx(0.125)
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(3, 3) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0


def test_paired_runs_on_the_same_songs(tmp_path):
    a = make_run(tmp_path / "a", songs(8, 2))
    # B gets both jazz songs right and one blues song wrong.
    b_songs = (
        [("blues/t0", "blues", "jazz")] + songs(8, 0)[1:] + [("jazz/t0", "jazz", "jazz"), ("jazz/t1", "jazz", "jazz")]
    )
    b = make_run(tmp_path / "b", b_songs)
    c = compare_runs(load_run(a), load_run(b))
    assert (c.a.right, c.b.right) == (8, 9) and c.same_songs and c.same_genres and c.shared_songs == 10
    assert (c.only_a, c.only_b) == (1, 2)
    assert c.p_value == pytest.approx(1.0)
    assert "within what chance gives on 10 songs" in c.verdict
    assert c.a.per_genre["jazz"]["recall"] == 0 and c.b.per_genre["jazz"]["recall"] == 1
    assert c.difference_kind == "songs"
    # B moved two jazz songs from the rock column to the jazz one, and one blues song to jazz.
    assert c.difference == [[-1, 1, 0], [0, 2, -2], [0, 0, 0]]
    assert sorted(d["track"] for d in c.disagreements) == ["blues/t0", "jazz/t0", "jazz/t1"]
    first = next(d for d in c.disagreements if d["track"] == "blues/t0")
    assert first == {
        "track": "blues/t0",
        "true": "blues",
        "vote_a": "blues",
        "confidence_a": 0.8,
        "vote_b": "jazz",
        "confidence_b": 0.8,
        "right": "A",
    }
    text = comparison_text(c)
    assert "8/10 songs right, 80.0%" in text and "paired test" in text


def test_a_real_difference_is_called_one(tmp_path):
    a = make_run(tmp_path / "a", songs(10, 0) + songs(0, 12, prefix="u"))
    b = make_run(tmp_path / "b", songs(10, 0) + [(f"jazz/u{k}", "jazz", "jazz") for k in range(12)])
    c = compare_runs(load_run(a), load_run(b))
    assert (c.only_a, c.only_b) == (0, 12) and c.p_value < 0.001
    assert "really differ" in c.verdict


def test_runs_with_other_songs_or_genres_compare_only_what_is_comparable(tmp_path):
    a = make_run(tmp_path / "a", songs(5, 1))
    other = make_run(tmp_path / "other", songs(5, 1, prefix="x"))
    c = compare_runs(load_run(a), load_run(other))
    assert c.shared_songs == 0 and c.p_value is None and c.disagreements == []
    assert c.difference_kind == "share"
    assert any("share no test song" in n for n in c.notes)
    pop = make_run(tmp_path / "pop", [("blues/t0", "blues", "blues"), ("pop/p", "pop", "pop")], genres=["blues", "pop"])
    c = compare_runs(load_run(a), load_run(pop))
    assert c.genres == ["blues"] and not c.same_genres and c.difference is None
    assert c.shared_songs == 1 and c.p_value == 1.0
    assert any("different genres" in n for n in c.notes)


def test_a_run_without_test_results_is_refused(tmp_path):
    a = make_run(tmp_path / "a", songs(2, 1))
    empty = tmp_path / "empty"
    empty.mkdir()
    write_json(empty / "config.json", {"model": "fast"})
    with pytest.raises(CompareError, match="no per-song test results"):
        compare_runs(load_run(a), load_run(empty))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genre", *args], capture_output=True, text=True, timeout=120)


def test_cli_compare_text_json_and_one_line_errors(tmp_path):
    models = tmp_path / "models"
    make_run(models / "a", songs(8, 2))
    make_run(models / "b", songs(8, 1) + [("jazz/t1", "jazz", "jazz")])
    out = run_cli("compare", "a", "b", "--models-dir", str(models))
    assert out.returncode == 0, out.stderr
    assert (
        "A a (fast, stratified): 8/10 songs right" in out.stdout and "(exact McNemar) on 10 shared songs" in out.stdout
    )
    out = run_cli("compare", str(models / "a"), "b", "--models-dir", str(models), "--json")
    data = json.loads(out.stdout)
    assert data["a"]["right"] == 8 and data["b"]["right"] == 9 and data["p_value"] == pytest.approx(1.0)
    out = run_cli("compare", "a", "missing", "--models-dir", str(models))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no run 'missing'" in out.stderr
    out = run_cli("compare", "a", "../x", "--models-dir", str(models))
    assert out.returncode == 2 and "run id" in out.stderr
