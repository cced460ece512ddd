"""Image folders on disk in the layouts we recognise: detect the layout, validate it, build a Dataset."""
from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import NoReturn

import numpy as np

from core.data import imagenet16
from core.data.base import Dataset, Split, fingerprint_files, fingerprint_text_files
from core.data.decode import header_size
from core.errors import DatasetError, ImageDecodeError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
WNID = re.compile(r"^n\d{8}$")
INTEGER = re.compile(r"^-?\d+$")
SPLIT_DIRS = ("train", "val", "test")
SPLIT_ALIASES = {"valid": "val", "validation": "val"}  # Roboflow's and many Kaggle sets' name for val/
CSV_SPLITS = {**{s: s for s in SPLIT_DIRS}, **SPLIT_ALIASES}  # a split column's values, any case
KAGGLE_VAL = "ILSVRC/Data/CLS-LOC/val"
KAGGLE_TRAIN = "ILSVRC/Data/CLS-LOC/train"
UNLABELLED_CSVS = {"test.csv", "sample_submission.csv"}  # Kaggle ships these next to train.csv, without labels
LAYOUTS = {
    "tiny-imagenet": "wnids.txt + words.txt + train/<wnid>/images/ + val/images/ + val/val_annotations.txt",
    "imagenet-kaggle": f"LOC_synset_mapping.txt + LOC_val_solution.csv + {KAGGLE_VAL}/*.JPEG",
    "csv-folder": "train.csv or labels.csv with columns image,label + the images it names",
    "cue-conflict": "<shape>/<shape><i>-<texture><j>.png in the 16-class-ImageNet folders (airplane/ ... truck/), "
                    "as texture-vs-shape and model-vs-human distribute the stimuli",
    "imagenet-folder": "<wnid>/*.JPEG (as ImageFolder reads it), or {train,val,test}/<wnid>/*.JPEG",
    "image-folder": "<class>/*.jpg, or {train,val,test}/<class>/*.jpg (val/ may be valid/ or validation/)",
}


@dataclass
class _Found:
    """What a layout loader found: classes, labelled files per split, the files that label them."""

    classes: list[str]
    splits: dict[str, tuple[list[Path], list[int]]]
    annotations: list[Path]
    wnids: list[str] | None = None
    image_size: tuple[int, int] | None = None
    # per split, the annotation files that define its labels and the class list; absent: all of `annotations`
    labelled_by: dict[str, list[Path]] = field(default_factory=dict)
    wnid_groups: list[list[str]] | None = None  # per class, the ImageNet wnids it pools (16-class-ImageNet)


def _fail(message: str) -> NoReturn:
    raise DatasetError(message)


def _rel(root: Path, p: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _hidden(name: str) -> bool:
    # dot-files include macOS "._x.jpg" resource forks, which have an image extension but are not images
    return name.startswith(".") or name == "__MACOSX"


def _is_image_name(name: str) -> bool:
    return not _hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTS


def _inside(root: Path, p: Path) -> bool:
    """Whether p, symlinks resolved, stays under root."""
    try:
        return p.resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop; ValueError: a NUL in the path
        return False


def _link_refused(root: Path, link: Path) -> NoReturn:
    """Refuse a symbolic link met while listing a dataset, naming it and saying what is wrong with it."""
    where = _rel(root, link)
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        _fail(f"{where} is a link that leads nowhere (a missing target or a loop of links); remove it")
    if not target.is_relative_to(root):
        _fail(f"{where} links outside the dataset folder {root} (to {target}); copy what it points to into the folder")
    if target.is_dir() and link.parent.resolve().is_relative_to(target):
        _fail(f"{where} is a link to {_rel(root, target) or '.'}, a folder that contains it: a loop; remove the link")
    _fail(f"{where} is a link to the folder {_rel(root, target)}; links to folders are not followed inside a "
          "dataset: put the folder itself there")


def _entry_ok(root: Path, e: os.DirEntry) -> bool:
    """A regular image file, or a symlink to one that stays inside root (we never read outside the dataset);
    a link leading out of root or nowhere is refused, by name, rather than silently left out."""
    if not _is_image_name(e.name):
        return False
    if e.is_file(follow_symlinks=False):
        return True
    if e.is_symlink():
        if _inside(root, Path(e.path)) and os.path.isfile(e.path):  # os.path: False, not an error, on a loop
            return True
        _link_refused(root, Path(e.path))
    return False


def _listable(root: Path, d: Path) -> bool:
    """Whether d is a folder we may list: one that, links resolved, is inside root."""
    if not d.is_dir():
        return False
    if not _inside(root, d):
        _fail(f"{_rel(root, d)} links outside the dataset folder {root}; move or copy the data into it")
    return True


def _images_in(root: Path, d: Path) -> dict[str, Path]:
    """Image files directly in d, by file name."""
    if not _listable(root, d):
        return {}
    with os.scandir(d) as entries:
        return {e.name: Path(e.path) for e in entries if _entry_ok(root, e)}


def _walk_images(root: Path, d: Path) -> list[Path]:
    """Image files anywhere under d, sorted. A link to a folder is refused, by name, never followed:
    no loops, no escapes, and nothing behind a link silently left out."""
    found: list[Path] = []
    todo = [d] if _listable(root, d) else []
    while todo:
        with os.scandir(todo.pop()) as entries:
            for e in entries:
                if _hidden(e.name):
                    continue
                if e.is_dir(follow_symlinks=False):
                    todo.append(Path(e.path))
                elif e.is_symlink() and os.path.isdir(e.path):
                    _link_refused(root, Path(e.path))
                elif _entry_ok(root, e):
                    found.append(Path(e.path))
    return sorted(found)


def _subdirs(d: Path, root: Path | None = None) -> list[Path]:
    """Real (non-symlink, non-hidden) sub-folders of d, sorted by name. With `root`, a link to a folder
    among them is refused by name instead of being left out."""
    if not d.is_dir() or d.is_symlink():
        return []
    subs = []
    for p in d.iterdir():
        if _hidden(p.name) or not p.is_dir():
            continue
        if p.is_symlink():
            if root is not None:
                _link_refused(root, p)
            continue
        subs.append(p)
    return sorted(subs)


def _sort_classes(names: set[str] | list[str]) -> list[str]:
    """Sorted class names; numerically when all are integers, so 1, 2, 10 and not 1, 10, 2."""
    names = set(names)
    if names and all(INTEGER.match(n) for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names)


def _read_text(root: Path, path: Path) -> str:
    """A text or CSV file's contents as UTF-8 (an Excel BOM allowed); any other encoding is refused, not guessed."""
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        pos = bom + e.start
        line = data.count(b"\n", 0, pos) + 1
        _fail(f"{_rel(root, path)} line {line} is not UTF-8 text (byte 0x{data[pos]:02x} at position {pos}); "
              "save it as UTF-8")


def _read_csv(root: Path, table: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV's stripped header and its non-blank rows as (line, cells); a malformed CSV is refused, named."""
    reader = csv.reader(io.StringIO(_read_text(root, table), newline=""))
    rows = []
    try:
        header = [h.strip() for h in next(reader, [])]
        for row in reader:
            if any(c.strip() for c in row):
                rows.append((reader.line_num, row))
    except csv.Error as e:  # e.g. a field over csv.field_size_limit()
        _fail(f"{_rel(root, table)} line {reader.line_num}: {e}")
    return header, rows


def _read_names(root: Path, path: Path) -> dict[str, str]:
    """wnid -> first human-readable name, in file order, from words.txt (tab) or LOC_synset_mapping.txt (space)."""
    names: dict[str, str] = {}
    for line in _read_text(root, path).splitlines():
        parts = line.strip().split(None, 1)
        if parts:
            names[parts[0]] = (parts[1].split(",")[0].strip() if len(parts) > 1 else "") or parts[0]
    return names


def _first_size(paths: list[Path]) -> tuple[int, int] | None:
    """(H, W) of the first image, read from its header by the safe decoder's rules, without decoding pixels."""
    try:
        w, h = header_size(paths[0])
        return (h, w)
    except ImageDecodeError:  # an unreadable (or refused: a bomb) file is reported when it is decoded, not here
        return None


def _need_columns(table: Path, header: list[str], wanted: list[str]) -> None:
    """Refuse a CSV without the columns we read, naming the missing ones and the ones it has."""
    absent = [c for c in wanted if c not in header]
    if absent:
        _fail(f"{table.name} has no {', '.join(absent)} column; its columns: {', '.join(header) or '(none)'}")


def _require(root: Path, what: str, rels: list[str]) -> None:
    """Refuse a folder that has some of a layout's marker files but not all of them, naming the missing ones."""
    missing = [r for r in rels if not (root / r).exists()]
    if missing:
        present = [r for r in rels if r not in missing]
        has = f" (it has {', '.join(present)})" if present else ""
        _fail(f"{root} looks like {what}{has} but is missing {', '.join(missing)}")


def _scan_classes(root: Path, split_dir: Path, index: dict[str, int], inner: str = "") -> tuple[list[Path], list[int]]:
    """Images of every class folder in split_dir (under `inner` inside each), labelled by index."""
    paths: list[Path] = []
    labels: list[int] = []
    folders = _subdirs(split_dir, root)
    for d in folders:
        if d.name not in index:
            _fail(f"folder {_rel(root, d)} is not one of the {len(index)} classes of this dataset")
    for d in sorted(folders, key=lambda d: index[d.name]):  # label order, so 1, 2, 10 and not 1, 10, 2
        files = _walk_images(root, d / inner if inner else d)
        if not files:
            _fail(f"class folder {_rel(root, d / inner if inner else d)} has no images")
        paths += files
        labels += [index[d.name]] * len(files)
    return paths, labels


def _annotated(root: Path, ann: Path, image_dir: Path, rows: list[tuple[int, str, str]], index: dict[str, int]):
    """The split an annotation file describes: rows of (line, file name in image_dir, wnid)."""
    available = _images_in(root, image_dir)  # one listing instead of a stat per row: 50k rows in ImageNet val
    labelled: list[tuple[Path, int]] = []
    missing: list[str] = []
    for line, name, wnid in rows:
        if wnid not in index:
            _fail(f"{_rel(root, ann)} line {line}: label {wnid!r} is not one of the {len(index)} classes")
        if name in available:
            labelled.append((available[name], index[wnid]))
        else:
            missing.append(name)
    if missing:
        where = _rel(root, image_dir)
        _fail(f"{_rel(root, ann)} names {len(missing)} image(s) not in {where}: {', '.join(missing[:5])}")
    if not labelled:
        _fail(f"{_rel(root, ann)} labels no images")
    labelled.sort()
    return [p for p, _ in labelled], [y for _, y in labelled]


def _tiny_imagenet(root: Path) -> _Found:
    """Tiny ImageNet as distributed; test/ has no labels, so it is not a split."""
    _require(root, "Tiny ImageNet", ["wnids.txt", "val/val_annotations.txt", "val/images"])
    listed = _read_text(root, root / "wnids.txt").split()
    if not listed:
        _fail(f"{root / 'wnids.txt'} lists no wnids")
    bad = [w for w in listed if not WNID.match(w)]
    if bad:
        _fail(f"wnids.txt: {bad[0]!r} is not a WordNet id (like n01443537)")
    wnids = sorted(set(listed))  # sorted, as torchvision's ImageFolder orders them
    index = {w: i for i, w in enumerate(wnids)}
    words = root / "words.txt"
    names = _read_names(root, words) if words.is_file() else {}  # optional: without it the wnid is the name
    splits = {}
    if (root / "train").is_dir():  # optional, so an evaluation-only copy may drop the 100k training images
        for w in wnids:
            if not (root / "train" / w).is_dir():
                _fail(f"Tiny ImageNet class folder train/{w} is missing")
        splits["train"] = _scan_classes(root, root / "train", index, inner="images")
    ann = root / "val" / "val_annotations.txt"
    rows = []
    for i, line in enumerate(_read_text(root, ann).splitlines(), start=1):
        if line.strip():
            cols = line.split("\t")
            if len(cols) < 2:
                _fail(f"val/val_annotations.txt line {i}: expected file<TAB>wnid<TAB>box, got {line[:80]!r}")
            rows.append((i, cols[0].strip(), cols[1].strip()))
    splits["val"] = _annotated(root, ann, root / "val" / "images", rows, index)
    class_files = [root / "wnids.txt"] + ([words] if words.is_file() else [])
    labelled_by = {"train": class_files, "val": class_files + [ann]}  # train's labels are its folder names
    annotations = [class_files[0], ann, *class_files[1:]]  # this order keeps the whole-dataset fingerprint
    return _Found([names.get(w, w) for w in wnids], splits, annotations, wnids, (64, 64), labelled_by)


def _imagenet_kaggle(root: Path) -> _Found:
    """ILSVRC2012 in the Kaggle localization-challenge layout; class order is LOC_synset_mapping.txt's."""
    _require(root, "the Kaggle ImageNet layout", ["LOC_synset_mapping.txt", "LOC_val_solution.csv", KAGGLE_VAL])
    mapping = root / "LOC_synset_mapping.txt"
    names = _read_names(root, mapping)
    if not names:
        _fail("LOC_synset_mapping.txt lists no classes")
    wnids = list(names)
    index = {w: i for i, w in enumerate(wnids)}
    ann = root / "LOC_val_solution.csv"
    header, table = _read_csv(root, ann)
    _need_columns(ann, header, ["ImageId", "PredictionString"])
    ii, pi = header.index("ImageId"), header.index("PredictionString")
    rows = []
    for line, row in table:
        image = row[ii].strip() if ii < len(row) else ""
        pred = row[pi].split() if pi < len(row) else []
        if not pred:
            _fail(f"LOC_val_solution.csv line {line}: no label for {image!r}")
        rows.append((line, f"{image}.JPEG", pred[0]))  # the label is the first box's wnid
    splits = {"val": _annotated(root, ann, root / KAGGLE_VAL, rows, index)}
    if (root / KAGGLE_TRAIN).is_dir():
        splits = {"train": _scan_classes(root, root / KAGGLE_TRAIN, index), **splits}
    labelled_by = {"train": [mapping], "val": [mapping, ann]}
    return _Found(list(names.values()), splits, [mapping, ann], wnids, None, labelled_by)


def _find_csv(root: Path) -> Path | None:
    """The labelled CSV of a csv-folder: train.csv, labels.csv, or the only other CSV if it has image/label columns."""
    for name in ("train.csv", "labels.csv"):
        if (root / name).is_file() and _inside(root, root / name):
            return root / name
    others = [p for p in root.glob("*.csv") if p.name not in UNLABELLED_CSVS and p.is_file() and _inside(root, p)]
    if len(others) == 1:
        with open(others[0], newline="", encoding="utf-8-sig", errors="replace") as f:  # a peek; loading is strict
            try:
                header = {h.strip() for h in next(csv.reader(f), [])}
            except csv.Error:  # not a CSV we could read, so not what makes this a csv-folder
                return None
        if header & {"image", "label"}:  # a stray results.csv must not turn an image folder into a csv-folder
            return others[0]
    return None


def _csv_image(root: Path, where: str, value: str) -> Path:
    """The image a CSV row names, refused if it leaves the dataset folder or is not an image file."""
    if "\0" in value:
        _fail(f"{where}: {value!r} contains a NUL byte")
    if PurePosixPath(value.replace("\\", "/")).is_absolute() or PureWindowsPath(value).drive:
        _fail(f"{where}: {value} is an absolute path; paths must be relative to {root}")
    p = root / value.replace("\\", "/")
    if not _inside(root, p):
        _fail(f"{where}: {value} points outside the dataset folder {root}")
    if not _is_image_name(p.name):
        _fail(f"{where}: {value} is not an image file ({', '.join(sorted(IMAGE_EXTS))})")
    return p


def _stratified(raw_labels: list[str]) -> dict[str, np.ndarray]:
    """Rows of a deterministic 80/20 stratified split (as the leaves study), or one split "all" when impossible."""
    n, classes = len(raw_labels), set(raw_labels)
    n_val = math.ceil(0.2 * n)  # how sklearn sizes test_size=0.2
    if min(Counter(raw_labels).values()) < 2 or n_val < len(classes) or n - n_val < len(classes):
        return {"all": np.arange(n)}  # sklearn refuses: a class of one, or fewer slots than classes on a side
    # lazy: scikit-learn takes ~1.5 s to import; only building a split needs it
    from sklearn.model_selection import train_test_split

    # stratify on the raw label strings, as the study did: sklearn's per-class order, hence the split, depends on them
    train, val = train_test_split(np.arange(n), test_size=0.2, stratify=np.asarray(raw_labels), random_state=0)
    return {"train": np.sort(train), "val": np.sort(val)}


def _csv_folder(root: Path) -> _Found:
    """A folder of images labelled by a CSV (Kaggle "Classify Leaves"); test.csv has no labels and is ignored."""
    table = _find_csv(root)
    assert table is not None  # detect_layout only picks this layout when there is one
    paths: list[Path] = []
    raw: list[str] = []
    split_of: list[str] = []
    missing: list[str] = []
    header, table_rows = _read_csv(root, table)
    _need_columns(table, header, ["image", "label"])
    ii, li = header.index("image"), header.index("label")
    si = header.index("split") if "split" in header else None
    for line, row in table_rows:
        where = f"{table.name} line {line}"
        cells = [(row[i].strip() if i is not None and i < len(row) else "") for i in (ii, li, si)]
        if not cells[0] or not cells[1] or (si is not None and not cells[2]):
            _fail(f"{where}: empty image, label or split")
        p = _csv_image(root, where, cells[0])
        if not p.is_file():  # _csv_image made sure that, links resolved, it is inside root
            missing.append(cells[0])
        paths.append(p)
        raw.append(cells[1])
        if si is not None and cells[2].lower() not in CSV_SPLITS:  # a typo would silently be a split of its own
            _fail(f"{where}: split {cells[2]!r} is not one of {', '.join(CSV_SPLITS)}")
        split_of.append(CSV_SPLITS.get(cells[2].lower(), cells[2]))  # valid, validation, VAL: all "val"
    if missing:
        _fail(f"{table.name} names {len(missing)} image(s) that do not exist: {', '.join(missing[:5])}")
    if not paths:
        _fail(f"{table.name} lists no images")
    classes = _sort_classes(raw)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for c in raw])
    if si is not None:  # the CSV's own split column wins over ours
        order = {s: i for i, s in enumerate(SPLIT_DIRS)}
        names = sorted(set(split_of), key=lambda s: (order.get(s, len(order)), s))
        rows = {s: np.array([i for i, v in enumerate(split_of) if v == s]) for s in names}
    else:
        rows = _stratified(raw)
    splits = {s: ([paths[i] for i in r], labels[r].tolist()) for s, r in rows.items()}
    return _Found(classes, splits, [table], None, _first_size(paths))


def _split_dirs(root: Path, names: tuple[str, ...] = SPLIT_DIRS) -> dict[str, Path]:
    """Real split folders under root by split name, valid/ and validation/ standing for val/; two for one is refused."""
    found: dict[str, Path] = {}
    for folder in (*names, *(a for a, s in SPLIT_ALIASES.items() if s in names)):
        d = root / folder
        if d.is_dir() and not d.is_symlink():
            split = SPLIT_ALIASES.get(folder, folder)
            if split in found:
                _fail(f"{root} has both {found[split].name}/ and {folder}/ as its {split} split; keep one of them")
            found[split] = d
    return {s: found[s] for s in names if s in found}  # in split order, aliases included


def _wnid_splits(root: Path) -> dict[str, Path]:
    """The image-folder splits ({train,val,test}/, or the root itself as "all") when every class folder in them
    is a WordNet id: class folders named n01440764/... are WordNet ids in any image-folder layout (timm's and
    torchvision's ImageFolder read the root-level one)."""
    dirs = _image_folder_splits(root)
    if dirs and all(WNID.match(sub.name) for d in dirs.values() for sub in _subdirs(d)):
        return dirs
    return {}


def _imagenet_folder(root: Path) -> _Found:
    """ImageNet with one folder per wnid; names from LOC_synset_mapping.txt or words.txt when present."""
    dirs = _wnid_splits(root)
    wnids = sorted({d.name for s in dirs.values() for d in _subdirs(s)})
    index = {w: i for i, w in enumerate(wnids)}
    names_file = next((root / n for n in ("LOC_synset_mapping.txt", "words.txt") if (root / n).is_file()), None)
    names = _read_names(root, names_file) if names_file else {}
    splits = {s: _scan_classes(root, d, index) for s, d in dirs.items()}
    return _Found([names.get(w, w) for w in wnids], splits, [names_file] if names_file else [], wnids, None)


def _is_cue_conflict(root: Path) -> bool:
    """Class folders that are all 16-class-ImageNet categories, holding at least one stimulus-named image."""
    cats = set(imagenet16.categories())
    subs = _subdirs(root)
    return bool(subs) and all(d.name in cats for d in subs) and any(
        imagenet16.parse(name) for d in subs for name in _images_in(root, d))


def _cue_conflict(root: Path) -> _Found:
    """The published cue-conflict stimuli: one split, `conflict`, labelled by shape (the folder); the images
    whose shape and texture agree are left out, as the toolbox leaves them out of the shape bias."""
    classes = imagenet16.categories()
    index = {c: i for i, c in enumerate(classes)}
    paths: list[Path] = []
    labels: list[int] = []
    misnamed: list[str] = []
    for d in _subdirs(root, root):
        for name, path in sorted(_images_in(root, d).items()):
            cues = imagenet16.parse(name)
            if cues is None or cues[0] != d.name:
                misnamed.append(_rel(root, path))
            elif cues[0] != cues[1]:
                paths.append(path)
                labels.append(index[d.name])
    if misnamed:
        _fail(f"{len(misnamed)} image(s) in {root} are not named <shape><i>-<texture><j> inside their shape's "
              f"folder, as the cue-conflict stimuli are (first: {misnamed[0]}); move them out or rename them")
    if not paths:
        _fail(f"{root} has no cue-conflict image: in every file name the shape and the texture are the same class")
    return _Found(classes, {"conflict": (paths, labels)}, [], None, _first_size(paths),
                  wnid_groups=[imagenet16.wnids(c) for c in classes])


def texture_labels(dataset: Dataset, split: str) -> np.ndarray:
    """The texture class of each image of a cue-conflict folder's split, parsed from its file name."""
    index = {c: i for i, c in enumerate(dataset.classes)}
    return np.array([index[imagenet16.parse(p.name)[1]] for p in dataset.split(split).paths], dtype=np.int64)


def _image_folder_splits(root: Path) -> dict[str, Path]:
    """{train,val,test}/ folders holding class folders, else the root itself as split "all"."""
    present = _split_dirs(root)
    if present:
        # a split folder with no class folders (Kaggle's flat test/) has no labels, so it is not a split
        return {s: d for s, d in present.items() if _subdirs(d)}
    return {"all": root} if _subdirs(root) else {}


def _image_folder(root: Path) -> _Found:
    """Generic class-per-folder images; one class order (the union over splits) for every split."""
    dirs = _image_folder_splits(root)
    classes = _sort_classes({d.name for s in dirs.values() for d in _subdirs(s)})
    index = {c: i for i, c in enumerate(classes)}
    if not any(_walk_images(root, d) for s in dirs.values() for d in _subdirs(s)):
        _no_layout(root)  # class-looking folders but not one image: probably not a dataset at all
    splits = {s: _scan_classes(root, d, index) for s, d in dirs.items()}
    first = next(paths for paths, _ in splits.values() if paths)
    return _Found(classes, splits, [], None, _first_size(first))


def _no_layout(root: Path) -> NoReturn:
    loose = len(_images_in(root, root))
    hint = f"it holds {loose} image(s) but no class folders; " if loose else "no images found; "
    supported = "; ".join(f"{name} ({shape})" for name, shape in LAYOUTS.items())
    _fail(f"{root} is in no supported layout: {hint}supported layouts: {supported}")


def _check_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        _fail(f"no such folder: {path}")
    if not path.is_dir():
        _fail(f"{path} is a file, not a dataset folder")
    return path.resolve()


def detect_layout(root: Path) -> str:
    """The name of root's layout (one of LAYOUTS), or a DatasetError saying why none fits."""
    root = _check_root(root)
    # the most specific markers first: a folder with some of them is refused by that layout, never a generic one
    if (root / "wnids.txt").is_file() or (root / "val" / "val_annotations.txt").is_file():
        return "tiny-imagenet"
    if (root / "ILSVRC").is_dir() or ((root / "LOC_val_solution.csv").is_file() and not _wnid_splits(root)):
        return "imagenet-kaggle"
    if _find_csv(root):
        return "csv-folder"
    if _is_cue_conflict(root):
        return "cue-conflict"
    if _wnid_splits(root):
        return "imagenet-folder"
    if _image_folder_splits(root):
        return "image-folder"
    _no_layout(root)


LOADERS = {
    "tiny-imagenet": _tiny_imagenet,
    "imagenet-kaggle": _imagenet_kaggle,
    "csv-folder": _csv_folder,
    "cue-conflict": _cue_conflict,
    "imagenet-folder": _imagenet_folder,
    "image-folder": _image_folder,
}


def load_folder(root: str | Path) -> Dataset:
    """Detect root's layout, validate it (listing files, decoding none) and build its Dataset."""
    root = _check_root(root)
    try:
        layout = detect_layout(root)
        found = LOADERS[layout](root)
    except OSError as e:  # unreadable folders and files: a user's problem to fix, not a crash
        raise DatasetError(f"cannot read {e.filename or root}: {e.strerror or e}") from None
    except (ValueError, csv.Error) as e:  # last line of defence (UnicodeDecodeError is a ValueError)
        raise DatasetError(f"cannot load {root}: {e}") from None
    return _dataset(root, layout, found)


def _digest(root: Path, images: list[Path], annotations: list[Path], head: list[str], classes: list[str]) -> str:
    """Stats of images + annotations, keyed by `head`, the annotations' contents and the class list."""
    try:
        extra = "\n".join([*head, fingerprint_text_files(annotations), *classes])
        return fingerprint_files(root, images + annotations, extra=extra)
    except OSError as e:
        raise DatasetError(f"{root} changed since it was loaded ({e}); load it again") from None


def _dataset(root: Path, layout: str, found: _Found) -> Dataset:
    files = [p for paths, _ in found.splits.values() for p in paths]
    split_digests: dict[str, str] = {}

    def fingerprint() -> str:
        # lazy: stats every image (100k for Tiny ImageNet), so only when a result is cached or compared
        return _digest(root, files, found.annotations, [layout], found.classes)  # the digest it always was

    def split_fingerprint(name: str) -> str:
        # this split's images and the files that define its labels and the class list (label indices depend on it);
        # nothing of any other split is listed or stat'ed, so a val run never touches train/
        if name not in split_digests:
            images, labelled_by = found.splits[name][0], found.labelled_by.get(name, found.annotations)
            split_digests[name] = _digest(root, images, labelled_by, [layout, f"split={name}"], found.classes)
        return split_digests[name]

    return Dataset(
        id=str(root),
        name=f"{root.name} ({layout})",
        source="folder",
        layout=layout,
        classes=found.classes,
        split_loaders={s: (lambda p=p, y=y: Split(paths=list(p), labels=y)) for s, (p, y) in found.splits.items()},
        fingerprint_fn=fingerprint,
        split_fingerprint_fn=split_fingerprint,
        channels=3,
        image_size=found.image_size,
        wnids=found.wnids,
        wnid_groups=found.wnid_groups,
        root=root,
    )
