"""What the CLI and the dashboard manage: run folders, comparing runs, headlines, background jobs, logs.
May import every layer below it and the top-level helpers; never the dashboard, pages or streamlit."""
