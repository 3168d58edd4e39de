"""The plotly figure of a run's song map (``genre.jobs.song_map``), optionally with a new song on it.

A pure function of a :class:`genre.jobs.song_map.SongMap` and a :class:`genre.jobs.song_map.Placement`;
no Streamlit.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dashboard.charts import genre_colors
from genre.jobs.song_map import Placement, SongMap

SYMBOLS = {"train": "circle", "valid": "diamond", "test": "x"}
PART_NAMES = {"train": "training", "valid": "validation", "test": "test"}


def song_map_figure(
    song_map: SongMap, genres: list[str], placed: Placement | None = None, height: int = 520
) -> go.Figure:
    """Every song of the run's split on the map, coloured by its true genre; training songs
    are dots, validation songs diamonds, test songs crosses. ``placed``: a new song as a star,
    its nearest training songs ringed."""
    colors = genre_colors(genres)
    xy = np.asarray(song_map.xy, dtype=np.float64)
    parts = np.asarray(song_map.parts)
    fig = go.Figure()
    for genre in genres:
        rows = [i for i, g in enumerate(song_map.genres) if g == genre]
        if not rows:
            continue
        fig.add_trace(
            go.Scatter(
                x=xy[rows, 0],
                y=xy[rows, 1],
                mode="markers",
                name=genre,
                legendgroup=genre,
                marker={
                    "color": colors[genre],
                    "symbol": [SYMBOLS[parts[i]] for i in rows],
                    "size": [10 if parts[i] == "test" else 8 for i in rows],
                    "line": {"width": 0.5, "color": "white"},
                    "opacity": 0.85,
                },
                customdata=[[song_map.track_ids[i], PART_NAMES[parts[i]], song_map.votes[i]] for i in rows],
                hovertemplate="%{customdata[0]} (%{customdata[1]} song)<br>voted %{customdata[2]}<extra></extra>",
            )
        )
    for part in ("valid", "test"):
        if part in parts:  # legend entries for the symbols
            fig.add_trace(
                go.Scatter(x=[None], y=[None], mode="markers", name=f"{PART_NAMES[part]} song",
                           marker={"color": "#777", "symbol": SYMBOLS[part], "size": 9}, hoverinfo="skip")
            )  # fmt: skip
    if placed is not None:
        index = {t: i for i, t in enumerate(song_map.track_ids)}
        near = [index[n.track_id] for n in placed.nearest]
        fig.add_trace(
            go.Scatter(
                x=xy[near, 0], y=xy[near, 1], mode="markers", name="nearest training songs",
                marker={"symbol": "circle-open", "size": 16, "color": "#222", "line": {"width": 1.5}},
                customdata=[[n.track_id, n.vote] for n in placed.nearest],
                hovertemplate="nearest: %{customdata[0]}<br>voted %{customdata[1]}<extra></extra>",
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=[float(placed.xy[0])], y=[float(placed.xy[1])], mode="markers", name="your song",
                marker={"symbol": "star", "size": 22, "color": "#FFD700", "line": {"width": 1.5, "color": "#222"}},
                hovertemplate="your song<extra></extra>",
            )
        )  # fmt: skip
    explained = song_map.explained
    fig.update_layout(
        height=height,
        margin={"t": 10, "b": 40, "l": 50, "r": 10},
        xaxis={"title": f"component 1 ({explained[0]:.0%} of the training songs' variance)", "zeroline": False},
        yaxis={"title": f"component 2 ({explained[1]:.0%})", "zeroline": False},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
        hovermode="closest",
    )
    return fig
