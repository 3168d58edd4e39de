"""Small CSS fixes for Streamlit's own widgets."""

from __future__ import annotations

import streamlit as st

# Streamlit tells a refused upload (over server.maxUploadSize, a wrong type) in a visually
# hidden alert beside the file chip, leaving only a red icon on screen: put the words there.
_UPLOAD_ERRORS = """<style>
[data-testid="stFileChip"] span[role="alert"] {
    position: static !important; width: auto !important; height: auto !important;
    clip: auto !important; clip-path: none !important; overflow: visible !important;
    white-space: normal !important; margin: 0 0 0 0.5rem !important;
    color: var(--st-red-color, #d33) !important; font-size: 0.875rem;
}
</style>"""


def show_upload_errors() -> None:
    """Make the file uploader's refusal message visible next to the refused file."""
    st.html(_UPLOAD_ERRORS)


def upload_limit_mb() -> int:
    """The largest upload the server accepts (``server.maxUploadSize``), in megabytes."""
    return int(st.get_option("server.maxUploadSize"))
