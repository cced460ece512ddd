"""CIFAR: the binary record format read by hand-made files, and the offline message from the real downloader."""
import dataclasses

import numpy as np
import pytest

from core.data import downloads
from core.errors import DatasetError


def _write_cifar10(folder, n_per_file=3):
    folder.mkdir(parents=True)
    spec = downloads.CIFAR["cifar10"]
    expected = {}
    for k, name in enumerate(spec.train_files + spec.test_files):
        recs = []
        for i in range(n_per_file):
            label = (k + i) % 10
            img = np.zeros((3, 32, 32), np.uint8)
            img[0], img[1], img[2] = 10 * k + i, 100, 200  # R plane, G plane, B plane
            recs.append(np.concatenate([[label], img.reshape(-1)]).astype(np.uint8))
            expected.setdefault(name, []).append(label)
        np.concatenate(recs).tofile(folder / name)
    (folder / spec.names_file).write_text("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                       "horse", "ship", "truck"]) + "\n")
    return expected


def test_cifar10_binary_records_are_read_as_rgb(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    expected = _write_cifar10(tmp_path / "downloads" / "cifar-10-batches-bin")
    ds = downloads.cifar("cifar10")
    assert ds.classes[3] == "cat" and ds.splits == ["train", "test"]
    train, test = ds.split("train"), ds.split("test")
    assert len(train) == 15 and len(test) == 3
    assert test.labels.tolist() == expected["test_batch.bin"]
    img = train.load(4)  # file 1 (data_batch_2), record 1
    assert img.shape == (32, 32, 3) and img[0, 0].tolist() == [11, 100, 200]
    assert ds.fingerprint() == downloads.cifar("cifar10").fingerprint()


def test_cifar100_uses_the_fine_label(tmp_path):
    rec = np.concatenate([[7, 42], np.full(3072, 5)]).astype(np.uint8)  # coarse 7, fine 42
    (tmp_path / "train.bin").write_bytes(rec.tobytes() * 2)
    images, labels = downloads.read_cifar_binary([tmp_path / "train.bin"], label_bytes=2)
    assert labels.tolist() == [42, 42] and images.shape == (2, 32, 32, 3)


def test_damaged_file_is_refused(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(DatasetError, match="damaged"):
        downloads.read_cifar_binary([tmp_path / "x.bin"], label_bytes=1)


def test_offline_download_gives_a_clear_message(monkeypatch, tmp_path):
    # the real torchvision downloader, pointed at a local port that refuses connections
    spec = dataclasses.replace(downloads.CIFAR["cifar10"], url="http://127.0.0.1:9/cifar-10-binary.tar.gz")
    monkeypatch.setitem(downloads.CIFAR, "cifar10", spec)
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    with pytest.raises(DatasetError) as err:
        downloads.cifar("cifar10")
    msg = str(err.value)
    assert "could not download CIFAR-10" in msg and "cifar-10-binary.tar.gz" in msg and str(tmp_path) in msg
