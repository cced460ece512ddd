import sqlite3

import numpy as np
import pytest

from core.store import Store, atomic_write, fingerprint, load_npz, save_npz


def test_fingerprint_is_order_independent_and_sensitive():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_put_get_roundtrip(store):
    arrays = {"x": np.arange(6).reshape(2, 3), "names": np.array(["a", "bé"])}
    store.put("k1", "evaluation", {"top1": 0.5}, arrays)
    record, got = store.get_with_arrays("k1")
    assert record.meta == {"top1": 0.5} and record.kind == "evaluation"
    np.testing.assert_array_equal(got["x"], arrays["x"])
    assert list(got["names"]) == ["a", "bé"]
    assert store.get_with_arrays("missing") is None
    assert [r.key for r in store.records("evaluation")] == ["k1"]


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "delete"])
def test_damaged_artifact_is_a_miss_and_the_record_is_dropped(store, damage):
    store.put("k", "evaluation", {}, {"x": np.arange(1000)})
    path = store.artifacts / store.get("k").artifact
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "bitflip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    assert store.get_with_arrays("k") is None
    assert store.get("k") is None  # dropped, so the caller recomputes and re-puts


def test_npz_refuses_object_arrays_and_never_unpickles(tmp_path):
    with pytest.raises(TypeError):
        save_npz(tmp_path / "a.npz", {"o": np.array([{"x": 1}], dtype=object)})
    # a file holding a pickled object array loads as None (allow_pickle=False), not executed
    np.savez(tmp_path / "p.npz", o=np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert load_npz(tmp_path / "p.npz") is None


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, lambda f: f.write(b"old"))

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_store_is_plain_sqlite(store):
    store.put("k", "evaluation", {"a": 1})
    rows = sqlite3.connect(store.root / "store.sqlite").execute("SELECT key, kind FROM records").fetchall()
    assert rows == [("k", "evaluation")]


def test_size_bytes_survives_sqlite_files_coming_and_going(tmp_path):
    """SQLite creates and deletes its -wal/-shm files as connections open and close; the sidebar's store size
    is read meanwhile (the load run saw FileNotFoundError from it)."""
    import threading

    store = Store(tmp_path)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            with Store(tmp_path).transaction() as db:
                db.execute("SELECT count(*) FROM records").fetchone()

    t = threading.Thread(target=churn)
    t.start()
    try:
        sizes = [store.size_bytes() for _ in range(300)]
    finally:
        stop.set()
        t.join()
    assert min(sizes) > 0  # the index file itself is always there
