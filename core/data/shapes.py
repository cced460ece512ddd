"""`shapes`: generated 64x64 RGB images of 10 shape classes, deterministic from a seed.

Each image: a random two-colour gradient background with noise and clutter (line segments and
small blobs), and one shape of random colour, scale, rotation and position, antialiased by
drawing its mask at 4x and downsampling. Every image draws from its own generator seeded by
(seed, split, index), so the data are the same however they are generated.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "heart", "arrow", "crescent"]
SIZE = 64
SPLIT_SIZES = {"train": 5000, "val": 1000, "test": 1000}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
GENERATOR_VERSION = 1
_SS = 4  # supersampling factor for antialiased masks


def _polygon(kind: str) -> list[tuple[float, float]] | None:
    """Outline of a shape in unit coordinates (radius ~1, centred at 0); None for round shapes."""
    if kind == "square":
        return [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    if kind == "triangle":
        return [(math.cos(a), math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    if kind == "hexagon":
        return [(math.cos(k * math.pi / 3), math.sin(k * math.pi / 3)) for k in range(6)]
    if kind == "star":
        return [((1.0 if k % 2 == 0 else 0.42) * math.cos(-math.pi / 2 + k * math.pi / 5),
                 (1.0 if k % 2 == 0 else 0.42) * math.sin(-math.pi / 2 + k * math.pi / 5)) for k in range(10)]
    if kind == "cross":
        a, b = 0.3, 0.95
        return [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    if kind == "arrow":
        return [(-0.95, -0.25), (0.15, -0.25), (0.15, -0.65), (0.95, 0.0), (0.15, 0.65), (0.15, 0.25), (-0.95, 0.25)]
    if kind == "heart":
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return list(zip(x / 17.0, (y + 2.5) / 17.0))
    return None


def _shape_mask(kind: str, cx: float, cy: float, r: float, angle: float):
    """Antialiased float mask (SIZE, SIZE) in 0..1 of one shape."""
    big = SIZE * _SS
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    X, Y, R = cx * _SS, cy * _SS, r * _SS
    if kind in ("circle", "ring", "crescent"):
        draw.ellipse([X - R, Y - R, X + R, Y + R], fill=255)
        if kind == "ring":
            ri = R * 0.55
            draw.ellipse([X - ri, Y - ri, X + ri, Y + ri], fill=0)
        elif kind == "crescent":
            ox, oy = X + 0.5 * R * math.cos(angle), Y + 0.5 * R * math.sin(angle)
            ri = R * 0.85
            draw.ellipse([ox - ri, oy - ri, ox + ri, oy + ri], fill=0)
    else:
        ca, sa = math.cos(angle), math.sin(angle)
        pts = [(X + R * (px * ca - py * sa), Y + R * (px * sa + py * ca)) for px, py in _polygon(kind)]
        draw.polygon(pts, fill=255)
    small = mask.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _background(rng: np.random.Generator) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    t = (np.cos(theta) * xx + np.sin(theta) * yy)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    img += rng.normal(0, 8, img.shape)
    return img


def _clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """Line segments and small blobs that are not the shape: a linear model cannot just count pixels."""
    layer = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(layer)
    colours = []
    for _ in range(rng.integers(2, 6)):
        x0, y0, x1, y1 = rng.uniform(0, SIZE, 4)
        draw.line([x0, y0, x1, y1], fill=int(len(colours) + 1), width=int(rng.integers(1, 3)))
        colours.append(rng.uniform(0, 255, 3))
    for _ in range(rng.integers(1, 4)):
        x, y, s = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(1.5, 4)
        draw.ellipse([x - s, y - s, x + s, y + s], fill=int(len(colours) + 1))
        colours.append(rng.uniform(0, 255, 3))
    ids = np.asarray(layer)
    for k, colour in enumerate(colours, start=1):
        img[ids == k] = 0.5 * img[ids == k] + 0.5 * colour


def render(label: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (64, 64, 3) image of class `label`."""
    img = _background(rng)
    _clutter(img, rng)
    r = rng.uniform(9, 22)
    margin = r * 0.8
    cx, cy = rng.uniform(margin, SIZE - margin, 2)
    mask = _shape_mask(CLASSES[label], cx, cy, r, rng.uniform(0, 2 * math.pi))
    # a colour that stands out from the background under the shape
    under = (img * mask[..., None]).sum((0, 1)) / max(float(mask.sum()), 1.0)
    colour = rng.uniform(0, 255, 3)
    for _ in range(8):
        if np.abs(colour - under).sum() > 180:
            break
        colour = rng.uniform(0, 255, 3)
    img = img * (1 - mask[..., None]) + colour[None, None] * mask[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def generate_split(split: str, seed: int = 0, n: int | None = None, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 64, 64, 3) uint8 and balanced labels (N,) for one split: images start..n-1 of it (image i is
    the same whatever else is generated, so a split can be extended to any size)."""
    n = SPLIT_SIZES[split] if n is None else n
    labels = np.arange(start, n) % len(CLASSES)
    images = np.empty((n - start, SIZE, SIZE, 3), dtype=np.uint8)
    for k, i in enumerate(range(start, n)):
        rng = np.random.default_rng([seed, SPLIT_IDS[split], i])
        images[k] = render(int(labels[k]), rng)
    return images, labels.astype(np.int64)
