"""A compiled training loop for Keras models on the JAX backend: many steps per call, data in memory.

Why not `model.fit`: on a 2-core CPU, Keras' fit spends most of an MLP epoch between the steps
(one Python round trip, callback and metric update per batch of 64), and XLA's CPU gradients of
`Conv2D` and `MaxPooling2D` are slow (see BENCHMARKS.md for the numbers). Here one jitted call runs
`STEPS_PER_CALL` training steps with `lax.scan`; the training images stay in one uint8 array that
each step gathers its batch from, so nothing crosses from Python per step.

The model stays a Keras model: the loop trains the model's own variables through
`Layer.stateless_call` and `Optimizer.stateless_apply` (the same optimizer, schedule and loss as
`fit`), and writes them back into the model after every epoch, so checkpoints, `model.save`,
`load_model` and inspection are Keras' own. Three layers are computed in another way with the same
arithmetic: `Conv2D` as a matrix product over image patches (im2col), `MaxPooling2D` whose
stride equals its size as the maximum of strided slices, with its gradient written out, and
`Dense` with its kernel gradient written as a product XLA runs faster. Forward values and dense
gradients equal Keras' to float precision and pooling gradients equal Keras' exactly
(`tests/unit/test_jaxloop.py`). Any other layer runs its own Keras code.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from digitlab.errors import TrainingDiverged

if TYPE_CHECKING:  # JAX is imported where it is needed: importing digitlab must not pull it in
    import jax

STEPS_PER_CALL = 64  # training steps per compiled call: the progress bar moves once per call
EVAL_BATCH = 1000
NARROW_UNITS = 64  # a Dense layer with fewer units gets its kernel gradient as a transposed product


def supports(model) -> bool:
    """True if the loop can train `model`: a Sequential stack computing in float32 without regularisation losses."""
    import keras

    if keras.backend.backend() != "jax" or not isinstance(model, keras.Sequential):
        return False
    for layer in model.layers:
        if layer.compute_dtype != "float32":  # the loop's own layers compute in float32
            return False
        cfg = layer.get_config()
        if any(cfg.get(k) for k in ("kernel_regularizer", "bias_regularizer", "activity_regularizer")):
            return False
    return True


def conv2d_im2col(x, kernel, padding: str):
    """Stride-1 2-D convolution, NHWC input, HWIO kernel; 'same' pads as Keras does (the extra at the end).

    The shifted images are stacked along the channels and the convolution is one matrix product,
    whose gradients are matrix products too: many times faster on a CPU than XLA's own convolution
    gradients (benchmarks/kernels.py; BENCHMARKS.md).
    """
    import jax.numpy as jnp

    kh, kw, cin, cout = kernel.shape
    if padding == "same":
        x = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    n, h, w, _ = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    shifted = [x[:, i : i + oh, j : j + ow, :] for i in range(kh) for j in range(kw)]
    cols = jnp.concatenate(shifted, axis=-1).reshape(n * oh * ow, kh * kw * cin)
    return (cols @ kernel.reshape(kh * kw * cin, cout)).reshape(n, oh, ow, cout)


def maxpool_strided(x, size: tuple[int, int]):
    """Max pooling with stride = size and 'valid' padding, as the maximum of strided slices.

    Its gradient (`_maxpool_grad`) goes to the first maximum of each window, as XLA's and
    TensorFlow's do, and is built from element-wise selects on the same strided slices.
    """
    return _maxpool_function()(x, tuple(size))


def _pool_parts(x, size):
    ph, pw = size
    n, h, w, c = x.shape
    x = x[:, : h // ph * ph, : w // pw * pw, :]
    return [x[:, i::ph, j::pw, :] for i in range(ph) for j in range(pw)]


def _maxpool_forward(x, size):
    import jax.numpy as jnp

    parts = _pool_parts(x, size)
    out = parts[0]
    for part in parts[1:]:
        out = jnp.maximum(out, part)
    return out


def _maxpool_grad(size, residuals, g):
    """The gradient of max pooling, written out: JAX's own derivative of the chain of maxima splits
    a tie's gradient through divides and scatters with interleaving pads that XLA fuses into the
    convolution gradient around it; this one makes a CNN epoch markedly shorter (BENCHMARKS.md)."""
    import jax.numpy as jnp

    x, out = residuals
    ph, pw = size
    n, h, w, c = x.shape
    h2, w2 = out.shape[1], out.shape[2]
    grads, taken = [], jnp.zeros(out.shape, bool)
    for part in _pool_parts(x, size):
        hit = (part == out) & ~taken
        grads.append(jnp.where(hit, g, jnp.zeros_like(g)))
        taken = taken | hit
    # grads[i * pw + j] belongs at rows i::ph and columns j::pw: interleave them back.
    rows = [jnp.stack(grads[i * pw : (i + 1) * pw], axis=3) for i in range(ph)]  # (n, h2, w2, pw, c)
    gx = jnp.stack(rows, axis=2).reshape(n, h2 * ph, w2 * pw, c)
    if (h2 * ph, w2 * pw) != (h, w):  # the rows and columns pooling leaves out get no gradient
        gx = jnp.pad(gx, ((0, 0), (0, h - h2 * ph), (0, w - w2 * pw), (0, 0)))
    return (gx,)


@functools.cache
def _maxpool_function():
    """`_maxpool_forward` with `_maxpool_grad` as its derivative (built once, when JAX is first needed)."""
    import jax

    pool = jax.custom_vjp(_maxpool_forward, nondiff_argnums=(1,))

    def forward(x, size):
        out = _maxpool_forward(x, size)
        return out, (x, out)

    pool.defvjp(forward, _maxpool_grad)
    return pool


def dense_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`x @ kernel` over the last axis of `x`, its kernel gradient computed as the transpose of
    `g.T @ x` for a narrow layer (see `_dense_grad`). Reverse-mode only (a `custom_vjp`)."""
    return _dense_function()(x, kernel)


def _dense_grad(residuals, g):
    """The gradients of `x @ kernel`. XLA computes the kernel gradient `x.T @ g` as a product that
    contracts both operands' first axis; for a narrow layer that runs at a fraction of the speed of
    `g.T @ x` transposed (the MLP's 512 -> 10 layer, batch 64: 124 us against 25 us in its step).
    The barrier keeps XLA from folding the transpose back into the product. A wide layer keeps
    XLA's product: its transposed result, read by Adam's two moment updates, cost more there
    (+140 us for 784 -> 512) than the product saved (-41 us). Profiled with `jax.profiler`."""
    import jax

    x, kernel = residuals
    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    if kernel.shape[1] < NARROW_UNITS:
        dkernel = jax.lax.optimization_barrier(g2.T @ x2).T
    else:  # a wide layer's transposed gradient costs more in the optimizer's update than it saves
        dkernel = x2.T @ g2
    return g @ kernel.T, dkernel


@functools.cache
def _dense_function():
    import jax

    matmul = jax.custom_vjp(lambda x, kernel: x @ kernel)
    matmul.defvjp(lambda x, kernel: (x @ kernel, (x, kernel)), _dense_grad)
    return matmul


def _biased(product: Callable, use_bias: bool, activation: Callable) -> Callable:
    """(trainable, x) -> activation(product(x, kernel) + bias), as Conv2D and Dense compute it."""
    def call(tv, x):
        y = product(x, tv[0])
        return activation(y + tv[1] if use_bias else y)

    return call


def _layer_function(layer) -> Callable | None:
    """A pure function (trainable, x) -> y for the layers computed here; None for Keras' own call."""
    kind, cfg = type(layer).__name__, layer.get_config()
    use_bias = cfg.get("use_bias")
    # A frozen layer (or one with a frozen kernel) keeps its weights out of the trainable list: Keras' call.
    trainable = len(layer.trainable_variables) == (2 if use_bias else 1)
    if kind == "Conv2D" and trainable and (tuple(cfg["strides"]) == (1, 1) and tuple(cfg["dilation_rate"]) == (1, 1)
                                           and cfg["groups"] == 1 and cfg.get("data_format") == "channels_last"
                                           and cfg["padding"] in ("same", "valid")):
        return _biased(lambda x, kernel: conv2d_im2col(x, kernel, cfg["padding"]), use_bias, layer.activation)
    if kind == "Dense" and trainable and not layer.lora_enabled and layer.quantization_mode is None \
            and layer.compute_dtype == "float32":
        return _biased(dense_matmul, use_bias, layer.activation)
    if kind == "MaxPooling2D" and (tuple(cfg["pool_size"]) == tuple(cfg["strides"]) and cfg["padding"] == "valid"
                                   and cfg.get("data_format") == "channels_last"):
        return lambda tv, x: maxpool_strided(x, tuple(cfg["pool_size"]))
    return None


def make_forward(model) -> Callable:
    """forward(trainable, non_trainable, x, training) -> (probabilities, non_trainable): the model as a pure function.

    The variable lists are the model's own, in `model.trainable_variables` order.
    """
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    nindex = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    plan = [(layer, _layer_function(layer), [index[id(v)] for v in layer.trainable_variables],
             [nindex[id(v)] for v in layer.non_trainable_variables],
             "training" in inspect.signature(layer.call).parameters) for layer in model.layers]

    def forward(tv, ntv, x, training: bool):
        ntv = list(ntv)
        for layer, own, ti, ni, takes_training in plan:
            ltv = [tv[i] for i in ti]
            if own is not None:
                x = own(ltv, x)
            else:
                kwargs = {"training": training} if takes_training else {}
                x, new = layer.stateless_call(ltv, [ntv[i] for i in ni], x, **kwargs)
                for i, v in zip(ni, new):
                    ntv[i] = v
        return x, ntv

    return forward


@dataclass
class Loop:
    """The compiled functions of one model and data set."""

    # (state, idx (k, batch), valid (k,), images=None) -> (state, (loss (k,), correct (k,))); `images`
    # (a device array like the loop's training images) replaces them, e.g. with distorted copies.
    train_call: Callable
    evaluate_call: Callable  # (tv, ntv, x uint8, y, mask) -> (loss sum, correct)


def build_loop(model, x_train: np.ndarray, y_train: np.ndarray, num_classes: int) -> Loop:
    """Compile the training and evaluation steps; `x_train` is uint8 in the model's input shape."""
    import jax
    import jax.numpy as jnp
    import keras

    forward = make_forward(model)
    optimizer = model.optimizer
    loss_fn = keras.losses.CategoricalCrossentropy()
    x_dev, y_dev = jnp.asarray(x_train), jnp.asarray(y_train.astype(np.int32))

    def loss_of(tv, ntv, xb, yb):
        probs, ntv = forward(tv, ntv, xb, True)
        return loss_fn(jax.nn.one_hot(yb, num_classes), probs), (probs, ntv)

    grad_fn = jax.value_and_grad(loss_of, has_aux=True)

    def step(state, batch, x_all, y_all):
        idx, valid = batch

        def train(state):
            tv, ntv, ov = state
            xb = jnp.take(x_all, idx, axis=0).astype(jnp.float32) / jnp.float32(255)
            yb = jnp.take(y_all, idx, axis=0)
            (loss, (probs, ntv)), grads = grad_fn(tv, ntv, xb, yb)
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), (loss, jnp.sum(jnp.argmax(probs, axis=-1) == yb))

        def skip(state):  # padding at the end of an epoch: the state passes through
            return state, (jnp.float32(0), jnp.int32(0))

        return jax.lax.cond(valid, train, skip, state)

    # The images are an argument, not a constant of the compiled program: a 47 MB constant would
    # be copied into every compilation.
    @jax.jit
    def train_images(state, x_all, y_all, idx, valid):
        return jax.lax.scan(lambda s, b: step(s, b, x_all, y_all), state, (idx, valid))

    def train_call(state, idx, valid, images=None):
        return train_images(state, x_dev if images is None else images, y_dev, idx, valid)

    @jax.jit
    def evaluate_call(tv, ntv, xb, yb, mask):
        probs, _ = forward(tv, ntv, xb.astype(jnp.float32) / jnp.float32(255), False)
        losses = keras.losses.categorical_crossentropy(jax.nn.one_hot(yb, num_classes), probs)
        return jnp.sum(losses * mask), jnp.sum((jnp.argmax(probs, axis=-1) == yb) * mask)

    return Loop(train_call, evaluate_call)


def read_state(model) -> tuple:
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables])


def write_state(model, state) -> None:
    tv, ntv, ov = state
    for variables, values in ((model.trainable_variables, tv), (model.non_trainable_variables, ntv),
                              (model.optimizer.variables, ov)):
        for v, a in zip(variables, values):
            v.assign(a)


def train_epoch(loop: Loop, model, order: np.ndarray, batch_size: int, *, epoch: int, progress=None,
                images: np.ndarray | None = None) -> dict:
    """One pass over the training images in `order`, written back into `model`. Returns loss and accuracy.

    `images` (uint8, the shape of the loop's training images) replaces them for this epoch.

    Raises TrainingDiverged, naming the epoch and batch, if the loss stops being finite.
    """
    import jax.numpy as jnp

    n = len(order)
    full = n // batch_size
    calls = []
    if full:
        k = min(STEPS_PER_CALL, full)
        padded = math.ceil(full / k) * k
        idx = np.zeros((padded, batch_size), np.int32)
        idx[:full] = order[: full * batch_size].reshape(full, batch_size)
        valid = np.arange(padded) < full
        calls += [(idx[i : i + k], valid[i : i + k]) for i in range(0, padded, k)]
    if n % batch_size:  # the last, smaller batch, as fit trains it (its own compiled shape)
        calls.append((order[full * batch_size :][None].astype(np.int32), np.ones(1, bool)))
    state = read_state(model)
    if images is not None:
        images = jnp.asarray(images)  # once: not copied to the device again for every call
    total_loss, correct, done = 0.0, 0, 0
    for idx, valid in calls:
        state, (losses, right) = loop.train_call(state, jnp.asarray(idx), jnp.asarray(valid), images)
        losses = np.asarray(losses)[valid]
        if not np.all(np.isfinite(losses)):
            bad = int(np.argmax(~np.isfinite(losses)))
            raise TrainingDiverged(
                f"the loss became {losses[bad]} in epoch {epoch}, batch {done + bad + 1}: training diverged. "
                "Try a smaller --learning-rate.")
        sizes = np.full(len(losses), idx.shape[1])
        total_loss += float(np.sum(losses * sizes))
        correct += int(np.sum(np.asarray(right)))
        done += len(losses)
        if progress is not None:
            seen = min(done * batch_size, n)
            progress(done, {"accuracy": correct / seen, "loss": total_loss / seen})
    write_state(model, state)
    return {"accuracy": correct / n, "loss": total_loss / n}


def evaluate(loop: Loop, model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on uint8 images `x` (the model's input shape) and labels `y`."""
    import jax.numpy as jnp

    tv, ntv, _ = read_state(model)
    loss, correct = 0.0, 0
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH].astype(np.int32)
        mask = np.zeros(EVAL_BATCH, np.float32)
        mask[: len(xb)] = 1
        if len(xb) < EVAL_BATCH:  # one compiled shape: pad, and count only the real images
            xb = np.concatenate([xb, np.zeros((EVAL_BATCH - len(xb), *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(EVAL_BATCH - len(yb), np.int32)])
        l, c = loop.evaluate_call(tv, ntv, jnp.asarray(xb), jnp.asarray(yb), jnp.asarray(mask))
        loss, correct = loss + float(l), correct + int(c)
    return loss / len(x), correct / len(x)


def progress_bar(steps: int, verbose: int):
    """Keras' own progress bar (a bar on a terminal, a line per epoch in logs), fed once per call."""
    import keras

    bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=["accuracy", "loss", "val_accuracy", "val_loss"])

    def update(done: int, logs: dict, finalize: bool = False) -> None:
        bar.update(done, values=list(logs.items()), finalize=finalize)

    return update
