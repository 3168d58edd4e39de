"""Plotly figures of what the model heard: the log-mel spectrogram of a classified song with its
3 s windows, a strip of each window's winning genre, and musicnn's taggram, on one time axis.

Pure functions of ``genre.serve.heard``'s results; no Streamlit, no computing beyond layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts import clock, genre_colors
from genre.serve.heard import LogMel, Segment, Taggram

SPECTROGRAM_HEIGHT = 240
STRIP_HEIGHT = 56
TAG_ROW_HEIGHT = 22
HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)
# Magma, but for its first colour: Streamlit's browser side repaints the colours #000001 to
# #000040 (its theme's placeholders), and Magma starts at #000004, which came out pink.
MAGMA = [[step, "#03020a" if color.lower() == "#000004" else color] for step, color in pc.get_colorscale("Magma")]


def cell_edges(segments: Sequence[Segment]) -> np.ndarray:
    """Edges of one cell per window on the time axis, for a heatmap: a window's cell starts
    where the one before it ends, so the overlapping last window fills only the time it adds."""
    edges = [segments[0].start]
    for before, seg in pairwise(segments):
        edges.append(max(seg.start, before.end))
    edges.append(max(segments[-1].end, edges[-1]))
    return np.asarray(edges, dtype=np.float64)


PLAYHEAD_COLOR = "#00c2ff"


def heard_figure(
    genres: Sequence[str],
    mel: LogMel,
    segments: Sequence[Segment],
    seconds: float,
    taggram: Taggram | None = None,
    playhead: float | None = None,
) -> go.Figure:
    """The spectrogram (window boundaries dashed), the strip of window winners beneath it and,
    given ``taggram``, musicnn's tags per window, sharing one time axis in ``m:ss``; ``playhead``
    (seconds) marks where the player below the figure starts, across every row."""
    rows = 3 if taggram is not None else 2
    heights = [SPECTROGRAM_HEIGHT, STRIP_HEIGHT] + (
        [TAG_ROW_HEIGHT * len(taggram.tags) + 10] if taggram is not None else []
    )
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.025, row_heights=heights)

    bands = np.arange(len(mel.frequencies))
    fig.add_trace(
        go.Heatmap(
            x=mel.times,
            y=bands,
            z=np.round(mel.db, 1),
            colorscale=MAGMA,
            zmin=-80,
            zmax=0,
            showscale=False,
            customdata=np.repeat(np.round(mel.frequencies)[:, None], len(mel.times), axis=1),
            hovertemplate="%{x:.1f} s · %{customdata:.0f} Hz · %{z:.0f} dB<extra></extra>",
            name="log-mel",
        ),
        row=1,
        col=1,
    )
    ticks = [
        (int(np.argmin(np.abs(mel.frequencies - hz))), hz)
        for hz in HZ_TICKS
        if mel.frequencies[0] <= hz <= mel.frequencies[-1]
    ]
    fig.update_yaxes(
        tickvals=[band for band, _ in ticks],
        ticktext=[f"{hz / 1000:g}k" if hz >= 1000 else str(hz) for _, hz in ticks],
        title_text="Hz (mel)",
        row=1,
        col=1,
    )
    for boundary in sorted({s.start for s in segments} | {segments[-1].end}):
        fig.add_vline(x=boundary, line={"color": "rgba(255,255,255,0.55)", "width": 1, "dash": "dot"}, row=1, col=1)

    colors = genre_colors(list(genres))
    lanes = ["windows", "overlap"] if any(s.lane for s in segments) else ["windows"]
    fig.add_trace(
        go.Bar(
            orientation="h",
            base=[s.start for s in segments],
            x=[s.end - s.start for s in segments],
            y=[lanes[s.lane] for s in segments],
            marker={"color": [colors[s.genre] for s in segments], "line": {"color": "white", "width": 1}},
            text=[s.genre for s in segments],
            textposition="inside",
            insidetextanchor="middle",
            customdata=[[f"{clock(s.start)}–{clock(s.end)}", s.genre, s.probability] for s in segments],
            hovertemplate="window %{customdata[0]}: %{customdata[1]} %{customdata[2]:.0%}<extra></extra>",
            name="window winner",
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(categoryorder="array", categoryarray=lanes[::-1], row=2, col=1)

    if taggram is not None:
        edges = cell_edges(segments)
        fig.add_trace(
            go.Heatmap(
                x=edges,
                y=taggram.tags,
                z=np.round(taggram.values, 3),
                colorscale="Blues",
                zmin=0,
                zmax=max(float(taggram.values.max()), 1e-6),
                showscale=False,
                hovertemplate="%{y}: %{z:.0%}<extra>musicnn</extra>",
                name="musicnn tags",
            ),
            row=3,
            col=1,
        )
        fig.update_yaxes(autorange="reversed", row=3, col=1)

    if playhead is not None:
        for row in range(1, rows + 1):
            fig.add_vline(x=playhead, line={"color": PLAYHEAD_COLOR, "width": 2}, row=row, col=1)
        fig.add_annotation(
            x=playhead,
            y=1,
            xref="x",
            yref="paper",
            text=f"▶ {clock(playhead)}",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"color": PLAYHEAD_COLOR, "size": 12},
            bgcolor="rgba(0,0,0,0.55)",
        )

    end = max(float(seconds), segments[-1].end)
    step = 3.0 * max(1, int(np.ceil(end / 3.0 / 12)))
    time_ticks = np.arange(0.0, end + 1e-6, step)
    # A hair past the end, so that the last tick is drawn.
    fig.update_xaxes(
        range=[0, end * 1.002], tickvals=time_ticks, ticktext=[clock(t) for t in time_ticks], showgrid=False
    )
    fig.update_xaxes(title_text="time (m:ss)", row=rows, col=1)
    fig.update_layout(
        height=sum(heights) + 60,
        margin={"t": 10, "b": 40, "l": 10, "r": 10},
        bargap=0.15,
        uniformtext={"minsize": 8, "mode": "hide"},
        showlegend=False,
        hovermode="closest",
    )
    return fig
