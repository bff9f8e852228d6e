"""Move weights between the NumPy engine and Keras: import a trained preset, export a .keras model.

Keras fuses the activation into Dense; the engine keeps it as a layer of its own. A final Dense
with softmax becomes a Dense whose outputs are the engine's logits (the softmax lives in the loss).
"""

from __future__ import annotations

import numpy as np

from digitlab.errors import ConfigError
from digitlab.scratch.layers import ACTIVATIONS, Dense, Dropout
from digitlab.scratch.network import Network

PASS_THROUGH = ("InputLayer", "Flatten")


def from_keras(model, *, dtype=np.float32, rng: np.random.Generator | None = None) -> Network:
    """An engine network with the weights of a Keras model of Dense/Dropout layers."""
    layers: list = []
    keras_layers = [layer for layer in model.layers if type(layer).__name__ not in PASS_THROUGH]
    for i, layer in enumerate(keras_layers):
        kind = type(layer).__name__
        if kind == "Dense":
            kernel, bias = (np.asarray(w, dtype=dtype) for w in layer.get_weights())
            dense = Dense(*kernel.shape, dtype=dtype)
            dense.params["kernel"][...] = kernel
            dense.params["bias"][...] = bias
            layers.append(dense)
            activation = layer.get_config()["activation"]
            last = i == len(keras_layers) - 1
            if last and activation != "softmax":
                raise ConfigError(f"{layer.name}: the last layer must be Dense with softmax, not {activation}.")
            if not last and activation != "linear":
                if activation not in ACTIVATIONS:
                    raise ConfigError(
                        f"{layer.name}: activation {activation} is not supported by the NumPy engine "
                        f"(it has {', '.join(ACTIVATIONS)})."
                    )
                layers.append(ACTIVATIONS[activation]())
        elif kind == "Dropout":
            layers.append(Dropout(layer.rate, rng))
        else:
            raise ConfigError(
                f"{layer.name}: layer type {kind} is not supported by the NumPy engine, which runs "
                "Dense, ReLU, Sigmoid, Tanh and Dropout layers (no convolutions)."
            )
    if not layers or not isinstance(layers[-1], Dense):
        raise ConfigError("the model must end with a Dense softmax layer.")
    return Network(layers)


def to_keras(net: Network, name: str = "numpy_mlp"):
    """A Keras model with the engine network's weights: save it, load it, evaluate it like any other."""
    import keras
    from keras import layers as kl

    n_in = net.dense_layers()[0].shape[0]
    stack: list = [keras.Input(shape=(n_in,), name="pixels")]
    pending: tuple | None = None  # the last Dense, waiting to learn its activation

    def flush(activation: str) -> None:
        nonlocal pending
        if pending is not None:
            dense = pending
            layer = kl.Dense(dense.shape[1], activation=activation, name=dense.name)
            stack.append(layer)
            pending = None
            weights.append((layer, dense))

    weights: list = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            flush("linear")
            pending = layer
        elif isinstance(layer, Dropout):
            flush("linear")
            stack.append(kl.Dropout(layer.rate, name=layer.name))
        else:
            if pending is None:
                raise ConfigError(f"{layer.name}: an activation must follow a Dense layer to export to Keras.")
            flush(type(layer).__name__.lower())
    flush("softmax")
    model = keras.Sequential(stack, name=name)
    for keras_layer, dense in weights:
        keras_layer.set_weights([dense.params["kernel"], dense.params["bias"]])
    return model
