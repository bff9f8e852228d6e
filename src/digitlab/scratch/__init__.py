"""A from-scratch neural-network engine in NumPy: hand-written forward and backward passes.

Layers (Dense, ReLU, Sigmoid, Tanh, Dropout, softmax cross-entropy), Keras 3's optimisers
(SGD with or without momentum, RMSprop, Adam) and initialisers, and a gradient checker. It
imports NumPy only; `digitlab.scratch.convert` moves weights to and from Keras.
"""

from digitlab.scratch.gradcheck import gradcheck
from digitlab.scratch.layers import Dense, Dropout, ReLU, Sigmoid, SoftmaxCrossEntropy, Tanh, softmax
from digitlab.scratch.network import Network, mlp
from digitlab.scratch.optimizers import SGD, Adam, RMSprop, make_optimizer

__all__ = [
    "SGD", "Adam", "Dense", "Dropout", "Network", "RMSprop", "ReLU", "Sigmoid", "SoftmaxCrossEntropy",
    "Tanh", "gradcheck", "make_optimizer", "mlp", "softmax",
]
