"""The store under faults, with real processes: a writer SIGKILLed half-way through an artifact, artifacts of a
real evaluation damaged on disk, and two processes asked for the same evaluation at once."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.data import load_dataset
from core.evaluate import evaluate
from core.settings import REPO_ROOT
from core.store import Store

WRITER = """
import sys
import numpy as np
from core.store import Store

store = Store(sys.argv[1])
version = 0
while True:  # rewrite one record for ever, each version an 8 MB artifact filled with its number
    version += 1
    store.put("k", "blob", {"version": version}, {"x": np.full(1_000_000, version, np.int64)})
    print(version, flush=True)
"""


def _consistent(hit) -> int:
    """The version of a record whose artifact holds exactly that version everywhere (never a mix)."""
    record, arrays = hit
    v = record.meta["version"]
    assert arrays["x"].shape == (1_000_000,) and (arrays["x"] == v).all(), v
    return v


def _wait_for(condition, what: str, timeout: float = 120.0):
    """Poll until `condition()` is truthy; a deadline so a hang fails with a message (not a timing assertion)."""
    t0 = time.monotonic()
    while not (value := condition()):
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)
    return value


def test_writer_killed_mid_write_leaves_the_old_record_whole_and_its_leftovers_harmless(tmp_path):
    """Readers running beside the writer only ever see complete versions; the writer is then frozen while
    its temp file exists (so provably mid-write) and SIGKILLed: the last committed version is intact."""
    store = Store(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              text=True)
    printed: list[int] = []
    reader = threading.Thread(target=lambda: printed.extend(int(line) for line in writer.stdout), daemon=True)
    reader.start()
    try:
        _wait_for(lambda: printed, "the first version")
        seen = []
        while len(printed) < 6:  # read while versions 2..6 are being written
            hit = store.get_with_arrays("k")
            assert hit is not None  # never a miss once a record exists: no reader drops a record being replaced
            seen.append(_consistent(hit))
        assert seen == sorted(seen) and len(set(seen)) >= 2  # saw versions change under it, in order

        folder = tmp_path / "artifacts" / "blob"

        def frozen_mid_write():
            if list(folder.glob(".*.tmp")):
                writer.send_signal(signal.SIGSTOP)
                if list(folder.glob(".*.tmp")):  # still there with the writer frozen: it is mid-write
                    return True
                writer.send_signal(signal.SIGCONT)
            return False

        _wait_for(frozen_mid_write, "the writer to be caught with a temp file")
        writer.kill()  # SIGKILL: no cleanup of any kind runs
    finally:
        writer.kill()
        writer.wait(timeout=60)
    reader.join(timeout=60)

    leftovers = list(folder.glob(".*.tmp"))
    assert leftovers  # the file being written when the writer died is still there (written in part or whole)
    after = Store(tmp_path)  # a new process's view
    assert _consistent(after.get_with_arrays("k")) == printed[-1]  # the last version committed, whole
    assert after.get("k").artifact.split("/")[-1] not in {p.name for p in leftovers}  # never the temp file
    assert sqlite3.connect(tmp_path / "store.sqlite").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after.put("k", "blob", {"version": 1000}, {"x": np.full(1_000_000, 1000, np.int64)})  # the leftovers do
    assert _consistent(after.get_with_arrays("k")) == 1000  # not get in the way of the next write or read
    assert [r.key for r in after.records()] == ["k"]
    assert [p.name for p in folder.glob("*.npz")] == [after.get("k").artifact.split("/")[-1]]  # old ones removed


def test_rewriting_a_record_keeps_the_old_artifact_until_the_new_row_is_committed(store):
    """An artifact is named by its checksum: the file an old row names is never overwritten in place."""
    store.put("k", "blob", {"version": 1}, {"x": np.full(10, 1)})
    old = store.get("k")
    store.put("k", "blob", {"version": 2}, {"x": np.full(10, 2)})
    new = store.get("k")
    assert new.artifact != old.artifact and new.sha256 != old.sha256
    assert store.arrays(old) is None  # the superseded file is gone once the new row is in
    assert _consistent_small(store.get_with_arrays("k")) == 2


def _consistent_small(hit) -> int:
    record, arrays = hit
    assert (arrays["x"] == record.meta["version"]).all()
    return record.meta["version"]


@pytest.mark.parametrize("damage", ["bitflip", "swapped"])
def test_damaged_evaluation_artifact_is_recomputed_to_the_same_predictions(store, damage):
    """(Truncation: tests/test_evaluate.py::test_truncated_artifact_is_recomputed.) A flipped bit, or another
    evaluation's perfectly valid artifact copied over this one: caught by the checksum, recomputed."""
    ds = load_dataset("digits")
    first = evaluate("linear", ds, "val", store=store)
    path = store.artifacts / store.get(first.key).artifact
    if damage == "bitflip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    else:
        other = evaluate("cnn-2layer", ds, "val", store=store)  # same keys, same shapes: only the checksum knows
        path.write_bytes((store.artifacts / store.get(other.key).artifact).read_bytes())
    again = evaluate("linear", ds, "val", store=store)
    assert not again.cached
    np.testing.assert_array_equal(again.predictions.top_idx, first.predictions.top_idx)
    np.testing.assert_array_equal(again.predictions.top_prob, first.predictions.top_prob)
    assert again.meta["top1"] == first.meta["top1"]
    assert evaluate("linear", ds, "val", store=store).cached


class _Payload:
    """Unpickling this calls Path.touch on the marker file: proof that a pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (self.marker.touch, ())


def test_a_pickle_payload_in_an_artifact_with_a_valid_checksum_is_never_run(store, tmp_path):
    """Someone with write access to the store swaps in an npz holding a pickled object and fixes the index's
    checksum to match: the record loads as damaged (allow_pickle=False) and the payload's marker file is
    never written."""
    import hashlib
    import io
    import pickle

    marker = tmp_path / "payload-ran"
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload works: unpickling it writes the marker
    assert marker.exists()
    marker.unlink()
    store.put("k", "evaluation", {"top1": 0.5}, {"x": np.arange(3)})
    buf = io.BytesIO()
    np.savez(buf, x=np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    evil = buf.getvalue()
    path = store.artifacts / store.get("k").artifact
    path.write_bytes(evil)
    with sqlite3.connect(store.root / "store.sqlite") as db:
        db.execute("UPDATE records SET sha256=? WHERE key='k'", (hashlib.sha256(evil).hexdigest(),))
    assert store.get_with_arrays("k") is None
    assert not marker.exists()
    assert store.get("k") is None  # dropped: the caller recomputes


def _waiters(lock_file: Path) -> int:
    """Processes blocked on the flock of `lock_file`, from the kernel's table (/proc/locks: "->" rows)."""
    inode = f":{lock_file.stat().st_ino} "
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and inode in line)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="counts lock waiters in Linux's /proc/locks")
def test_two_processes_asking_for_the_same_evaluation_compute_it_once(tmp_path):
    """The test holds the key's lock while two `python -m core evaluate` processes start; once the kernel shows
    both blocked on it, it lets go: one computes (cached false), the other waits and reuses (cached true)."""
    key = evaluate("linear", "digits", "val", store=Store(tmp_path / "probe")).key  # keys do not depend on the store
    shared = Store(tmp_path / "shared")
    env = os.environ | {"CNNVIT_CACHE_DIR": str(shared.root), "CNNVIT_DEVICE": "cpu"}
    cmd = [sys.executable, "-m", "core", "evaluate", "--model", "linear", "--dataset", "digits", "--split", "val",
           "--json"]
    with shared.lock(key):
        procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        try:
            _wait_for(lambda: _waiters(shared.root / "locks" / f"{key}.lock") == 2
                      or any(p.poll() is not None for p in procs), "both processes to wait on the lock")
        except BaseException:
            for p in procs:
                p.kill()
            raise
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    results = [json.loads(stdout) for stdout, _ in outs]
    assert sorted(r["cached"] for r in results) == [False, True]
    timing = {"cached", "seconds", "images_per_second"}
    assert results[0]["n"] == 359
    assert {k: v for k, v in results[0].items() if k not in timing} == {
        k: v for k, v in results[1].items() if k not in timing}
    assert len(shared.records("evaluation")) == 1
