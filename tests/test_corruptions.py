"""core/data/corruptions.py against the formulas and parameters of the ImageNet-C reference code.

Reference: github.com/hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py (images <= 32 px),
make_tinyimagenet_c.py (<= 64 px) and make_imagenet_c.py (larger). Expected values are worked out by hand from those
formulas or redrawn here with the same generator; `corrupt` stores floats in 0..255 as the reference does, by
truncation (np.uint8), so where exact arithmetic gives an integer and floats land a hair below it, it drops a level
as the reference does; the tests on constant images check the floats, and the stored level or the one below.
"""
import colorsys
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from core.data import corruptions as C
from core.errors import UserError

RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "fog", "elastic_transform"}


def stored(x: np.ndarray) -> np.ndarray:
    """How `corrupt` (and the reference) turn floats in 0..255 into uint8: clipped, truncated."""
    return np.clip(x, 0, 255).astype(np.uint8)


def constant(value: int, size: int = 32, channels: int = 3) -> np.ndarray:
    return np.full((size, size, channels), value, dtype=np.uint8)


def random_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def floats(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """A corruption's floats in 0..255 before they are stored, for an RGB image."""
    c = C._TABLES[C.parameter_table(image.shape[:2])][name][severity - 1]
    return np.asarray(C._FUNCTIONS[name](image, c, np.random.default_rng(seed)), dtype=np.float64)


def assert_keeps_constant(value: int, size: int, name: str, severity: int, seed: int = 0) -> None:
    """A constant image comes back constant: floats within 1e-3 of it, stored as it or (float error below it) one
    level less, as the reference would store it."""
    image = constant(value, size)
    np.testing.assert_allclose(floats(image, name, severity, seed), value, atol=1e-3)
    assert np.isin(C.corrupt(image, name, severity, seed), (value - 1, value)).all()


# ---------------------------------------------------------------- names, tables, seeds, errors


def test_names_left_out_and_severities():
    assert C.CORRUPTIONS == (
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "zoom_blur", "fog",
        "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
        "speckle_noise", "gaussian_blur", "saturate",
    )
    assert set(C.LEFT_OUT) == {"motion_blur", "snow", "frost", "spatter"}
    assert not set(C.LEFT_OUT) & set(C.CORRUPTIONS)
    assert C.SEVERITIES == (1, 2, 3, 4, 5)


@pytest.mark.parametrize(("size", "table"), [
    ((32, 32), "cifar"), ((28, 28), "cifar"), ((32, 500), "cifar"), ((500, 32), "cifar"),
    ((33, 33), "tiny-imagenet"), ((64, 64), "tiny-imagenet"), ((64, 1000), "tiny-imagenet"),
    ((65, 65), "imagenet"), ((224, 224), "imagenet"),
])
def test_parameter_table_by_shorter_side(size, table):
    assert C.parameter_table(size) == table


def test_every_table_has_every_corruption_at_five_severities():
    for table in C._TABLES.values():
        assert set(table) == set(C.CORRUPTIONS)
        assert all(len(params) == 5 for params in table.values())


def test_parameters_match_the_reference_files():
    cifar, tiny, imagenet = C._TABLES["cifar"], C._TABLES["tiny-imagenet"], C._TABLES["imagenet"]
    # make_cifar_c.py
    assert cifar["gaussian_noise"][0] == 0.04 and cifar["gaussian_noise"][4] == 0.10
    assert cifar["shot_noise"][2] == 100
    assert cifar["glass_blur"][4] == (0.4, 1, 2)
    assert cifar["elastic_transform"][1] == pytest.approx((1.6, 6.4, 2.24))  # (32*0.05, 32*0.2, 32*0.07)
    # make_tinyimagenet_c.py
    assert tiny["saturate"][4] == (30, 0.2)
    assert tiny["defocus_blur"][3] == (2.5, 0.01)
    assert tiny["pixelate"][4] == 0.5
    # make_imagenet_c.py
    assert imagenet["contrast"][2] == 0.2
    assert imagenet["jpeg_compression"][4] == 7
    assert imagenet["fog"][0] == (1.5, 2)
    assert len(np.arange(*imagenet["zoom_blur"][4])) == 11  # np.arange(1, 1.31, 0.03)
    assert imagenet["elastic_transform"][0] == pytest.approx((488, 170.8, 24.4))  # (244*2, 244*0.7, 244*0.1)


def test_image_seed_is_stable_and_distinct():
    assert C.image_seed("fog", 3, 7) == 5236378038695968670  # sha256 of "fog/3/7", first 8 bytes
    seeds = {C.image_seed(n, s, i) for n in C.CORRUPTIONS for s in C.SEVERITIES for i in range(4)}
    assert len(seeds) == len(C.CORRUPTIONS) * 5 * 4
    # another interpreter with another string-hash seed gives the same number
    code = "from core.data.corruptions import image_seed; print(image_seed('fog', 3, 7))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert int(out.stdout) == 5236378038695968670


@pytest.mark.parametrize("name", ["blur", "Gaussian Noise", "snow", "motion_blur"])
def test_unknown_corruption_is_a_user_error(name):
    with pytest.raises(UserError, match="gaussian_noise.*saturate"):
        C.corrupt(constant(10), name, 1, 0)


def test_left_out_corruption_says_why():
    with pytest.raises(UserError, match="ImageMagick"):
        C.corrupt(constant(10), "snow", 1, 0)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True])
def test_severity_outside_one_to_five_is_a_user_error(severity):
    with pytest.raises(UserError, match="1, 2, 3, 4, 5"):
        C.corrupt(constant(10), "contrast", severity, 0)


@pytest.mark.parametrize("image", [
    np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32),
    np.zeros((0, 8, 3), np.uint8),
])
def test_bad_image_is_a_user_error(image):
    with pytest.raises(UserError, match="uint8"):
        C.corrupt(image, "contrast", 1, 0)


# ---------------------------------------------------------------- each corruption against its formula


def test_hsv_round_trip_and_colorsys():
    rgb = np.random.default_rng(1).random((500, 3))
    rgb[:5] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 1, 0], [0.2, 0.7, 0.7]]  # greys and ties for the max
    hsv = C._rgb_to_hsv(rgb)
    np.testing.assert_allclose(C._hsv_to_rgb(hsv), rgb, atol=1e-6)
    for pixel, converted in zip(rgb[:20], hsv[:20]):
        np.testing.assert_allclose(converted, colorsys.rgb_to_hsv(*pixel), atol=1e-12)


def test_contrast_by_hand():
    # make_cifar_c.py, severity 3: c = 0.4; out = (x/255 - mean) * c + mean per channel. Channel 0 holds 0, 100, 200,
    # 255: mean 138.75, so 0 -> 83.25, 100 -> 123.25, 200 -> 163.25, 255 -> 185.25 (stored truncated)
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0] = [[0, 100], [200, 255]]
    image[..., 1] = 50
    out = C.corrupt(image, "contrast", 3, 0)
    assert out[..., 0].tolist() == [[83, 123], [163, 185]]
    assert (out[..., 1] == 50).all() and (out[..., 2] == 0).all()
    # make_imagenet_c.py, severity 3: c = 0.2; half 0, half 200 -> mean 100: 0 -> 80, 200 -> 120 by hand. np.mean of
    # the 4356 values is 99.99999999999767 / 255, so the floats are 79.99999999999812 and 119.99999999999812, which
    # the reference's np.uint8 (and `corrupt`) store as 79 and 119
    big = np.zeros((66, 66, 3), np.uint8)
    big[33:] = 200
    np.testing.assert_allclose(floats(big, "contrast", 3)[:33], 80, atol=1e-9)
    np.testing.assert_allclose(floats(big, "contrast", 3)[33:], 120, atol=1e-9)
    out = C.corrupt(big, "contrast", 3, 0)
    assert (out[:33] == 79).all() and (out[33:] == 119).all()


def test_brightness_adds_c_to_v():
    # make_cifar_c.py, severity 3: c = 0.15 (38.25 levels). A grey 100 has V = 100/255 -> 138.25; 250 clips at 255.
    # (200, 100, 50): V 200 -> 238.25 with hue and saturation kept, i.e. every channel scaled by 238.25 / 200.
    image = np.array([[[100, 100, 100], [250, 250, 250], [200, 100, 50]]], np.uint8)
    out = C.corrupt(image, "brightness", 3, 0)
    assert out.tolist() == [[[138, 138, 138], [255, 255, 255], [238, 119, 59]]]


def test_saturate_by_hand():
    # make_cifar_c.py: severity 1 (0.3, 0), 4 (2, 0.1), 5 (2.5, 0.2); s -> clip(s * c[0] + c[1], 0, 1)
    grey = constant(200, 4)
    for severity in (1, 2, 3):  # c[1] = 0: a grey's saturation stays 0
        assert (C.corrupt(grey, "saturate", severity, 0) == 200).all()
    # c[1] > 0 gives a grey saturation c[1] at hue 0 (red): R = V, G = B = V * (1 - c[1])
    assert C.corrupt(grey, "saturate", 4, 0)[0, 0].tolist() == [200, 180, 180]
    assert C.corrupt(grey, "saturate", 5, 0)[0, 0].tolist() == [200, 160, 160]
    # (200, 100, 50): s = 0.75 -> 0.225 at severity 1; B = 200 * (1 - 0.225) = 155, G = 200 * (1 - 2/3 * 0.225) = 170
    pixel = np.array([[[200, 100, 50]]], np.uint8)
    assert C.corrupt(pixel, "saturate", 1, 0)[0, 0].tolist() == [200, 170, 155]


def test_gaussian_noise_redrawn():
    image = random_image((8, 8, 3))
    rng = np.random.default_rng(5)
    c = 0.08  # make_cifar_c.py, severity 3
    expected = stored(np.clip(image / 255 + rng.normal(size=image.shape, scale=c), 0, 1) * 255)
    np.testing.assert_array_equal(C.corrupt(image, "gaussian_noise", 3, 5), expected)


def test_speckle_noise_redrawn():
    image = random_image((40, 40, 3))
    rng = np.random.default_rng(6)
    c = 0.35  # make_tinyimagenet_c.py, severity 5 (the image is 40 px)
    x = image / 255
    expected = stored(np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255)
    np.testing.assert_array_equal(C.corrupt(image, "speckle_noise", 5, 6), expected)


def test_shot_noise_redrawn_and_mean_preserved():
    image = random_image((8, 8, 3))
    rng = np.random.default_rng(7)
    c = 500  # make_cifar_c.py, severity 1
    expected = stored(np.clip(rng.poisson(image / 255 * c) / c, 0, 1) * 255)
    np.testing.assert_array_equal(C.corrupt(image, "shot_noise", 1, 7), expected)
    # Poisson(x * c) / c has mean x. Severity 5: c = 50, grey 128 -> Poisson(25.1): sd 0.1 of x = 25.5 levels;
    # over 3072 values the mean's sd is 0.46 levels. Truncation to uint8 lowers the mean by at most 1 level
    # (about 0.45 here), and clipping at 1 needs > 50 counts (p ~ 1e-5). So |mean - 128| < 1 + 5 sd = 3.3.
    out = C.corrupt(constant(128), "shot_noise", 5, 8)
    assert abs(out.mean() - 128) < 3.3
    assert out.std() > 20


def test_impulse_noise_flips_about_amount_to_0_or_255():
    c = 0.07  # make_cifar_c.py, severity 5
    out = C.corrupt(constant(128), "impulse_noise", 5, 9)
    salt, pepper = (out == 255).mean(), (out == 0).mean()
    # 3072 values, each flipped with probability 0.07 (sd of the fraction 0.0046), half to each end (sd 0.0033)
    assert abs(salt + pepper - c) < 0.02
    assert abs(salt - c / 2) < 0.015 and abs(pepper - c / 2) < 0.015
    assert ((out == 0) | (out == 128) | (out == 255)).all()
    # redrawn: a value is flipped when its first uniform <= c, to salt when its second <= 0.5
    image = random_image((8, 8, 3))
    rng = np.random.default_rng(10)
    flipped, salted = rng.random(image.shape) <= c, rng.random(image.shape) <= 0.5
    expected = np.where(flipped, np.where(salted, 255, 0), image).astype(np.uint8)
    np.testing.assert_array_equal(C.corrupt(image, "impulse_noise", 5, 10), expected)


def test_gaussian_blur_impulse_response():
    # make_cifar_c.py, severity 5: sigma 1; skimage's gaussian truncates at 4 sigma, so the 9-tap kernel
    # exp(-i^2 / 2) / sum over |i| <= 4, applied along rows and columns
    image = constant(0, 17)
    image[8, 8] = 255
    taps = np.exp(-np.arange(-4, 5) ** 2 / 2)
    taps /= taps.sum()
    expected = np.zeros((17, 17))
    expected[4:13, 4:13] = 255 * np.outer(taps, taps)
    out = C.corrupt(image, "gaussian_blur", 5, 0)
    np.testing.assert_array_equal(out, np.repeat(stored(expected)[..., None], 3, axis=2))
    # mode 'nearest': a constant image stays constant up to its borders
    assert_keeps_constant(77, 32, "gaussian_blur", 5)
    assert_keeps_constant(77, 100, "gaussian_blur", 5)


def test_defocus_blur():
    # make_cifar_c.py, severity 1: disk(radius 0.3) is the centre pixel alone, anti-aliased by cv2.GaussianBlur with
    # a 3-tap kernel of sigma 0.4: g = exp(-i^2 / (2 * 0.4^2)) for i = -1, 0, 1, normalised; the blur is outer(g, g)
    image = constant(0, 9)
    image[4, 4] = 255
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * 0.4 ** 2))
    g /= g.sum()
    expected = np.zeros((9, 9))
    expected[3:6, 3:6] = 255 * np.outer(g, g)
    np.testing.assert_array_equal(C.corrupt(image, "defocus_blur", 1, 0)[..., 0], stored(expected))
    # severity 5 (radius 1.5): a bright pixel's energy is kept, less up to 1 level per pixel lost to truncation
    image = constant(0, 32)
    image[16, 16] = 255
    out = C.corrupt(image, "defocus_blur", 5, 0).astype(int)
    spread = np.count_nonzero(out[..., 0])
    assert spread >= 9 and out.max() < 128
    assert 255 - spread <= out[..., 0].sum() <= 255 + 1
    for size in (32, 64, 224):  # filter2D's BORDER_REFLECT_101: a constant stays constant, borders included
        assert_keeps_constant(200, size, "defocus_blur", 3)
    assert_keeps_constant(200, 64, "defocus_blur", 5)
    # make_imagenet_c.py, severities 4, 5: disk radius 8 on the 17 x 17 grid, 10 on 21 x 21, reach the grid's edge;
    # the reference's cv2.GaussianBlur of the disk (BORDER_REFLECT_101) folds blur back in, and the kernel sums to
    # 1.013 and 1.011: 200 -> 202.6, 202.2
    assert C._disk(8, 0.5).sum() == pytest.approx(1.012975, abs=1e-6)
    assert (C.corrupt(constant(200, 224), "defocus_blur", 4, 0) == 202).all()
    assert (C.corrupt(constant(200, 224), "defocus_blur", 5, 0) == 202).all()


def test_glass_blur_shuffle_matches_the_reference_loop():
    # The reference's loop, statement for statement, on an RGB array whose pixels hold their own index; the
    # tuple "swap" of two pixel views copies (h', w') into (h, w). Draws: each pass, all dx then all dy.
    height, width, delta, iterations = 12, 10, 2, 2
    index = np.arange(height * width)
    x = np.stack([index, index, index], axis=-1).reshape(height, width, 3)
    rng = np.random.default_rng(11)
    visits = [(h, w) for h in range(height - delta, delta, -1) for w in range(width - delta, delta, -1)]
    for _ in range(iterations):
        dxs, dys = rng.integers(-delta, delta, size=(2, len(visits)))
        for (h, w), dx, dy in zip(visits, dxs, dys):
            h_prime, w_prime = h + dy, w + dx
            x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    source = C._glass_source(height, width, delta, iterations, np.random.default_rng(11))
    np.testing.assert_array_equal(source, x[..., 0].ravel())
    assert (x[..., 0] != index.reshape(height, width)).any()


def test_glass_blur():
    # make_cifar_c.py, severity 1: (sigma 0.05, delta 1, 1 pass). A 0.05 Gaussian truncated at 4 sigma is the
    # identity, so the output is the input with pixels moved as the shuffle says
    image = random_image((32, 32, 3), seed=12)
    source = C._glass_source(32, 32, 1, 1, np.random.default_rng(13))
    expected = image.reshape(-1, 3)[source].reshape(image.shape)
    np.testing.assert_array_equal(C.corrupt(image, "glass_blur", 1, 13), expected)
    # constant in, constant out; the reference's np.uint8 between its two blurs can already drop the level
    # (ImageNet's sigma 1.5 leaves 89.99999999999999), so the floats are 90 or 89
    for size in (32, 64, 100):
        out = floats(constant(90, size), "glass_blur", 5, seed=1)
        assert np.isclose(out, 90, atol=1e-3).all() or np.isclose(out, 89, atol=1e-3).all()
        assert np.isin(C.corrupt(constant(90, size), "glass_blur", 5, 1), (89, 90)).all()


def _reference_zoom_blur(image: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The reference's zoom_blur with its clipped_zoom (scipy.ndimage.zoom of the centre crop), floats 0..255."""
    x = (image / 255.0).astype(np.float32)
    h, w = x.shape[:2]
    total = np.zeros_like(x)
    for factor in factors:
        ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
        top, left = (h - ch) // 2, (w - cw) // 2
        zoomed = ndimage.zoom(x[top:top + ch, left:left + cw], (factor, factor, 1), order=1)
        top, left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
        total += zoomed[top:top + h, left:left + w]
    return np.clip((x + total) / (len(factors) + 1), 0, 1) * 255


@pytest.mark.parametrize(("shape", "severity", "factors"), [
    ((32, 32, 3), 5, np.arange(1, 1.26, 0.01)),  # make_cifar_c.py
    ((40, 56, 3), 2, np.arange(1, 1.11, 0.01)),  # make_tinyimagenet_c.py
    ((80, 80, 3), 5, np.arange(1, 1.31, 0.03)),  # make_imagenet_c.py
])
def test_zoom_blur_matches_scipy_zoom(shape, severity, factors):
    image = random_image(shape, seed=14)
    expected = _reference_zoom_blur(image, factors)
    out = C.corrupt(image, "zoom_blur", severity, 0).astype(int)
    # float32 as the reference, the same sums in the same order: equal but for a rare last bit
    np.testing.assert_allclose(floats(image, "zoom_blur", severity), expected, atol=1e-4)
    difference = np.abs(out - stored(expected).astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.001
    assert_keeps_constant(123, shape[0], "zoom_blur", severity)


def test_fog():
    rng = np.random.default_rng(15)
    fractal = C._plasma_fractal(32, 2, rng)
    assert fractal.shape == (32, 32) and fractal.min() == 0 and fractal.max() == 1
    # make_cifar_c.py, severity 3: (0.75, 2.5), a 32 px map: (x + 0.75 * map) * max / (max + 0.75)
    image = random_image((32, 32, 3), seed=20)
    x, peak = image / 255, image.max() / 255
    expected = np.clip((x + 0.75 * C._plasma_fractal(32, 2.5, np.random.default_rng(21))[..., None])
                       * peak / (peak + 0.75), 0, 1) * 255
    np.testing.assert_array_equal(C.corrupt(image, "fog", 3, 21), stored(expected))
    # out = (x + c * map) * max / (max + c): with a white pixel (max 1) a dark image gets brighter on average
    image = constant(40)
    image[0, 0] = 255
    for severity in C.SEVERITIES:
        assert C.corrupt(image, "fog", severity, severity).mean() > image.mean() + 10
    # ... and never brighter than the image's own maximum; a black image stays black
    out = C.corrupt(constant(100), "fog", 5, 0)
    assert out.max() <= 100 and out.std() > 1
    assert (C.corrupt(constant(0), "fog", 5, 0) == 0).all()


def test_fog_map_covers_larger_and_non_square_images():
    for shape in [(32, 70, 3), (300, 260, 3)]:  # the CIFAR table's 32 px map and ImageNet's 256 px map, doubled
        out = C.corrupt(random_image(shape), "fog", 3, 0)
        assert out.shape == shape


def test_pixelate():
    assert (C.corrupt(constant(77), "pixelate", 5, 0) == 77).all()  # Pillow's BOX resampling rounds to uint8
    board = (np.indices((224, 224)).sum(axis=0) % 2 * 255).astype(np.uint8)
    board = np.repeat(board[..., None], 3, axis=2)
    # make_imagenet_c.py, severity 5: c = 0.25, 224 -> 56 px: every 4 x 4 box averages to 127.5 (Pillow rounds)
    assert (C.corrupt(board, "pixelate", 5, 0) == 128).all()
    # make_cifar_c.py, severity 5: c = 0.65, 32 -> 20 px: boxes of 1.6 px, so mostly but not wholly averaged
    small = C.corrupt(board[:32, :32], "pixelate", 5, 0)
    assert abs(small.mean() - 127.5) < 2 and small.std() < board.std() / 3


def test_jpeg_compression():
    image = random_image((32, 32, 3), seed=22)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=40)  # make_cifar_c.py, severity 5
    np.testing.assert_array_equal(C.corrupt(image, "jpeg_compression", 5, 0), np.asarray(Image.open(buffer)))
    for severity in C.SEVERITIES:
        out = C.corrupt(constant(150), "jpeg_compression", severity, 0)
        assert np.abs(out.astype(int) - 150).max() <= 1


def test_elastic_transform():
    # no jitter and no displacement: the affine is the identity and the image comes back (as floats 0..255)
    image = random_image((20, 24, 3), seed=16)
    out = C._elastic_transform(image, (0, 0, 0), np.random.default_rng(0))
    np.testing.assert_allclose(out, image, atol=1e-3)
    for size in (32, 64, 80):
        for severity in (1, 5):
            assert_keeps_constant(60, size, "elastic_transform", severity, seed=2)


# ---------------------------------------------------------------- every corruption at every severity


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_every_severity_keeps_shape_is_seeded_and_grows(name):
    for image in (random_image((32, 32, 3), seed=17), random_image((64, 64, 1), seed=18)):
        change, before = {}, image.copy()
        for severity in C.SEVERITIES:
            out = C.corrupt(image, name, severity, 100)
            np.testing.assert_array_equal(image, before)  # the input is left as it was
            assert out.shape == image.shape and out.dtype == np.uint8
            np.testing.assert_array_equal(C.corrupt(image, name, severity, 100), out)
            other = C.corrupt(image, name, severity, 101)
            assert (other != out).any() if name in RANDOM else (other == out).all()
            change[severity] = np.abs(out.astype(float) - image).mean()
        grey = image.shape[2] == 1
        if name == "elastic_transform":
            # the reference lowers the affine jitter as severity rises (CIFAR 2.56 -> 0.96 px, Tiny 5.12 -> 1.28 px)
            # while it raises the elastic displacement, so the mean change is not ordered by severity
            assert change[1] > 1 and change[5] > 1
        elif name == "saturate" and grey:
            # grey has saturation 0 and hue 0: c[1] > 0 (severities 4, 5) lowers G and B only, and grey images
            # keep the red channel
            assert all(value == 0 for value in change.values())
        elif name == "saturate":
            # severities 1, 2 scale saturation down (x0.3, x0.1), 3-5 up: each direction is ordered
            assert change[2] > change[1] and change[5] > change[3]
        else:
            assert change[5] > change[1], change


@pytest.mark.parametrize("shape", [(72, 72, 3), (40, 90, 3), (90, 40, 1), (5, 7, 3)])
def test_other_sizes(shape):
    image = random_image(shape, seed=19)
    for name in C.CORRUPTIONS:
        for severity in (1, 5):
            out = C.corrupt(image, name, severity, 3)
            assert out.shape == shape and out.dtype == np.uint8
