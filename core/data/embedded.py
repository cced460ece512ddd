"""Datasets that ship with the project and work offline: `digits`, `shapes` (at any training size) and
`shapes-textured` (with its cue-conflict splits)."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.data import cue_conflict, shapes
from core.data.base import Dataset, Split
from core.errors import DatasetError
from core.settings import get_settings
from core.store import load_npz, save_npz

SPLIT_SEED = 0
DIGITS_SPLITS = ("train", "val", "test")


_DIGESTS: dict[int, tuple[dict, str]] = {}  # holds the dict too, so its id cannot be reused


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the arrays, once per process for the same (cached, never mutated) dict."""
    hit = _DIGESTS.get(id(arrays))
    if hit is not None and hit[0] is arrays:
        return hit[1]
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode() + arrays[k].tobytes())
    _DIGESTS[id(arrays)] = (arrays, h.hexdigest()[:16])
    return _DIGESTS[id(arrays)][1]


DIGITS_SIZES = {"train": 1078, "val": 359, "test": 360}  # 60/20/20 of 1,797, as train_test_split rounds


def _digits_from_sklearn() -> dict[str, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits (values 0..16 -> 0..255), stratified 60/20/20 with a fixed seed."""
    # lazy: scikit-learn takes ~1.5 s to import; only building the splits needs it (once: they are kept as a file)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # (N, 8, 8, 1)
    y = d.target.astype(np.int64)
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=SPLIT_SEED)
    val, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=SPLIT_SEED)
    out = {}
    for name, part in (("train", train), ("val", val), ("test", test)):
        part = np.sort(part)
        out[f"x_{name}"], out[f"y_{name}"] = x[part], y[part]
    return out


def _digits_valid(arrays: dict[str, np.ndarray]) -> bool:
    return set(arrays) == {f"{a}_{s}" for a in "xy" for s in DIGITS_SPLITS} and all(
        arrays[f"x_{s}"].shape == (n, 8, 8, 1) and arrays[f"x_{s}"].dtype == np.uint8 and arrays[f"y_{s}"].shape == (n,)
        for s, n in DIGITS_SIZES.items())


@lru_cache(maxsize=1)
def _digits_arrays() -> dict[str, np.ndarray]:
    """The digits' splits, kept in the datasets folder after the first build as the generated sets are: building
    them imports scikit-learn, about 2 s of every process that opened `digits`. Unlike a generated set, a folder that
    cannot be written costs only that: the splits are built in memory (they are the package's data)."""
    try:
        return _generated(get_settings().datasets_dir / f"digits-seed{SPLIT_SEED}.npz", _digits_valid,
                          _digits_from_sklearn)
    except DatasetError:  # the folder's: raised before building, unless the save itself failed
        return _digits_from_sklearn()


def digits() -> Dataset:
    return Dataset(
        id="digits", name="Digits (scikit-learn, 8x8)", source="embedded", layout="digits",
        classes=[str(i) for i in range(10)],
        split_loaders={s: (lambda s=s: Split(images=_digits_arrays()[f"x_{s}"], labels=_digits_arrays()[f"y_{s}"]))
                       for s in DIGITS_SPLITS},
        fingerprint_fn=lambda: "digits-" + _digest(_digits_arrays()),
        channels=1, image_size=(8, 8),
    )


def _shapes_path():
    return get_settings().datasets_dir / f"shapes-v{shapes.GENERATOR_VERSION}-seed{SPLIT_SEED}.npz"


def _generated(path, valid: Callable[[dict[str, np.ndarray]], bool],
               make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays cached at `path`; where the file is missing, damaged or not what `valid` expects, `make()`'s,
    written there atomically first."""
    arrays = load_npz(path)
    if arrays is None or not valid(arrays):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # a folder it cannot use fails now, not after generating
            arrays = make()
            save_npz(path, arrays)
        except OSError as e:  # the folder's: generating writes no file
            raise DatasetError(f"the generated dataset cannot be kept in {path.parent} ({e.strerror or e}): point "
                               "CNNVIT_DATASETS_DIR (or CNNVIT_CACHE_DIR) at a folder this user can write") from None
    return arrays


def _xy(images_labels: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    return {"x": images_labels[0], "y": images_labels[1]}


def _has_xy(n: int) -> Callable[[dict[str, np.ndarray]], bool]:
    return lambda arrays: set(arrays) == {"x", "y"} and len(arrays["y"]) == n


def shapes_arrays() -> dict[str, np.ndarray]:
    """Generate `shapes` once into the cache (atomically); later calls read the file."""
    expected = {f"x_{s}" for s in shapes.SPLIT_SIZES} | {f"y_{s}" for s in shapes.SPLIT_SIZES}

    def make() -> dict[str, np.ndarray]:
        arrays = {}
        for split in shapes.SPLIT_SIZES:
            arrays[f"x_{split}"], arrays[f"y_{split}"] = shapes.generate_split(split, seed=SPLIT_SEED)
        return arrays

    return _generated(_shapes_path(), lambda arrays: set(arrays) == expected, make)


_SHAPES_CACHE: dict[str, dict[str, np.ndarray]] = {}


def _shapes_cached() -> dict[str, np.ndarray]:
    key = str(_shapes_path())
    if key not in _SHAPES_CACHE:
        _SHAPES_CACHE[key] = shapes_arrays()
    return _SHAPES_CACHE[key]


def shapes_dataset() -> Dataset:
    return Dataset(
        id="shapes", name="Shapes (generated, 64x64)", source="embedded", layout="shapes",
        classes=list(shapes.CLASSES),
        split_loaders={s: (lambda s=s: Split(images=_shapes_cached()[f"x_{s}"], labels=_shapes_cached()[f"y_{s}"]))
                       for s in shapes.SPLIT_SIZES},
        fingerprint_fn=lambda: "shapes-" + _digest(_shapes_cached()),
        channels=3, image_size=(shapes.SIZE, shapes.SIZE),
    )


SIZED = re.compile(r"(shapes|shapes-textured|shapes-silhouettes|shapes-texture-only)-(\d+)")
SIZED_RANGE = (100, 100_000)  # training images a sized generated dataset may have
GENERATED_TRAIN = 5000  # the training images of `shapes` and of the textured variants as registered


def sized_id(base: str, train_images: int) -> str:
    """The id of a generated dataset with this many training images: `shapes-20000`, `shapes-textured-20000`."""
    return f"{base}-{train_images}"


def parse_sized(dataset_id: str) -> tuple[str, int] | None:
    """`shapes-20000` -> ("shapes", 20000), `shapes-textured-8000` -> ("shapes-textured", 8000); None otherwise."""
    m = SIZED.fullmatch(dataset_id)
    return (m.group(1), int(m.group(2))) if m else None


def generated_base(dataset_id: str) -> str:
    """The registered generated dataset a sized id grows (`shapes-textured-8000` -> `shapes-textured`), else the id."""
    sized = parse_sized(dataset_id)
    return sized[0] if sized else dataset_id


def _check_size(base: str, n: int) -> None:
    low, high = SIZED_RANGE
    if not low <= n <= high:
        raise DatasetError(f"{base} can be generated with {low:,} to {high:,} training images, not {n:,}")


_GROWN: dict[str, dict[str, np.ndarray]] = {}


def _grown(x: np.ndarray, y: np.ndarray, n: int, path: Path,
           make: Callable[[int], tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """The first n of a generated training split whose registered images are (x, y): a slice, or those followed
    by images len(y)..n-1, `make(start)`'s, generated once into the cache at `path` (image i is the same at every
    size, so a larger size already grown or cached serves as well: its first n)."""
    have = len(y)
    if n <= have:
        return {"x": x[:n], "y": y[:n]}

    def first_n(file: Path, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # kept whole, for larger asks
        grown = _GROWN[str(file)] = {"x": np.concatenate([x, extra["x"]]), "y": np.concatenate([y, extra["y"]])}
        return {"x": grown["x"][:n], "y": grown["y"][:n]}

    # a larger size of the same split, grown in this process or cached, holds these n as its first n: an arena at
    # 10,000 and 20,000 images generates images 5,000..19,999 once, not 5,000..9,999 twice
    prefix = path.name[:-len(f"{n}.npz")]
    for key, grown in _GROWN.items():
        if Path(key).parent == path.parent and Path(key).name.startswith(prefix) and len(grown["y"]) >= n:
            return {"x": grown["x"][:n], "y": grown["y"][:n]}
    larger = sorted(int(m.group(1)) for f in path.parent.glob(f"{prefix}*.npz")
                    if (m := re.fullmatch(re.escape(prefix) + r"(\d+)\.npz", f.name)) and int(m.group(1)) > n)
    for size in larger:
        bigger = path.with_name(f"{prefix}{size}.npz")
        if (extra := load_npz(bigger)) is not None and _has_xy(size - have)(extra):
            return first_n(bigger, extra)
    return first_n(path, _generated(path, _has_xy(n - have), lambda: _xy(make(have))))


def _shapes_train(n: int) -> dict[str, np.ndarray]:
    """`shapes`'s first n training images: its 5,000, then images 5,000..n-1 generated once into the cache."""
    base = _shapes_cached()
    have = len(base["y_train"])
    return _grown(base["x_train"], base["y_train"], n, _shapes_path().with_name(
        f"{_shapes_path().stem}-train-{have}-{n}.npz"),
        lambda start: shapes.generate_split("train", seed=SPLIT_SEED, n=n, start=start))


def sized_shapes_dataset(train_images: int) -> Dataset:
    """`shapes` with `train_images` training images (100 to 100,000), for data-size sweeps: image i is the same
    at every size (the first 5,000 are `shapes`'s), and val and test are `shapes`'s own."""
    _check_size("shapes", train_images)
    n = train_images

    def split(s: str) -> Split:
        if s == "train":
            t = _shapes_train(n)
            return Split(images=t["x"], labels=t["y"])
        return Split(images=_shapes_cached()[f"x_{s}"], labels=_shapes_cached()[f"y_{s}"])

    return Dataset(
        id=sized_id("shapes", n), name=f"Shapes (generated, 64x64, {n:,} training images)", source="embedded",
        layout="shapes", classes=list(shapes.CLASSES),
        split_loaders={s: (lambda s=s: split(s)) for s in shapes.SPLIT_SIZES},
        # image i is a pure function of (seed, split, i) and the generator's version: that is the fingerprint
        fingerprint_fn=lambda: f"shapes-v{shapes.GENERATOR_VERSION}-seed{SPLIT_SEED}-train{n}",
        # val and test are `shapes`'s: evaluations of them are shared with it
        split_fingerprint_fn=lambda s: (f"shapes-v{shapes.GENERATOR_VERSION}-seed{SPLIT_SEED}-train{n}:train"
                                        if s == "train" else shapes_dataset().split_fingerprint(s)),
        channels=3, image_size=(shapes.SIZE, shapes.SIZE),
    )


TEXTURED_ID = "shapes-textured"
TEXTURED_VARIANTS = {"shapes-textured": "both", "shapes-silhouettes": "shape", "shapes-texture-only": "texture"}
_TEXTURED: dict[str, dict[str, np.ndarray]] = {}


def _textured_split(split: str, variant: str) -> dict[str, np.ndarray]:
    """One split of a cue-conflict dataset, generated once into the cache (its own file: a shape-bias run needs
    only the three small bias splits, not the 5,000 training images). The bias splits are every variant's."""
    name = f"{TEXTURED_ID}-{variant}" if variant != "both" and split not in cue_conflict.BIAS_SPLITS else TEXTURED_ID
    path = get_settings().datasets_dir / (
        f"{name}-v{cue_conflict.GENERATOR_VERSION}-seed{SPLIT_SEED}-{split}.npz")
    key = str(path)
    if key not in _TEXTURED:
        _TEXTURED[key] = _generated(path, _has_xy(cue_conflict.SPLIT_SIZES[split]), lambda: _xy(
            cue_conflict.generate_split(split, seed=SPLIT_SEED, variant=variant)))
    return _TEXTURED[key]


def _textured_train(dataset_id: str, n: int) -> dict[str, np.ndarray]:
    """The first n training images of a textured variant: its 5,000, then images 5,000..n-1 generated once into
    the cache (image i is the same at every size)."""
    variant = TEXTURED_VARIANTS[dataset_id]
    base = _textured_split("train", variant)
    path = get_settings().datasets_dir / (
        f"{dataset_id}-v{cue_conflict.GENERATOR_VERSION}-seed{SPLIT_SEED}-train-{len(base['y'])}-{n}.npz")
    return _grown(base["x"], base["y"], n, path, lambda start: cue_conflict.generate_split(
        "train", seed=SPLIT_SEED, n=n, variant=variant, start=start))


def textured_shapes_dataset(dataset_id: str = TEXTURED_ID, train_images: int | None = None) -> Dataset:
    """`shapes-textured` (core/data/cue_conflict.py): train, val and test with agreeing shape and texture, and
    the splits `conflict`, `shape-only` and `texture-only` that measure shape bias; `shapes-silhouettes` and
    `shapes-texture-only`: one cue in train, val and test, the same bias splits. With `train_images`, the same
    dataset with that many training images (`shapes-textured-20000`), for data-size sweeps."""
    variant = TEXTURED_VARIANTS[dataset_id]
    version = f"{TEXTURED_ID}-v{cue_conflict.GENERATOR_VERSION}-seed{SPLIT_SEED}"
    own = version if variant == "both" else f"{version}-{variant}"
    if train_images is not None:
        _check_size(dataset_id, train_images)
    sized = f"-train{train_images}" if train_images is not None else ""

    def split_fingerprint(s: str) -> str:
        if s == "train":
            return f"{own}{sized}:train"
        return f"{version}:{s}" if s in cue_conflict.BIAS_SPLITS else f"{own}:{s}"

    def split(s: str) -> Split:
        arrays = _textured_train(dataset_id, train_images) if s == "train" and train_images else \
            _textured_split(s, variant)
        return Split(images=arrays["x"], labels=arrays["y"])

    what = {"both": "class textures", "shape": "flat silhouettes", "texture": "class textures, no silhouette"}
    size = f", {train_images:,} training images" if train_images is not None else ""
    return Dataset(
        id=sized_id(dataset_id, train_images) if train_images is not None else dataset_id,
        name=f"Shapes with {what[variant]} (generated, 64x64{size}; cue-conflict splits)",
        source="embedded", layout="shapes", classes=list(cue_conflict.CLASSES),
        split_loaders={s: (lambda s=s: split(s)) for s in cue_conflict.SPLIT_SIZES},
        # image i of a split is a pure function of (seed, split, variant, i) and the generator's version
        fingerprint_fn=lambda: own + sized,
        split_fingerprint_fn=split_fingerprint,
        channels=3, image_size=(cue_conflict.SIZE, cue_conflict.SIZE),
    )
