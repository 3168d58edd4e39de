"""Streamlit glue for the dashboard: session state, cached loaders and the sidebar.

No machine learning here: everything the pages show comes from the ``genre`` package.
"""
