"""The model registry: the report's network exactly, and the fast one's contract."""

import numpy as np
import pytest

from genre import WINDOW
from genre.models.registry import REGISTRY, build_model


def test_seed_is_the_reports_network():
    model = build_model("seed", 10)
    assert model.count_params() == 288_142
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [c.output.shape[1] for c in convs] == [66142, 22031, 7311, 2373, 663, 29]
    assert [c.filters for c in convs] == [128, 128, 64, 64, 32, 32]
    assert [c.kernel_size[0] for c in convs] == [9, 9, 9, 9, 9, 7]
    assert [c.dilation_rate[0] for c in convs] == [1, 2, 4, 8, 16, 32]
    assert model.layers[1].__class__.__name__ == "BatchNormalization"
    spec = REGISTRY["seed"]
    assert (spec.epochs, spec.batch_size) == (22, 32)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("mixed", [False, True])
def test_every_model_maps_raw_windows_to_probabilities(name, mixed):
    model = build_model(name, 3, mixed_precision=mixed)
    assert model.input_shape == (None, WINDOW, 1)
    out = np.asarray(model(np.random.default_rng(0).normal(0, 0.1, (2, WINDOW, 1)).astype(np.float32)))
    assert out.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-3)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_windows_output_does_not_depend_on_its_batch(name):
    """Classify (one song per call), evaluation and the live page (one window per call) batch
    windows differently; each window's probabilities must not change with its company."""
    rng = np.random.default_rng(3)
    t = np.arange(WINDOW) / 22_050
    quiet = (0.01 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    others = np.stack([rng.normal(0, 0.8, WINDOW), np.zeros(WINDOW), 0.9 * np.sign(np.sin(2 * np.pi * 3 * t))]).astype(
        np.float32
    )
    model = build_model(name, 4)
    alone = np.asarray(model(quiet[None, :, None], training=False))
    together = np.asarray(model(np.concatenate([others, quiet[None]])[..., None], training=False))
    np.testing.assert_allclose(together[-1], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["seed", "fast", "transfer"])
def test_synchronized_sets_every_batch_norm_and_nothing_else(name):
    """Under distribution every BatchNorm, in nested models too (musicnn's), pools its batch
    statistics over the replicas; a single-device build keeps the config it always had."""
    from genre.models.registry import batch_norm_layers

    def configs(model):
        return [layer.get_config() for layer in batch_norm_layers(model)]

    plain, synced = build_model(name, 3), build_model(name, 3, synchronized=True)
    assert batch_norm_layers(plain) and not any(c["synchronized"] for c in configs(plain))
    assert all(c["synchronized"] for c in configs(synced))
    assert [c | {"synchronized": False} for c in configs(synced)] == configs(plain)
    if name == "transfer":  # musicnn's own normalisations sit two models deep
        assert len(batch_norm_layers(plain)) > 10
