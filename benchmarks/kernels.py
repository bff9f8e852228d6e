"""Why digitlab computes Conv2D and MaxPooling2D itself on JAX: each layer's forward and backward pass, timed.

    python benchmarks/kernels.py            # the cnn preset's layers at batch 128
    python benchmarks/kernels.py --quick    # a smoke run (CI)

For each layer of the `cnn` preset, one training step's work (forward pass and gradients) is run
20 times inside one jitted `lax.scan`, as digitlab's loop runs it, once with XLA's own kernels
(what Keras' JAX backend calls: `conv_general_dilated`, `reduce_window`) and once with
digitlab.training.jaxloop's (im2col matrix product, maximum of strided slices). Each step's inputs depend
on the previous step, so XLA cannot hoist the work out of the loop. Printed: seconds per epoch of
422 steps (54,000 images), the best of 3, and the ratio.
"""

from __future__ import annotations

import argparse
import time

from digitlab.models.backend import select_backend

select_backend("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from digitlab.training.jaxloop import conv2d_im2col, maxpool_strided  # noqa: E402

STEPS_PER_EPOCH = 422  # 54,000 training images in batches of 128


def seconds_per_epoch(f, args, steps: int, repeats: int) -> float:
    grad = jax.grad(lambda *a: jnp.sum(f(*a) ** 2), argnums=tuple(range(len(args))))

    @jax.jit
    def loop(*a):
        def body(carry, _):
            g = grad(*[t + carry for t in a])
            return carry + sum(jnp.sum(x[..., :1]) for x in g) * 1e-30, None

        return lax.scan(body, jnp.float32(0), None, length=steps)[0]

    loop(*args).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        loop(*args).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return best / steps * STEPS_PER_EPOCH


def xla_conv(x, k):
    return lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def xla_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8, 2 steps, 1 repeat")
    args = parser.parse_args()
    batch, steps, repeats = (8, 2, 1) if args.quick else (128, 20, 3)
    rng = np.random.default_rng(0)

    def arr(*shape):
        return jnp.asarray(rng.random(shape, np.float32))

    x1, k1, x2, k2 = arr(batch, 28, 28, 1), arr(3, 3, 1, 32), arr(batch, 14, 14, 32), arr(3, 3, 32, 64)
    p1, p2 = arr(batch, 28, 28, 32), arr(batch, 14, 14, 64)
    cases = [
        # (layer, what is differentiated, XLA's function, digitlab's, arguments)
        ("conv1 3x3, 1 -> 32", "kernel", lambda k: xla_conv(x1, k), lambda k: conv2d_im2col(x1, k, "same"), (k1,)),
        ("conv2 3x3, 32 -> 64", "input, kernel", xla_conv, lambda x, k: conv2d_im2col(x, k, "same"), (x2, k2)),
        ("pool1 2x2 on 28x28x32", "input", xla_pool, lambda x: maxpool_strided(x, (2, 2)), (p1,)),
        ("pool2 2x2 on 14x14x64", "input", xla_pool, lambda x: maxpool_strided(x, (2, 2)), (p2,)),
    ]
    print(f"cnn preset layers, batch {batch}: seconds per epoch of {STEPS_PER_EPOCH} steps (forward + gradients)")
    print(f"{'layer':<24}{'gradient of':<16}{'XLA (Keras on JAX)':>20}{'digitlab':>12}{'speed-up':>10}")
    for name, wrt, theirs, ours, a in cases:
        t_xla = seconds_per_epoch(theirs, a, steps, repeats)
        t_ours = seconds_per_epoch(ours, a, steps, repeats)
        print(f"{name:<24}{wrt:<16}{t_xla:>20.2f}{t_ours:>12.2f}{t_xla / t_ours:>9.1f}x")


if __name__ == "__main__":
    main()
