"""Randomly distorted copies of the training digits, drawn afresh for every epoch.

Test digits differ from training digits the way hands differ: slant, size, position and the local
wobble of a stroke. Training on distorted copies teaches a network those variations instead of
the training images' pixels. Simard, Steinkraus and Platt (2003), "Best practices for
convolutional neural networks applied to visual document analysis", measured it on MNIST: a
simple convolutional network went from 0.6% test error with affine distortions to 0.4% with
elastic ones (a smoothed random displacement field). digitlab offers both:

- "affine": each image rotated by up to +-10 degrees, scaled by up to +-10% and shifted by up to
  2.5 pixels in each direction, all drawn uniformly;
- "elastic": the same, plus Simard's elastic field: per-pixel uniform noise in [-1, 1] for each
  coordinate, smoothed by a Gaussian of sigma 4 pixels and scaled by alpha = 34.

Both are one resampling of the image (bilinear, zero outside): the affine map and the elastic field
are added up as source coordinates first, so a digit is interpolated once, not once per distortion.
The images stay uint8 and the labels stay as they are; only training images are distorted, never
validation or test images. The work is one compiled JAX function over chunks of images, whatever
backend Keras trains on: a small part of an epoch's time (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from digitlab.config import AUGMENTATIONS
from digitlab.errors import ConfigError

if TYPE_CHECKING:  # JAX is imported where it is needed: importing digitlab must not pull it in
    import jax

CHUNK = 2048  # images per compiled call (fewer if there are fewer): one compiled shape, the last chunk padded


@dataclass(frozen=True)
class Distortion:
    """The ranges of one kind of distortion. Each is drawn uniformly per image, in both directions."""

    rotation_degrees: float = 10.0
    zoom: float = 0.1  # scale factor in [1 - zoom, 1 + zoom]
    shift_pixels: float = 2.5
    elastic_alpha: float = 0.0  # 0: no elastic field
    elastic_sigma: float = 4.0

    def __post_init__(self) -> None:
        problems = [f"{name} must be at least 0, got {getattr(self, name)}"
                    for name in ("rotation_degrees", "shift_pixels", "elastic_alpha") if not getattr(self, name) >= 0]
        if not 0 <= self.zoom < 1:
            problems.append(f"zoom must be in [0, 1), got {self.zoom}")
        if not self.elastic_sigma > 0:
            problems.append(f"elastic_sigma must be greater than 0, got {self.elastic_sigma}")
        if problems:
            raise ConfigError("invalid distortion: " + "; ".join(problems) + ".")


DISTORTIONS: dict[str, Distortion | None] = {
    "none": None,
    "affine": Distortion(),
    "elastic": Distortion(elastic_alpha=34.0),
}
assert tuple(DISTORTIONS) == AUGMENTATIONS, "config.AUGMENTATIONS names the distortions defined here"


def distortion_for(name: str) -> Distortion | None:
    """The distortion a `RunConfig.augment` name stands for; None for "none"."""
    try:
        return DISTORTIONS[name]
    except KeyError:
        raise ConfigError(f'"{name}" is not an augmentation. Choose one of: {", ".join(DISTORTIONS)}.') from None


def distort_images(images: np.ndarray, distortion: Distortion | None,
                   seed: int | Sequence[int] | np.random.SeedSequence) -> np.ndarray:
    """Distorted copies of `images` (n, height, width) uint8, the same shape and dtype.

    Each image gets its own draw of angle, scale, shift and elastic field; the same images,
    distortion and seed (anything `numpy.random.default_rng` takes) always give the same copies.
    `None` gives plain copies.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ConfigError("distortions apply to uint8 images of shape (n, height, width), got "
                          f"{images.dtype} of shape {images.shape}.")
    n, height, width = images.shape
    if distortion is None or n == 0:
        return images.copy()
    function = _compiled(distortion.elastic_sigma, height, width)
    # The random numbers come from NumPy: its generator makes the elastic noise (two numbers per
    # pixel) about twice as fast as JAX's counter-based one does on a CPU.
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    size = min(CHUNK, n)
    for start in range(0, n, size):
        chunk = images[start : start + size]
        padded = np.zeros((size, height, width), images.dtype)
        padded[: len(chunk)] = chunk
        angle = _uniform(rng, size) * np.float32(math.radians(distortion.rotation_degrees))
        scale = 1 + _uniform(rng, size) * np.float32(distortion.zoom)
        shift = _uniform(rng, (size, 2)) * np.float32(distortion.shift_pixels)
        noise = np.zeros((size, 2, height, width), np.float32)
        if distortion.elastic_alpha:
            noise = _uniform(rng, noise.shape) * np.float32(distortion.elastic_alpha)
        out[start : start + len(chunk)] = np.asarray(function(padded, angle, scale, shift, noise))[: len(chunk)]
    return out


def _uniform(rng: np.random.Generator, shape) -> np.ndarray:
    """float32 uniform in [-1, 1)."""
    return rng.random(shape, dtype=np.float32) * 2 - 1


def warp(images: jax.Array, angle: jax.Array, scale: jax.Array, shift: jax.Array, field: jax.Array) -> jax.Array:
    """Resample images (n, height, width) float: turned anticlockwise by `angle` radians (n,) and
    scaled by `scale` (n,) about their centre, then shifted by `shift` (n, 2) pixels (rows,
    columns), each pixel then displaced by `field` (n, 2, height, width) pixels. Bilinear, zero
    outside. A JAX function."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.ndimage import map_coordinates

    _, height, width = images.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    rows, cols = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32) - cy, jnp.arange(width, dtype=jnp.float32) - cx,
                              indexing="ij")

    def one(image, angle, scale, shift, field):
        # Where each output pixel comes from: the shift undone, then the inverse of the rotation
        # and scaling about the centre, then the elastic displacement. One interpolation for all.
        cos, sin = jnp.cos(angle) / scale, jnp.sin(angle) / scale
        r, c = rows - shift[0], cols - shift[1]
        src_rows = cy + cos * r + sin * c + field[0]
        src_cols = cx - sin * r + cos * c + field[1]
        return map_coordinates(image, [src_rows, src_cols], order=1, mode="constant", cval=0.0)

    return jax.vmap(one)(images, angle, scale, shift, field)


def smooth(noise: jax.Array, sigma: float) -> jax.Array:
    """Gaussian smoothing of `noise` (n, 2, height, width) over its last two axes: Simard's elastic
    field from per-pixel uniform noise. A JAX function."""
    import jax.numpy as jnp

    _, _, height, width = noise.shape

    # Two matrix products (rows, then columns), each row of the matrices normalised to sum to 1 so
    # that the field does not fade near the border.
    def blur_matrix(size: int) -> np.ndarray:
        d = np.arange(size)[:, None] - np.arange(size)[None, :]
        g = np.exp(-0.5 * (d / sigma) ** 2)
        return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)

    return jnp.einsum("ih,nkhw,jw->nkij", blur_matrix(height), noise, blur_matrix(width))


@functools.lru_cache(maxsize=8)  # one compiled function per image size, not one per epoch
def _compiled(sigma: float, height: int, width: int):
    import jax
    import jax.numpy as jnp

    @jax.jit
    def function(images, angle, scale, shift, noise):
        out = warp(images.astype(jnp.float32), angle, scale, shift, smooth(noise, sigma))
        return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)

    return function
