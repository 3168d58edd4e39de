"""The project's own Keras layers, registered so that ``model.keras`` files load in safe mode."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="genre")
class PowerToDb(keras.layers.Layer):
    """Power to decibels, element by element: ``10 log10(max(x, floor))``.

    Keras's ``MelSpectrogram(power_to_db=True)`` also clips at ``max - top_db`` with the
    maximum taken over the whole batch tensor, so a window's output depended on the windows
    batched with it. A fixed floor (-100 dB) keeps every window to itself.
    """

    def __init__(self, floor: float = 1e-10, **kwargs):
        super().__init__(**kwargs)
        self.floor = float(floor)

    def call(self, inputs):
        return (10.0 / math.log(10.0)) * keras.ops.log(keras.ops.maximum(inputs, self.floor))

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}
