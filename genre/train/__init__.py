"""Training a run: the loop, its config, callbacks, tf.distribute and its pinned fixes, hardware, status.
May import the layers below it (audio, data, models, serve) and the top-level helpers; never jobs."""
