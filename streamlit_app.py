"""The dashboard: ``streamlit run streamlit_app.py``.

Seven pages over the runs in ``models/`` (or ``$GENRE_MODELS_DIR``): what the model is and how
well it does, how it trained, which held-out songs it gets wrong, how two runs compare, where its songs lie on a
map of what the model heard, classifying new audio from a file or the microphone, and classifying a whole
collection. The sidebar's run choice holds across pages.
"""

import streamlit as st

# Before any page can import TensorFlow: importing aiortc's pylibsrtp (through streamlit_webrtc)
# after TensorFlow segfaults the process (TF 2.21, pylibsrtp 1.0), so a page that loaded a model
# before anyone opened Classify would take the server down with it.
import streamlit_webrtc  # noqa: F401

from dashboard import state
from dashboard.runtime import keep_keras_session
from dashboard.sidebar import render_sidebar

keep_keras_session()

st.set_page_config(page_title="Genre classifier", page_icon=":material/graphic_eq:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/history.py", title="Training history", icon=":material/show_chart:"),
        st.Page("pages/held_out.py", title="Held-out songs", icon=":material/grid_on:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/song_map.py", title="Song map", icon=":material/scatter_plot:"),
        st.Page("pages/classify.py", title="Classify", icon=":material/graphic_eq:"),
        st.Page("pages/library.py", title="Library", icon=":material/library_music:"),
    ]
)
render_sidebar()
# The served model loads in the background from the first visit on, never blocking this page.
state.warm_served_model(str(state.models_dir()))
page.run()
