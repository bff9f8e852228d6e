"""digitlab.data.augment: each distortion checked against NumPy's own moves of the pixel grid."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitlab.data.augment import DISTORTIONS, Distortion, distort_images, distortion_for, smooth, warp
from digitlab.errors import ConfigError


def images(n=5, size=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def warped(x, angle=0.0, scale=1.0, shift=(0.0, 0.0), field=None):
    import jax.numpy as jnp

    n, h, w = x.shape
    field = np.zeros((n, 2, h, w), np.float32) if field is None else field
    out = warp(jnp.asarray(x, jnp.float32), jnp.full(n, angle, jnp.float32), jnp.full(n, scale, jnp.float32),
               jnp.tile(jnp.asarray(shift, jnp.float32), (n, 1)), jnp.asarray(field))
    return np.round(np.asarray(out)).astype(np.int64)


def test_no_distortion_is_the_identity():
    x = images()
    assert np.array_equal(warped(x), x)
    still = Distortion(rotation_degrees=0, zoom=0, shift_pixels=0)
    assert np.array_equal(distort_images(x, still, seed=3), x)


def test_a_quarter_turn_is_numpys_rot90():
    x = images()
    assert np.array_equal(warped(x, angle=math.pi / 2), np.rot90(x, k=1, axes=(1, 2)))
    assert np.array_equal(warped(x, angle=-math.pi / 2), np.rot90(x, k=-1, axes=(1, 2)))


@pytest.mark.parametrize("shift", [(2, 0), (0, -3), (1, 2), (-4, -1)])
def test_a_whole_pixel_shift_moves_the_digit_and_fills_with_black(shift):
    x = images(size=12)
    expected = np.zeros_like(x)
    dy, dx = shift
    h, w = x.shape[1:]
    expected[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        x[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    assert np.array_equal(warped(x, shift=shift), expected)


def test_scaling_by_two_magnifies_the_centre():
    x = np.zeros((1, 9, 9), np.uint8)
    x[0, 3:6, 3:6] = 200  # a 3x3 square about the centre pixel (4, 4)
    out = warped(x, scale=2.0)
    assert out[0, 4, 4] == 200 and out[0, 2, 2] == 200 and out[0, 6, 6] == 200  # now about 6 pixels wide
    assert out[0, 0, 0] == 0 and out[0, 8, 8] == 0


def test_the_elastic_field_is_smooth_and_of_simards_size():
    noise = 34.0 * np.random.default_rng(0).uniform(-1, 1, (64, 2, 28, 28)).astype(np.float32)
    field = np.asarray(smooth(noise, sigma=4.0))
    assert field.shape == (64, 2, 28, 28)
    spread = field.std()
    assert 0.5 < spread < 3.0, spread  # a pixel or two: a wobble of the stroke, not a new digit
    neighbour_step = np.abs(np.diff(field, axis=-1)).mean()
    assert neighbour_step < spread / 4  # neighbouring pixels move almost together


def test_distorted_copies_keep_shape_and_dtype_and_repeat_with_the_seed():
    x = images(n=2100)  # more than one compiled chunk: the last one is padded
    for name in ("affine", "elastic"):
        a = distort_images(x, distortion_for(name), seed=7)
        assert a.shape == x.shape and a.dtype == np.uint8
        assert np.array_equal(a, distort_images(x, distortion_for(name), seed=7))
        assert not np.array_equal(a, distort_images(x, distortion_for(name), seed=8))
        for part in (slice(0, 5), slice(2090, 2100)):  # the first chunk and the padded last one
            assert not np.array_equal(a[part], x[part]) and a[part].any()


def test_each_image_gets_its_own_distortion():
    x = np.repeat(images(n=1), 6, axis=0)
    out = distort_images(x, distortion_for("affine"), seed=0)
    assert len({o.tobytes() for o in out}) == 6


def test_the_shift_comes_after_the_turn():
    x = np.zeros((1, 9, 9), np.uint8)
    x[0, 4, 6] = 255  # two pixels right of the centre
    out = warped(x, angle=math.pi / 2, shift=(2, 0))  # a quarter turn takes it above the centre, then 2 down
    assert out[0, 4, 4] == 255 and out.sum() == 255


def test_real_digits_stay_digits(mnist):
    """Distorted training digits keep their ink: the mass moves, it does not vanish or fill the square."""
    (x, _), _ = mnist
    x = x[:500]
    for name in ("affine", "elastic"):
        d = distort_images(x, distortion_for(name), seed=0).astype(np.float64)
        ratio = d.sum(axis=(1, 2)) / x.astype(np.float64).sum(axis=(1, 2))
        assert 0.6 < np.median(ratio) < 1.4, (name, np.median(ratio))
        assert (d > 0).mean() < 0.4


@settings(max_examples=12, deadline=None)  # each new shape compiles: a few shapes, any pixels
@given(arrays(np.uint8, st.tuples(st.sampled_from([0, 1, 3]), st.sampled_from([1, 2, 9]), st.sampled_from([1, 28]))),
       st.integers(0, 2**31))
def test_any_image_batch_gives_copies_of_its_shape_and_leaves_it_alone(x, seed):
    before = x.copy()
    out = distort_images(x, distortion_for("elastic"), seed)
    assert out.shape == x.shape and out.dtype == np.uint8
    assert np.array_equal(x, before)
    assert np.array_equal(distort_images(x, None, seed), x)


def test_unknown_kinds_and_shapes_are_refused_by_name():
    assert DISTORTIONS["none"] is None
    with pytest.raises(ConfigError, match='"wobbly" is not an augmentation. Choose one of: none, affine'):
        distortion_for("wobbly")
    with pytest.raises(ConfigError, match=r"uint8 images of shape \(n, height, width\), got uint8 of shape \(3, 784\)"):
        distort_images(np.zeros((3, 784), np.uint8), distortion_for("affine"), 0)
    with pytest.raises(ConfigError, match=r"got float32 of shape \(3, 28, 28\)"):  # [0, 1] floats would be lost
        distort_images(np.zeros((3, 28, 28), np.float32), distortion_for("affine"), 0)
    with pytest.raises(ConfigError, match=r"zoom must be in \[0, 1\), got 1.5; elastic_sigma must be greater than 0, got 0"):
        Distortion(zoom=1.5, elastic_sigma=0)


def test_the_samples_figure_shows_the_distorted_digits(data_dir):
    from digitlab.reports.figures import make_figure

    def pixels(fig):
        return [image.get_array() for ax in fig.axes for image in ax.images]

    plain = pixels(make_figure("samples", dataset="mnist", count=4, data_dir=data_dir))
    bent = make_figure("samples", dataset="mnist", count=4, augment="elastic", data_dir=data_dir)
    assert "elastic distortion" in bent._suptitle.get_text()
    assert len(pixels(bent)) == 4 and all(not np.array_equal(a, b) for a, b in zip(plain, pixels(bent)))
    with pytest.raises(ConfigError, match="applies to the samples figure, not to confusion"):
        make_figure("confusion", augment="affine", data_dir=data_dir)


def test_the_samples_of_a_run_are_drawn_as_that_run_trained(data_dir, tmp_path):
    import json

    from digitlab.reports.figures import make_figure

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")  # only its presence matters to the samples figure
    (run / "config.json").write_text(json.dumps({"dataset": "mnist", "augment": "affine"}))
    assert "affine distortion" in make_figure("samples", run, count=4, data_dir=data_dir)._suptitle.get_text()
    plain = make_figure("samples", run, count=4, augment="none", data_dir=data_dir)
    assert "distortion" not in plain._suptitle.get_text()
    assert "distortion" not in make_figure("samples", count=4, data_dir=data_dir)._suptitle.get_text()
    (run / "config.json").write_text(json.dumps({"dataset": "mnist"}))  # a run from before augmentation
    assert "distortion" not in make_figure("samples", run, count=4, data_dir=data_dir)._suptitle.get_text()
