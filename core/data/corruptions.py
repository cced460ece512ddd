"""Common corruptions (ImageNet-C, CIFAR-10-C, Tiny-ImageNet-C), severities 1-5, in numpy, scipy and Pillow.

Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations"
(ICLR 2019). Each corruption's formula and its per-severity parameters come from the authors' reference code,
github.com/hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py, make_tinyimagenet_c.py and
make_imagenet_c.py. The parameters are copied from there; the code is our own, with scipy.ndimage, numpy and Pillow
standing in for the reference's scikit-image and OpenCV calls (each replacement is noted where it happens).

Which parameter table applies goes by the image's shorter side: <= 32 px CIFAR-10-C, <= 64 px Tiny-ImageNet-C,
larger ImageNet-C (made for 224 px). Parameters in pixels (blur sigmas and radii, shuffle distances, elastic
displacements) are used as the table gives them, not rescaled to the image's own size; pixelate's fraction, the
glass-blur loop bounds, zoom crops and the fog map follow the image's own height and width.

Left out (see LEFT_OUT): motion_blur and snow (ImageMagick's motion blur through Wand), frost (photographs of frost
shipped with the reference), spatter (OpenCV's Canny edges, distance transform and histogram equalisation).

Output: the reference returns floats in 0..255 and stores them with np.uint8, i.e. truncation; so does `corrupt`,
and it follows the reference's arithmetic (float64, float32 in defocus_blur's kernel, zoom_blur and
elastic_transform), so a value that exact arithmetic puts on an integer but floats leave a hair below it drops a
level here as it does there (contrast of a half-0, half-200 ImageNet-size image: 0 -> 79.99999999999812 -> 79).
Checked outside this repository against the reference's functions run with their own libraries (OpenCV 4.14,
scikit-image 0.26, scipy's zoom) and fed the same random draws, on noise and smooth images of 32, 64 and 224 px:
identical uint8 output for every corruption and severity, except elastic_transform at severities 1-2, one level
apart on under 0.3% of values (float32 rounding in the bilinear warp).
Grayscale (C == 1) is replicated to RGB, corrupted, and the first channel is returned: that keeps each pixel's noise
distribution as in colour (the mean of three independently noised channels would have 1/sqrt(3) of the noise).
"""
from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from core.errors import UserError

# the ImageNet-C paper's order (noise, blur, weather, digital), then the extras of the reference code
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "zoom_blur",
    "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "saturate",
)
# the ones here of the 15 the paper benchmarks (mCE averages over these; the extras were its held-out validation set)
BENCHMARK: tuple[str, ...] = CORRUPTIONS[:12]
LEFT_OUT: dict[str, str] = {
    "motion_blur": "needs ImageMagick's motion blur (MagickMotionBlurImage through Wand)",
    "snow": "needs ImageMagick's motion blur (MagickMotionBlurImage through Wand) for the snow layer",
    "frost": "needs the frost photographs shipped with the reference code (frost1.png ... frost6.jpg)",
    "spatter": "needs OpenCV's Canny edge detector, distance transform and histogram equalisation",
}
SEVERITIES = (1, 2, 3, 4, 5)
# in every evaluation key of a corrupted split: bump when a change here changes corrupted pixels
CODE_VERSION = 1

# One tuple per corruption: the reference's `c = [...][severity - 1]` list, severities 1..5.
# zoom_blur: the (start, stop, step) of the reference's np.arange of zoom factors.
# elastic_transform: (alpha, sigma, affine jitter), written as the reference writes them (IMSIZE * k).

# ImageNet-C/create_c/make_cifar_c.py
_CIFAR: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, .08, .09, .10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (.01, .02, .03, .05, .07),
    "speckle_noise": (.06, .1, .12, .16, .2),
    "gaussian_blur": (.4, .6, 0.7, .8, 1),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "zoom_blur": ((1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)),
    "fog": ((.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (.05, .1, .15, .2, .3),
    "contrast": (.75, .5, .4, .3, 0.15),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "elastic_transform": ((32 * 0, 32 * 0, 32 * 0.08),
                          (32 * 0.05, 32 * 0.2, 32 * 0.07),
                          (32 * 0.08, 32 * 0.06, 32 * 0.06),
                          (32 * 0.1, 32 * 0.04, 32 * 0.05),
                          (32 * 0.1, 32 * 0.03, 32 * 0.03)),
}

# ImageNet-C/create_c/make_tinyimagenet_c.py
_TINY_IMAGENET: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.08, .12, .15, .18),
    "shot_noise": (250, 100, 50, 30, 15),
    "impulse_noise": (.01, .02, .05, .08, .14),
    "speckle_noise": (.15, .2, 0.25, 0.3, 0.35),
    "gaussian_blur": (.5, .75, 1, 1.25, 1.5),
    "glass_blur": ((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
    "defocus_blur": ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
    "zoom_blur": ((1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)),
    "fog": ((.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
    "brightness": (.1, .2, .3, .4, .5),
    "contrast": (.4, .3, .2, .1, 0.05),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
    "jpeg_compression": (65, 58, 50, 40, 25),
    "pixelate": (0.9, 0.8, 0.7, 0.6, 0.5),
    "elastic_transform": ((64 * 0, 64 * 0, 64 * 0.08),
                          (64 * 0.05, 64 * 0.3, 64 * 0.06),
                          (64 * 0.1, 64 * 0.08, 64 * 0.06),
                          (64 * 0.1, 64 * 0.03, 64 * 0.03),
                          (64 * 0.16, 64 * 0.03, 64 * 0.02)),
}

# ImageNet-C/create_c/make_imagenet_c.py (224 px images)
_IMAGENET: dict[str, tuple] = {
    "gaussian_noise": (.08, .12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (.03, .06, .09, 0.17, 0.27),
    "speckle_noise": (.15, .2, 0.35, 0.45, 0.6),
    "gaussian_blur": (1, 2, 3, 4, 6),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "zoom_blur": ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)),
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "brightness": (.1, .2, .3, .4, .5),
    "contrast": (0.4, .3, .2, .1, .05),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    "jpeg_compression": (25, 18, 15, 10, 7),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    # the reference's own 244 (its comment: "244 should have been 224, but ultimately nothing is incorrect")
    "elastic_transform": ((244 * 2, 244 * 0.7, 244 * 0.1),
                          (244 * 2, 244 * 0.08, 244 * 0.2),
                          (244 * 0.05, 244 * 0.01, 244 * 0.02),
                          (244 * 0.07, 244 * 0.01, 244 * 0.02),
                          (244 * 0.12, 244 * 0.01, 244 * 0.02)),
}

_TABLES: dict[str, dict[str, tuple]] = {"cifar": _CIFAR, "tiny-imagenet": _TINY_IMAGENET, "imagenet": _IMAGENET}
# plasma_fractal's default mapsize in each reference file
_FOG_MAP_SIZE = {"cifar": 32, "tiny-imagenet": 64, "imagenet": 256}


TABLE_NAMES = {"cifar": "CIFAR-10-C", "tiny-imagenet": "Tiny-ImageNet-C", "imagenet": "ImageNet-C"}


def parameter_table(image_size: tuple[int, int]) -> str:
    """Which reference's parameters apply to an (H, W) image: by its shorter side, <= 32, <= 64, larger."""
    side = min(image_size)
    return "cifar" if side <= 32 else "tiny-imagenet" if side <= 64 else "imagenet"


def image_seed(name: str, severity: int, index: int) -> int:
    """A seed for image `index` of one corruption and severity, the same in every process and Python run."""
    digest = hashlib.sha256(f"{name}/{severity}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# ---------------------------------------------------------------- helpers


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    # skimage.filters.gaussian(x, sigma, multichannel=True): sigma on the two spatial axes only, its defaults
    # mode='nearest' and truncate=4.0
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """skimage.color.rgb2hsv, vectorised: (..., 3) floats in [0, 1] -> (h, s, v), h in [0, 1)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    delta = v - rgb.min(axis=-1)
    span = np.where(delta > 0, delta, 1.0)
    s = delta / np.where(v > 0, v, 1.0)
    # skimage assigns the red, green, blue formulas in turn, so blue wins a tie for the maximum, then green
    h = np.where(b == v, 4.0 + (r - g) / span, np.where(g == v, 2.0 + (b - r) / span, (g - b) / span))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], axis=-1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """skimage.color.hsv2rgb, vectorised."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6)
    f = h * 6 - sector
    sector = sector.astype(np.int64) % 6
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(sector, [v, q, p, p, t, v])
    g = np.choose(sector, [t, v, v, q, p, p])
    b = np.choose(sector, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def _cv2_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """cv2.getGaussianKernel(size, sigma) for sigma > 0."""
    i = np.arange(size) - (size - 1) / 2
    g = np.exp(-(i ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's disk(): a normalised disk on a grid of at least 17 x 17, anti-aliased by a small Gaussian.

    Where the disk reaches the grid's edge (ImageNet-C's radius 8 and 10) the anti-aliasing's BORDER_REFLECT_101
    folds blur back in and the kernel sums to 1.013 and 1.011, so those severities also brighten by 1%, as there.
    """
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)  # float32 as in the reference
    disk /= disk.sum()
    # cv2.GaussianBlur(disk, (ksize, ksize), sigmaX=alias_blur): separable, border BORDER_REFLECT_101 = 'mirror'
    g = _cv2_gaussian_kernel(ksize, alias_blur).astype(np.float32)
    disk = ndimage.correlate1d(ndimage.correlate1d(disk, g, axis=0, mode="mirror"), g, axis=1, mode="mirror")
    # all-zero outer rows/columns change nothing in a correlation; dropping them (symmetrically) saves the time
    used = np.flatnonzero(disk.any(axis=1))
    centre = disk.shape[0] // 2
    reach = max(centre - used[0], used[-1] - centre)
    return disk[centre - reach:centre + reach + 1, centre - reach:centre + reach + 1]


@functools.lru_cache(maxsize=32)
def _zoom_taps(n: int, factors: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis of length n, the reference's clipped_zoom(x, factor) for each factor as linear-interpolation taps.

    clipped_zoom takes the centre crop of ceil(n / factor) pixels, zooms it with scipy.ndimage.zoom(order=1) to
    round(crop * factor) pixels and keeps the centre n. Order-1 zoom is separable linear interpolation in which output
    pixel o reads crop coordinate o * (crop - 1) / (zoomed - 1) (scipy's grid_mode=False); returned per factor and
    output pixel: the two input pixels read and the weight of the second, each (F, n).
    """
    low, high, weight = (np.zeros((len(factors), n), dtype=dtype) for dtype in (np.int64, np.int64, np.float64))
    for f, factor in enumerate(factors):
        crop = int(np.ceil(n / factor))
        zoomed = int(round(crop * factor))
        start, trim = (n - crop) // 2, (zoomed - n) // 2
        pos = (np.arange(n) + trim) * ((crop - 1) / (zoomed - 1)) if zoomed > 1 else np.zeros(n)
        lo = np.minimum(np.floor(pos).astype(np.int64), crop - 1)
        low[f], high[f], weight[f] = start + lo, start + np.minimum(lo + 1, crop - 1), pos - lo
    for cached in (low, high, weight):
        cached.flags.writeable = False
    return low, high, weight


def _plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """The reference's plasma_fractal (diamond-square), a (size, size) map in [0, 1]; size a power of two."""
    m = np.zeros((size, size))
    step, wibble = size, 100.0

    def noisy_mean(total: np.ndarray) -> np.ndarray:  # the reference's wibbledmean: noise of amplitude wibble ** 2
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = m[::step, ::step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        m[half::step, half::step] = noisy_mean(square)
        centres = m[half::step, half::step]
        m[::step, half::step] = noisy_mean(centres + np.roll(centres, 1, axis=0)
                                           + corners + np.roll(corners, -1, axis=1))
        m[half::step, ::step] = noisy_mean(centres + np.roll(centres, 1, axis=1)
                                           + corners + np.roll(corners, -1, axis=0))
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


def _glass_source(height: int, width: int, delta: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """For each flat pixel index, the pixel of the input it holds after glass_blur's pixel-shuffling loop.

    The reference visits h = H - delta .. delta + 1 and, inside, w = W - delta .. delta + 1 (both descending), draws
    (dx, dy) from randint(-delta, delta) and runs `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on an RGB array. That is
    a copy, not a swap: x[h, w] is a view, overwritten before the second assignment reads it, so (h, w) takes the
    current value of (h + dy, w + dx) and the latter keeps it. A visit reads what an earlier visit of the same pass
    wrote, so each visit's value is found by following those earlier writes back (pointer jumping, vectorised).
    """
    source = np.arange(height * width)
    rows, cols = np.arange(height - delta, delta, -1), np.arange(width - delta, delta, -1)
    if rows.size == 0 or cols.size == 0:
        return source
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    target = (rr * width + cc).ravel()  # in visiting order
    visit = np.full(height * width, -1)
    visit[target] = np.arange(target.size)
    steps = np.arange(target.size)
    for _ in range(iterations):
        dx, dy = rng.integers(-delta, delta, size=(2, target.size))
        origin = target + dy * width + dx
        earlier = visit[origin]
        link = np.where((earlier >= 0) & (earlier < steps), earlier, steps)
        while not np.array_equal(link[link], link):
            link = link[link]
        shuffled = source.copy()
        shuffled[target] = source[origin[link]]
        source = shuffled
    return source


# ---------------------------------------------------------------- corruptions
# Each takes the RGB uint8 image, the severity's parameter `c` and the generator; returns floats in 0..255 (or uint8).


def _gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def _shot_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def _impulse_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    # skimage.util.random_noise(x, mode='s&p', amount=c): each value flipped with probability c, to 1 (salt) or 0
    # (pepper) with probability 1/2 each (salt_vs_pepper=0.5), both drawn per value
    x = x / 255.0
    flipped = rng.random(x.shape) <= c
    salted = rng.random(x.shape) <= 0.5
    return np.where(flipped, salted.astype(np.float64), x) * 255


def _speckle_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


def _gaussian_blur(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(_gaussian(x / 255.0, c), 0, 1) * 255


def _glass_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    sigma, delta, iterations = c
    h, w = x.shape[:2]
    x = _to_uint8(_gaussian(x / 255.0, sigma) * 255)
    x = x.reshape(h * w, 3)[_glass_source(h, w, delta, iterations, rng)].reshape(h, w, 3)
    return np.clip(_gaussian(x / 255.0, sigma), 0, 1) * 255


def _defocus_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    radius, alias_blur = c
    # cv2.filter2D per channel: a correlation, border BORDER_REFLECT_101 = scipy's 'mirror'
    blurred = ndimage.correlate(x / 255.0, _disk(radius, alias_blur)[..., None].astype(np.float64), mode="mirror")
    return np.clip(blurred, 0, 1) * 255


def _zoom_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    factors = tuple(float(f) for f in np.arange(*c))
    x = (x / 255.0).astype(np.float32)
    (r0, r1, rw), (c0, c1, cw) = _zoom_taps(x.shape[0], factors), _zoom_taps(x.shape[1], factors)
    rw, cw = rw[..., None, None], cw[..., None, None]
    rows = x[r0] * (1 - rw) + x[r1] * rw  # (F, H, W, C): every factor's zoom along the rows
    f = np.arange(len(factors))[:, None]
    zooms = rows[f, :, c0] * (1 - cw) + rows[f, :, c1] * cw  # (F, W, H, C): and along the columns
    # as the reference: each zoom stored as float32 (scipy's output for float32 input), summed in order in float32
    total = np.zeros_like(x)
    for zoom in zooms.astype(np.float32):
        total += zoom.transpose(1, 0, 2)
    return np.clip((x + total) / np.float32(len(factors) + 1), 0, 1) * 255


def _fog(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    strength, decay = c
    h, w = x.shape[:2]
    # the reference's map size for the table, doubled until it covers the image; cropped to the image
    size = _FOG_MAP_SIZE[parameter_table((h, w))]
    while size < max(h, w):
        size *= 2
    x = x / 255.0
    peak = x.max()
    x = x + strength * _plasma_fractal(size, decay, rng)[:h, :w, None]
    return np.clip(x * peak / (peak + strength), 0, 1) * 255


def _brightness(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    hsv = _rgb_to_hsv(x / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def _contrast(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = x / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def _saturate(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    hsv = _rgb_to_hsv(x / 255.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def _jpeg_compression(x: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=c)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _pixelate(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    # ImageNet-C: resize to int(224 * c) with Image.BOX and back to 224 with Image.BOX; here each side its own length
    image = Image.fromarray(x)
    w, h = image.size
    small = image.resize((max(1, int(w * c)), max(1, int(h * c))), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.BOX))


def _warp_affine(x: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """cv2.warpAffine(x, forward, (W, H), borderMode=cv2.BORDER_REFLECT_101) as OpenCV 3 and 4 compute it.

    The destination pixel (x, y) samples the source at inverse(x, y) (cv2.invertAffineTransform), in fixed point:
    the terms in 1/1024 px, rounded, then the position in 1/32 px (INTER_BITS = 5); bilinear, with the border
    BORDER_REFLECT_101 = scipy's 'mirror'. (OpenCV 5 samples at the exact position instead.)
    """
    h, w = x.shape[:2]
    (m0, m1, m2), (m3, m4, m5) = forward
    det = m0 * m4 - m1 * m3
    det = 1.0 / det if det != 0 else 0.0
    a11, a12, a21, a22 = m4 * det, -m1 * det, -m3 * det, m0 * det
    b1, b2 = -a11 * m2 - a12 * m5, -a21 * m2 - a22 * m5
    cols, rows = np.arange(w)[None, :], np.arange(h)[:, None]
    sx = (np.rint((a12 * rows + b1) * 1024) + 16 + np.rint(a11 * cols * 1024)).astype(np.int64) >> 5
    sy = (np.rint((a22 * rows + b2) * 1024) + 16 + np.rint(a21 * cols * 1024)).astype(np.int64) >> 5
    return np.stack([ndimage.map_coordinates(x[..., k], [sy / 32, sx / 32], order=1, mode="mirror")
                     for k in range(x.shape[2])], axis=-1)


def _elastic_transform(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    alpha, sigma, jitter = c
    x = x.astype(np.float32) / 255  # float32 as in the reference, so its truncations match
    h, w = x.shape[:2]
    # random affine: three points around the centre, moved by up to `jitter` px (float32, as the reference); the
    # reference's centre is (H // 2, W // 2) taken as (x, y), the same point for its square images
    centre, reach = np.array([w // 2, h // 2], dtype=np.float32), min(h, w) // 3
    before = np.array([centre + reach, [centre[0] + reach, centre[1] - reach], centre - reach], dtype=np.float32)
    after = before + rng.uniform(-jitter, jitter, size=before.shape).astype(np.float32)
    # cv2.getAffineTransform(before, after): the 2 x 3 matrix taking each point of `before` to its `after`
    forward = np.linalg.solve(np.c_[before, np.ones(3)].astype(np.float64), after.astype(np.float64)).T
    x = _warp_affine(x, forward)
    # skimage gaussian(..., mode='reflect', truncate=3) of uniform noise: scipy's same-named mode
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
    yy, xx = np.mgrid[0:h, 0:w]
    coords = [yy + dy.astype(np.float32), xx + dx.astype(np.float32)]
    x = np.stack([ndimage.map_coordinates(x[..., k], coords, order=1, mode="reflect") for k in range(3)], axis=-1)
    return np.clip(x, 0, 1) * 255


_FUNCTIONS: dict[str, Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "zoom_blur": _zoom_blur,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "saturate": _saturate,
}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """np.uint8(x), as the reference stores its output (truncation), after clipping to 0..255."""
    if x.dtype == np.uint8:
        return x if x.flags.writeable else x.copy()  # Pillow's arrays are read-only; torch wants to own its input
    return np.clip(x, 0, 255).astype(np.uint8)


def check(name: str, severity: int) -> tuple[str, int]:
    """(name, severity) when this module has the corruption and the severity is 1..5; a UserError naming the
    choices otherwise."""
    if name not in _FUNCTIONS:
        why = f" ({name} is not available here: it {LEFT_OUT[name]})" if name in LEFT_OUT else ""
        raise UserError(f"unknown corruption {name!r}{why}; choose one of: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise UserError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, not {severity!r}")
    return name, int(severity)


def corrupt_indexed(name: str, severity: int, image: np.ndarray, index: int) -> np.ndarray:
    """Image `index` of a split (its position in the full split) corrupted with the seed `image_seed` gives it: the
    same pixels for every model, process and run. Module-level, so a partial of it crosses to loader workers."""
    return corrupt(image, name, severity, image_seed(name, severity, index))


def corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """`image` (uint8, H x W x C, C 1 or 3) with corruption `name` at `severity` 1..5; same shape and dtype.

    Deterministic given `seed`: every random draw comes from np.random.default_rng(seed).
    """
    check(name, severity)
    if (not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3
            or image.shape[2] not in (1, 3) or 0 in image.shape):
        shape = getattr(image, "shape", None)
        raise UserError(f"corrupt takes a uint8 image of shape (H, W, 1) or (H, W, 3), not {shape} "
                        f"{getattr(image, 'dtype', type(image).__name__)}")
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else np.ascontiguousarray(image)
    c = _TABLES[parameter_table(image.shape[:2])][name][int(severity) - 1]
    out = _to_uint8(_FUNCTIONS[name](rgb, c, np.random.default_rng(seed)))
    return out[..., :1].copy() if image.shape[2] == 1 else out
