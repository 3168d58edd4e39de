"""musicnn's own 50 MSD tags, read off a model's own graph, so a classification and its taggram
come from one model call: ``transfer`` (musicnn's pretrained back end sits in its head) and the
``taggers`` models (``MSD_musicnn``'s 200-d embedding is a block of the vector their head reads)."""

from __future__ import annotations

from .penultimate import node_inputs, producer

EMBEDDING_WIDTH = 200  # musicnn's penultimate layer


def msd_tags_output(model):
    """The ``(batch, 50)`` tensor of musicnn's MSD tag probabilities for ``model``'s input, built on
    tensors that ``model``'s graph already computes (only musicnn's last Dense layer is added), or
    None when ``model`` holds no MSD musicnn embedding to read them from."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "outputs") or len(model.outputs) != 1:
        return None
    head, node = producer(model.outputs[0])
    if not isinstance(head, keras.Model) or head is model:
        return None
    fed = node_inputs(head, node)
    if len(fed) != 1:
        return None
    fed = fed[0]
    frozen, _ = producer(fed)
    names = {layer.name for layer in head.layers}
    if "musicnn_embedding" in names and frozen.name == "musicnn_features":
        # transfer: the head's frozen back end is musicnn's (MSD weights); called again on the same
        # frame features, it repeats only pooling and one 1,506 x 200 product.
        from .musicnn import load_network

        embedding = head.get_layer("musicnn_embedding")(fed)
        return load_network().get_layer("tags")(embedding)
    if isinstance(frozen, keras.Model) and {"MSD_musicnn", "tagger_features"} <= {
        layer.name for layer in frozen.layers
    }:
        concat = frozen.get_layer("tagger_features")
        offset = 0
        for block in node_inputs(concat, 0):
            history = block._keras_history
            if history.operation.name == "MSD_musicnn" and history.tensor_index == 1:  # its second output
                embedding = fed[:, offset : offset + EMBEDDING_WIDTH]
                return frozen.get_layer("MSD_musicnn").get_layer("tags")(embedding)
            offset += int(block.shape[-1])
    return None
