"""The networks: the registry of model builders, custom layers, musicnn and its weights/, frozen features.
May import genre.audio, genre.data and the top-level helpers; never serve, train or jobs."""
