"""Folder datasets: each layout detected and loaded from a tiny tree in its official shape, broken trees refused."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import folders
from core.data.folders import detect_layout, load_folder
from core.errors import DatasetError, ImageDecodeError

GOLDFISH, SALAMANDER, BULLFROG = "n01443537", "n01629819", "n01641577"
WORDS = {
    GOLDFISH: "goldfish, Carassius auratus",
    SALAMANDER: "European fire salamander, Salamandra salamandra",
    BULLFROG: "bullfrog, Rana catesbeiana",
    "n00001740": "entity",  # words.txt covers all of WordNet; only our wnids are used
}


def _img(path: Path, size=(64, 64), color=(200, 30, 30)) -> Path:
    """A real little image (PIL size is (W, H))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def _tiny(root: Path) -> Path:
    """Tiny ImageNet: 3 wnids (listed unsorted), 2 train images each, 6 annotated val images, unlabelled test/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text(f"{BULLFROG}\n{GOLDFISH}\n{SALAMANDER}\n")
    (root / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in WORDS.items()))
    for w in (GOLDFISH, SALAMANDER, BULLFROG):
        for i in range(2):
            _img(root / "train" / w / "images" / f"{w}_{i}.JPEG")
        (root / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t10\t10\n")
    val = [GOLDFISH, SALAMANDER, BULLFROG, SALAMANDER, BULLFROG, GOLDFISH]
    for i in range(len(val)):
        _img(root / "val" / "images" / f"val_{i}.JPEG")
    lines = [f"val_{i}.JPEG\t{w}\t0\t0\t63\t63\n" for i, w in enumerate(val)]
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    _img(root / "test" / "images" / "test_0.JPEG")
    return root


def _kaggle(root: Path, train: bool = False) -> Path:
    """Kaggle ImageNet localization layout with 3 classes and 4 val images."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "LOC_synset_mapping.txt").write_text(f"{GOLDFISH} {WORDS[GOLDFISH]}\n{SALAMANDER} {WORDS[SALAMANDER]}\n"
                                                 f"{BULLFROG} {WORDS[BULLFROG]}\n")
    rows = {"ILSVRC2012_val_00000001": f"{BULLFROG} 1 2 30 40 {GOLDFISH} 5 5 9 9",
            "ILSVRC2012_val_00000002": f"{GOLDFISH} 0 0 10 10",
            "ILSVRC2012_val_00000003": f"{SALAMANDER} 0 0 10 10",
            "ILSVRC2012_val_00000004": f"{GOLDFISH} 0 0 10 10"}
    lines = "".join(f"{k},{v}\n" for k, v in rows.items())
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + lines)
    for k in rows:
        _img(root / "ILSVRC/Data/CLS-LOC/val" / f"{k}.JPEG", size=(50, 40))
    if train:
        for w in (GOLDFISH, BULLFROG):
            _img(root / "ILSVRC/Data/CLS-LOC/train" / w / f"{w}_1.JPEG")
    return root


def _leaves(root: Path, per_class: int = 5, labels=("maclura_pomifera", "abies_concolor", "ulmus_rubra")) -> Path:
    """Classify Leaves shape: images/N.jpg, train.csv (image,label), test.csv (image only)."""
    lines, n = [], 0
    for lab in labels:
        for _ in range(per_class):
            _img(root / "images" / f"{n}.jpg", size=(32, 24))
            lines.append(f"images/{n}.jpg,{lab}\n")
            n += 1
    (root / "train.csv").write_text("image,label\n" + "".join(lines))
    _img(root / "images" / f"{n}.jpg", size=(32, 24))
    (root / "test.csv").write_text(f"image\nimages/{n}.jpg\n")
    return root


def _classes(root: Path, names, per_class: int = 2, split: str | None = None) -> Path:
    for c in names:
        for i in range(per_class):
            _img((root / split if split else root) / c / f"{i}.png", size=(20, 10))
    return root


# --- each layout loads -------------------------------------------------------------------------------


def test_tiny_imagenet(tmp_path):
    ds = load_folder(_tiny(tmp_path / "tiny-imagenet-200"))
    assert detect_layout(ds.root) == ds.layout == "tiny-imagenet"
    assert ds.wnids == [GOLDFISH, SALAMANDER, BULLFROG]  # sorted, not wnids.txt's order
    assert ds.classes == ["goldfish", "European fire salamander", "bullfrog"]
    assert ds.splits == ["train", "val"]  # test/ has no labels
    assert (len(ds.split("train")), len(ds.split("val"))) == (6, 6)
    assert ds.image_size == (64, 64) and ds.channels == 3 and ds.source == "folder"
    assert ds.id == str(tmp_path.resolve() / "tiny-imagenet-200") and ds.name == "tiny-imagenet-200 (tiny-imagenet)"
    val = ds.split("val")
    by_name = {Path(val.path(i)).name: int(val.labels[i]) for i in range(len(val))}
    assert by_name["val_3.JPEG"] == 1 and by_name["val_4.JPEG"] == 2 and by_name["val_5.JPEG"] == 0
    train = ds.split("train")
    assert [int(train.labels[i]) for i in range(len(train)) if BULLFROG in train.path(i)] == [2, 2]
    img = val.load(0)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)


def test_imagenet_kaggle(tmp_path):
    ds = load_folder(_kaggle(tmp_path / "imagenet", train=True))
    assert ds.layout == "imagenet-kaggle" and ds.image_size is None
    assert ds.classes == ["goldfish", "European fire salamander", "bullfrog"]
    assert ds.wnids == [GOLDFISH, SALAMANDER, BULLFROG]
    assert set(ds.splits) == {"train", "val"} and ds.default_split() == "val"
    val = ds.split("val")
    assert [Path(val.path(i)).stem[-1] for i in range(4)] == ["1", "2", "3", "4"]
    assert val.labels.tolist() == [2, 0, 1, 0]  # image 1's label is its first box's wnid (bullfrog)
    assert ds.split("train").labels.tolist() == [0, 2]
    assert val.load(0).shape == (40, 50, 3)


def test_imagenet_folder_with_and_without_names(tmp_path):
    root = _classes(tmp_path / "inet", [BULLFROG, GOLDFISH], split="val")
    _classes(root, [SALAMANDER], split="train")
    (root / "LOC_synset_mapping.txt").write_text(f"{GOLDFISH} {WORDS[GOLDFISH]}\n{BULLFROG} {WORDS[BULLFROG]}\n")
    ds = load_folder(root)
    assert ds.layout == "imagenet-folder" and ds.splits == ["train", "val"]
    assert ds.wnids == [GOLDFISH, SALAMANDER, BULLFROG]
    assert ds.classes == ["goldfish", SALAMANDER, "bullfrog"]  # not in the names file: the wnid is the name
    assert ds.split("val").labels.tolist() == [0, 0, 2, 2] and ds.split("train").labels.tolist() == [1, 1]
    (root / "LOC_synset_mapping.txt").unlink()
    assert load_folder(root).classes == [GOLDFISH, SALAMANDER, BULLFROG]


def test_wnid_class_folders_at_the_root_are_wordnet_ids(tmp_path):
    # the layout timm's and torchvision's ImageFolder read: <wnid>/*.JPEG with no split folder; it used to be a
    # generic image folder with no wnids, so an ImageNet model could not be matched to it
    from core.labels import align
    from core.models.imagenet import imagenet1k

    root = _classes(tmp_path / "inet-val", [BULLFROG, GOLDFISH])
    ds = load_folder(root)
    assert ds.layout == "imagenet-folder" and ds.splits == ["all"] and ds.wnids == [GOLDFISH, BULLFROG]
    assert ds.split("all").labels.tolist() == [0, 0, 1, 1]
    inet = imagenet1k()
    alignment = align(inet, ds)
    assert alignment.kind == "wordnet"
    assert alignment.model_index.tolist() == [inet.wnids.index(GOLDFISH), inet.wnids.index(BULLFROG)] == [1, 30]
    # a class folder that is not a wnid keeps the generic layout (no wnids are guessed)
    _classes(root, ["cat"])
    assert load_folder(root).layout == "image-folder" and load_folder(root).wnids is None


def test_image_folder_single_split(tmp_path):
    root = _classes(tmp_path / "flowers", ["tulip", "daisy", "rose"], per_class=3)
    (root / "daisy" / "notes.txt").write_text("not an image")  # ignored, not an error
    (root / "daisy" / "._0.png").write_bytes(b"macOS resource fork")  # hidden: ignored
    ds = load_folder(root)
    assert ds.layout == "image-folder" and ds.splits == ["all"] and ds.wnids is None
    assert ds.classes == ["daisy", "rose", "tulip"]
    assert len(ds.split("all")) == 9 and ds.split("all").labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert ds.image_size == (10, 20)  # (H, W)
    assert ds.split("all").load(0).shape == (10, 20, 3)


def test_numeric_classes_sort_numerically_and_agree_across_splits(tmp_path):
    root = _classes(tmp_path / "nums", ["1", "2", "10"], split="train")
    _classes(root, ["1", "10"], split="val")  # class 2 missing from val keeps its index
    (root / "test").mkdir()
    _img(root / "test" / "x.jpg")  # flat test/: unlabelled, so not a split
    ds = load_folder(root)
    assert ds.classes == ["1", "2", "10"] and ds.splits == ["train", "val"]
    assert ds.split("train").labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.split("val").labels.tolist() == [0, 0, 2, 2]


def test_csv_folder_stratified_split(tmp_path):
    ds = load_folder(_leaves(tmp_path / "leaves"))
    assert ds.layout == "csv-folder" and ds.splits == ["train", "val"]
    assert ds.classes == ["abies_concolor", "maclura_pomifera", "ulmus_rubra"]
    train, val = ds.split("train"), ds.split("val")
    assert (len(train), len(val)) == (12, 3)
    assert set(train.labels.tolist()) == set(val.labels.tolist()) == {0, 1, 2}
    assert not {train.path(i) for i in range(12)} & {val.path(i) for i in range(3)}
    again = load_folder(tmp_path / "leaves").split("val")
    assert [again.path(i) for i in range(3)] == [val.path(i) for i in range(3)]
    label_of = {Path(s.path(i)).name: int(s.labels[i]) for s in (train, val) for i in range(len(s))}
    assert (label_of["0.jpg"], label_of["5.jpg"], label_of["14.jpg"]) == (1, 0, 2)
    assert ds.image_size == (24, 32) and val.load(0).dtype == np.uint8


def test_csv_folder_small_or_with_split_column(tmp_path):
    small = _leaves(tmp_path / "small", per_class=2, labels=("3", "20", "100"))  # too few for a stratified 20%
    ds = load_folder(small)
    assert ds.splits == ["all"] and ds.classes == ["3", "20", "100"]
    assert ds.split("all").labels.tolist() == [0, 0, 1, 1, 2, 2]
    rows = "images/0.jpg,a,val\nimages/1.jpg,b,train\nimages/2.jpg,a,train\n"
    (small / "train.csv").write_text("image,label,split\n" + rows)
    ds = load_folder(small)
    assert ds.splits == ["train", "val"] and ds.split("val").labels.tolist() == [0]


# --- broken trees are refused, saying what is wrong ------------------------------------------------------


def _refused(root, *words):
    with pytest.raises(DatasetError) as e:
        load_folder(root)
    for w in words:
        assert w in str(e.value), str(e.value)
    return str(e.value)


def test_tiny_imagenet_missing_annotations(tmp_path):
    root = _tiny(tmp_path / "t")
    (root / "val" / "val_annotations.txt").unlink()
    _refused(root, "Tiny ImageNet", "val/val_annotations.txt")


def test_annotation_with_unknown_wnid(tmp_path):
    root = _tiny(tmp_path / "t")
    with open(root / "val" / "val_annotations.txt", "a") as f:
        f.write("val_0.JPEG\tn09999999\t0\t0\t1\t1\n")
    _refused(root, "val/val_annotations.txt", "line 7", "n09999999")
    root = _kaggle(tmp_path / "k")
    with open(root / "LOC_val_solution.csv", "a") as f:
        f.write("ILSVRC2012_val_00000001,n09999999 0 0 1 1\n")
    _refused(root, "LOC_val_solution.csv", "n09999999")


def test_annotation_naming_missing_image(tmp_path):
    root = _tiny(tmp_path / "t")
    (root / "val" / "images" / "val_2.JPEG").unlink()
    _refused(root, "1 image(s)", "val_2.JPEG")


def test_csv_missing_label_column(tmp_path):
    root = _leaves(tmp_path / "l")
    (root / "train.csv").write_text("image,species\nimages/0.jpg,a\n")
    _refused(root, "train.csv", "no label column", "image, species")


def test_csv_missing_image(tmp_path):
    root = _leaves(tmp_path / "l")
    with open(root / "train.csv", "a") as f:
        f.write("images/404.jpg,abies_concolor\nimages/405.jpg,abies_concolor\n")
    _refused(root, "2 image(s) that do not exist", "images/404.jpg", "images/405.jpg")


@pytest.mark.parametrize("bad", ["../evil.jpg", "images/../../evil.jpg", "/etc/evil.jpg", "C:\\evil.jpg", "\\evil.jpg"])
def test_csv_path_escaping_root(tmp_path, bad):
    root = _leaves(tmp_path / "l")
    _img(tmp_path / "evil.jpg")
    with open(root / "train.csv", "a") as f:
        f.write(f"{bad},abies_concolor\n")
    _refused(root, "train.csv line 17", bad)


def test_csv_row_naming_a_link_out_of_the_root_or_a_non_image_is_refused(tmp_path):
    root = _leaves(tmp_path / "l")
    _img(tmp_path / "evil.jpg")
    os.symlink(tmp_path / "evil.jpg", root / "images" / "inside-looking.jpg")
    rows = (root / "train.csv").read_text()
    (root / "train.csv").write_text(rows + "images/inside-looking.jpg,abies_concolor\n")
    _refused(root, "train.csv line 17: images/inside-looking.jpg points outside the dataset folder")
    (root / "images" / "notes.txt").write_text("not an image")
    (root / "train.csv").write_text(rows + "images/notes.txt,abies_concolor\n")
    _refused(root, "train.csv line 17: images/notes.txt is not an image file")


def test_csv_split_column_with_an_unknown_split_is_refused(tmp_path):
    root = _leaves(tmp_path / "l", per_class=2, labels=("a", "b"))
    rows = "images/0.jpg,a,train\nimages/1.jpg,a,val\nimages/2.jpg,b,tset\n"  # a typo, not a third split
    (root / "train.csv").write_text("image,label,split\n" + rows)
    _refused(root, "train.csv line 4: split 'tset' is not one of train, val, test, valid, validation")


def test_empty_class_folder(tmp_path):
    root = _classes(tmp_path / "f", ["cat", "dog"])
    (root / "emu").mkdir()
    (root / "emu" / "readme.txt").write_text("no images here")
    _refused(root, "class folder emu has no images")
    tiny = _tiny(tmp_path / "t")
    for f in (tiny / "train" / GOLDFISH / "images").iterdir():
        f.unlink()
    _refused(tiny, f"train/{GOLDFISH}/images has no images")


def test_no_images_lists_layouts(tmp_path):
    (tmp_path / "empty").mkdir()
    msg = _refused(tmp_path / "empty", "no supported layout", "tiny-imagenet", "imagenet-kaggle", "csv-folder",
                   "imagenet-folder", "image-folder")
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "a.txt").write_text("x")
    assert _refused(tmp_path / "docs", "no images found") == msg.replace("empty", "docs")
    _img(tmp_path / "loose" / "a.jpg")
    _refused(tmp_path / "loose", "1 image(s) but no class folders")
    with pytest.raises(DatasetError, match="no such folder"):
        detect_layout(tmp_path / "nope")


def test_symlinks_inside_root_are_read_and_links_out_or_looping_are_refused_by_name(tmp_path):
    root = _classes(tmp_path / "f", ["cat", "dog"])
    os.symlink(root / "dog" / "0.png", root / "cat" / "alias.png")  # inside the root: fine
    ds = load_folder(root)
    names = [Path(p).name for p in ds.split("all").paths]
    assert names == ["0.png", "1.png", "alias.png", "0.png", "1.png"]
    assert ds.fingerprint()
    # never followed, and never silently left out: each refused, naming the link
    _img(tmp_path / "outside.jpg")
    _img(tmp_path / "elsewhere" / "0.png")
    bad = [("cat/sneaky.jpg", tmp_path / "outside.jpg", "cat/sneaky.jpg links outside the dataset folder"),
           ("dog/loop", root, "dog/loop is a link to ., a folder that contains it: a loop"),
           ("dog/deeper/up", root / "dog", "dog/deeper/up is a link to dog, a folder that contains it: a loop"),
           ("cat/gone.jpg", tmp_path / "missing.jpg", "cat/gone.jpg is a link that leads nowhere"),
           ("cat/self.jpg", root / "cat" / "self.jpg", "cat/self.jpg is a link that leads nowhere"),
           ("emu", tmp_path / "elsewhere", "emu links outside the dataset folder"),  # a whole class folder
           ("dog/copy", root / "cat", "dog/copy is a link to the folder cat; links to folders are not followed")]
    for rel, target, message in bad:
        (root / rel).parent.mkdir(exist_ok=True)
        os.symlink(target, root / rel)
        _refused(root, message)
        (root / rel).unlink()


# --- fingerprint -----------------------------------------------------------------------------------------


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_fingerprint_follows_images_and_annotations(tmp_path):
    root = _tiny(tmp_path / "t")
    first = load_folder(root).fingerprint()
    assert load_folder(root).fingerprint() == first  # nothing changed, new Dataset object
    _img(root / "train" / GOLDFISH / "images" / f"{GOLDFISH}_0.JPEG", size=(64, 64), color=(0, 0, 255))
    _touch_later(root / "train" / GOLDFISH / "images" / f"{GOLDFISH}_0.JPEG")
    second = load_folder(root).fingerprint()
    assert second != first
    ann = root / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace(f"val_0.JPEG\t{GOLDFISH}", f"val_0.JPEG\t{BULLFROG}"))
    third = load_folder(root).fingerprint()
    assert third not in (first, second)
    leaves = _leaves(tmp_path / "l")
    before = load_folder(leaves).fingerprint()
    _img(leaves / "images" / "3.jpg", size=(33, 24))
    assert load_folder(leaves).fingerprint() != before


def test_fingerprint_is_lazy(tmp_path):
    root = _classes(tmp_path / "f", ["a", "b"])
    ds = load_folder(root)
    (root / "a" / "0.png").unlink()  # not stat'ed at load time, only when asked
    with pytest.raises(DatasetError, match="changed since it was loaded"):
        ds.fingerprint()


def test_loading_decodes_no_image(tmp_path):
    root = _classes(tmp_path / "f", ["a", "b"])
    (root / "a" / "0.png").write_bytes(b"not a png at all")  # an image's name, garbage bytes
    split = load_folder(root).split("all")  # listing only: the garbage is not noticed yet
    assert split.load(1).shape == (10, 20, 3)
    with pytest.raises(ImageDecodeError, match="0.png"):
        split.load(0)


def test_linked_folder_outside_root_is_refused(tmp_path):
    root = _tiny(tmp_path / "t")
    (root / "val" / "images").rename(tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", root / "val" / "images")
    _refused(root, "val/images links outside the dataset folder")


# --- what users get wrong: encodings, NULs, oversized fields -------------------------------------------------


LATIN1 = b"caf\xe9"  # "café" saved as Latin-1 / Windows-1252, not UTF-8


@pytest.mark.parametrize("make, rel, line", [
    (_tiny, "wnids.txt", 4),
    (_tiny, "words.txt", 5),
    (_tiny, "val/val_annotations.txt", 7),
    (_kaggle, "LOC_synset_mapping.txt", 4),
    (_kaggle, "LOC_val_solution.csv", 6),
    (_leaves, "train.csv", 17),
])
def test_file_not_utf8_is_refused_by_name(tmp_path, make, rel, line):
    root = make(tmp_path / "d")
    with open(root / rel, "ab") as f:
        f.write(LATIN1 + b"\n")
    position = (root / rel).stat().st_size - 2
    _refused(root, f"{rel} line {line} is not UTF-8", f"byte 0xe9 at position {position}", "save it as UTF-8")


def test_csv_with_excel_bom_loads(tmp_path):
    root = _leaves(tmp_path / "l")
    (root / "train.csv").write_bytes(b"\xef\xbb\xbf" + (root / "train.csv").read_bytes())
    assert load_folder(root).num_classes == 3
    (root / "train.csv").write_bytes((root / "train.csv").read_bytes() + LATIN1 + b"\n")
    _refused(root, "train.csv line 17 is not UTF-8", "position")  # positions count the BOM: they are the file's


def test_csv_path_with_nul_is_refused_by_row(tmp_path):
    root = _leaves(tmp_path / "l")
    with open(root / "train.csv", "a") as f:
        f.write("images/0.jpg\0x.jpg,abies_concolor\n")
    _refused(root, "train.csv line 17", "NUL")
    assert not folders._inside(root, root / "a\0b.jpg")  # resolve() raises ValueError: not inside, no crash


@pytest.mark.parametrize("make, rel, row", [
    (_leaves, "train.csv", "images/0.jpg,{big}\n"),
    (_kaggle, "LOC_val_solution.csv", "ILSVRC2012_val_00000001,{big}\n"),
])
def test_csv_field_over_the_size_limit_is_refused_by_name(tmp_path, make, rel, row):
    root = make(tmp_path / "d")
    with open(root / rel, "a") as f:
        f.write(row.format(big="x" * (csv.field_size_limit() + 1)))
    _refused(root, rel, "field larger than field limit")


@pytest.mark.parametrize("error", [ValueError("boom"), csv.Error("boom"),
                                   UnicodeDecodeError("utf-8", b"x", 0, 1, "boom")])
def test_other_value_errors_become_dataset_errors(tmp_path, monkeypatch, error):
    root = _classes(tmp_path / "f", ["a", "b"])

    def broken(_root):
        raise error

    monkeypatch.setitem(folders.LOADERS, "image-folder", broken)
    _refused(root, str(root.resolve()), "boom")


# --- valid/ and validation/ are val/ -----------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["valid", "validation"])
def test_valid_folder_is_the_val_split(tmp_path, folder):
    root = _classes(tmp_path / "f", ["cat", "dog"], split="train")
    _classes(root, ["cat", "dog"], per_class=1, split=folder)
    _classes(root, ["dog"], per_class=1, split="test")
    ds = load_folder(root)
    assert ds.layout == "image-folder" and ds.splits == ["train", "val", "test"] and ds.default_split() == "val"
    assert all(Path(p).parts[-3] == folder for p in ds.split("val").paths) and len(ds.split("val")) == 2
    inet = _classes(tmp_path / "inet", [GOLDFISH, BULLFROG], split=folder)
    ds = load_folder(inet)
    assert ds.layout == "imagenet-folder" and ds.splits == ["val"] and ds.wnids == [GOLDFISH, BULLFROG]


def test_val_and_valid_both_are_refused(tmp_path):
    root = _classes(tmp_path / "f", ["cat", "dog"], split="val")
    _classes(root, ["cat", "dog"], split="valid")
    _refused(root, "both val/ and valid/")
    inet = _classes(tmp_path / "inet", [GOLDFISH], split="validation")
    _classes(inet, [GOLDFISH], split="val")
    _refused(inet, "both val/ and validation/")


def test_csv_split_column_valid_is_val(tmp_path):
    root = _leaves(tmp_path / "l", per_class=2, labels=("a", "b"))
    rows = "images/0.jpg,a,Train\nimages/1.jpg,a,valid\nimages/2.jpg,b,train\nimages/3.jpg,b,validation\n"
    (root / "train.csv").write_text("image,label,split\n" + rows)
    ds = load_folder(root)
    assert ds.splits == ["train", "val"] and ds.split("val").labels.tolist() == [0, 1]


# --- per-split fingerprints --------------------------------------------------------------------------------


def _prints(root: Path) -> dict[str, str]:
    ds = load_folder(root)
    return {"all": ds.fingerprint(), **{s: ds.split_fingerprint(s) for s in ds.splits}}


def _changed(before: dict[str, str], root: Path) -> set[str]:
    after = _prints(root)
    return {k for k in before if after[k] != before[k]}


def _repaint(path: Path) -> None:
    _img(path, size=Image.open(path).size, color=(0, 0, 255))
    _touch_later(path)


def test_tiny_imagenet_split_fingerprints_follow_their_own_files(tmp_path):
    root = _tiny(tmp_path / "t")
    first = _prints(root)
    assert len(set(first.values())) == 3 and _prints(root) == first
    _repaint(root / "train" / GOLDFISH / "images" / f"{GOLDFISH}_0.JPEG")
    assert _changed(first, root) == {"all", "train"}
    first = _prints(root)
    _repaint(root / "val" / "images" / "val_1.JPEG")
    assert _changed(first, root) == {"all", "val"}
    first = _prints(root)
    ann = root / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace(f"val_0.JPEG\t{GOLDFISH}", f"val_0.JPEG\t{BULLFROG}"))
    assert _changed(first, root) == {"all", "val"}
    first = _prints(root)
    (root / "wnids.txt").write_text(f"{GOLDFISH}\n{SALAMANDER}\n{BULLFROG}\n")  # same classes, new file
    assert _changed(first, root) == {"all", "train", "val"}


def test_val_fingerprint_stats_no_train_file(tmp_path):
    root = _tiny(tmp_path / "t")
    ds = load_folder(root)
    (root / "train" / GOLDFISH / "images" / f"{GOLDFISH}_0.JPEG").unlink()  # after loading
    assert ds.split_fingerprint("val")  # never looked at train/
    with pytest.raises(DatasetError, match="changed since it was loaded"):
        ds.split_fingerprint("train")
    with pytest.raises(DatasetError, match="no split 'test'"):
        ds.split_fingerprint("test")


def test_kaggle_split_fingerprints(tmp_path):
    root = _kaggle(tmp_path / "k", train=True)
    first = _prints(root)
    _repaint(root / "ILSVRC/Data/CLS-LOC/train" / GOLDFISH / f"{GOLDFISH}_1.JPEG")
    assert _changed(first, root) == {"all", "train"}
    first = _prints(root)
    with open(root / "LOC_val_solution.csv", "a") as f:
        f.write("\n")  # a blank line: same labels, but a changed label file
    assert _changed(first, root) == {"all", "val"}
    first = _prints(root)
    with open(root / "LOC_synset_mapping.txt", "a") as f:
        f.write("n09999999 extra class\n")
    assert _changed(first, root) == {"all", "train", "val"}


def test_folder_split_fingerprints_follow_the_class_list(tmp_path):
    root = _classes(tmp_path / "f", ["cat", "dog"], split="train")
    _classes(root, ["cat", "dog"], split="valid")
    first = _prints(root)
    _repaint(root / "train" / "cat" / "0.png")
    assert _changed(first, root) == {"all", "train"}
    first = _prints(root)
    _classes(root, ["ant"], split="train")  # a new class shifts val's label indices, though no val file changed
    assert _changed(first, root) == {"all", "train", "val"}
    leaves = _leaves(tmp_path / "l")
    first, ds = _prints(leaves), load_folder(leaves)
    _repaint(ds.split("train").paths[0])
    assert _changed(first, leaves) == {"all", "train"}
