"""Audio in: decoding files to 22,050 Hz mono (decode), cutting windows (windows), augmenting them.
May import genre's top-level helpers only (errors, files, processes, SAMPLE_RATE, WINDOW)."""
