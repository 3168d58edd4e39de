"""genre: music-genre classification on raw audio with a dilated Conv1D network.

The data flows one way: audio files -> decoded song arrays (cached) -> song-level
split -> windows -> model -> window probabilities -> song vote -> metrics.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) buries our own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

SAMPLE_RATE = 22_050
WINDOW_SECONDS = 3
WINDOW = SAMPLE_RATE * WINDOW_SECONDS  # 66,150 samples
