"""A trained model's penultimate layer: the input of its final Dense (softmax) layer, found in
the loaded Keras graph, so it works for every model the registry builds (``seed`` and ``fast``
end in a Dense; ``transfer`` models end in a nested head model that does)."""

from __future__ import annotations

from ..errors import GenreError

# Layers that may follow the final Dense without changing what it reads (a separate softmax).
_PASS_THROUGH = ("Activation", "Softmax")
# A sum of logits (a trained Dense plus a fixed tag-to-genre map, genre.models.registry.build_vector_head):
# the trained Dense is its first input.
_SUMS = ("Add",)


class NoPenultimateLayer(GenreError, ValueError):
    """A model whose output does not come from a Dense layer (directly or in a nested model)."""


def producer(tensor):
    """The layer that made ``tensor`` and the index of the call (node) that made it (shared with
    ``genre.models.msd_tags``, which reads the same graphs)."""
    history = tensor._keras_history
    return history.operation, history.node_index


def node_inputs(layer, node_index: int):
    """The tensors that call ``node_index`` of ``layer`` was given."""
    return layer._inbound_nodes[node_index].input_tensors


def with_penultimate(model):
    """A model with the same input and two outputs: ``model``'s own output and the input of
    its final Dense layer. It shares ``model``'s layers (and weights): one call gives both.
    Raises :class:`NoPenultimateLayer` when the output is not a Dense layer's."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "outputs"):
        # A subclassed model or any other callable has no graph to read a layer from.
        raise NoPenultimateLayer(f"{type(model).__name__} is not a functional Keras model")
    if len(model.outputs) != 1:
        raise NoPenultimateLayer(f"model {model.name} has {len(model.outputs)} outputs, not one")
    output = model.outputs[0]
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # as the model was built
    layer, node_index = producer(output)
    while type(layer).__name__ in _PASS_THROUGH + _SUMS:
        layer, node_index = producer(node_inputs(layer, node_index)[0])
    if isinstance(layer, keras.layers.Dense):
        return keras.Model(inputs, [output, node_inputs(layer, node_index)[0]], name=f"{model.name}_penultimate")
    if isinstance(layer, keras.Model) and layer is not model:
        # A nested model (a transfer head): its own Dense, called on what the outer graph feeds it.
        inner = with_penultimate(layer)
        fed = node_inputs(layer, node_index)
        probabilities, penultimate = inner(fed[0] if len(fed) == 1 else fed)
        return keras.Model(inputs, [probabilities, penultimate], name=f"{model.name}_penultimate")
    raise NoPenultimateLayer(f"the output of model {model.name} comes from a {type(layer).__name__}, not a Dense layer")


def has_layer(model, class_name: str) -> bool:
    """Whether ``model`` or a model nested in it holds a layer of class ``class_name``."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == class_name or has_layer(layer, class_name):
            return True
    return False
