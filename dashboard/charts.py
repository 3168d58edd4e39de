"""Plotly figures and tables of a run's results and of a classification.

Pure functions of run data (``history.json``, ``metrics.json``) and of
:class:`genre.serve.prediction.Classification`; no Streamlit, so every figure can be tested on its own.
A genre has the same colour in every figure: see :func:`genre_colors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genre import WINDOW_SECONDS

# GTZAN's genres keep fixed colours (Tableau 10), so a run trained on a subset of them still
# paints e.g. "rock" red. Other genre names draw from EXTRA_COLORS in the order they appear.
GENRE_COLORS = {
    "blues": "#4E79A7",
    "classical": "#B07AA1",
    "country": "#9C755F",
    "disco": "#FF9DA7",
    "hiphop": "#F28E2B",
    "jazz": "#76B7B2",
    "metal": "#5B5553",
    "pop": "#EDC948",
    "reggae": "#59A14F",
    "rock": "#E15759",
}
EXTRA_COLORS = (
    "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#17BECF",
    "#BCBD22", "#7F7F7F", "#AEC7E8", "#FFBB78", "#98DF8A", "#FF9896", "#C5B0D5", "#C49C94",
)  # fmt: skip
# Plotly's ten D3 colours: the shipped runs and one of the user's overlay without a repeat.
RUN_COLORS = (
    "#1F77B4",
    "#D62728",
    "#2CA02C",
    "#9467BD",
    "#FF7F0E",
    "#17BECF",
    "#8C564B",
    "#E377C2",
    "#7F7F7F",
    "#BCBD22",
)


def genre_colors(genres: Sequence[str]) -> dict[str, str]:
    """A colour for each genre: fixed for GTZAN's genres, else the next free palette colour.

    Depends only on ``genres`` (a run's genre list), so all pages showing one run agree.
    """
    colors = {g: GENRE_COLORS[g] for g in genres if g in GENRE_COLORS}
    free = [c for c in EXTRA_COLORS if c not in colors.values()]
    for k, genre in enumerate(g for g in genres if g not in colors):
        colors[genre] = free[k % len(free)]
    return colors


def clock(seconds: float) -> str:
    """``m:ss`` for a time in seconds."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


# ----------------------------------------------------------------------------- training history


def monitored(history: Sequence[Mapping]) -> str:
    """The quantity the best model was chosen by: ``val_loss``, or ``loss`` for a run without
    a validation part (as ``genre.train.training.BestModel`` does)."""
    return "val_loss" if history and all("val_loss" in e for e in history) else "loss"


def best_epoch(history: Sequence[Mapping]) -> int | None:
    """The epoch (1-based) whose weights ``model.keras`` holds; ``None`` for an empty history."""
    if not history:
        return None
    key = monitored(history)
    best = min(history, key=lambda e: (e[key], -e["epoch"]))  # a tie goes to the later epoch, as in BestModel
    return int(best["epoch"])


def history_table(histories: Mapping[str, Sequence[Mapping]]) -> list[dict]:
    """One row per run: epochs, best epoch and its losses and accuracies, training time."""
    rows = []
    for run_id, history in histories.items():
        best = best_epoch(history)
        if best is None:
            continue
        entry = next(e for e in history if e["epoch"] == best)
        rows.append(
            {
                "run": run_id,
                "epochs": len(history),
                "best epoch": best,
                "loss": entry.get("loss"),
                "accuracy": entry.get("accuracy"),
                "validation loss": entry.get("val_loss"),
                "validation accuracy": entry.get("val_accuracy"),
                "minutes": round(sum(e.get("seconds", 0.0) for e in history) / 60, 1),
            }
        )
    return rows


def history_table_shown(rows: Sequence[Mapping]) -> list[dict]:
    """:func:`history_table`'s rows for display: the validation columns as text, "—" for a run
    without a validation part (a table shows a missing number as "None")."""
    return [
        {
            **row,
            "validation loss": "—" if row["validation loss"] is None else f"{row['validation loss']:.3f}",
            "validation accuracy": "—"
            if row["validation accuracy"] is None
            else f"{row['validation accuracy']:.2%}",  # as the table's "percent"
        }
        for row in rows
    ]


# The history chart's legend: one entry per run, in rows below both panels. Rows are reserved
# for the narrowest chart the pages draw (beside the sidebar of a 1024 px window it is about
# 690 px wide), so the legend never overlaps the axis titles nor turns into a scroll box.
HISTORY_PANEL_HEIGHT = 400
LEGEND_ROW_PX = 22
LEGEND_WIDTH_PX = 600
AXIS_TITLE_PX = 54  # below the panels: tick labels and the "epoch" title


def legend_layout(names: Sequence[str]) -> tuple[int, int]:
    """Rows a horizontal legend of ``names`` needs at :data:`LEGEND_WIDTH_PX`, and the width
    (px) of each entry's text: all entries get the longest name's width, so they form columns."""
    text = 7 * max((len(n) for n in names), default=0) + 10  # about 7 px a character at plotly's 12 px font
    per_row = max(1, LEGEND_WIDTH_PX // (text + 40))  # 40 px: the line symbol before the text
    return -(-len(names) // per_row), text


def history_figure(histories: Mapping[str, Sequence[Mapping]]) -> go.Figure:
    """Loss and accuracy per epoch, side by side; training solid, validation dashed, one colour
    per run, and a star on the best epoch (the epoch ``model.keras`` was saved at). The legend
    holds one entry per run (clicking it hides all the run's curves); the line styles are
    explained beside the chart. The figure grows with the legend's rows."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.09)
    shown = [run_id for run_id, history in histories.items() if history]
    for k, (run_id, history) in enumerate(histories.items()):
        if not history:
            continue
        color = RUN_COLORS[k % len(RUN_COLORS)]
        epochs = [e["epoch"] for e in history]
        best = best_epoch(history)
        # The run's legend entry: an empty trace in its colour, so every real trace keeps a name
        # that says what it is ("<run> · validation") in the data and on hover. Shown even for a
        # lone run, whose one-entry legend plotly would hide, so the layout stays the same.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=run_id,
                legendgroup=run_id,
                showlegend=True,
                line={"color": color, "width": 3},
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
        for col, metric in ((1, "loss"), (2, "accuracy")):
            for part, key, dash in (("training", metric, "solid"), ("validation", f"val_{metric}", "dash")):
                if not all(key in e for e in history):
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=epochs,
                        y=[e[key] for e in history],
                        mode="lines+markers" if len(history) < 40 else "lines",
                        name=f"{run_id} · {part}",
                        legendgroup=run_id,
                        showlegend=False,
                        line={"color": color, "dash": dash, "width": 2},
                        marker={"size": 5},
                        hovertemplate=f"{run_id} {part}<br>epoch %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
            # The star sits on the curve the best model was chosen by (validation if any).
            key = f"val_{metric}" if monitored(history) == "val_loss" else metric
            value = next(e[key] for e in history if e["epoch"] == best)
            fig.add_trace(
                go.Scatter(
                    x=[best],
                    y=[value],
                    mode="markers",
                    name=f"{run_id} · best epoch ({best})",
                    legendgroup=run_id,
                    showlegend=False,
                    marker={"symbol": "star", "size": 16, "color": color, "line": {"color": "white", "width": 1}},
                    hovertemplate=f"{run_id}: best epoch {best}<br>{key} %{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    rows, entry = legend_layout(shown)
    legend_px = rows * LEGEND_ROW_PX + 8
    fig.update_xaxes(title_text="epoch", title_standoff=6, rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(
        height=HISTORY_PANEL_HEIGHT + legend_px,
        margin={"t": 40, "b": AXIS_TITLE_PX + legend_px, "l": 50, "r": 20},
        # Anchored to the figure's bottom edge, below the space the axis titles take.
        legend={
            "orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "xanchor": "left", "x": 0,
            "entrywidth": entry, "entrywidthmode": "pixels", "tracegroupgap": 0,
        },
        hovermode="closest",
    )  # fmt: skip
    return fig


def progress_figure(history: Sequence[Mapping]) -> go.Figure:
    """A training job's accuracy per epoch so far (training solid, validation dashed), small
    enough for the sidebar and tall enough to read."""
    fig = go.Figure()
    epochs = [e["epoch"] for e in history]
    for key, name, dash in (("accuracy", "training", "solid"), ("val_accuracy", "validation", "dash")):
        if all(key in e for e in history):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[e[key] for e in history],
                    mode="lines+markers" if len(history) < 40 else "lines",
                    name=name,
                    line={"color": RUN_COLORS[0], "dash": dash, "width": 2},
                    marker={"size": 4},
                    hovertemplate=f"epoch %{{x}}: {name} %{{y:.1%}}<extra></extra>",
                )
            )
    fig.update_layout(
        height=200,
        margin={"t": 10, "b": 30, "l": 40, "r": 10},
        xaxis={"title": {"text": "epoch", "standoff": 4}, "rangemode": "tozero"},
        yaxis={"range": [0, 1.02], "tickformat": ".0%"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
    )
    return fig


# ----------------------------------------------------------------------------- held-out songs


def normalise_rows(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Each row divided by its sum (a row of zeros stays zero): the share of a true genre's
    songs given each predicted genre; the diagonal is that genre's recall."""
    m = np.asarray(matrix, dtype=np.float64)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def confusion_figure(metrics: Mapping, normalised: bool = False) -> go.Figure:
    """The song-level confusion matrix (rows: true genre, columns: the vote), as counts or
    row-normalised shares. Each cell shows its value; hover shows both."""
    genres = list(metrics["genres"])
    counts = np.asarray(metrics["confusion_matrix"], dtype=np.int64).reshape(len(genres), len(genres))
    shares = normalise_rows(counts)
    z = shares if normalised else counts
    text = [[f"{v:.0%}" if normalised else str(int(v)) for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=genres,
            y=genres,
            text=text,
            texttemplate="%{text}",
            customdata=np.dstack([counts, shares]),
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalised else max(int(counts.max()), 1),
            xgap=1,
            ygap=1,
            colorbar={
                "title": {"text": "share" if normalised else "songs"},
                "tickformat": ".0%" if normalised else "d",
                # Whole songs only: small counts would otherwise repeat rounded ticks.
                "dtick": 0.25 if normalised else max(1, int(np.ceil(counts.max() / 6))),
            },
            hovertemplate="true %{y}, voted %{x}<br>%{customdata[0]} songs (%{customdata[1]:.0%} of "
            "%{y})<extra></extra>",
        )
    )
    side = max(360, 42 * len(genres) + 140)
    fig.update_layout(
        height=side,
        margin={"t": 30, "b": 40, "l": 40, "r": 20},
        # dtick 1: every genre keeps its label (plotly drops labels it thinks would crowd).
        xaxis={
            "title": "voted genre",
            "side": "bottom",
            "tickangle": -30 if len(genres) > 6 else 0,
            "dtick": 1,
            "automargin": True,
        },
        yaxis={"title": "true genre", "autorange": "reversed", "dtick": 1, "automargin": True},
    )
    return fig


def per_genre_rows(metrics: Mapping) -> list[dict]:
    """Per-genre precision, recall, F1 and support of the song vote, in the run's genre order."""
    return [
        {"genre": g, **{k: metrics["per_genre"][g][k] for k in ("precision", "recall", "f1", "support")}}
        for g in metrics["genres"]
        if g in metrics.get("per_genre", {})
    ]


def _genre_bars(
    genres: Sequence[str], names: Sequence[str], values: Sequence[float], text: Sequence[str], hover: str
) -> go.Figure:
    """Horizontal bars, one per genre in ``names`` (bottom up), each in its colour. Each
    bar's figure goes into its axis label ("rock · 72%"), which plotly sizes the margin for,
    so nothing is cut off however narrow the column (text beside the bar was)."""
    colors = genre_colors(genres)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=list(names),
            orientation="h",
            marker={"color": [colors[n] for n in names]},
            hovertemplate=hover,
        )
    )
    fig.update_yaxes(
        tickmode="array", tickvals=list(names), ticktext=[f"{n} · {t}" for n, t in zip(names, text)], automargin=True
    )
    return fig


def reliability_figure(bins: Sequence[Mapping]) -> go.Figure:
    """Reliability diagram: per confidence bin of the test songs (calibration.json's
    ``reliability``), the share voted right against the confidence shown, with the diagonal a
    perfectly calibrated model would sit on."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="calibrated", hoverinfo="skip"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            mode="lines+markers+text",
            text=[str(b["songs"]) for b in bins],
            textposition="top center",
            marker={"size": [8 + 2 * min(b["songs"], 12) for b in bins]},
            name="test songs",
            hovertemplate="shown %{x:.0%}<br>right %{y:.0%}<br>%{text} songs<extra></extra>",
        )
    )
    fig.update_layout(
        height=320,
        margin={"t": 10, "b": 40, "l": 10, "r": 15},
        xaxis={"range": [0, 1.02], "tickformat": ".0%", "title": "confidence shown (calibrated)"},
        yaxis={"range": [0, 1.08], "tickformat": ".0%", "title": "songs right"},
        showlegend=False,
    )
    return fig


def recall_figure(metrics: Mapping) -> go.Figure:
    """Per genre, the share of its test songs the vote gets right (recall), in the genre's
    colour, with the song count; genres without test songs are left out."""
    rows = [r for r in per_genre_rows(metrics) if r["support"] > 0][::-1]  # first genre on top
    fig = _genre_bars(
        metrics["genres"],
        [r["genre"] for r in rows],
        [r["recall"] for r in rows],
        [f"{r['recall']:.0%} of {r['support']}" for r in rows],
        "%{y}: %{x:.0%} of its test songs voted right<extra></extra>",
    )
    fig.update_layout(
        height=max(200, 26 * len(rows) + 70),
        margin={"t": 10, "b": 30, "l": 10, "r": 15},
        xaxis={"range": [0, 1], "tickvals": [0, 0.5, 1], "tickformat": ".0%", "title": "voted right"},
        showlegend=False,
    )
    return fig


def vote_text(genres: Sequence[str], votes: Iterable[int], winner: str | None = None) -> str:
    """Windows won per genre, most first, zeros left out: ``"rock 6 · metal 3 · blues 1"``.
    Among genres with equal votes, ``winner`` (the song's genre) comes first, and a tie it won
    on mean probability says so."""
    pairs = sorted(
        ((int(v), g) for g, v in zip(genres, votes) if int(v) > 0), key=lambda p: (-p[0], p[1] != winner, p[1])
    )
    text = " · ".join(f"{g} {v}" for v, g in pairs)
    if winner is not None and len(pairs) > 1 and pairs[0][1] == winner and pairs[1][0] == pairs[0][0]:
        text += f" ({winner} won the tie on mean probability)"
    return text


def misclassified_rows(metrics: Mapping) -> list[dict]:
    """The test songs whose vote is wrong, with their vote counts and the mean probability the
    model gave to the true and to the voted genre."""
    genres = list(metrics["genres"])
    rows = []
    for song in metrics.get("songs", []):
        if song["vote"] == song["true"]:
            continue
        p = song.get("mean_probability") or [float("nan")] * len(genres)
        rows.append(
            {
                "track": song["track_id"],
                "true": song["true"],
                "voted": song["vote"],
                "windows": int(sum(song["votes"])),
                "votes": vote_text(genres, song["votes"]),
                "p(true)": float(p[genres.index(song["true"])]),
                "p(voted)": float(p[genres.index(song["vote"])]),
            }
        )
    return rows


# ----------------------------------------------------------------------------- classification


def window_figure(
    genres: Sequence[str],
    probabilities: np.ndarray,
    starts: Sequence[float],
    window_seconds: float = WINDOW_SECONDS,
    height: int = 340,
    min_seconds: float = 0.0,
) -> go.Figure:
    """One stacked bar per window: the genre probabilities of the 3 s window starting at each
    start time (seconds), genres in their fixed colours. The time axis is in ``m:ss`` and spans
    at least ``min_seconds`` (so that live bars fill it from the left instead of rescaling it)."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(genres))
    starts = np.asarray(starts, dtype=np.float64)
    colors = genre_colors(genres)
    centres = starts + window_seconds / 2
    labels = [f"{clock(s)}–{clock(s + window_seconds)}" for s in starts]
    fig = go.Figure()
    for g, genre in enumerate(genres):
        fig.add_trace(
            go.Bar(
                x=centres,
                y=probabilities[:, g],
                width=window_seconds * 0.92,
                name=genre,
                marker={"color": colors[genre], "line": {"width": 0}},
                customdata=labels,
                hovertemplate=f"%{{customdata}}<br>{genre} %{{y:.0%}}<extra></extra>",
            )
        )
    end = max(float(starts[-1] + window_seconds) if len(starts) else window_seconds, min_seconds)
    # Ticks on the window boundaries; thinned so that long songs stay legible.
    step = window_seconds * max(1, int(np.ceil(len(starts) / 20)))
    ticks = np.arange(0.0, end + 1e-6, step)
    fig.update_layout(
        barmode="stack",
        bargap=0,
        height=height,
        margin={"t": 10, "b": 40, "l": 50, "r": 10},
        xaxis={
            "title": "window start (m:ss)",
            "range": [0, end * 1.002],  # a hair past the end, so its tick is drawn
            "tickvals": ticks,
            "ticktext": [clock(t) for t in ticks],
        },
        yaxis={"title": "probability", "range": [0, 1], "tickformat": ".0%"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0, "traceorder": "normal"},
        hovermode="x unified" if len(genres) <= 12 else "closest",
    )
    return fig


def ranking_figure(
    genres: Sequence[str], mean_probability: Sequence[float], votes: Sequence[int] | None = None
) -> go.Figure:
    """Genres by mean window probability, highest on top, each in its colour; the bar text
    gives the probability and, with ``votes``, the windows the genre won."""
    p = np.asarray(mean_probability, dtype=np.float64)
    order = np.argsort(-p, kind="stable")[::-1]  # plotly draws the first bar at the bottom
    text = [f"{p[i]:.0%}" + (f" · {int(votes[i])} won" if votes is not None else "") for i in order]
    fig = _genre_bars(
        genres, [genres[i] for i in order], p[order], text, "%{y}: mean probability %{x:.1%}<extra></extra>"
    )
    fig.update_layout(
        height=max(200, 26 * len(genres) + 60),
        margin={"t": 10, "b": 30, "l": 10, "r": 15},
        xaxis={"range": [0, 1], "tickvals": [0, 0.5, 1], "tickformat": ".0%", "title": "mean probability over windows"},
        showlegend=False,
    )
    return fig


# ----------------------------------------------------------------------------- comparing two runs


def per_genre_compare_figure(comparison, measure: str = "recall") -> go.Figure:
    """Per genre both runs know, run A's and run B's ``measure`` (recall or f1) of the song
    vote as grouped bars, in the runs' colours; the bar's hover says how many test songs."""
    fig = go.Figure()
    for k, summary in enumerate((comparison.a, comparison.b)):
        fig.add_bar(
            x=comparison.genres,
            y=[summary.per_genre[g][measure] for g in comparison.genres],
            name=summary.run_id,
            marker_color=RUN_COLORS[k],
            customdata=[summary.per_genre[g]["support"] for g in comparison.genres],
            hovertemplate=f"{summary.run_id}<br>%{{x}}: {'F1' if measure == 'f1' else measure} %{{y:.2f}} on "
            f"%{{customdata}} test songs<extra></extra>",
        )
    fig.update_layout(
        barmode="group",
        height=320,
        margin={"t": 30, "b": 40, "l": 50, "r": 10},
        yaxis={
            "range": [0, 1.02],
            "title": "F1" if measure == "f1" else measure,
            "tickformat": ".0%" if measure == "recall" else ".1f",
        },
        xaxis={"dtick": 1, "automargin": True},
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return fig


def accuracy_compare_figure(comparison) -> go.Figure:
    """Each run's song accuracy with its 95% Wilson interval as an error bar."""
    summaries = (comparison.a, comparison.b)
    fig = go.Figure(
        go.Scatter(
            x=[s.accuracy for s in summaries],
            y=[s.run_id for s in summaries],
            mode="markers",
            marker={"size": 12, "color": list(RUN_COLORS[:2])},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [s.interval[1] - s.accuracy for s in summaries],
                "arrayminus": [s.accuracy - s.interval[0] for s in summaries],
                "thickness": 2,
            },
            customdata=[[s.right, s.test_songs, s.interval[0], s.interval[1]] for s in summaries],
            hovertemplate="%{y}: %{customdata[0]} of %{customdata[1]} songs right, %{x:.1%}<br>95% interval "
            "%{customdata[2]:.1%} to %{customdata[3]:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=170,
        margin={"t": 10, "b": 40, "l": 10, "r": 20},
        xaxis={"range": [0, 1.01], "tickformat": ".0%", "title": "song accuracy (vote), 95% interval"},
        yaxis={"autorange": "reversed", "automargin": True},
        showlegend=False,
    )
    return fig


def difference_figure(comparison) -> go.Figure:
    """B's confusion matrix minus A's on the shared genres: songs (or row shares, when the test
    songs differ) that B puts in a cell more (red) or fewer (blue) than A."""
    genres = comparison.genres
    z = np.asarray(comparison.difference, dtype=np.float64)
    share = comparison.difference_kind == "share"
    reach = max(float(np.abs(z).max()), 1e-9 if share else 1.0)
    text = [
        [("" if v == 0 else f"{v:+.0%}") if share else ("" if v == 0 else f"{int(v):+d}") for v in row] for row in z
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=genres,
            y=genres,
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-reach,
            zmax=reach,
            xgap=1,
            ygap=1,
            # Whole songs only: small counts would otherwise repeat rounded ticks (+1, +1, +0).
            colorbar={
                "title": {"text": "B − A"},
                "tickformat": "+.0%" if share else "+d",
                **({} if share else {"dtick": max(1, int(np.ceil(reach / 4)))}),
            },
            hovertemplate=f"true %{{y}}, voted %{{x}}<br>B − A: %{{z:{'+.0%' if share else '+d'}}}<extra></extra>",
        )
    )
    side = max(360, 42 * len(genres) + 140)
    fig.update_layout(
        height=side,
        margin={"t": 30, "b": 40, "l": 40, "r": 20},
        xaxis={"title": "voted genre", "tickangle": -30 if len(genres) > 6 else 0, "dtick": 1, "automargin": True},
        yaxis={"title": "true genre", "autorange": "reversed", "dtick": 1, "automargin": True},
    )
    return fig


def summary_confusion_metrics(summary) -> dict:
    """A :class:`genre.jobs.compare.RunSummary` in the shape :func:`confusion_figure` reads."""
    return {"genres": summary.genres, "confusion_matrix": summary.confusion}


# ----------------------------------------------------------------------------- a collection


def distribution_figure(genres: Sequence[str], song_genres: Sequence[str]) -> go.Figure:
    """How many songs of a collection each genre won, most first."""
    counts = {g: sum(1 for s in song_genres if s == g) for g in genres}
    names = [g for g in sorted(counts, key=lambda g: counts[g]) if counts[g]]
    total = max(1, len(song_genres))
    fig = _genre_bars(
        genres,
        names,
        [counts[n] for n in names],
        [f"{counts[n]} ({counts[n] / total:.0%})" for n in names],
        "%{y}: %{x} songs<extra></extra>",
    )
    fig.update_layout(
        height=max(160, 34 * len(names) + 60), margin={"l": 10, "r": 10, "t": 10, "b": 30}, xaxis_title="songs"
    )
    fig.update_xaxes(dtick=max(1, round(max(counts.values(), default=1) / 5)), rangemode="tozero")  # whole songs
    return fig


def timeline_figure(genres: Sequence[str], window_genres: Sequence[str], starts: Sequence[float]) -> go.Figure:
    """Which genre won each 3 s window of one song, along the song."""
    colors = genre_colors(genres)
    fig = go.Figure()
    for genre in [g for g in genres if g in set(window_genres)]:
        at = [float(s) for s, w in zip(starts, window_genres) if w == genre]
        fig.add_trace(
            go.Bar(
                x=[WINDOW_SECONDS] * len(at), base=at, y=[""] * len(at), orientation="h", name=genre,
                marker={"color": colors[genre]}, customdata=[clock(s) for s in at],
                hovertemplate=f"{genre} from %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        barmode="overlay", height=150, margin={"l": 10, "r": 10, "t": 10, "b": 30},
        legend={"orientation": "h", "y": -0.6}, xaxis_title="seconds",
    )  # fmt: skip
    return fig
