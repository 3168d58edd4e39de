"""Datasets: song cache, splits (and the shipped lists), pipelines, shards, GTZAN download, allowed folders.
May import genre.audio and the top-level helpers; never models, serve, train or jobs."""
