"""`shapes-textured`: `shapes` whose silhouettes are filled with a texture of their own class, and the cue-conflict
splits that ask a model which cue it decides by (Geirhos et al. 2019, "ImageNet-trained CNNs are biased towards
texture; increasing shape bias improves accuracy and robustness").

Each class has its own texture (stripes at one angle, checks, dots, waves, ...), drawn in two random colours at a
random period and phase, so neither colour nor position says the class; in train, val and test the silhouette
and the texture agree, so both predict the class. The splits that measure the bias:

- `conflict`: the silhouette of class A filled with the texture of class B, balanced over the 90 pairs A != B
  (image i is pair i mod 90). Its labels are the shape classes; `texture_labels` gives the texture classes.
- `shape-only`: silhouettes filled with one flat colour (the shape cue alone; label: the shape).
- `texture-only`: a patch of the texture in a random blob, no class's silhouette (the texture cue alone;
  label: the texture).

Two more datasets carry one cue in train, val and test, for the sanity checks (a model trained on one cue must
decide by it): `shapes-silhouettes` (flat silhouettes) and `shapes-texture-only` (textures alone); their bias
splits are `shapes-textured`'s. Images are deterministic from (seed, split, index), like `shapes`: the same
whichever are generated.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from core.data import shapes

SIZE = shapes.SIZE
CLASSES = shapes.CLASSES
TEXTURES = ("horizontal stripes", "vertical stripes", "diagonal stripes", "checkerboard", "dots", "waves",
            "grid", "zigzag", "blotches", "speckle")  # class i's texture, same order as CLASSES
SPLIT_SIZES = {"train": 5000, "val": 1000, "test": 1000, "conflict": 900, "shape-only": 500, "texture-only": 500}
SPLIT_IDS = {"train": 10, "val": 11, "test": 12, "conflict": 13, "shape-only": 14, "texture-only": 15}
BIAS_SPLITS = ("conflict", "shape-only", "texture-only")
PAIRS = [(a, b) for a in range(len(CLASSES)) for b in range(len(CLASSES)) if a != b]  # (shape, texture)
GENERATOR_VERSION = 2  # 2: texture-only images are textured blobs on the background (were full frame)


def texture(kind: int, rng: np.random.Generator) -> np.ndarray:
    """A (SIZE, SIZE) float pattern in {0..1} of texture `kind` at a random period, phase and small tilt."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    period = rng.uniform(6.0, 9.0)  # at least 3 px at 32 px, where the arena trains: the texture survives
    phase = rng.uniform(0, 2 * math.pi)
    tilt = rng.uniform(-0.15, 0.15)  # radians: the stripes' class is their angle, not a pixel-exact one
    name = TEXTURES[kind]

    def along(angle: float) -> np.ndarray:
        a = angle + tilt
        return (math.cos(a) * xx + math.sin(a) * yy) * 2 * math.pi / period + phase

    if name == "horizontal stripes":
        return (np.sin(along(math.pi / 2)) > 0).astype(np.float32)
    if name == "vertical stripes":
        return (np.sin(along(0.0)) > 0).astype(np.float32)
    if name == "diagonal stripes":
        return (np.sin(along(math.pi / 4)) > 0).astype(np.float32)
    if name == "checkerboard":
        return ((np.sin(along(0.0)) > 0) ^ (np.sin(along(math.pi / 2)) > 0)).astype(np.float32)
    if name == "dots":
        return ((np.cos(along(0.0)) > 0.55) & (np.cos(along(math.pi / 2)) > 0.55)).astype(np.float32)
    if name == "waves":
        return (np.sin(along(math.pi / 2) + 1.6 * np.sin(xx * 2 * math.pi / (2.5 * period))) > 0).astype(np.float32)
    if name == "grid":
        return ((np.cos(along(0.0)) > 0.8) | (np.cos(along(math.pi / 2)) > 0.8)).astype(np.float32)
    if name == "zigzag":
        saw = np.abs(((xx / period + phase) % 2.0) - 1.0) * period  # a triangle wave across x
        return (np.sin((yy + saw) * 2 * math.pi / period) > 0).astype(np.float32)
    if name == "blotches":  # low-frequency noise, thresholded: irregular patches
        coarse = rng.normal(size=(SIZE // 8 + 2, SIZE // 8 + 2))
        up = np.kron(coarse, np.ones((8, 8)))[:SIZE, :SIZE]
        k = np.ones(5) / 5
        up = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, up)
        up = np.apply_along_axis(lambda c: np.convolve(c, k, "same"), 0, up)
        return (up > 0).astype(np.float32)
    # speckle: sparse 2 x 2 specks
    return np.kron(rng.random((SIZE // 2, SIZE // 2)) < 0.2, np.ones((2, 2))).astype(np.float32)


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two random colours far enough apart that the pattern shows."""
    a = rng.uniform(0, 255, 3)
    b = rng.uniform(0, 255, 3)
    for _ in range(8):
        if np.abs(a - b).sum() > 200:
            break
        b = rng.uniform(0, 255, 3)
    return a, b


def _background(rng: np.random.Generator) -> np.ndarray:
    """`shapes`'s gradient background with noise, without its clutter (line segments would be texture)."""
    return shapes._background(rng)


def _blob_mask(cx: float, cy: float, r: float, rng: np.random.Generator) -> np.ndarray:
    """An antialiased (SIZE, SIZE) mask of a random smooth blob: radius r (1 + sum of 3 random low harmonics),
    a new outline every image, so it is no class's shape."""
    big = SIZE * shapes._SS
    theta = np.linspace(0, 2 * math.pi, 90, endpoint=False)
    radius = np.ones_like(theta)
    for k, (low, high) in zip((2, 3, 4), ((0.1, 0.3), (0.05, 0.2), (0.0, 0.12))):  # never quite a circle
        radius += rng.uniform(low, high) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    pts = [(float((cx + r * q * math.cos(t)) * shapes._SS), float((cy + r * q * math.sin(t)) * shapes._SS))
           for t, q in zip(theta, radius)]
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon(pts, fill=255)
    return np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.BOX), dtype=np.float32) / 255.0


def render(shape: int | None, tex: int | None, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (SIZE, SIZE, 3) image on `shapes`'s background: the silhouette of class `shape` filled with
    texture `tex` (None: one flat colour), or with `shape` None a patch of texture `tex` in a random blob (no
    class's outline)."""
    img = _background(rng)
    r = rng.uniform(14, 24)  # larger than `shapes`'s: a texture needs a few periods inside the silhouette
    margin = r * 0.8
    cx, cy = rng.uniform(margin, SIZE - margin, 2)
    if shape is None:
        mask = _blob_mask(cx, cy, r, rng)
    else:
        mask = shapes._shape_mask(CLASSES[shape], cx, cy, r, rng.uniform(0, 2 * math.pi))
    if tex is None:
        fill = np.broadcast_to(rng.uniform(0, 255, 3)[None, None], img.shape)
    else:
        pattern = texture(tex, rng)
        a, b = _two_colours(rng)
        fill = a[None, None] * (1 - pattern[..., None]) + b[None, None] * pattern[..., None]
    img = img * (1 - mask[..., None]) + fill * mask[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


VARIANTS = ("both", "shape", "texture")  # what the train/val/test images carry (the bias splits are the same)


def cues(split: str, i: int, variant: str = "both") -> tuple[int | None, int | None]:
    """(shape class, texture class) of image i of `split`; None where the image has no such cue. `variant`: the
    cues of the train, val and test images: both (agreeing), shape (flat silhouettes) or texture (texture alone,
    the sanity checks: a model trained on one cue must decide by it)."""
    c = i % len(CLASSES)
    if split == "conflict":
        return PAIRS[i % len(PAIRS)]
    if split == "shape-only" or (split not in BIAS_SPLITS and variant == "shape"):
        return c, None
    if split == "texture-only" or (split not in BIAS_SPLITS and variant == "texture"):
        return None, c
    return c, c


def labels(split: str, n: int | None = None, variant: str = "both") -> np.ndarray:
    """The class each image of `split` is labelled with: its shape, or its texture where it has no shape."""
    n = SPLIT_SIZES[split] if n is None else n
    return np.array([next(c for c in cues(split, i, variant) if c is not None) for i in range(n)], dtype=np.int64)


def texture_labels(split: str, n: int | None = None) -> np.ndarray:
    """The texture class of each image of `split` (-1 where it has no texture: shape-only)."""
    n = SPLIT_SIZES[split] if n is None else n
    return np.array([-1 if cues(split, i)[1] is None else cues(split, i)[1] for i in range(n)], dtype=np.int64)


def generate_split(split: str, seed: int = 0, n: int | None = None, variant: str = "both", start: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, SIZE, SIZE, 3) uint8 and labels (N,) of images start..n-1 of one split (of `variant`, see
    `cues`); image i is the same whichever others are generated, so a split grows to any size."""
    n = SPLIT_SIZES[split] if n is None else n
    stream = SPLIT_IDS[split] + (10 * VARIANTS.index(variant) if split not in BIAS_SPLITS else 0)
    images = np.empty((n - start, SIZE, SIZE, 3), dtype=np.uint8)
    for i in range(start, n):
        shape, tex = cues(split, i, variant)
        images[i - start] = render(shape, tex, np.random.default_rng([seed, stream, i]))
    return images, labels(split, n, variant)[start:]
