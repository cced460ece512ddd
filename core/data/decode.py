"""The one safe image decoder, shared by dataset loading and uploads."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from core.errors import ImageDecodeError

ALLOWED_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"}
MAX_PIXELS = 40_000_000  # below Pillow's own bomb limit (~89 M); checked from the header, before decoding
MAX_ASPECT = 100  # a 1 x 40,000,000 strip would become 64 x 2.56e9 after a shorter-side resize
BACKGROUND = (255, 255, 255)  # transparent pixels are flattened onto this


def decode_image(source: bytes | str | Path, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """Decode an image file or bytes into uint8 RGB (H, W, 3), refusing anything we do not trust."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as e:
        raise ImageDecodeError(f"cannot read {label}: {e.strerror or e}") from None
    if not data:
        raise ImageDecodeError(f"{label} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise ImageDecodeError(
                    f"{label} is {img.format or 'an unknown format'}; accepted: {', '.join(sorted(ALLOWED_FORMATS))}"
                )
            w, h = img.size
            if w * h > max_pixels:
                raise ImageDecodeError(f"{label} is {w}x{h} pixels, above the limit of {max_pixels:,}")
            if max(w, h) > MAX_ASPECT * max(1, min(w, h)):
                raise ImageDecodeError(f"{label} is {w}x{h} pixels: an aspect ratio above {MAX_ASPECT}:1")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img = ImageOps.exif_transpose(img)
            return np.array(_to_rgb(img), dtype=np.uint8)  # a writable copy, detached from PIL
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError(f"{label} is not an image we can read ({type(e).__name__})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageDecodeError(f"{label} is damaged or truncated ({e})") from None


def _to_rgb(img):
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")
