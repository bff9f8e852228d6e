"""Training: one epoch driver for every engine (Keras fit, the compiled JAX loop, NumPy), checkpoints."""
