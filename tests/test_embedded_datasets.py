import os
import shutil
import subprocess
import sys

import numpy as np

from core.data import load_dataset
from core.data import shapes as shapes_gen
from core.data.embedded import _digits_arrays, _digits_from_sklearn, shapes_arrays
from core.settings import REPO_ROOT, get_settings
from core.store import load_npz, save_npz


def test_digits_is_sklearns_1797_images_split_stratified():
    d = load_dataset("digits")
    sizes = {s: len(d.split(s)) for s in d.splits}
    assert sum(sizes.values()) == 1797
    assert sizes == {"train": 1078, "val": 359, "test": 360}
    whole = np.bincount(np.concatenate([d.split(s).labels for s in d.splits]), minlength=10)
    assert whole.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # sklearn's own class sizes
    for s in d.splits:
        counts = np.bincount(d.split(s).labels, minlength=10)
        # stratified: each class keeps its share of the whole, to within one image
        assert np.abs(counts - whole * len(d.split(s)) / 1797).max() <= 1
    img = d.split("val").load(0)
    assert img.shape == (8, 8, 1) and img.dtype == np.uint8
    # sklearn's 0..16 intensities, scaled to 0..255: exactly 17 grey levels
    assert np.unique(d.split("train").images).tolist() == [round(v * 255 / 16) for v in range(17)]
    assert d.channels == 1 and d.image_size == (8, 8)
    assert d.fingerprint() == load_dataset("digits").fingerprint()


def test_shapes_sizes_classes_and_determinism():
    d = load_dataset("shapes")
    assert d.classes[:3] == ["circle", "square", "triangle"] and d.num_classes == 10
    assert {s: len(d.split(s)) for s in d.splits} == {"train": 5000, "val": 1000, "test": 1000}
    assert np.bincount(d.split("train").labels).tolist() == [500] * 10
    x = d.split("val").load(7)
    assert x.shape == (64, 64, 3) and x.dtype == np.uint8
    # regenerating image 7 of val from its own seed gives the same pixels
    again, labels = shapes_gen.generate_split("val", seed=0, n=8)
    np.testing.assert_array_equal(again[7], x)
    assert labels[7] == d.split("val").labels[7]
    # splits differ: val image 0 is not train image 0
    assert not np.array_equal(d.split("train").load(0), d.split("val").load(0))


def test_shapes_cache_file_is_reused_and_rebuilt_when_damaged(session_cache, tmp_path, monkeypatch):
    shapes_arrays()
    shared = next((session_cache / "datasets").glob("shapes-v*-seed*.npz"))
    # a copy of its own to damage, where a store keeps it by default: the other xdist worker reads the shared one
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CNNVIT_DATASETS_DIR")
    path = tmp_path / "datasets" / shared.name
    path.parent.mkdir()
    shutil.copy(shared, path)
    mtime = path.stat().st_mtime_ns
    shapes_arrays()
    assert path.stat().st_mtime_ns == mtime  # a hit: not regenerated
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a crash of an older writer
    arrays = shapes_arrays()
    assert arrays["x_train"].shape == (5000, 64, 64, 3)


def test_generated_datasets_live_in_the_store_or_where_CNNVIT_DATASETS_DIR_says(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNVIT_DATASETS_DIR")
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path / "store"))
    assert get_settings().datasets_dir == (tmp_path / "store" / "datasets").resolve()  # by default, the store's
    monkeypatch.setenv("CNNVIT_DATASETS_DIR", str(tmp_path / "data"))  # several stores may share one
    for store in ("store", "other"):
        monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path / store))
        assert get_settings().datasets_dir == (tmp_path / "data").resolve()
        assert len(load_dataset("shapes-textured").split("conflict")) > 0  # generated (0.5 s) on first use
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["shapes-textured-v2-seed0-conflict.npz"]
    assert not (tmp_path / "store").exists() and not (tmp_path / "other").exists()


def test_digits_are_kept_as_a_file_so_later_processes_skip_scikit_learn(tmp_path, monkeypatch):
    """Building the digits' splits imports scikit-learn (about 2 s of every process that opened `digits`); the first
    process keeps them in the datasets folder, the next read the same arrays from it. A damaged or foreign file is
    rebuilt; a folder that cannot be written only costs the build."""
    data = tmp_path / "data"
    monkeypatch.setenv("CNNVIT_DATASETS_DIR", str(data))
    built = _digits_from_sklearn()
    _digits_arrays.cache_clear()
    try:
        kept = _digits_arrays()
        path = data / "digits-seed0.npz"
        assert set(load_npz(path)) == set(built)
        for k in built:
            np.testing.assert_array_equal(kept[k], built[k])
        code = ("import sys; from core.data import load_dataset; d = load_dataset('digits')\n"
                "print(d.fingerprint(), len(d.split('val')), 'sklearn' in sys.modules)")
        p = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                           env=os.environ | {"CNNVIT_DATASETS_DIR": str(data)})
        assert p.returncode == 0, p.stderr[-2000:]
        assert p.stdout.split() == [load_dataset("digits").fingerprint(), "359", "False"]

        for damage in (lambda: path.write_bytes(path.read_bytes()[:500]),  # truncated
                       lambda: save_npz(path, {"x_train": built["x_train"][:5]})):  # another file's arrays
            damage()
            _digits_arrays.cache_clear()
            again = _digits_arrays()
            for k in built:
                np.testing.assert_array_equal(again[k], built[k])
            assert set(load_npz(path)) == set(built)  # and kept again

        blocked = tmp_path / "a-file"
        blocked.write_text("not a folder")
        monkeypatch.setenv("CNNVIT_DATASETS_DIR", str(blocked / "data"))
        _digits_arrays.cache_clear()
        assert len(_digits_arrays()["y_val"]) == 359
    finally:
        _digits_arrays.cache_clear()
