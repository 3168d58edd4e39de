"""The model registry. Every model maps raw windows ``(batch, 66150, 1)`` to genre
probabilities, so training and serving are the same for all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import SAMPLE_RATE, WINDOW
from ..errors import GenreError


@dataclass(frozen=True)
class ModelSpec:
    """A named model and its training recipe."""

    name: str
    description: str
    build: Callable[..., Any]  # (n_genres, dtype=None) -> keras.Model
    epochs: int
    batch_size: int
    learning_rate: float
    augment: bool = False
    label_smoothing: float = 0.0
    extra: dict = field(default_factory=dict)
    # A model with a pretrained, frozen part: ``frozen()`` builds it (raw windows -> features)
    # and ``head(feature_shape, n_genres, dtype)`` the part that trains. Training computes the
    # frozen features once per window and "recording" (``feature_variants``; genre.models.features).
    frozen: Callable[[], Any] | None = None
    head: Callable[..., Any] | None = None
    feature_variants: int = 1
    # The builder takes ``genres=`` (the genre names, in label order): its head maps tags to them.
    takes_genres: bool = False


def build_seed(n_genres: int, dtype: str | None = None):
    """The founding report's network, exactly: BatchNorm on the raw input; six Conv1D layers
    (filters 128,128,64,64,32,32; kernel 9, the last 7; dilation 1..32; ReLU; valid padding),
    each followed by MaxPooling1D(3) and, but the last, Dropout(0.25); Flatten; Dropout(0.25);
    softmax. 288,142 parameters with ten genres."""
    import keras
    from keras import layers

    inputs = keras.Input((WINDOW, 1), name="audio")
    x = layers.BatchNormalization(dtype=dtype, name="input_norm")(inputs)
    plan = [(128, 9, 1), (128, 9, 2), (64, 9, 4), (64, 9, 8), (32, 9, 16), (32, 7, 32)]
    for i, (filters, kernel, dilation) in enumerate(plan, 1):
        x = layers.Conv1D(filters, kernel, dilation_rate=dilation, activation="relu", dtype=dtype, name=f"conv{i}")(x)
        x = layers.MaxPooling1D(3, dtype=dtype, name=f"pool{i}")(x)
        if i < len(plan):
            x = layers.Dropout(0.25, name=f"drop{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.25, name="drop_out")(x)
    # The softmax stays float32 under mixed precision so probabilities sum to one.
    outputs = layers.Dense(n_genres, activation="softmax", dtype="float32", name="genre")(x)
    return keras.Model(inputs, outputs, name="seed")


def _residual_block(x, width: int, dilation: int, dtype: str | None):
    """A dilated 3-tap convolution, batch-norm and ReLU, added to its input."""
    from keras import layers

    skip = x
    x = layers.Conv1D(width, 3, dilation_rate=dilation, padding="same", dtype=dtype, name=f"dconv{dilation}")(x)
    x = layers.BatchNormalization(momentum=0.9, dtype=dtype, name=f"bn{dilation}")(x)
    x = layers.Activation("relu", dtype=dtype, name=f"relu{dilation}")(x)
    return layers.Add(dtype=dtype, name=f"res{dilation}")([x, skip])


def _average_and_max(x, dtype: str | None):
    """Average and max over time, side by side."""
    from keras import layers

    return layers.Concatenate(dtype=dtype, name="pooled")(
        [
            layers.GlobalAveragePooling1D(dtype=dtype, name="avg")(x),
            layers.GlobalMaxPooling1D(dtype=dtype, name="max")(x),
        ]
    )


def build_fast(n_genres: int, dtype: str | None = None, mels: int = 64, width: int = 96):
    """A CPU-friendly dilated Conv1D network on an in-graph log-mel front end.

    Raw audio -> log-mel (1024-point FFT, hop 512, ``mels`` bins: ~130 frames per window) ->
    normalisation -> four residual dilated Conv1D blocks over time (mel bins as channels,
    dilation 1,2,4,8) -> global average and max pooling -> softmax. The front end has no
    weights, so the model still takes raw audio and serves like ``seed``.
    """
    import keras
    from keras import layers

    from .layers import PowerToDb

    inputs = keras.Input((WINDOW, 1), name="audio")
    x = layers.Reshape((WINDOW,), name="mono")(inputs)
    x = layers.MelSpectrogram(
        fft_length=1024,
        sequence_stride=512,
        sequence_length=1024,
        num_mel_bins=mels,
        sampling_rate=SAMPLE_RATE,
        min_freq=20.0,
        max_freq=SAMPLE_RATE / 2,
        power_to_db=False,
        name="mel",
    )(x)
    x = PowerToDb(name="log_mel")(x)
    x = layers.Permute((2, 1), name="time_major")(x)  # (frames, mels)
    # Log-mel values span about -40..+50 dB; a fixed scale brings them near unit range so the
    # normalisation's moving statistics start close and settle within a few dozen steps
    # (momentum 0.9), which matters on small datasets.
    x = layers.Rescaling(1 / 20, name="db_scale")(x)
    x = layers.BatchNormalization(momentum=0.9, dtype=dtype, name="mel_norm")(x)
    x = layers.Conv1D(width, 3, padding="same", dtype=dtype, name="stem")(x)
    for dilation in (1, 2, 4, 8):
        x = _residual_block(x, width, dilation, dtype)
        if dilation < 8:
            x = layers.MaxPooling1D(2, dtype=dtype, name=f"pool{dilation}")(x)
    x = _average_and_max(x, dtype)
    x = layers.Dropout(0.3, name="drop")(x)
    outputs = layers.Dense(n_genres, activation="softmax", dtype="float32", name="genre")(x)
    return keras.Model(inputs, outputs, name="fast")


def build_dilated_head(feature_shape: tuple[int, int], n_genres: int, dtype: str | None = None, width: int = 128):
    """The trained part of ``transfer-dilated``: a dilated Conv1D network over musicnn's frame features
    ``(187, 753)``: normalisation, 1x1 projection, four residual dilated blocks (dilation 1,2,4,8), global
    average and max pooling over time, softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(feature_shape, name="frames")
    # musicnn's frame features run from about 0 to 80: bring them to a common scale first.
    x = layers.BatchNormalization(momentum=0.9, name="frame_norm")(inputs)
    x = layers.Dropout(0.2, name="frame_drop")(x)
    x = layers.Conv1D(width, 1, dtype=dtype, name="project")(x)
    for dilation in (1, 2, 4, 8):
        x = _residual_block(x, width, dilation, dtype)
    x = _average_and_max(x, dtype)
    x = layers.Dropout(0.4, name="drop")(x)
    outputs = layers.Dense(n_genres, activation="softmax", dtype="float32", name="genre")(x)
    return keras.Model(inputs, outputs, name="transfer_head")


def build_pooled_head(feature_shape: tuple[int, int], n_genres: int, dtype: str | None = None):
    """The baseline head: musicnn's own temporal pooling (max and mean of the frame features)
    into a normalised softmax regression, as a linear probe of the pretrained embedding."""
    import keras
    from keras import layers

    inputs = keras.Input(feature_shape, name="frames")
    x = layers.Concatenate(name="pooled")(
        [layers.GlobalMaxPooling1D(name="max")(inputs), layers.GlobalAveragePooling1D(name="avg")(inputs)]
    )
    x = layers.BatchNormalization(momentum=0.9, name="pooled_norm")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    outputs = layers.Dense(
        n_genres, activation="softmax", dtype="float32", kernel_regularizer=keras.regularizers.l2(1e-3), name="genre"
    )(x)
    return keras.Model(inputs, outputs, name="pooled_head")


def build_embedding_head(feature_shape: tuple[int, int], n_genres: int, dtype: str | None = None):
    """The trained part of ``transfer``: musicnn's own back end, pretrained and frozen, turns the
    frame features into its 200-d embedding; beside it, the frame features' max and mean over
    time; a standardised, L2-regularised softmax regression on both is all that is fitted.
    Artist-disjoint validation chose it over heads that learn from the frames with convolutions,
    which learn GTZAN's artists along with its genres (see RESULTS.md)."""
    import keras
    from keras import layers

    from .musicnn import build_embedding

    inputs = keras.Input(feature_shape, name="frames")
    pooled = layers.Concatenate(name="frame_pool")(
        [layers.GlobalMaxPooling1D(name="frame_max")(inputs), layers.GlobalAveragePooling1D(name="frame_mean")(inputs)]
    )
    x = layers.Concatenate(name="embedding_and_pool")([build_embedding()(inputs), pooled])
    x = layers.BatchNormalization(momentum=0.9, name="embedding_norm")(x)
    x = layers.Dropout(0.25, name="drop")(x)
    outputs = layers.Dense(
        n_genres, activation="softmax", dtype="float32", kernel_regularizer=keras.regularizers.l2(1e-2), name="genre"
    )(x)
    return keras.Model(inputs, outputs, name="embedding_head")


def build_vector_head(
    feature_shape: tuple[int],
    n_genres: int,
    dtype: str | None = None,
    l2: float = 1e-2,
    prior: np.ndarray | None = None,
):
    """The trained part of a model whose frozen front end gives one vector per window (the
    taggers' embeddings and tag logits side by side): batch normalisation, dropout 0.25 and an
    L2-regularised softmax regression. With ``prior`` (a fixed ``(features, genres)`` map on the
    raw features, :func:`genre.models.tag_map.tag_prior`), the map's logits are added to the trained
    ones: the trained weights then say how far the model departs from the map, and L2 pulls them
    toward it rather than toward zero."""
    import keras
    from keras import layers

    inputs = keras.Input(feature_shape, name="features")
    x = layers.BatchNormalization(momentum=0.9, name="feature_norm")(inputs)
    x = layers.Dropout(0.25, name="drop")(x)
    logits = layers.Dense(n_genres, dtype="float32", kernel_regularizer=keras.regularizers.l2(l2), name="genre_logits")(
        x
    )
    if prior is not None:
        fixed = layers.Dense(n_genres, use_bias=False, trainable=False, dtype="float32", name="tag_map")
        logits = layers.Add(name="with_tag_map")([logits, fixed(inputs)])
        fixed.set_weights([np.asarray(prior, dtype=np.float32)])
    outputs = layers.Activation("softmax", dtype="float32", name="genre")(logits)
    return keras.Model(inputs, outputs, name="vector_head")


def compose(frozen, head, name: str):
    """One model from raw windows to probabilities: the frozen part, then the head."""
    import keras

    inputs = keras.Input((WINDOW, 1), name="audio")
    return keras.Model(inputs, head(frozen(inputs)), name=name)


def _frozen_musicnn():
    from .musicnn import build_feature_extractor

    return build_feature_extractor()


def _transfer_builder(head_builder, name: str):
    def build(n_genres: int, dtype: str | None = None):
        frozen = _frozen_musicnn()
        return compose(frozen, head_builder(tuple(frozen.output_shape[1:]), n_genres, dtype), name)

    return build


# The recipe of every model with a frozen pretrained part: 30 epochs, Adam 1e-3, batch 32, label
# smoothing 0.1, three stored recordings of each training window.
FROZEN_RECIPE = dict(
    epochs=30, batch_size=32, learning_rate=1e-3, augment=True, label_smoothing=0.1, feature_variants=3
)


def _transfer_spec(name: str, description: str, head) -> ModelSpec:
    """A frozen musicnn under ``head``, all with one recipe: 30 epochs, Adam 1e-3, batch 32, label
    smoothing 0.1, three stored recordings of each training window."""
    return ModelSpec(
        name=name,
        description=description,
        build=_transfer_builder(head, name.replace("-", "_")),
        frozen=_frozen_musicnn,
        head=head,
        **FROZEN_RECIPE,
    )


def _tagger_spec(name: str, description: str, blocks: tuple[str, ...], l2: float, tag_map: bool) -> ModelSpec:
    """Several frozen taggers side by side (``blocks``, see :func:`genre.models.musicnn.build_taggers_extractor`)
    under :func:`build_vector_head`, with the fixed tag-to-genre map if ``tag_map``; the recipe of
    `transfer` (30 epochs, Adam 1e-3, batch 32, label smoothing 0.1, three recordings a window)."""

    def frozen():
        from .musicnn import build_taggers_extractor

        return build_taggers_extractor(blocks)

    def head(feature_shape, n_genres, dtype=None, genres=None):
        prior = None
        if tag_map and genres is not None:
            from .musicnn import block_width
            from .tag_map import tag_prior

            prior = tag_prior(blocks, genres, [block_width(b) for b in blocks])
        return build_vector_head(feature_shape, n_genres, dtype, l2=l2, prior=prior)

    def build(n_genres: int, dtype: str | None = None, genres: list[str] | None = None):
        extractor = frozen()
        return compose(
            extractor, head(tuple(extractor.output_shape[1:]), n_genres, dtype, genres), name.replace("-", "_")
        )

    return ModelSpec(
        name=name,
        description=description,
        build=build,
        frozen=frozen,
        head=head,
        takes_genres=tag_map,
        **FROZEN_RECIPE,
    )


# The frozen blocks the taggers models read (``build_taggers_extractor``): the four taggers'
# embeddings, and the two musicnn taggers' tag logits.
TAGGER_EMBEDDINGS = ("MSD_musicnn:emb", "MTT_musicnn:emb", "MSD_vgg:emb", "MTT_vgg:emb")
MUSICNN_TAGS = ("MSD_musicnn:tags", "MTT_musicnn:tags")

REGISTRY: dict[str, ModelSpec] = {
    "seed": ModelSpec(
        name="seed",
        description="The founding report's WaveNet-style dilated Conv1D on raw audio (6 layers, 288k parameters)",
        build=build_seed,
        epochs=22,
        batch_size=32,
        learning_rate=1e-3,
    ),
    "fast": ModelSpec(
        name="fast",
        description="In-graph log-mel front end + residual dilated Conv1D blocks; trains in minutes on a CPU",
        build=build_fast,
        epochs=40,
        batch_size=32,
        learning_rate=2e-3,
        augment=True,
        label_smoothing=0.1,
    ),
    "transfer": _transfer_spec(
        "transfer",
        "Pretrained musicnn (Million Song Dataset, frozen): its 200-d embedding and pooled frame features "
        "under a softmax regression",
        build_embedding_head,
    ),
    "taggers": _tagger_spec(
        "taggers",
        "Four pretrained taggers side by side (musicnn and vgg, trained on the Million Song Dataset's and "
        "MagnaTagATune's tags; frozen): their embeddings under a softmax regression",
        TAGGER_EMBEDDINGS,
        l2=1e-2,
        tag_map=False,
    ),
    "taggers-tags": _tagger_spec(
        "taggers-tags",
        "Four pretrained taggers side by side (frozen): their embeddings and both musicnn taggers' 100 tag "
        "logits (rock, jazz, classical, ... learnt from thousands of artists) under a softmax regression",
        TAGGER_EMBEDDINGS + MUSICNN_TAGS,
        l2=1e-2,
        tag_map=False,
    ),
    "taggers-map": _tagger_spec(
        "taggers-map",
        "Both musicnn taggers (MSD and MTT, frozen): embeddings, pooled frame features and tag logits under a "
        "softmax regression that starts from a fixed tag-to-genre map",
        tuple(f"{b}:{p}" for b in ("MSD_musicnn", "MTT_musicnn") for p in ("emb", "max", "mean")) + MUSICNN_TAGS,
        l2=1e-2,
        tag_map=True,
    ),
    "transfer-dilated": _transfer_spec(
        "transfer-dilated",
        "Pretrained musicnn front end (frozen) under a dilated Conv1D head over its frame features",
        build_dilated_head,
    ),
    "transfer-pooled": _transfer_spec(
        "transfer-pooled",
        "Pretrained musicnn front end (frozen) under a pooled-embedding softmax regression (baseline head)",
        build_pooled_head,
    ),
}


class UnknownModel(GenreError, KeyError):
    """A model name that is not registered; the message lists the choices."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError's own str() would quote the message


def get_spec(name: str) -> ModelSpec:
    """The registered model ``name``; :class:`UnknownModel` (a ``KeyError``) lists the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; choose one of {', '.join(REGISTRY)}") from None


def build_model(
    name: str, n_genres: int, mixed_precision: bool = False, synchronized: bool = False, genres: list[str] | None = None
):
    """Build the registered model ``name`` for ``n_genres`` genres (``mixed_bfloat16`` if asked).
    ``genres`` names them, for the models whose head starts from a tag-to-genre map (without it
    the map is left out).

    ``synchronized`` makes every BatchNormalization layer, in nested models too, compute its
    batch statistics over all replicas (``BatchNormalization(synchronized=True)``): without it
    each replica normalises by its own share of the batch. Single-device builds leave it off,
    so their saved config is what it always was."""
    spec = get_spec(name)
    named = {"genres": genres} if spec.takes_genres else {}
    model = spec.build(n_genres, dtype="mixed_bfloat16" if mixed_precision else None, **named)
    if synchronized:
        for layer in batch_norm_layers(model):
            # The builders (musicnn's pretrained network among them) make their own layers; the
            # flag is only read when the layer is called and saved, so setting it here is the same
            # as passing it to the constructor, without threading it through every builder.
            layer.synchronized = True
    return model


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer of ``model`` and of the models nested in it."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(batch_norm_layers(layer))
    return found
