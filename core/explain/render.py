"""Explanations to RGB pictures with numpy and PIL only: a jet colormap, overlays, tile grids with gaps."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from core.explain.base import Explanation
from core.store import atomic_write

# jet: dark blue -> blue -> cyan -> yellow -> red -> dark red, linear between the anchors
_JET = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0],
                 [0.5, 0.0, 0.0]])
GAP = 2
BACKGROUND = 255
MIN_SIDE = 224  # small inputs (8-, 32-px images) are enlarged so a page or a PNG shows them


def colorize(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 through the jet colormap."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0, 1) * (len(_JET) - 1)
    lo = np.minimum(v.astype(int), len(_JET) - 2)
    frac = (v - lo)[..., None]
    return np.round((_JET[lo] * (1 - frac) + _JET[lo + 1] * frac) * 255).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The heatmap's colours blended over the image: (H, W, 3) uint8."""
    mixed = (1 - alpha) * image.astype(np.float64) + alpha * colorize(heatmap).astype(np.float64)
    return np.round(mixed).clip(0, 255).astype(np.uint8)


def _resize(a: np.ndarray, side: int) -> np.ndarray:
    h, w = a.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale >= 1 else Image.BILINEAR
    return np.asarray(Image.fromarray(a).resize(size, resample))


def enlarge(image: np.ndarray, side: int = MIN_SIDE) -> np.ndarray:
    """An image smaller than `side` pixels scaled up (nearest neighbour, pixels stay sharp) until its longer side is
    `side`; a larger one as it is."""
    return _resize(image, side) if max(image.shape[:2]) < side else image


def _tile_rgb(tile: np.ndarray, colormap: bool) -> np.ndarray:
    t = np.asarray(tile)
    if t.ndim == 2:
        return colorize(t) if colormap else np.repeat(np.round(np.clip(t, 0, 1) * 255).astype(np.uint8)[..., None],
                                                      3, axis=2)
    return np.round(np.clip(t, 0, 1) * 255).astype(np.uint8)


def grid(tiles: list[np.ndarray], columns: int, tile_px: int, *, colormap: bool = False) -> np.ndarray:
    """Tiles (float [0, 1], grey or RGB) resized to `tile_px` and laid out in rows with GAP-pixel gaps."""
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    out = np.full((rows * (tile_px + GAP) - GAP, columns * (tile_px + GAP) - GAP, 3), BACKGROUND, np.uint8)
    for i, tile in enumerate(tiles):
        img = _resize(_tile_rgb(tile, colormap), tile_px)
        r, c = divmod(i, columns)
        y, x = r * (tile_px + GAP), c * (tile_px + GAP)
        out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


def render(expl: Explanation, *, tile_px: int | None = None) -> np.ndarray:
    """One picture of an explanation, (H, W, 3) uint8: the image beside its overlay (Grad-CAM, rollout), or the
    tile grid (filters, feature maps, per-head attention)."""
    if expl.tiles:
        side = tile_px or max(16, min(128, 1024 // max(1, expl.columns)))
        return grid(expl.tiles, expl.columns, side, colormap=expl.method == "feature-maps")
    side = max(MIN_SIDE, *expl.image.shape[:2])
    pictures = [expl.image]
    if expl.heatmap is not None:
        pictures.append(overlay(expl.image, expl.heatmap))
    return grid([p.astype(np.float32) / 255 for p in pictures], len(pictures), side)


def write_png(expl: Explanation, path: str | Path, **kw) -> np.ndarray:
    """Render and write atomically; returns the picture."""
    picture = render(expl, **kw)
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))
    return picture
