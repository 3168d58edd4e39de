"""musicnn (Pons & Serra, 2019) in Keras 3: its log-mel front end and its MSD-trained network.

The weights come from the PyPI wheel ``musicnn==0.1.0`` (ISC license, Music Technology Group,
Universitat Pompeu Fabra), which ships four tagging networks: ``MSD_musicnn`` and ``MSD_vgg``
(trained on the Million Song Dataset's last.fm tags) and ``MTT_musicnn`` and ``MTT_vgg``
(MagnaTagATune's tags). ``scripts/convert_musicnn.py`` converts each into
``genre/models/weights/<file>.weights.h5`` (:data:`BACKBONES`). Every detail below follows musicnn's
``models.py`` and ``extractor.py``, and the conversion checks the outputs against the original graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE, WINDOW

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS = WEIGHTS_DIR / "musicnn_msd.weights.h5"

MUSICNN_RATE = 16_000
N_FFT = 512
HOP = 256
N_MELS = 96
FRAMES = 187  # musicnn's 3 s patch
EMBEDDING = 753  # frame features: 561 front end + 3 x 64 mid end
TAGS = 50
VGG_FILTERS = 128
EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default


def _keras():
    import keras

    return keras


class MusicnnMel(_keras().layers.Layer):
    """Raw 22,050 Hz windows ``(batch, 66150[, 1])`` -> musicnn's input ``(batch, 187, 96)``.

    Resamples to 16 kHz in the frequency domain: the spectrum is cut at 8 kHz and shaped by
    the magnitude response of librosa's default resampler (soxr "HQ"), so the top mel bands get
    the same roll-off as musicnn's own ``librosa.load(sr=16000)`` path. Then a centred
    512-point Hann STFT with reflect padding, hop 256, power, 96 Slaney mel bands up to
    8 kHz, and ``log10(10000 * S + 1)``, all in float32 (musicnn's own float16 overflows).
    Each window is computed on its own: nothing depends on the rest of the batch.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        import librosa

        mel = librosa.filters.mel(sr=MUSICNN_RATE, n_fft=N_FFT, n_mels=N_MELS)  # (96, 257), Slaney
        self._mel = np.ascontiguousarray(mel.T, dtype=np.float32)
        self._resampled = WINDOW * MUSICNN_RATE // SAMPLE_RATE  # 48,000
        self._response = resampler_response(self._resampled)

    def call(self, inputs):
        import tensorflow as tf

        x = tf.cast(tf.reshape(inputs, (-1, WINDOW)), tf.float32)
        spectrum = tf.signal.rfft(x)[:, : self._resampled // 2 + 1] * tf.constant(self._response, dtype=tf.complex64)
        # irfft of the truncated spectrum, rescaled so amplitudes survive the length change.
        y = tf.signal.irfft(spectrum, fft_length=[self._resampled]) * (self._resampled / WINDOW)
        y = tf.pad(y, [[0, 0], [N_FFT // 2, N_FFT // 2]], mode="REFLECT")
        stft = tf.signal.stft(y, frame_length=N_FFT, frame_step=HOP, fft_length=N_FFT, window_fn=tf.signal.hann_window)
        power = tf.math.square(tf.math.abs(stft))[:, :FRAMES, :]
        mel = tf.linalg.matmul(power, tf.constant(self._mel))
        return tf.math.log(10000.0 * mel + 1.0) / np.log(10.0).astype(np.float32)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], FRAMES, N_MELS)


def resampler_response(n: int) -> np.ndarray:
    """|H(f)| of librosa's default 22,050 -> 16,000 Hz resampler at the ``n // 2 + 1`` bins of
    an ``n``-point 16 kHz spectrum, measured on an impulse and normalised to 1 at 0 Hz."""
    import librosa

    impulse = np.zeros(WINDOW, dtype=np.float64)
    impulse[WINDOW // 2] = 1.0
    response = np.abs(np.fft.rfft(librosa.resample(impulse, orig_sr=SAMPLE_RATE, target_sr=MUSICNN_RATE), n=n))
    return (response / response[0]).astype(np.float32)


def reference_features(song_16k: np.ndarray) -> np.ndarray:
    """musicnn's features of an already 16 kHz signal with librosa, as its extractor computes
    them (centred reflect-padded STFT) but with the log in float32: ``(frames, 96)``."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(song_16k, dtype=np.float32),
        sr=MUSICNN_RATE,
        hop_length=HOP,
        n_fft=N_FFT,
        n_mels=N_MELS,
        pad_mode="reflect",
    ).T
    return np.log10(10000.0 * mel.astype(np.float32) + 1.0)


def build_network(name: str = "musicnn"):
    """musicnn's MSD network from features ``(187, 96)`` to a model with three outputs:
    frame features ``(187, 753)``, the penultimate embedding ``(200,)`` and the 50 tags."""
    keras = _keras()
    from keras import layers

    def norm(x, label):
        return layers.BatchNormalization(epsilon=EPSILON, name=label)(x)

    def max_over_frequency(x, label):
        # musicnn pools each convolution over its whole frequency axis.
        width, channels = x.shape[2], x.shape[3]
        x = layers.MaxPooling2D((1, width), name=f"{label}_pool")(x)
        return layers.Reshape((FRAMES, channels), name=f"{label}_frames")(x)

    inputs = keras.Input((FRAMES, N_MELS), name="log_mel")
    x = layers.Reshape((FRAMES, N_MELS, 1), name="image")(inputs)
    x = norm(x, "input_norm")
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="time_pad")(x)
    front = []
    for label, width in (("timbral_38", int(0.4 * N_MELS)), ("timbral_67", int(0.7 * N_MELS))):
        y = layers.Conv2D(204, (7, width), activation="relu", name=label)(padded)
        front.append(max_over_frequency(norm(y, f"{label}_norm"), label))
    for length in (128, 64, 32):
        # "same" padding on TensorFlow pads an even kernel unevenly, as the original graph did.
        y = layers.Conv2D(51, (length, 1), padding="same", activation="relu", name=f"temporal_{length}")(x)
        front.append(max_over_frequency(norm(y, f"temporal_{length}_norm"), f"temporal_{length}"))
    front = layers.Concatenate(name="front_end")(front)  # (187, 561)

    mid1 = norm(layers.Conv1D(64, 7, padding="same", activation="relu", name="mid_1")(front), "mid_1_norm")
    mid2 = layers.Add(name="mid_2_res")(
        [norm(layers.Conv1D(64, 7, padding="same", activation="relu", name="mid_2")(mid1), "mid_2_norm"), mid1]
    )
    mid3 = layers.Add(name="mid_3_res")(
        [norm(layers.Conv1D(64, 7, padding="same", activation="relu", name="mid_3")(mid2), "mid_3_norm"), mid2]
    )
    frames = layers.Concatenate(name="frames")([front, mid1, mid2, mid3])  # (187, 753)

    penultimate = _back_end(frames)
    tags = layers.Dense(TAGS, activation="sigmoid", name="tags")(penultimate)
    return keras.Model(inputs, [frames, penultimate, tags], name=name)


BACK_END = ("pooled_norm", "dense", "penultimate")  # the back end's layers that hold weights


def _back_end(frames):
    """musicnn's back end up to its 200-d penultimate embedding: max and mean over time,
    batch-norm, dense 200 ReLU, batch-norm."""
    from keras import layers

    # The original concatenates max and mean on a trailing axis and flattens: interleaved.
    pooled_max = layers.Reshape((EMBEDDING, 1), name="max_col")(layers.GlobalMaxPooling1D(name="max_pool")(frames))
    pooled_mean = layers.Reshape((EMBEDDING, 1), name="mean_col")(
        layers.GlobalAveragePooling1D(name="mean_pool")(frames)
    )
    pooled = layers.Flatten(name="pooled")(layers.Concatenate(name="max_mean")([pooled_max, pooled_mean]))
    pooled = layers.BatchNormalization(epsilon=EPSILON, name="pooled_norm")(pooled)
    dense = layers.Dense(200, activation="relu", name="dense")(pooled)
    return layers.BatchNormalization(epsilon=EPSILON, name="penultimate")(dense)


# Checkpoint variable scopes of the original graph, in the order build_network creates layers.
CHECKPOINT_NAMES = {
    "input_norm": "batch_normalization",
    "timbral_38": "conv2d",
    "timbral_38_norm": "batch_normalization_1",
    "timbral_67": "conv2d_1",
    "timbral_67_norm": "batch_normalization_2",
    "temporal_128": "conv2d_2",
    "temporal_128_norm": "batch_normalization_3",
    "temporal_64": "conv2d_3",
    "temporal_64_norm": "batch_normalization_4",
    "temporal_32": "conv2d_4",
    "temporal_32_norm": "batch_normalization_5",
    "mid_1": "conv2d_5",
    "mid_1_norm": "batch_normalization_6",
    "mid_2": "conv2d_6",
    "mid_2_norm": "batch_normalization_7",
    "mid_3": "conv2d_7",
    "mid_3_norm": "batch_normalization_8",
    "pooled_norm": "batch_normalization_9",
    "dense": "dense",
    "penultimate": "batch_normalization_10",
    "tags": "dense_1",
}


def set_checkpoint_weights(model, read) -> int:
    """Copy the original checkpoint's variables into ``build_network()``'s layers; ``read``
    maps a variable name to its array. Returns the number of parameters copied."""
    copied = 0
    for label, scope in CHECKPOINT_NAMES.items():
        layer = model.get_layer(label)
        if scope.startswith("batch_normalization"):
            values = [read(f"{scope}/{v}") for v in ("gamma", "beta", "moving_mean", "moving_variance")]
        else:
            kernel = read(f"{scope}/kernel")
            if label.startswith("mid_"):
                kernel = kernel[:, :, 0, :]  # a (7, width, 1, 64) conv over the full width is a Conv1D
            values = [kernel, read(f"{scope}/bias")]
        layer.set_weights(values)
        copied += sum(int(np.prod(v.shape)) for v in values)
    return copied


def load_network(weights: str | Path = WEIGHTS):
    """``build_network()`` with the converted MSD weights."""
    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights} is missing: run python scripts/convert_musicnn.py to regenerate it")
    model = build_network()
    model.load_weights(weights)
    return model


def build_feature_extractor(weights: str | Path = WEIGHTS):
    """The frozen, pretrained part of ``transfer``: raw windows ``(66150, 1)`` -> musicnn's
    frame features ``(187, 753)``."""
    keras = _keras()

    network = load_network(weights)
    inputs = keras.Input((WINDOW, 1), name="audio")
    features = MusicnnMel(name="musicnn_mel")(inputs)
    trunk = keras.Model(network.input, network.get_layer("frames").output, name="musicnn_trunk")
    trunk.trainable = False
    return keras.Model(inputs, trunk(features), name="musicnn_features")


_keras().saving.register_keras_serializable(package="genre")(MusicnnMel)


def build_embedding(weights: str | Path = WEIGHTS):
    """musicnn's own back end, pretrained and frozen: frame features ``(187, 753)`` -> the 200-d
    penultimate embedding that the network learnt from the Million Song Dataset's tags."""
    keras = _keras()

    network = load_network(weights)
    inputs = keras.Input((FRAMES, EMBEDDING), name="frames")
    model = keras.Model(inputs, _back_end(inputs), name="musicnn_embedding")
    for label in BACK_END:
        model.get_layer(label).set_weights(network.get_layer(label).get_weights())
    model.trainable = False
    return model


# The taggers' own labels, in their output order (musicnn 0.1.0, configuration.py).
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
)  # fmt: skip
MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip


@dataclass(frozen=True)
class Backbone:
    """One of the wheel's pretrained taggers: its architecture, the tags it learnt, its weights file."""

    name: str  # the wheel's folder name, e.g. "MTT_vgg"
    architecture: str  # "musicnn" or "vgg"
    tags: tuple[str, ...]
    file: str

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / self.file


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("MSD_musicnn", "musicnn", MSD_TAGS, "musicnn_msd.weights.h5"),
        Backbone("MTT_musicnn", "musicnn", MTT_TAGS, "musicnn_mtt.weights.h5"),
        Backbone("MSD_vgg", "vgg", MSD_TAGS, "vgg_msd.weights.h5"),
        Backbone("MTT_vgg", "vgg", MTT_TAGS, "vgg_mtt.weights.h5"),
    )
}


# (pool size, stride) of each of vgg's five blocks, read from each checkpoint's own graph: the
# MSD network pools time and frequency apart in its first two blocks, the MTT one does not.
VGG_POOLS = {
    "MTT_vgg": (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))),
    "MSD_vgg": (((4, 1), (4, 1)), ((1, 4), (1, 4)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))),
}


def build_vgg(name: str = "MTT_vgg"):
    """musicnn's ``vgg`` tagger ``name`` from features ``(187, 96)``: five 3x3 convolutions of 128
    filters, each with batch normalisation and max pooling, then a dense layer to 50 tags. Outputs:
    the fourth pooling ``(11, 6, 128)``, the flattened fifth ``(256,)`` and the 50 tag probabilities."""
    keras = _keras()
    from keras import layers

    inputs = keras.Input((FRAMES, N_MELS), name="log_mel")
    x = layers.Reshape((FRAMES, N_MELS, 1), name="image")(inputs)
    x = layers.BatchNormalization(epsilon=EPSILON, name="input_norm")(x)
    pools = []
    for block, (pool, stride) in enumerate(VGG_POOLS[name], 1):
        x = layers.Conv2D(VGG_FILTERS, (3, 3), padding="same", activation="relu", name=f"conv_{block}")(x)
        x = layers.BatchNormalization(epsilon=EPSILON, name=f"conv_{block}_norm")(x)
        x = layers.MaxPooling2D(pool, strides=stride, name=f"pool_{block}")(x)  # TF1 pooled "valid"
        pools.append(x)
    flat = layers.Flatten(name="pool_5_flat")(pools[-1])  # (2, 1, 128) -> 256
    tags = layers.Dense(TAGS, activation="sigmoid", name="tags")(flat)
    return keras.Model(inputs, [pools[3], flat, tags], name=name)


VGG_CHECKPOINT_NAMES = {
    "input_norm": "batch_normalization",
    **{f"conv_{i}": f"{i}CNN" for i in range(1, 6)},
    **{f"conv_{i}_norm": f"batch_normalization_{i}" for i in range(1, 6)},
    "tags": "dense",
}


def build_backbone(backbone: str):
    """The Keras network of ``backbone`` (a key of :data:`BACKBONES`), without weights."""
    spec = BACKBONES[backbone]
    return build_network(backbone) if spec.architecture == "musicnn" else build_vgg(backbone)


def set_backbone_weights(model, backbone: str, read) -> int:
    """Copy a wheel checkpoint's variables into :func:`build_backbone`'s layers; ``read`` maps a
    variable name to its array. Returns the number of parameters copied."""
    if BACKBONES[backbone].architecture == "musicnn":
        return set_checkpoint_weights(model, read)
    copied = 0
    for label, scope in VGG_CHECKPOINT_NAMES.items():
        if scope.startswith("batch_normalization"):
            values = [read(f"{scope}/{v}") for v in ("gamma", "beta", "moving_mean", "moving_variance")]
        else:
            values = [read(f"{scope}/kernel"), read(f"{scope}/bias")]
        model.get_layer(label).set_weights(values)
        copied += sum(int(np.prod(v.shape)) for v in values)
    return copied


def load_backbone(backbone: str):
    """:func:`build_backbone` with its converted weights."""
    spec = BACKBONES[backbone]
    if not spec.weights.is_file():
        raise FileNotFoundError(f"{spec.weights} is missing: run python scripts/convert_musicnn.py to regenerate it")
    model = build_backbone(backbone)
    model.load_weights(spec.weights)
    return model


class TagLogit(_keras().layers.Layer):
    """A tagger's probabilities -> their logits, ``log(p / (1 - p))``, clipped at 1e-6 from 0 and 1:
    tag evidence on an additive scale, for a linear head and a fixed tag-to-genre map."""

    def call(self, inputs):
        import tensorflow as tf

        p = tf.clip_by_value(tf.cast(inputs, tf.float32), 1e-6, 1.0 - 1e-6)
        return tf.math.log(p / (1.0 - p))


_keras().saving.register_keras_serializable(package="genre")(TagLogit)

PARTS = ("emb", "max", "mean", "tags")


def part_sizes(backbone: str) -> dict[str, int]:
    """Width of each part of :func:`build_taggers_extractor`'s vector that ``backbone`` gives."""
    if BACKBONES[backbone].architecture == "musicnn":
        return {"emb": 200, "max": EMBEDDING, "mean": EMBEDDING, "tags": TAGS}
    return {"emb": 2 * VGG_FILTERS, "max": VGG_FILTERS, "mean": VGG_FILTERS, "tags": TAGS}


def block_width(block: str) -> int:
    """Width of one ``"<backbone>:<part>"`` block of :func:`build_taggers_extractor`'s vector."""
    backbone, part = block.split(":")
    return part_sizes(backbone)[part]


def build_taggers_extractor(blocks: tuple[str, ...], name: str = "taggers"):
    """The frozen front end of a model that reads several pretrained taggers side by side: raw
    22,050 Hz windows ``(66150, 1)`` -> one log-mel (:class:`MusicnnMel`, shared) -> each tagger ->
    the concatenation of ``blocks``, each ``"<backbone>:<part>"``. Parts: ``emb`` (musicnn's 200-d
    penultimate layer, vgg's flattened last pooling), ``max`` and ``mean`` (over time of musicnn's
    frame features; over time and frequency of vgg's fourth pooling) and ``tags`` (the 50 tag
    logits). Nothing in it trains."""
    keras = _keras()
    from keras import layers

    inputs = keras.Input((WINDOW, 1), name="audio")
    mel = MusicnnMel(name="musicnn_mel")(inputs)
    outputs = {}
    for backbone in dict.fromkeys(block.split(":")[0] for block in blocks):
        network = load_backbone(backbone)
        network.trainable = False
        first, second, tags = network(mel)
        short = backbone.lower()
        if BACKBONES[backbone].architecture == "musicnn":
            outputs[f"{backbone}:emb"] = second
            outputs[f"{backbone}:max"] = layers.GlobalMaxPooling1D(name=f"{short}_max")(first)
            outputs[f"{backbone}:mean"] = layers.GlobalAveragePooling1D(name=f"{short}_mean")(first)
        else:
            outputs[f"{backbone}:emb"] = second
            outputs[f"{backbone}:max"] = layers.GlobalMaxPooling2D(name=f"{short}_max")(first)
            outputs[f"{backbone}:mean"] = layers.GlobalAveragePooling2D(name=f"{short}_mean")(first)
        outputs[f"{backbone}:tags"] = TagLogit(name=f"{short}_tag_logits")(tags)
    vector = layers.Concatenate(name="tagger_features")([outputs[block] for block in blocks])
    model = keras.Model(inputs, vector, name=name)
    model.trainable = False
    return model
