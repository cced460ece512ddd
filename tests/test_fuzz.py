"""Fuzzing with Hypothesis (issue 22): the safe decoder, the folder layouts' annotation/CSV parsers and the store's
record reader, fed real seed files (JPEG, PNG, GIF, WebP, TIFF, BMP; Tiny ImageNet, Kaggle ImageNet, ImageNet-folder
and leaves-style CSV trees; store records) mutated in their bytes, headers, dimensions, lines and fields.

The property: every input ends in a decoded image, a loaded dataset or a record (or a miss), or in the project's
own UserError naming the file; never another exception, never a case slower than DEADLINE_S, never a child process
whose peak memory grows past MEMORY_BOUND_MB. Seeded (`derandomize=True`): every run replays the same cases.
`CNNVIT_FUZZ_EXAMPLES=N` runs N cases per target and `CNNVIT_FUZZ_SEED=S` another seed (the long run:
`benchmarks/fuzz.py`). Crashes found are replayed from tests/fuzz_regressions/.
"""
from __future__ import annotations

import atexit
import base64
import functools
import io
import json
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
import tokenize
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from PIL import Image
from test_folders import BULLFROG, GOLDFISH, SALAMANDER, WORDS, _classes, _img, _kaggle, _leaves, _tiny
from test_hostile_images import bomb_png, encoded

from core import store as store_module
from core.data.decode import MAX_PIXELS, decode_image, header_size
from core.data.registry import load_dataset
from core.errors import ImageDecodeError, UserError
from core.store import Store

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):  # its caches (no examples: database=None) outside the repo
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cnnvit-hypothesis")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.*")  # Pillow's notes on the broken files it is fed
REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
DEADLINE_S = 5  # no single input may take longer (Hypothesis' deadline; a case over it fails as a hang)
MEMORY_BOUND_MB = 1536  # peak RSS growth of a child process fuzzing one target. The decoder accepts up to 40 M
# pixels, and one such file of 75-265 KB grows a process by 0.7-1.2 GB as it is decoded (Pillow's 4-byte pixels, its
# copies, float64 scaling of 16/32-bit data: `benchmarks/fuzz.py --worst` measures it); Hypothesis' own bookkeeping
# adds ~10 KB a case
CHILD_TIMEOUT_S = 120  # a child replaying a slice of every target must finish within this
CI_EXAMPLES = {  # cases per target in the default run: the file stays under ~40 s on one core
    "decode": 2500,
    "tiny-imagenet": 500,
    "imagenet-kaggle": 500,
    "csv-folder": 400,
    "imagenet-folder": 300,
    "store-meta": 600,
    "store-artifact": 500,
    "store-artifact-forged": 600,
}
CASES: Counter[str] = Counter()  # inputs each target's property saw in this process (benchmarks/fuzz.py reports it)


def examples(target: str) -> int:
    return int(os.environ.get("CNNVIT_FUZZ_EXAMPLES") or CI_EXAMPLES[target])


def fuzz(target: str):
    """Hypothesis settings for one target: seeded, no example database (nothing written into the repo), an explicit
    deadline. too_slow is suppressed for the folder and store targets only: each case writes files and opens SQLite,
    a few ms that Hypothesis' generation-time check counts against the strategy; the deadline still bounds a case."""
    run_seed = os.environ.get("CNNVIT_FUZZ_SEED")
    conf = settings(max_examples=examples(target), derandomize=run_seed is None, database=None,
                    deadline=timedelta(seconds=DEADLINE_S), print_blob=True,
                    suppress_health_check=[] if target == "decode" else [HealthCheck.too_slow])

    def wrap(fn):
        fn = conf(fn)
        return seed(int(run_seed))(fn) if run_seed is not None else fn
    return wrap


@functools.cache
def sandbox() -> Path:
    """One temporary folder per process for the trees, files and stores the targets write (removed at exit)."""
    path = Path(tempfile.mkdtemp(prefix="cnnvit-fuzz-")).resolve()
    atexit.register(shutil.rmtree, path, True)
    return path


# --- mutations ----------------------------------------------------------------------------------------------------

INTERESTING_INTS = [0, 1, 2, 7, 8, 15, 16, 17, 127, 128, 255, 256, 4096, 6000, 12000, 30000, 65535, 65536, 2**31 - 1,
                    2**31, 2**32 - 1]


@st.composite
def mutated_bytes(draw, data: bytes, fields: list[tuple[int, int, str]] = ()) -> bytes:
    """`data` with 0-5 mutations: bit flips, byte sets, insertions, deletions, truncation, a slice repeated, and
    writes of boundary integers into `fields` (offset, size, '<' or '>') or into any header position."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 5))):
        n = len(out)
        head = st.integers(0, max(0, min(n, 64) - 1))  # the header: where most parsing decisions are made
        pos = draw(head | st.integers(0, max(0, n - 1)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "repeat", "field", "int"]))
        if op == "flip" and n:
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            out[pos] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]) | st.integers(0, 255))
        elif op == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del out[pos:pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del out[draw(st.integers(0, max(0, n - 1))):]
        elif op == "repeat" and n:
            k = draw(st.integers(1, 256))
            out[pos:pos] = out[pos:pos + k] * draw(st.integers(1, 4))
        elif op in ("field", "int") and n:
            value = draw(st.sampled_from(INTERESTING_INTS) | st.integers(0, 2**32 - 1))
            if op == "field" and fields:
                offset, size, order = draw(st.sampled_from(list(fields)))
            else:
                offset, size, order = pos, draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from("<>"))
            if offset + size <= len(out):
                out[offset:offset + size] = (value % 256**size).to_bytes(size, "little" if order == "<" else "big")
    return bytes(out)


FIELD_VALUES = [  # what a hostile or broken annotation file puts in a field
    "", " ", "  x  ", "..", ".", "../evil.jpg", "../../evil.jpg", "images/../../evil.jpg", "images/../images/0.jpg",
    "/etc/passwd", "/etc/evil.jpg", "C:\\evil.jpg", "\\evil.jpg", "\\\\server\\share\\evil.jpg", "~/evil.jpg",
    "images/0.jpg\x00.txt", "images/", "images/0.jpg", "images/0.JPG", "val_0.JPEG", "ILSVRC2012_val_00000001",
    GOLDFISH, SALAMANDER, BULLFROG, "n00000000", "n1234567", "n012345678", "goldfish", "image", "label", "split",
    "ImageId", "PredictionString", "train", "val", "VAL", "valid", "test", "tset", "all", "-1", "0", "1e309", "nan",
    "9" * 400, "x" * 140_000, "é", "\u202e", "\ufeff", "\U0001f600", "a\"b", "\"", "\"\"", ",", "\t", ";",
    "\r", "\n", "\x00", "\x1b[31m", "@DECOY@", "@ROOT@/images/0.jpg", "@ROOT@/../evil.jpg",
]  # check_folder writes @DECOY@ as the absolute path of the image beside the dataset folder, @ROOT@ as the folder's
DELIMITERS = [",", "\t", " ", ";", "", ", ", "\",\""]


def field_value():
    return st.sampled_from(FIELD_VALUES) | st.text(max_size=12)


@st.composite
def mutated_text(draw, text: str, delimiter: str) -> bytes:
    """A text file's contents with 0-5 line/field mutations, then (sometimes) byte-level ones."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 5))):
        op = draw(st.sampled_from(["field", "line", "delete", "duplicate", "swap", "blank", "quote", "dedupe"]))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "field" and lines:
            cells = lines[i].split(delimiter)
            cells[draw(st.integers(0, len(cells) - 1))] = draw(field_value())
            lines[i] = delimiter.join(cells)
        elif op == "line":
            row = draw(st.lists(field_value(), min_size=1, max_size=5))
            lines.insert(i, draw(st.sampled_from([delimiter, *DELIMITERS])).join(row))
        elif op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines[i:i] = [lines[i]] * draw(st.integers(1, 3))
        elif op == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "blank":
            lines.insert(i, draw(st.sampled_from(["", " ", "\t", delimiter, delimiter * 3])))
        elif op == "quote" and lines:
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.sampled_from(["\"", "'", "\"\"", "\"\n\""])) + lines[i][at:]
        elif op == "dedupe":
            lines = list(dict.fromkeys(lines))
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    body = newline.join(lines) + draw(st.sampled_from([newline, ""]))
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) and draw(st.booleans()) else b"") + body.encode("utf-8")
    if draw(st.integers(0, 3)) == 0:  # a quarter of the cases: bytes too (invalid UTF-8, NULs, truncation)
        data = draw(mutated_bytes(data))
    return data


# --- target 1: the safe decoder -------------------------------------------------------------------------------------


@functools.cache
def image_seeds() -> dict[str, bytes]:
    """Small real files in every accepted format and the modes the decoder converts, plus a decompression bomb."""
    rng = np.random.default_rng(22)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 16, 4), dtype=np.uint8), "RGBA")
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    gray16 = Image.fromarray(rng.integers(0, 65536, (12, 16), dtype=np.uint16))
    return {
        "jpeg": encoded(rgb, "JPEG", quality=90),
        "jpeg-progressive-exif": encoded(rgb, "JPEG", progressive=True, exif=exif),
        "jpeg-cmyk": encoded(rgb.convert("CMYK"), "JPEG"),
        "jpeg-gray": encoded(rgb.convert("L"), "JPEG"),
        "png": encoded(rgb, "PNG"),
        "png-rgba": encoded(rgba, "PNG"),
        "png-palette-trns": encoded(palette, "PNG", transparency=0),
        "png-16bit": encoded(gray16, "PNG"),
        "png-animated": encoded(rgb, "PNG", save_all=True, append_images=frames[1:]),
        "gif": encoded(palette, "GIF"),
        "gif-animated": encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], transparency=0),
        "webp": encoded(rgb, "WEBP", quality=80),
        "webp-lossless": encoded(rgba, "WEBP", lossless=True),
        "webp-animated": encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        "tiff": encoded(rgb, "TIFF"),
        "tiff-lzw": encoded(rgb, "TIFF", compression="tiff_lzw"),
        "tiff-cmyk-deflate": encoded(rgb.convert("CMYK"), "TIFF", compression="tiff_adobe_deflate"),
        "tiff-16bit": encoded(gray16, "TIFF"),
        "bmp": encoded(rgb, "BMP"),
        "bmp-palette": encoded(palette, "BMP"),
        "bmp-1bit": encoded(rgb.convert("1"), "BMP"),
        "bomb-png": bomb_png(12000),  # 17 KB declaring 12000x12000: refused from its header
    }


def dimension_fields(name: str, data: bytes) -> list[tuple[int, int, str]]:
    """(offset, size, byte order) of the width and height fields in a seed's header, so mutations reach them."""
    fmt = name.split("-")[0]
    if fmt == "png":
        return [(16, 4, ">"), (20, 4, ">")]
    if fmt == "bmp":
        return [(18, 4, "<"), (22, 4, "<"), (28, 2, "<"), (46, 4, "<")]  # width, height, bits per pixel, colours
    if fmt == "gif":
        fields = [(6, 2, "<"), (8, 2, "<")]
        at = data.find(b"\x2c", 13)  # the first image descriptor: its own position and size
        return fields + ([(at + k, 2, "<") for k in (1, 3, 5, 7)] if at > 0 else [])
    if fmt == "jpeg":
        at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))  # the start-of-frame segment
        return [(at + 5, 2, ">"), (at + 7, 2, ">"), (at + 9, 1, ">")] if at > 0 else []
    if fmt == "webp":
        kind = data[12:16]
        if kind == b"VP8X":
            return [(24, 3, "<"), (27, 3, "<"), (4, 4, "<")]
        if kind == b"VP8L":
            return [(21, 4, "<"), (4, 4, "<")]
        return [(26, 2, "<"), (28, 2, "<"), (4, 4, "<")]
    if fmt == "tiff":
        order = "<" if data[:2] == b"II" else ">"
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
        fields = []
        for k in range(count):
            entry = ifd + 2 + 12 * k
            tag, _type = struct.unpack(order + "HH", data[entry:entry + 4])
            if tag in (256, 257, 258, 259, 262, 273, 277, 278, 279):  # size, bits, compression, strips, samples
                fields += [(entry + 8, 4, order), (entry + 4, 4, order)]  # the value and the count
        return fields
    return []


def _fix_png_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every whole chunk, so header edits reach the parser instead of its checksum check."""
    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        (length,) = struct.unpack(">I", out[at:at + 4])
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end:end + 4] = struct.pack(">I", zlib.crc32(out[at + 4:end]))
        at = end + 4
    return bytes(out)


@st.composite
def hostile_images(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(image_seeds())))
    data = image_seeds()[name]
    data = draw(mutated_bytes(data, dimension_fields(name, data)))
    if name.startswith("png") and draw(st.booleans()):
        data = _fix_png_crcs(data)
    if draw(st.integers(0, 9)) == 0:  # a splice: one format's header on another's body
        other = image_seeds()[draw(st.sampled_from(sorted(image_seeds())))]
        cut = draw(st.integers(0, min(len(data), len(other))))
        data = data[:cut] + other[cut:]
    return name, data


def check_decode(data: bytes, name: str, via_file: bool = False) -> np.ndarray | None:
    """The decoder's property: a uint8 (H, W, 3) array of the header's size (EXIF may swap it), or an
    ImageDecodeError naming the file; both entry points agree."""
    CASES["decode"] += 1
    source: bytes | Path = data
    if via_file:
        source = sandbox() / "decode" / name
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(data)
    try:
        w, h = header_size(source, name=name)
    except ImageDecodeError as e:
        assert name in str(e), str(e)
        size = None
    else:
        assert 0 < w * h <= MAX_PIXELS, (w, h)
        size = (h, w)
    try:
        pixels = decode_image(source, name=name)
    except ImageDecodeError as e:
        assert name in str(e), str(e)
        return None
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 3, (type(pixels), pixels)
    assert pixels.shape[2] == 3 and pixels.flags.writeable, pixels.shape
    assert size is not None and sorted(pixels.shape[:2]) == sorted(size), (pixels.shape, size)
    return pixels


@fuzz("decode")
@given(hostile_images(), st.integers(0, 4))
def test_decoder_fuzz(image, route):
    name, data = image
    check_decode(data, f"fuzz-{name}.img", via_file=route == 0)


def test_every_decoder_seed_decodes_and_the_bomb_is_refused_before_decoding():
    """The seeds are real files of each format (so mutations start from valid inputs), and the bomb seed is refused
    from its header."""
    for name, data in image_seeds().items():
        if name == "bomb-png":
            with pytest.raises(ImageDecodeError, match="refused before decoding") as e:
                decode_image(data, name=name)
            assert str(e.value).startswith(name)
        else:
            assert check_decode(data, name).shape[:2] in ((12, 16), (16, 12)), name
            assert Image.open(io.BytesIO(data)).format == {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP",
                                                           "tiff": "TIFF", "bmp": "BMP"}[name.split("-")[0]]


# --- target 2: the folder layouts' annotation and CSV parsers ---------------------------------------------------------

ANNOTATIONS = {  # layout -> the text files its loader parses, and each one's field delimiter
    "tiny-imagenet": {"val/val_annotations.txt": "\t", "wnids.txt": " ", "words.txt": "\t"},
    "imagenet-kaggle": {"LOC_val_solution.csv": ",", "LOC_synset_mapping.txt": " "},
    "csv-folder": {"train.csv": ","},
    "imagenet-folder": {"words.txt": "\t"},
}


def _imagenet_folder(root: Path) -> Path:
    _classes(root, [BULLFROG, GOLDFISH], split="val")
    _classes(root, [SALAMANDER, GOLDFISH], split="train")
    (root / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in WORDS.items()))
    return root


BUILDERS = {"tiny-imagenet": _tiny, "imagenet-kaggle": _kaggle, "csv-folder": _leaves,
            "imagenet-folder": _imagenet_folder}


@dataclass
class Tree:
    layout: str
    root: Path  # the dataset folder
    pristine: dict[str, str]  # annotation file -> its original text
    variants: dict[str, list[str]]  # annotation file -> texts mutations start from (the original and others)
    names: set[str]  # what a refusal may name: the root, files and folders in it


def _split_variant(text: str) -> str:
    """The leaves CSV with a split column (train/val/test/valid), so mutations reach the split parser."""
    head, *rows = text.splitlines()
    splits = ["train", "val", "train", "test", "valid"]
    return "\n".join([head + ",split", *(f"{r},{splits[i % 5]}" for i, r in enumerate(rows))]) + "\n"


@functools.cache
def layout_tree(layout: str) -> Tree:
    """The layout's tiny tree, built by tests/test_folders.py's builders, with a decoy image beside it (outside
    the dataset folder, where `../evil.jpg` points), loaded once so lazy imports happen before any check."""
    base = sandbox() / layout
    _img(base / "evil.jpg")
    root = BUILDERS[layout](base / "data").resolve()
    pristine = {rel: (root / rel).read_text() for rel in ANNOTATIONS[layout]}
    variants = {rel: [text] for rel, text in pristine.items()}
    if layout == "csv-folder":
        variants["train.csv"].append(_split_variant(pristine["train.csv"]))
    for split in load_dataset(root).splits:  # the control: the untouched tree loads
        load_dataset(root).split(split)
    names = {str(root), *ANNOTATIONS[layout]}  # a folder is named by a path in it (`train/n01443537`), even missing
    names |= {p.relative_to(root).as_posix() for p in root.rglob("*") if "/" in p.relative_to(root).as_posix()}
    names |= {f"{p.name}/" for p in root.iterdir() if p.is_dir()}
    return Tree(layout, root, pristine, variants, names)


_WATCHED: list[list[str]] = []  # while a folder check runs: every path the process opens or lists


def _audit(event: str, args: tuple) -> None:
    if _WATCHED and event in ("open", "os.scandir", "os.listdir") and isinstance(args[0], (str, bytes, os.PathLike)):
        _WATCHED[-1].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # a no-op outside folder checks (an audit hook cannot be removed)


def _read_outside(root: Path, opened: list[str]) -> list[str]:
    """Paths opened or listed that are not under root (Python's own files, read by a lazy import, excepted)."""
    libraries = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    outside = []
    for p in opened:
        real = Path(os.path.realpath(p))
        if not real.is_relative_to(root) and not any(real.is_relative_to(lib) for lib in libraries):
            outside.append(p)
    return outside


def check_folder(tree: Tree, files: dict[str, bytes]) -> str:
    """Write `files` over the annotation files, load the folder and read every split's labels and fingerprints:
    a dataset whose every path is an existing file inside the folder and every label one of its classes, or a
    UserError naming the folder or a file in it; nothing outside the folder is opened or listed. Returns the
    outcome ("loaded" or the error's message); the tree is restored afterwards."""
    CASES[tree.layout] += 1
    opened: list[str] = []
    try:
        for rel, data in files.items():
            decoy = str(tree.root.parent / "evil.jpg").encode()
            (tree.root / rel).write_bytes(data.replace(b"@DECOY@", decoy).replace(b"@ROOT@", str(tree.root).encode()))
        _WATCHED.append(opened)
        try:
            ds = load_dataset(str(tree.root))
            for name in ds.splits:
                split = ds.split(name)
                assert split.paths is not None and len(split.paths) == len(split.labels) > 0, name
                assert all(0 <= y < ds.num_classes for y in split.labels.tolist()), (name, split.labels)
                for p in split.paths:
                    assert Path(p).resolve().is_relative_to(tree.root) and Path(p).is_file(), p
                ds.split_fingerprint(name)
            ds.fingerprint()
            assert len(ds.classes) == ds.num_classes > 0
            outcome = "loaded"
        except UserError as e:
            outcome = str(e)
            assert any(n in outcome for n in tree.names), f"the message names no file or folder: {outcome!r}"
        finally:
            _WATCHED.pop()
    finally:
        for rel, text in tree.pristine.items():
            (tree.root / rel).write_text(text)
    outside = _read_outside(tree.root, opened)
    assert not outside, f"read outside the dataset folder: {outside[:5]}"
    return outcome


@st.composite
def annotation_edits(draw, tree: Tree) -> dict[str, bytes]:
    """One or more of the layout's annotation files, mutated from the original (or a variant of it)."""
    delimiters = ANNOTATIONS[tree.layout]
    chosen = draw(st.lists(st.sampled_from(sorted(delimiters)), min_size=1, unique=True))
    return {rel: draw(mutated_text(draw(st.sampled_from(tree.variants[rel])), delimiters[rel])) for rel in chosen}


def fuzz_layout(layout: str, data) -> None:
    tree = layout_tree(layout)  # built (and loaded once) in the test, not in a strategy: loading may use `random`
    check_folder(tree, data.draw(annotation_edits(tree), label="files"))


@fuzz("tiny-imagenet")
@given(st.data())
def test_tiny_imagenet_fuzz(data):
    fuzz_layout("tiny-imagenet", data)


@fuzz("imagenet-kaggle")
@given(st.data())
def test_imagenet_kaggle_fuzz(data):
    fuzz_layout("imagenet-kaggle", data)


@fuzz("csv-folder")
@given(st.data())
def test_csv_folder_fuzz(data):
    fuzz_layout("csv-folder", data)


@fuzz("imagenet-folder")
@given(st.data())
def test_imagenet_folder_names_fuzz(data):
    fuzz_layout("imagenet-folder", data)


def test_folder_checks_see_a_read_outside_the_folder_and_a_traversal_is_refused():
    """The audit hook does see reads (a control), and a CSV row pointing at the decoy beside the folder is refused
    by name without the decoy being opened."""
    tree = layout_tree("csv-folder")
    opened: list[str] = []
    _WATCHED.append(opened)
    try:
        (tree.root.parent / "evil.jpg").read_bytes()
    finally:
        _WATCHED.pop()
    assert _read_outside(tree.root, opened) == [str(tree.root.parent / "evil.jpg")]
    for bad in ("../evil.jpg", "@DECOY@", str(tree.root.parent / "evil.jpg")):
        text = tree.pristine["train.csv"] + f"{bad},abies_concolor\n"
        assert "train.csv line 17" in check_folder(tree, {"train.csv": text.encode()})


# --- target 3: the store's record reader --------------------------------------------------------------------------


class _Unpickled:
    """An object whose unpickling would be recorded: an artifact holding one must never be unpickled."""

    def __reduce__(self):
        return (_unpickled, ())


UNPICKLED: list[int] = []


def _unpickled() -> None:
    UNPICKLED.append(1)


def _npz(arrays: dict, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


@dataclass
class StoreBench:
    store: Store
    rows: dict[str, tuple]  # key -> its pristine index row
    artifacts: dict[str, bytes]  # key -> its pristine artifact's bytes
    seeds: dict[str, bytes]  # artifact contents mutations start from


@functools.cache
def store_bench() -> StoreBench:
    """A store holding real records written by Store.put: an evaluation with arrays, a run without."""
    rng = np.random.default_rng(22)
    store = Store(sandbox() / "store")
    arrays = {"pred": np.arange(12, dtype=np.int64), "prob": rng.random((12, 4)).astype(np.float32),
              "names": np.array(["goldfish", "bullfrog", "é"]), "empty": np.zeros((0, 3))}
    store.put("evaluation-key", "evaluation", {"model": "cnn-2layer", "top1": 0.5, "per_class": [0.25, None],
                                              "nested": {"a": [1, {"b": "é"}]}}, arrays)
    store.put("run-key", "run", {"epochs": 3, "recipe": {"lr": 0.001}})
    with sqlite3.connect(store.root / "store.sqlite") as db:
        rows = {r[0]: r for r in db.execute("SELECT key, kind, created, meta, artifact, sha256 FROM records")}
    artifacts = {k: (store.artifacts / r[4]).read_bytes() for k, r in rows.items() if r[4]}
    seeds = {
        "written": artifacts["evaluation-key"],
        "compressed": _npz(arrays, compressed=True),  # deflate: reaches zlib through zipfile
        "object-array": _npz({"x": np.array([_Unpickled(), 1], dtype=object)}),  # a pickle inside
        "npy": _npy(arrays["prob"]),  # a bare .npy, not a zip
    }
    return StoreBench(store, rows, artifacts, seeds)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _restore(bench: StoreBench) -> None:
    with sqlite3.connect(bench.store.root / "store.sqlite") as db:
        db.executemany("INSERT OR REPLACE INTO records(key, kind, created, meta, artifact, sha256) "
                       "VALUES (?,?,?,?,?,?)", list(bench.rows.values()))
    for key, data in bench.artifacts.items():
        (bench.store.artifacts / bench.rows[key][4]).write_bytes(data)


KNOWN_UNFIXED: dict = {}  # bugs this fuzzing found, not fixed yet: the function in core/ they escape -> what escapes
TOLERATE_KNOWN = True  # the fuzz targets step over exactly these; the regression replays (strict xfails) do not
KNOWN_HITS: Counter[tuple[str, str]] = Counter()  # (target, "function: ExceptionType") -> cases that hit it


def _known_unfixed(e: BaseException) -> str | None:
    """`function: ExceptionType` when e escaped from one of KNOWN_UNFIXED's functions: the deepest frame of the
    project's code is in it (a comprehension inside it included)."""
    import traceback

    core = Path(store_module.__file__).resolve().parents[0]
    ours = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve().is_relative_to(core)]
    if ours:
        for fn in KNOWN_UNFIXED:
            code = fn.__code__
            last = max(line for _, _, line in code.co_lines() if line is not None)
            if ours[-1].filename == code.co_filename and code.co_firstlineno <= ours[-1].lineno <= last:
                return f"{fn.__name__}: {type(e).__name__}"
    return None


def check_store(target: str, key: str, meta: str | bytes | None = None, artifact: bytes | None = None,
                forge: bool = False, artifact_column: str | None = None) -> str:
    """Set a record's meta text and/or its artifact's bytes (with the index's checksum forged to match, or not), or
    its artifact column, then read it: Store.get, Store.get_with_arrays and Store.records return records (or a
    miss), or raise a UserError; arrays never hold objects, nothing is unpickled, and no file outside the store
    is deleted. Returns the outcome; the store is restored."""
    CASES[target] += 1
    bench = store_bench()
    store, row = bench.store, bench.rows[key]
    decoy = store.root.parent / "precious.npz"  # beside the store: `../../precious.npz` from artifacts/
    decoy.write_bytes(b"not the store's: must survive whatever the index says")
    try:
        with sqlite3.connect(store.root / "store.sqlite") as db:
            if meta is not None:
                db.execute("UPDATE records SET meta=? WHERE key=?", (meta, key))
            if artifact is not None:
                (store.artifacts / row[4]).write_bytes(artifact)
                if forge:
                    db.execute("UPDATE records SET sha256=? WHERE key=?", (_sha256(artifact), key))
            if artifact_column is not None:
                db.execute("UPDATE records SET artifact=? WHERE key=?", (artifact_column, key))
        outcomes, listed = [], set()
        for read in (store.get, store.get_with_arrays, store.records):
            try:
                got = read(key) if read != store.records else read()
            except UserError as e:
                outcomes.append(f"UserError: {e}")
                continue
            except Exception as e:
                known = _known_unfixed(e)
                if not (TOLERATE_KNOWN and known):
                    raise
                outcomes.append(f"known bug ({known})")
                continue
            if read == store.get:
                assert got is None or (got.key == key and got.kind == row[1]), got
            elif read == store.get_with_arrays:
                if got is not None:
                    record, arrays = got
                    assert record.key == key and isinstance(arrays, dict)
                    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values()), arrays
            else:
                assert isinstance(got, list) and all(isinstance(r, store_module.Record) for r in got), got
                listed = {r.key for r in got}
            outcomes.append("miss" if got is None else "record")
        for known in {o[len("known bug ("):-1] for o in outcomes if o.startswith("known bug")}:
            KNOWN_HITS[target, known] += 1  # once per case
        assert not UNPICKLED, "an artifact's pickle was loaded"
        assert decoy.exists(), f"the store deleted {decoy}, a file outside it"
        if artifact is not None and not forge and artifact != bench.artifacts.get(key):
            assert outcomes[1] == "miss", f"a damaged artifact was read back: {outcomes}"  # its checksum fails
            assert key not in listed, "the record of a damaged artifact was not dropped"
        return ", ".join(outcomes)
    finally:
        _restore(bench)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@fuzz("store-meta")
@given(st.sampled_from(["evaluation-key", "run-key"]), st.data())
def test_store_meta_fuzz(key, data):
    """The index row's meta JSON mutated as text (and sometimes stored as bytes, a BLOB)."""
    text = bench_meta(key)
    mutated = data.draw(mutated_text(text, ","))
    meta: str | bytes = mutated
    if data.draw(st.integers(0, 4)) > 0:
        meta = mutated.decode("utf-8", errors="replace")  # TEXT, as Store.put writes it
    check_store("store-meta", key, meta=meta)


def bench_meta(key: str) -> str:
    return store_bench().rows[key][3]


@st.composite
def artifact_bytes(draw) -> bytes:
    seeds = store_bench().seeds
    return draw(mutated_bytes(seeds[draw(st.sampled_from(sorted(seeds)))]))


@fuzz("store-artifact")
@given(artifact_bytes())
def test_store_artifact_fuzz(artifact):
    """The artifact's bytes mutated, its checksum as written: every change is a miss (and the record dropped)."""
    check_store("store-artifact", "evaluation-key", artifact=artifact)


@fuzz("store-artifact-forged")
@given(artifact_bytes())
def test_store_artifact_with_a_forged_checksum_fuzz(artifact):
    """The artifact's bytes mutated and the index's checksum forged to match, so the npz reader itself sees them."""
    check_store("store-artifact-forged", "evaluation-key", artifact=artifact, forge=True)


def test_an_npz_holding_an_object_array_is_refused_unpickled():
    """The object-array seed, its checksum forged, is a miss; its pickle (which would record a call) never runs."""
    outcome = check_store("store-artifact-forged", "evaluation-key", artifact=store_bench().seeds["object-array"],
                          forge=True)
    assert outcome.split(", ")[1] == "miss" and not UNPICKLED


# --- time and memory: a slice of every target in a child process ------------------------------------------------

TARGETS = {
    "decode": test_decoder_fuzz,
    "tiny-imagenet": test_tiny_imagenet_fuzz,
    "imagenet-kaggle": test_imagenet_kaggle_fuzz,
    "csv-folder": test_csv_folder_fuzz,
    "imagenet-folder": test_imagenet_folder_names_fuzz,
    "store-meta": test_store_meta_fuzz,
    "store-artifact": test_store_artifact_fuzz,
    "store-artifact-forged": test_store_artifact_with_a_forged_checksum_fuzz,
}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would carry the parent's over the exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak restarts from the current resident size


def _bomb_refused() -> None:
    """The bomb seed (12000x12000) and the same file declaring 30000x30000 are refused before decoding."""
    bomb = image_seeds()["bomb-png"]
    for data in (bomb, _fix_png_crcs(bomb[:16] + struct.pack(">II", 30000, 30000) + bomb[24:])):
        with pytest.raises(ImageDecodeError, match="bomb.png is .*refused before decoding"):
            decode_image(data, name="bomb.png")


def run_target(name: str) -> dict:
    """Run one target's Hypothesis test here (the child's side): cases, seconds, peak RSS growth, the failure, and
    the cases that hit a known unfixed bug."""
    import traceback

    reset_peak()
    before, start, failure = peak_rss_mb(), time.perf_counter(), None
    CASES[name] = 0
    try:
        _bomb_refused() if name == "bomb" else TARGETS[name]()
    except BaseException as e:  # noqa: BLE001 - reported, with its traceback, to the parent
        failure = "".join(traceback.format_exception(e))
    return {"target": name, "cases": CASES[name], "seconds": round(time.perf_counter() - start, 2),
            "peak_growth_mb": round(peak_rss_mb() - before, 1), "failure": failure,
            "known_bug_hits": {k: n for (t, k), n in KNOWN_HITS.items() if t == name}}


CHILD = """
import json, sys, warnings
warnings.simplefilter("ignore")  # Pillow's warnings about the broken files it is fed
sys.path.insert(0, sys.argv[1])
import test_fuzz
test_fuzz.image_seeds(); test_fuzz.store_bench(); [test_fuzz.layout_tree(t) for t in test_fuzz.ANNOTATIONS]
for name in sys.argv[2:]:
    print(json.dumps(test_fuzz.run_target(name)), flush=True)
"""


def run_child(targets: list[str], n_examples: int, timeout_s: float, seed_: int | None = None) -> list[dict]:
    """Fuzz `targets` in a fresh child process (n_examples each); a child past timeout_s is a hang (killed)."""
    import subprocess

    env = {**os.environ, "CNNVIT_FUZZ_EXAMPLES": str(n_examples)}
    env.pop("CNNVIT_FUZZ_SEED", None)
    if seed_ is not None:
        env["CNNVIT_FUZZ_SEED"] = str(seed_)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), *targets], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads peak memory from Linux's /proc")
def test_every_target_runs_in_a_child_within_time_and_memory():
    """50 seeded cases of each target, and the bomb seeds, in a fresh process: it ends within CHILD_TIMEOUT_S, no
    target grows its peak RSS past MEMORY_BOUND_MB, and refusing the bombs grows it by less than 50 MB."""
    results = run_child(["bomb", *TARGETS], 50, CHILD_TIMEOUT_S)
    assert [r["target"] for r in results] == ["bomb", *TARGETS]
    for r in results:
        print(f"{r['target']}: {r['cases']} cases, {r['seconds']} s, peak RSS +{r['peak_growth_mb']} MB")
        assert r["failure"] is None, r["failure"]
        assert r["peak_growth_mb"] < (50 if r["target"] == "bomb" else MEMORY_BOUND_MB), r
        assert r["target"] == "bomb" or r["cases"] >= 50, r


# --- regressions: every crash found, replayed -----------------------------------------------------------------------


def replay(case: dict) -> str:
    """Run one saved case (tests/fuzz_regressions/*.json) through its target's check, known bugs not stepped over."""
    global TOLERATE_KNOWN

    def blob(field: str) -> bytes | None:
        return base64.b64decode(case[field]) if field in case else None

    target, TOLERATE_KNOWN = case["target"], False
    try:
        if target == "decode":
            return repr(check_decode(blob("input_b64"), case["name"]))
        if target in ANNOTATIONS:
            return check_folder(layout_tree(target), {case["file"]: blob("input_b64")})
        return check_store(target, case["key"], meta=case.get("meta", blob("meta_b64")), artifact=blob("artifact_b64"),
                           forge=case.get("forge", False), artifact_column=case.get("artifact_column"))
    finally:
        TOLERATE_KNOWN = True


RAISES = {e.__name__: e for e in (json.JSONDecodeError, UnicodeDecodeError, RecursionError, TypeError, zlib.error,
                                  tokenize.TokenError, NotImplementedError, AssertionError, ValueError, OSError)}


def _regressions() -> list:
    cases = []
    for path in sorted(REGRESSIONS.glob("*.json")):
        case = json.loads(path.read_text())
        raises = RAISES[case["raises"].split(":")[0].split(".")[-1]]  # the failure it must keep failing with
        unfixed = pytest.mark.xfail(strict=True, raises=raises, reason=f"not fixed yet: {case['bug']}")
        cases.append(pytest.param(case, id=path.stem, marks=[unfixed] if case.get("fixed") is False else []))
    return cases


@pytest.mark.parametrize("case", _regressions())
def test_fuzz_regression(case):
    """Each crash the fuzzing found, replayed. An unfixed one is a strict xfail: once fixed it passes, the xfail
    turns into a failure, and its file's `fixed` becomes true (and its KNOWN_UNFIXED entry goes)."""
    replay(case)
