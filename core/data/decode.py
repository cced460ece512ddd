"""The one safe image decoder, shared by dataset loading and uploads.

Checked by content, never by the file's name: only the parsers of the allowed formats ever see the
bytes; the size comes from the header and is checked against our own pixel cap before a pixel is
decoded; Pillow's decompression-bomb warning is an error. What comes out is always uint8 RGB:
EXIF orientation applied, 16-bit scaled (not clipped), CMYK converted, transparency flattened
onto BACKGROUND, animations reduced to their first frame, grayscale repeated over 3 channels.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageDecodeError

PARSERS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")  # the only Pillow plugins that ever see the bytes
# MPO: the multi-picture JPEG phones and cameras write; the JPEG parser hands it back under that name
ALLOWED_FORMATS = {*PARSERS, "MPO"}
MAX_PIXELS = 40_000_000  # below Pillow's own bomb limit (~89 M); checked from the header, before decoding
MAX_ASPECT = 100  # a 1 x 40,000,000 strip would become 64 x 2.56e9 after a shorter-side resize
BACKGROUND = (255, 255, 255)  # transparent pixels are flattened onto this
_ACCEPTED = "JPEG, PNG, GIF, BMP, WebP or TIFF"
T = TypeVar("T")


def decode_image(source: bytes | str | Path, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """Decode an image file or bytes into uint8 RGB (H, W, 3), refusing anything we do not trust.

    Every refusal is an ImageDecodeError whose message names the file (`name`, the path, or "upload")."""
    def to_array(img, label: str) -> np.ndarray:
        # Image.open stands on frame 0 of an animation; n_frames is not asked (it walks the whole file)
        img = ImageOps.exif_transpose(img)
        return np.array(_to_rgb(img, label), dtype=np.uint8)  # a writable copy, detached from PIL

    return _checked(source, name, max_pixels, to_array)


def header_size(source: bytes | str | Path, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> tuple[int, int]:
    """(width, height) read from the header alone, after the same checks as `decode_image`."""
    return _checked(source, name, max_pixels, lambda img, label: img.size)


def _checked(source: bytes | str | Path, name: str | None, max_pixels: int, use: Callable[[Any, str], T]) -> T:
    """Open `source` with the allowed parsers, check its header, and hand the image to `use`; every
    failure, in the header or in `use`, becomes an ImageDecodeError naming the file."""
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    if isinstance(source, bytes):
        if not source:
            raise ImageDecodeError(f"{label} is empty (0 bytes)")
        return _open(io.BytesIO(source), label, max_pixels, use)
    try:
        # a file handle, not read_bytes(): a 5 GB file named .jpg costs only what the decoder reads of it
        with open(source, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ImageDecodeError(f"{label} is empty (0 bytes)")
            return _open(f, label, max_pixels, use)
    except OSError as e:
        raise ImageDecodeError(f"cannot read {label}: {e.strerror or e}") from None


def _open(fp, label: str, max_pixels: int, use: Callable[[Any, str], T]) -> T:
    try:
        with warnings.catch_warnings():
            # (catch_warnings is process-wide, so threads can race on it; MAX_PIXELS, below Pillow's limit,
            # refuses any image Pillow would warn about anyway: this matters when a caller raises max_pixels)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # formats=: the parsers of other formats (EPS calls Ghostscript, PSD, ICO, ...) never run
            img = Image.open(fp, formats=PARSERS)  # reads the header only
            if img.format not in ALLOWED_FORMATS:  # a plugin may hand back a sibling format
                raise ImageDecodeError(f"{label} is {img.format or 'an unknown format'}; accepted: {_ACCEPTED}")
            w, h = img.size
            if w * h > max_pixels:
                raise ImageDecodeError(f"{label} is {w}x{h} pixels, above the limit of {max_pixels:,}; "
                                       "refused before decoding")
            if max(w, h) > MAX_ASPECT * max(1, min(w, h)):
                raise ImageDecodeError(f"{label} is {w}x{h} pixels: an aspect ratio above {MAX_ASPECT}:1")
            return use(img, label)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{label} is not an image in a format we accept ({_ACCEPTED}); "
                               "its content was checked, not its name") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError(f"{label} is too large to decode safely ({e}); refused before decoding") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as e:
        raise ImageDecodeError(f"{label} is damaged or truncated ({e})") from None


def _to_rgb(img, label: str):
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if "transparency" in img.info and img.mode in ("P", "L", "RGB", "1"):
        img = img.convert("RGBA")  # a palette entry or a colour key (PNG tRNS) marks the transparent pixels
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, img).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError:  # conversion not supported: say which colour mode, not "damaged"
        raise ImageDecodeError(f"{label} uses the colour mode {img.mode}, which cannot be converted to RGB") from None
