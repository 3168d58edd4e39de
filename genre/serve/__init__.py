"""Using a trained run: prediction, the vote, evaluation, calibration, live input, a music library, tags.
May import genre.audio, genre.data, genre.models and the top-level helpers; never train or jobs."""
