"""The one safe decoder against hostile and odd files, all generated here: a decompression bomb, EXIF
rotations, 16-bit, CMYK, transparency, animations, grayscale, garbage; then its two consumers, an
upload on the Predict page and a dataset run over a folder with broken files."""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.decode import MAX_PIXELS, decode_image, header_size
from core.errors import ImageDecodeError
from core.settings import REPO_ROOT

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def png(width: int, height: int, depth: int, color_type: int, rows, extra: bytes = b"") -> bytes:
    """A PNG written by hand, row by row (filter 0), so a huge declared size costs no memory to make."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    idat = b"".join(z.compress(b"\0" + r) for r in rows) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png(side: int) -> bytes:
    """side x side 1-bit black PNG: 12000 -> 17.6 KB on disk, 432 MB as RGB pixels."""
    return png(side, side, 1, 0, (bytes(side // 8) for _ in range(side)))


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# --- size: refused from the header, before a pixel is decoded ---------------------------------------------


MEMORY_PROBE = """
import json, sys
from core.data.decode import decode_image
from core.errors import ImageDecodeError

def peak_mb():  # this process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over the exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak restarts from the current resident size

out = {}
reset_peak()
before = peak_mb()
try:
    decode_image(sys.argv[1])
    out["bomb"] = "decoded"
except ImageDecodeError as e:
    out["bomb"] = str(e)
out["bomb_growth_mb"] = peak_mb() - before
reset_peak()
before = peak_mb()
pixels = decode_image(sys.argv[2])  # the control: a bomb-like PNG small enough to be allowed, decoded
out["control_shape"] = list(pixels.shape)
out["control_growth_mb"] = peak_mb() - before
print(json.dumps(out))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads peak memory from Linux's /proc")
def test_a_17kb_png_declaring_12000x12000_is_refused_before_decoding(tmp_path):
    """The peak resident memory of a fresh process grows < 50 MB while the 17 KB file declaring 144 M pixels is
    refused; decoding a 4000x4000 file of the same kind (allowed) grows it > 50 MB, so the measure does see a
    decode."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(12000))
    assert 15_000 < bomb.stat().st_size < 20_000
    control = tmp_path / "control.png"
    control.write_bytes(bomb_png(4000))
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(bomb), str(control)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    print(f"bomb: {bomb.stat().st_size} B file, peak RSS growth {out['bomb_growth_mb']:.1f} MB; "
          f"4000x4000 control decode: {out['control_growth_mb']:.1f} MB")
    assert out["bomb"].startswith(str(bomb)) and "144000000 pixels" in out["bomb"], out["bomb"]
    assert "refused before decoding" in out["bomb"]
    assert out["bomb_growth_mb"] < 50
    assert out["control_shape"] == [4000, 4000, 3] and out["control_growth_mb"] > 50  # 48 MB of RGB alone


def test_our_pixel_cap_is_below_pillows_and_names_the_size(tmp_path):
    assert MAX_PIXELS < Image.MAX_IMAGE_PIXELS  # ours is the one that bites
    f = tmp_path / "big.png"
    f.write_bytes(bomb_png(7000))  # 49 M pixels: under Pillow's limit, over ours
    with pytest.raises(ImageDecodeError, match=r"big\.png is 7000x7000 pixels, above the limit of 40,000,000"):
        decode_image(f)
    with pytest.raises(ImageDecodeError, match="above the limit"):
        header_size(f)  # what folder loading reads the native size with: the same rule
    strip = png(1010, 10, 8, 0, [bytes(1010)] * 10)  # 10,100 pixels, but 101:1
    with pytest.raises(ImageDecodeError, match="upload is 1010x10 pixels: an aspect ratio above 100:1"):
        decode_image(strip)


def test_pillows_bomb_warning_is_an_error(monkeypatch):
    """With our cap lifted and Pillow's lowered to 1,000 pixels, a 40x40 image (1,600 pixels, under
    Pillow's error threshold of 2x) only makes Pillow warn; the decoder refuses it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encoded(Image.new("RGB", (40, 40), RED), "PNG")
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(data))  # Pillow alone: a warning, and the image would decode
    with pytest.raises(ImageDecodeError, match="w.png is too large to decode safely .*1600 pixels"):
        decode_image(data, name="w.png", max_pixels=10**9)


# --- odd but valid images come out as the RGB a person sees ---------------------------------------------


@pytest.mark.parametrize("orientation, shape, red_block", [
    (1, (16, 32), (slice(0, 8), slice(0, 8))),  # as stored
    (3, (16, 32), (slice(8, 16), slice(24, 32))),  # rotated 180: top-left -> bottom-right
    (6, (32, 16), (slice(0, 8), slice(8, 16))),  # rotated 90 clockwise: top-left -> top-right
    (8, (32, 16), (slice(24, 32), slice(0, 8))),  # rotated 90 counter-clockwise: top-left -> bottom-left
])
def test_exif_orientation_is_applied(orientation, shape, red_block):
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[...] = BLUE
    stored[0:8, 0:8] = RED  # an 8x8 red block in the stored top-left corner (JPEG blocks are 8x8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    rgb = decode_image(encoded(Image.fromarray(stored), "JPEG", quality=95, subsampling=0, exif=exif.tobytes()))
    assert rgb.shape == shape + (3,)
    block = np.zeros(shape, bool)
    block[red_block] = True
    assert np.abs(rgb[block].mean(0) - RED).max() < 10
    assert np.abs(rgb[~block].mean(0) - BLUE).max() < 10


def test_16_bit_png_is_scaled_not_clipped():
    gray = np.array([[0, 257, 32768, 65535]], dtype=">u2")  # big-endian, as PNG stores them
    rgb = decode_image(png(4, 1, 16, 0, [gray.tobytes()]))
    assert rgb[0].tolist() == [[0, 0, 0], [1, 1, 1], [128, 128, 128], [255, 255, 255]]  # clipping: 255 from 257 on
    color = np.array([[[65535, 32768, 0], [0, 65535, 32768]]], dtype=">u2")
    rgb = decode_image(png(2, 1, 16, 2, [color.tobytes()]))
    assert rgb[0].tolist() == [[255, 128, 0], [0, 255, 128]]


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta + yellow: red
    cmyk.paste((255, 0, 0, 0), (8, 0, 16, 16))  # full cyan: (0, 255, 255)
    rgb = decode_image(encoded(cmyk, "JPEG", quality=95)).astype(int)
    assert rgb.shape == (16, 16, 3)
    assert np.abs(rgb[4, 2] - RED).max() < 10 and np.abs(rgb[4, 13] - (0, 255, 255)).max() < 10


def _palette_image() -> Image.Image:
    img = Image.new("P", (2, 1))
    img.putpalette(list(RED) + list(BLUE) + [0] * 762)
    img.putdata([0, 1])  # index 0 (red) is the transparent one
    return img


def _colour_key_image(mode: str, key, other) -> Image.Image:
    img = Image.new(mode, (2, 1), key)
    img.putpixel((1, 0), other)
    return img


@pytest.mark.parametrize("make, fmt, kw, expected", [
    (_palette_image, "PNG", {"transparency": 0}, [WHITE, BLUE]),
    (_palette_image, "GIF", {"transparency": 0}, [WHITE, BLUE]),
    (lambda: Image.frombytes("RGBA", (3, 1), bytes([255, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 128])), "PNG", {},
     [WHITE, BLUE, (127, 127, 127)]),  # half-transparent black on white: 255 * (1 - 128/255) = 127
    (lambda: Image.frombytes("LA", (3, 1), bytes([0, 0, 0, 255, 100, 255])), "PNG", {},
     [WHITE, (0, 0, 0), (100, 100, 100)]),
    (lambda: _colour_key_image("RGB", RED, BLUE), "PNG", {"transparency": RED}, [WHITE, BLUE]),  # PNG tRNS key
    (lambda: _colour_key_image("L", 7, 50), "PNG", {"transparency": 7}, [WHITE, (50, 50, 50)]),
], ids=["palette-png", "palette-gif", "rgba", "la", "rgb-colour-key", "gray-colour-key"])
def test_transparency_is_flattened_onto_white(make, fmt, kw, expected):
    rgb = decode_image(encoded(make(), fmt, **kw))
    assert rgb.shape == (1, len(expected), 3) and rgb.dtype == np.uint8
    assert [tuple(p) for p in rgb[0].tolist()] == [tuple(e) for e in expected]


@pytest.mark.parametrize("fmt, kw", [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {}), ("MPO", {})],
                         ids=["gif", "webp", "apng", "mpo-camera-jpeg"])
def test_animated_and_multi_picture_files_give_their_first_frame(fmt, kw):
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2  # really two frames
    rgb = decode_image(data).astype(int)
    assert rgb.shape == (16, 16, 3) and np.abs(rgb - RED).max() < 10


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_gives_three_equal_channels(mode):
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # 4 x 16, 0..240
    img = Image.fromarray(gray).convert(mode)
    rgb = decode_image(encoded(img, "PNG"))
    assert rgb.shape == (4, 16, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb[..., 0].tolist() == np.asarray(img.convert("L")).tolist()  # "1" is dithered to 0/255 first


def test_content_decides_not_the_extension(tmp_path):
    jpeg = tmp_path / "photo.png"  # a real JPEG under a PNG name
    jpeg.write_bytes(encoded(Image.new("RGB", (24, 16), BLUE), "JPEG", quality=95))
    rgb = decode_image(jpeg).astype(int)
    assert rgb.shape == (16, 24, 3) and np.abs(rgb - BLUE).max() < 10


# --- broken and foreign files: one clear message naming the file -------------------------------------------


def _truncated_jpeg() -> bytes:
    data = encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    return data[: len(data) // 2]


HOSTILE = {  # file name -> (bytes, what the message says)
    "empty.png": (b"", "is empty (0 bytes)"),
    "random.jpg": (np.random.default_rng(1).bytes(4096), "is not an image in a format we accept"),
    "truncated.jpg": (_truncated_jpeg(), "is damaged or truncated"),
    "notes.png": (b"name,label\ncat.jpg,cat\n", "is not an image in a format we accept"),
    "report.png": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "is not an image in a format"),
    "drawing.png": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "is not an image in a format"),  # EPS: runs Ghostscript
    "icon.png": (encoded(Image.new("RGB", (16, 16), RED), "ICO"), "is not an image in a format"),  # Pillow reads it, we do not
    "bad-crc.png": (png(4, 4, 8, 0, [bytes(4)] * 4)[:-20] + b"\0" * 20, "is damaged or truncated"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_broken_or_foreign_file_is_refused_by_name(tmp_path, name):
    data, says = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageDecodeError) as e:
        decode_image(path)
    assert str(e.value).startswith(f"{path} {says}"), str(e.value)
    with pytest.raises(ImageDecodeError) as e:  # the same bytes uploaded: named by the upload's name
        decode_image(data, name=name)
    assert str(e.value).startswith(f"{name} {says}"), str(e.value)


# --- the consumers: an upload on the Predict page, a dataset run ------------------------------------------------


def test_predict_page_shows_a_message_per_bad_upload_and_predicts_the_good_one(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path / "store"))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/predict.py")
    at.run()
    good = encoded(Image.new("RGB", (64, 64), RED), "PNG")
    at.file_uploader[0].set_value([("notes.png", HOSTILE["notes.png"][0], "image/png"),
                                   ("truncated.jpg", HOSTILE["truncated.jpg"][0], "image/jpeg"),
                                   ("good.png", good, "image/png")])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("notes.png is not an image") for e in errors), errors
    assert any(e.startswith("truncated.jpg is damaged or truncated") for e in errors), errors
    assert [s.value for s in at.subheader] == ["good.png"]  # the good upload is still predicted
    assert len(at.dataframe) == 2 and all(len(t.value) == 5 for t in at.dataframe)  # the default two models


def test_dataset_run_skips_counts_and_names_broken_files(tmp_path, store):
    """A class-folder dataset with 8 good images and 5 hostile ones (one of each kind, the 12000x12000 bomb
    first in its folder, where the native size is read): the run scores 8, skips 5 and names them."""
    from core.data.folders import load_folder
    from core.evaluate import evaluate

    root = tmp_path / "pets"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    hostile = {"cat/00-bomb.png": bomb_png(12000), "cat/empty.png": b"", "cat/notes.png": HOSTILE["notes.png"][0],
               "dog/random.jpg": HOSTILE["random.jpg"][0], "dog/truncated.jpg": HOSTILE["truncated.jpg"][0]}
    for rel, data in hostile.items():
        (root / rel).write_bytes(data)
    assert load_folder(root).image_size == (24, 24)  # the bomb's header did not set the native size
    ev = evaluate("linear", root, store=store, num_workers=0)
    assert ev.meta["n"] == 8 and ev.meta["skipped"] == 5
    assert sorted(Path(m.split(" ")[0]).name for m in ev.meta["skipped_files"]) == sorted(
        Path(r).name for r in hostile)
    assert sorted(ev.predictions.y_true.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]
