"""The store: an SQLite index of records (fingerprint -> small JSON) plus artifact files.

Artifacts are `.npz` written without pickle and read with `allow_pickle=False`. Every file is
written atomically (temp file in the same folder, fsync, rename), and a record whose artifact
is missing or fails its sha256 is dropped and reported as a miss, so the caller recomputes.

An artifact's name carries its checksum, so rewriting a record never replaces the file the old
index row points to: a reader, even one racing a writer that is killed half-way, gets the old
record or the new one, complete. `lock(key)` lets one process compute a key while others wait.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from core.errors import UserError
from core.settings import get_settings

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # keys used as lock file names as they are
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}\.npz")  # put's `kind/key.sha.npz`

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key      TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    created  REAL NOT NULL,
    meta     TEXT NOT NULL,
    artifact TEXT,
    sha256   TEXT
);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, created);
"""


def fingerprint(parts: dict[str, Any]) -> str:
    """A stable digest of everything that changes a result (canonical JSON, sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def json_safe(obj: Any) -> Any:
    """Plain JSON values: NaN and infinities (undefined scores) become None, numpy scalars Python numbers."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write a file so readers see the old or the new version, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> tuple[bytes, str]:
    """An npz file's bytes (no object dtypes: nothing needs pickle) and their sha256."""
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which would need pickle")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Atomically save arrays (no object dtypes: nothing needs pickle) and return the file's sha256."""
    data, sha = _npz_bytes(arrays)
    atomic_write(path, lambda f: f.write(data))
    return sha


def load_npz(path: Path, sha256: str | None = None) -> dict[str, np.ndarray] | None:
    """Arrays from an npz, or None when the file is missing, damaged or fails its checksum."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - a file numpy cannot read is damaged, whatever it raises: fuzzing (tests/
        # test_fuzz.py) met TypeError, zlib.error, tokenize.TokenError and NotImplementedError besides the usual ones.
        # Nothing is unpickled either way (allow_pickle=False).
        return None


@dataclass
class Record:
    key: str
    kind: str
    created: float
    meta: dict[str, Any]
    artifact: str | None
    sha256: str | None


class Store:
    """Records of expensive work, keyed by fingerprints. Safe to share between processes."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else get_settings().cache_dir
        self.artifacts = self.root / "artifacts"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.executescript(SCHEMA)
        except (OSError, sqlite3.OperationalError) as e:  # a file in the folder's place, no permission, no space
            raise UserError(f"the store at {self.root} cannot be used ({getattr(e, 'strerror', None) or e}): point "
                            "CNNVIT_CACHE_DIR at a folder this user can write") from None

    @contextmanager
    def _db(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.root / "store.sqlite", timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # one transaction, committed on success
                if immediate:  # take the write lock now: read-then-write without a race (job claims)
                    db.execute("BEGIN IMMEDIATE")
                yield db
        finally:
            db.close()

    def transaction(self, immediate: bool = False):
        """A connection in one transaction on the store's database, for tables other modules own (jobs)."""
        return self._db(immediate)

    def put(self, key: str, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> Record:
        """Write the artifact first, then the index row: a crash in between leaves only an orphan file.

        The artifact is named by key and checksum, so the file an older row names stays in place
        until the new row is committed; only then is it removed."""
        artifact = sha = None
        if arrays is not None:
            data, sha = _npz_bytes(arrays)
            artifact = f"{kind}/{key}.{sha[:16]}.npz"
            atomic_write(self.artifacts / artifact, lambda f: f.write(data))
        record = Record(key, kind, time.time(), meta, artifact, sha)
        with self._db(immediate=True) as db:  # read the old row and replace it in one write transaction
            old = db.execute("SELECT artifact FROM records WHERE key=?", (key,)).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO records(key, kind, created, meta, artifact, sha256) VALUES (?,?,?,?,?,?)",
                (key, kind, record.created, json.dumps(meta, default=str), artifact, sha),
            )
        if old and old[0] and old[0] != artifact:
            (self.artifacts / old[0]).unlink(missing_ok=True)  # superseded; a reader holding its row retries
        return record

    def _artifact_path(self, record: Record) -> Path | None:
        """The artifact file a record names, or None when the name would leave the artifacts folder (a hostile
        or damaged index: `../../x.npz` or an absolute path is neither read nor deleted)."""
        if not isinstance(record.artifact, str) or not _ARTIFACT_NAME.fullmatch(record.artifact):
            return None
        return self.artifacts / record.artifact

    def get(self, key: str) -> Record | None:
        """The record under `key`; None when there is none or its row does not read (damaged: recomputed)."""
        with self._db() as db:
            row = db.execute("SELECT key, kind, created, meta, artifact, sha256 FROM records WHERE key=?", (key,)).fetchone()
        return _record(row) if row else None

    def get_with_arrays(self, key: str) -> tuple[Record, dict[str, np.ndarray]] | None:
        """A record and its verified arrays; a record whose artifact is missing or corrupt is dropped."""
        record = self.get(key)
        for _ in range(3):  # a writer replacing the record between our two reads: read its new row
            if record is None:
                return None
            if record.artifact is None:
                return record, {}
            path = self._artifact_path(record)
            arrays = load_npz(path, record.sha256) if path is not None else None
            if arrays is not None:
                return record, arrays
            now = self.get(key)
            if now is None or (now.artifact, now.sha256) == (record.artifact, record.sha256):
                break  # the same row with a bad file: damaged, not replaced
            record = now
        if record is not None:
            self._drop_damaged(record)
        return None

    def delete(self, key: str) -> bool:
        """Remove the record under `key` and its artifact; False when there was none."""
        with self._db(immediate=True) as db:
            row = db.execute("SELECT key, kind, created, meta, artifact, sha256 FROM records WHERE key=?",
                             (key,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM records WHERE key=?", (key,))
        record = Record(*row[:3], {}, *row[4:])
        if record.artifact and (path := self._artifact_path(record)) is not None:
            path.unlink(missing_ok=True)
        return True

    def _drop_damaged(self, record: Record) -> None:
        """Delete a record whose artifact failed to load, unless a writer has replaced it meanwhile."""
        with self._db() as db:
            gone = db.execute("DELETE FROM records WHERE key=? AND artifact IS ? AND sha256 IS ?",
                              (record.key, record.artifact, record.sha256)).rowcount
        if gone and (path := self._artifact_path(record)) is not None:
            path.unlink(missing_ok=True)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the inter-process lock of `key`, waiting while another process holds it.

        For compute-once: check the store, take the lock, check again, compute, put. An flock on
        `locks/<key>.lock`: the kernel releases it when its holder exits, killed or not, so a crash
        never leaves a key locked. Not re-entrant: a thread taking the same key twice waits for itself."""
        try:
            import fcntl  # lazy: POSIX only (Windows has no fcntl)
        except ImportError:  # Windows: no flock; two processes may then both compute (the results agree)
            yield
            return
        name = key if _SAFE_NAME.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()[:32]
        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:  # lock files stay (empty); removing one would race a process about to lock it
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def arrays(self, record: Record) -> dict[str, np.ndarray] | None:
        if record.artifact is None:
            return {}
        path = self._artifact_path(record)
        return load_npz(path, record.sha256) if path is not None else None

    def size_bytes(self) -> int:
        """Bytes on disk under the store's folder (index, artifacts, runs)."""
        total = 0
        for f in self.root.rglob("*"):
            try:
                if f.is_file():
                    total += f.stat().st_size
            except FileNotFoundError:  # SQLite's -wal/-shm files and temp files come and go while jobs write
                pass
        return total

    def records(self, kind: str | None = None) -> list[Record]:
        """All records (of one kind), newest first."""
        with self._db() as db:
            q = "SELECT key, kind, created, meta, artifact, sha256 FROM records"
            rows = db.execute(q + (" WHERE kind=?" if kind else "") + " ORDER BY created DESC", (kind,) if kind else ()).fetchall()
        return [r for r in map(_record, rows) if r is not None]


def _record(row: tuple) -> Record | None:
    """A row as a Record; None for a row whose meta is not a JSON object (damaged or hostile: a miss, recomputed).
    Fuzzing met JSONDecodeError, UnicodeDecodeError (a BLOB) and RecursionError (deep nesting)."""
    key, kind, created, meta, artifact, sha = row
    try:
        meta = json.loads(meta)
    except (ValueError, TypeError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return Record(key, kind, created, meta, artifact, sha) if isinstance(meta, dict) else None
