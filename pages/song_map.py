"""Song map: the selected run's songs on the plane of what its model made of them."""

import streamlit as st

from dashboard import state
from dashboard.song_map import song_map_figure
from genre.jobs.song_map import SongMapError

state.require_entrypoint()
st.title("Song map")
run = state.selected_run()
if run is None:
    st.info("No trained runs yet: the Overview page says how to train one.")
    st.stop()
try:
    song_map = state.song_map(run)
except SongMapError as error:
    st.warning(str(error))
    st.stop()
if song_map is None:
    st.info(state.no_song_map_text(run))
    st.stop()

counts = {part: song_map.parts.count(part) for part in ("train", "valid", "test")}
st.caption(
    f"Each point is one of the {len(song_map.track_ids)} songs of run `{run.run_id}`: the mean, over its 3 s "
    f"windows, of the "
    "activation the model's final softmax layer reads, projected on the first two principal components of its "
    f"{counts['train']} training songs (PCA fitted on them alone; {counts['valid']} validation and {counts['test']} "
    f"test "
    "songs are only projected). Colour: the song's true genre. Crosses are test songs; hover for the run's vote. "
    "Songs the model hears alike lie close together."
)
test = [i for i, part in enumerate(song_map.parts) if part == "test"]
if test:
    right = sum(song_map.votes[i] == song_map.genres[i] for i in test)
    st.caption(f"The model votes {right} of the {len(test)} test songs into their true genre.")
st.plotly_chart(song_map_figure(song_map, run.genres or sorted(set(song_map.genres))), key="song_map_chart")
