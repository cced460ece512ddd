"""Background jobs: a table in the store's SQLite, worker processes that run them, progress,
cancel and resume. Pages and the CLI only submit, poll and draw; the work runs here.

States: queued -> running -> done | failed | cancelled | interrupted. A running job whose worker
died (killed, machine restarted) is marked interrupted the next time anyone looks; resuming it
queues it again and training continues from its last complete epoch.

The same job (same kind and spec) submitted twice is one job: while queued, running or done it is
returned as is; when failed, cancelled or interrupted, submitting it again resumes it.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

from core.arena.spec import ArenaSpec
from core.errors import Interrupted, Stopped, UserError
from core.hosted import check_dataset, check_demo, check_training, is_hosted
from core.progress import Progress
from core.settings import REPO_ROOT, get_settings
from core.store import Store, fingerprint, json_safe
from core.train.recipe import Recipe

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    title     TEXT NOT NULL,
    spec      TEXT NOT NULL,
    state     TEXT NOT NULL,
    progress  TEXT,
    error     TEXT,
    result    TEXT,
    pid       INTEGER,
    host      TEXT,
    created   REAL NOT NULL,
    started   REAL,
    finished  REAL,
    heartbeat REAL,
    cancel    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created);
"""
ACTIVE = ("queued", "running")
RESUMABLE = ("failed", "cancelled", "interrupted")
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0  # a running job whose worker has not beaten for this long (another host) is interrupted
COLUMNS = "id, key, kind, title, spec, state, progress, error, result, pid, host, created, started, finished, heartbeat, cancel"


@dataclass(frozen=True)
class EvaluateJob:
    """Score `model` on one split of `dataset` (core.evaluate.evaluate's arguments)."""

    model: str
    dataset: str
    split: str | None = None
    limit: int | None = None
    device: str | None = None
    precision: str | None = None
    kind: ClassVar[str] = "evaluate"

    @property
    def title(self) -> str:
        return (f"evaluate {self.model} on {self.dataset}" + (f"/{self.split}" if self.split else "")
                + (f" ({self.limit} images)" if self.limit else ""))

    @property
    def key(self) -> str:
        return fingerprint({"kind": self.kind, **self.to_json()})

    def check(self) -> None:
        """Hosted mode: the model and the dataset must be offered (elsewhere a bad id fails when the job runs,
        with its message in the job list)."""
        if is_hosted():
            # lazy: pages read the job table and draw before torch loads; resolving a model needs its registry (torch)
            from core.models.reference import resolve

            resolve(self.model)
            check_dataset(self.dataset)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainJob:
    """Train `recipe` to the end (one job per run: the key is the run id)."""

    recipe: Recipe
    device: str | None = None
    kind: ClassVar[str] = "train"

    @property
    def title(self) -> str:
        return self.recipe.title

    @property
    def key(self) -> str:
        return self.recipe.run_id

    def check(self) -> None:
        """Hosted mode: the model and dataset must be offered, the recipe within the training limits."""
        if is_hosted():
            # lazy: pages read the job table and draw before torch loads; resolving a model needs its registry (torch)
            from core.models.reference import resolve

            resolve(self.recipe.model)
            check_dataset(self.recipe.dataset)
            check_training(self.recipe.epochs, self.recipe.limit)
            if self.recipe.world_size > 1:
                raise UserError("this deployment trains with one process (asked for: "
                                f"{self.recipe.world_size})")

    def to_json(self) -> dict:
        return {"recipe": self.recipe.to_dict(), "device": self.device}


@dataclass(frozen=True)
class DemoJob:
    """Train and evaluate the demo's four models as one arena (core/demo.py)."""

    kind: ClassVar[str] = "demo"
    title: ClassVar[str] = "demo: train a CNN, ResNet-20, a ViT and CCT-2 on the same shapes images, then evaluate"

    @property
    def key(self) -> str:
        return fingerprint({"kind": self.kind})

    def check(self) -> None:
        check_demo()

    def to_json(self) -> dict:
        return {}


@dataclass(frozen=True)
class ArenaJob:
    """Train every run of an arena (core/arena): models x seeds x sizes, each an ordinary, resumable run."""

    spec: ArenaSpec
    device: str | None = None
    kind: ClassVar[str] = "arena"

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def key(self) -> str:
        return self.spec.key

    def check(self) -> None:
        """Hosted mode: the dataset offered, training on (each run is checked again as it trains)."""
        if is_hosted():
            check_dataset(self.spec.dataset)
            check_training(1, self.spec.limit or (self.spec.sizes[-1] if self.spec.sizes else None))

    def to_json(self) -> dict:
        return {"spec": self.spec.to_json(), "device": self.device}


@dataclass(frozen=True)
class RobustnessJob:
    """Evaluate `model` clean and under each corruption at each severity (core.robustness.robustness's arguments):
    every evaluation is stored as it finishes, so a cancelled job resumes where it stopped."""

    model: str
    dataset: str
    split: str | None = None
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = ()
    limit: int | None = None
    device: str | None = None
    precision: str | None = None
    kind: ClassVar[str] = "robustness"

    @property
    def title(self) -> str:
        return (f"robustness of {self.model} on {self.dataset}" + (f"/{self.split}" if self.split else "")
                + f": {len(self.corruptions)} corruptions x {len(self.severities)} severities"
                + (f" ({self.limit} images)" if self.limit else ""))

    @property
    def key(self) -> str:
        return fingerprint({"kind": self.kind, **self.to_json()})

    check = EvaluateJob.check

    def to_json(self) -> dict:
        d = asdict(self)
        return d | {"corruptions": list(self.corruptions), "severities": list(self.severities)}


@dataclass(frozen=True)
class FaithfulnessJob:
    """Score heat maps of `model` on `limit` images of a dataset (core.explain.scores.faithfulness_rows's
    arguments): each method's record is stored as it finishes, so a cancelled job resumes at the next method."""

    model: str
    dataset: str
    methods: tuple[str, ...]
    split: str | None = None
    limit: int | None = None
    layer: str | None = None
    kind: ClassVar[str] = "faithfulness"
    HOSTED_MAX_IMAGES: ClassVar[int] = 500  # each image costs ~80 forwards per map: a cap a public deployment needs

    @property
    def title(self) -> str:
        return (f"faithfulness of {self.model}'s {', '.join(self.methods)} on {self.dataset}"
                + (f"/{self.split}" if self.split else "") + (f" ({self.limit} images)" if self.limit else ""))

    @property
    def key(self) -> str:
        return fingerprint({"kind": self.kind, **self.to_json()})

    def check(self) -> None:
        """Hosted mode: the model and dataset offered (as for an evaluation), and at most HOSTED_MAX_IMAGES images."""
        EvaluateJob.check(self)
        if is_hosted() and (self.limit is None or self.limit > self.HOSTED_MAX_IMAGES):
            raise UserError(f"this deployment scores heat maps on at most {self.HOSTED_MAX_IMAGES} images (asked "
                            f"for: {self.limit or 'every image'})")

    def to_json(self) -> dict:
        return asdict(self) | {"methods": list(self.methods)}


JobSpec = EvaluateJob | TrainJob | DemoJob | ArenaJob | RobustnessJob | FaithfulnessJob


def job_spec(kind: str, spec: dict) -> JobSpec:
    """A job table row's (kind, spec JSON) as its typed spec; a UserError for a spec that does not read."""
    try:
        if kind == "train":
            return TrainJob(Recipe.from_dict(spec["recipe"]), device=spec.get("device"))
        if kind == "evaluate":
            return EvaluateJob(**spec)
        if kind == "demo":
            return DemoJob()
        if kind == "arena":
            return ArenaJob(ArenaSpec.from_json(spec["spec"]), device=spec.get("device"))
        if kind == "robustness":
            return RobustnessJob(**spec | {"corruptions": tuple(spec["corruptions"]),
                                           "severities": tuple(spec["severities"])})
        if kind == "faithfulness":
            return FaithfulnessJob(**spec | {"methods": tuple(spec["methods"])})
    except (KeyError, TypeError) as e:
        raise UserError(f"a {kind} job's spec does not read: {e}") from None
    raise ValueError(kind)


@dataclass
class Job:
    id: int
    key: str
    kind: str
    title: str
    spec: dict  # as stored; `task` reads it
    state: str
    progress: Progress
    error: str | None
    result: dict | None
    pid: int | None
    host: str | None
    created: float
    started: float | None
    finished: float | None
    heartbeat: float | None
    cancel: bool

    @property
    def task(self) -> JobSpec:
        return job_spec(self.kind, self.spec)

    def summary(self) -> dict:
        """The `jobs --json` row."""
        return {"id": self.id, "kind": self.kind, "title": self.title, "state": self.state,
                "progress": self.progress.to_json(), "error": self.error, "result": self.result,
                "created": self.created,
                "started": self.started, "finished": self.finished}


def _row(r: tuple) -> Job:
    (id_, key, kind, title, spec, state, progress, error, result, pid, host, created, started, finished,
     heartbeat, cancel) = r
    return Job(id_, key, kind, title, json.loads(spec), state, Progress.from_json(json.loads(progress or "{}")), error,
               json.loads(result) if result else None, pid, host, created, started, finished, heartbeat, bool(cancel))


class Jobs:
    """The job table of one store."""

    def __init__(self, store: Store | None = None):
        self.store = store or Store()
        with self.store.transaction() as db:
            db.executescript(SCHEMA)

    # --- submitting and looking -------------------------------------------------------------
    def submit(self, task: JobSpec | str, spec: dict | None = None, title: str | None = None, *,
               start_worker: bool = True) -> Job:
        """Queue `task`, or return the same job already queued, running or done (resuming it when it
        failed, was cancelled or interrupted). Hosted mode's allow-lists and training limits apply here.
        `task` is a typed spec, or a kind whose spec comes as the JSON the job table stores."""
        if isinstance(task, str):
            task = job_spec(task, spec or {})
        task.check()
        kind, key, spec, title = task.kind, task.key, task.to_json(), title or task.title
        with self.store.transaction(immediate=True) as db:
            row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE key=? ORDER BY id DESC LIMIT 1", (key,)).fetchone()
            if row is not None and _row(row).state in RESUMABLE:
                db.execute("UPDATE jobs SET state='queued', error=NULL, cancel=0, pid=NULL, finished=NULL WHERE id=?",
                           (row[0],))
                job_id = row[0]
            elif row is not None:
                job_id = row[0]  # queued, running or done: the same job
            else:
                cur = db.execute("INSERT INTO jobs(key, kind, title, spec, state, progress, created) "
                                 "VALUES (?,?,?,?, 'queued', '{}', ?)",
                                 (key, kind, title, json.dumps(spec), time.time()))
                job_id = cur.lastrowid
        if start_worker:
            self.ensure_worker()
        return self.get(job_id)

    def get(self, job_id: int) -> Job:
        self.reap()
        with self.store.transaction() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise UserError(f"no job {job_id}")
        return _row(row)

    def list(self, states: tuple[str, ...] | None = None, limit: int = 200) -> list[Job]:
        """Newest first; dead workers' jobs are marked interrupted first."""
        self.reap()
        q = f"SELECT {COLUMNS} FROM jobs"
        args: tuple = ()
        if states:
            q += f" WHERE state IN ({','.join('?' * len(states))})"
            args = tuple(states)
        with self.store.transaction() as db:
            rows = db.execute(q + " ORDER BY id DESC LIMIT ?", args + (limit,)).fetchall()
        return [_row(r) for r in rows]

    def cancel(self, job_id: int) -> Job:
        """A queued job is cancelled at once; a running one stops at its next step (keeping its last
        complete epoch, so it can be resumed)."""
        job = self.get(job_id)
        with self.store.transaction(immediate=True) as db:
            if job.state == "queued":
                db.execute("UPDATE jobs SET state='cancelled', finished=? WHERE id=? AND state='queued'",
                           (time.time(), job_id))
            elif job.state == "running":
                db.execute("UPDATE jobs SET cancel=1 WHERE id=?", (job_id,))
            else:
                raise UserError(f"job {job_id} is {job.state}; only queued or running jobs can be cancelled")
        return self.get(job_id)

    def resume(self, job_id: int, *, start_worker: bool = True) -> Job:
        job = self.get(job_id)
        if job.state not in RESUMABLE:
            raise UserError(f"job {job_id} is {job.state}; only {', '.join(RESUMABLE)} jobs can be resumed")
        return self.submit(job.task, start_worker=start_worker)

    def reap(self) -> int:
        """Mark running jobs whose worker is gone as interrupted; returns how many."""
        now, host = time.time(), socket.gethostname()
        with self.store.transaction() as db:
            rows = db.execute("SELECT id, pid, host, heartbeat FROM jobs WHERE state='running'").fetchall()
            dead = [(job_id, pid) for job_id, pid, h, beat in rows
                    if (h == host and not _alive(pid)) or (h != host and (beat or 0) < now - STALE_SECONDS)]
            for job_id, pid in dead:
                db.execute("UPDATE jobs SET state='interrupted', finished=?, error=? WHERE id=? AND state='running'",
                           (now, f"the worker process (pid {pid}) stopped while the job was running; resume it to "
                                 "continue from its last complete epoch", job_id))
        return len(dead)

    # --- workers -------------------------------------------------------------------------------
    def ensure_worker(self) -> None:
        """Start a background worker when jobs are queued and fewer than the limit are running."""
        self.reap()
        with self.store.transaction() as db:
            queued = db.execute("SELECT COUNT(*) FROM jobs WHERE state='queued'").fetchone()[0]
            running = db.execute("SELECT COUNT(*) FROM jobs WHERE state='running'").fetchone()[0]
        if queued and running < get_settings().max_jobs:
            spawn_worker(self.store)

    def claim(self, job_id: int | None = None) -> Job | None:
        """Take the oldest queued job (or `job_id`) for this process, if the concurrency limit allows."""
        self.reap()
        with self.store.transaction(immediate=True) as db:
            running = db.execute("SELECT COUNT(*) FROM jobs WHERE state='running'").fetchone()[0]
            if running >= get_settings().max_jobs:
                return None
            q = "SELECT id FROM jobs WHERE state='queued'" + (" AND id=?" if job_id is not None else "")
            row = db.execute(q + " ORDER BY id LIMIT 1", (job_id,) if job_id is not None else ()).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET state='running', pid=?, host=?, started=?, heartbeat=?, cancel=0, error=NULL "
                       "WHERE id=?", (os.getpid(), socket.gethostname(), now, now, row[0]))
        return self.get(row[0])

    def run(self, job: Job, on_progress: Callable[[dict], None] | None = None) -> Job:
        """Run a claimed job in this process to its end state."""
        beat = _Heartbeat(self.store, job.id)
        beat.start()
        last = {"t": 0.0, "cancel_checked": 0.0, "cancel": False, "unsaved": None}

        def progress(p: Progress) -> None:
            if on_progress:
                on_progress(p)
            now = time.monotonic()
            if now - last["t"] >= 0.5 or p.row is not None:  # at most two writes a second (an epoch's row always)
                last["t"], last["unsaved"] = now, None
                self._set(job.id, progress=json.dumps(json_safe(p.to_json())))
            else:
                last["unsaved"] = p

        def end(**fields: Any) -> None:  # with the last progress, which the half-second limit may have held back
            if last["unsaved"] is not None:
                fields["progress"] = json.dumps(json_safe(last["unsaved"].to_json()))
            self._set(job.id, finished=time.time(), **fields)

        def should_stop() -> bool:
            now = time.monotonic()
            if now - last["cancel_checked"] >= 0.5:
                last["cancel_checked"] = now
                with self.store.transaction() as db:
                    last["cancel"] = bool(db.execute("SELECT cancel FROM jobs WHERE id=?", (job.id,)).fetchone()[0])
            return last["cancel"]

        try:
            result = execute(job, self.store, progress, should_stop)
            end(state="done", result=json.dumps(json_safe(result)))
        except Stopped as e:
            end(state="cancelled", error=str(e))
        except Interrupted as e:
            end(state="interrupted", error=str(e))
        except UserError as e:
            end(state="failed", error=str(e))
        except (KeyboardInterrupt, SystemExit):
            end(state="interrupted", error="interrupted; resume it to continue from its last complete epoch")
            raise
        except Exception as e:  # a bug, not the user's doing: keep the traceback in the worker log
            traceback.print_exc()
            end(state="failed", error=f"{type(e).__name__}: {e}")
        finally:
            beat.stop()
        return self.get(job.id)

    def work(self, *, max_jobs: int | None = None) -> int:
        """The worker loop: claim and run queued jobs until none is left (or `max_jobs` ran)."""
        done = 0
        while max_jobs is None or done < max_jobs:
            job = self.claim()
            if job is None:
                break
            self.run(job)
            done += 1
        return done

    def _set(self, job_id: int, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.store.transaction() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))


def execute(job: Job, store: Store, progress: Callable[[Progress], None], should_stop: Callable[[], bool]) -> dict:
    """What each kind of job does; the result is a small JSON-able dict."""
    # lazy: pages read the job table and draw before torch loads; only a worker runs a job (torch)
    from core.arena.run import run_arena
    from core.demo import run_demo
    from core.evaluate import evaluate
    from core.explain.scores import faithfulness_rows
    from core.robustness import robustness
    from core.train.loop import train

    task = job.task  # hosted mode is judged again below: the job may have been queued before its limits changed
    if isinstance(task, TrainJob):
        check_training(task.recipe.epochs, task.recipe.limit)  # (train checks the model and the dataset)
        if task.recipe.world_size > 1:
            return train_processes(task, store, progress, should_stop)
        res = train(task.recipe, store=store, device=task.device, progress=progress, should_stop=should_stop)
        return {"run_id": res.run_id, "model_id": res.model_id, "val_top1": res.meta.get("val_top1"),
                "cached": res.cached}
    def report(done: int, total: int) -> None:
        if should_stop():
            raise Stopped(f"stopped after {done} of {total} images")
        progress(Progress(step=done, steps=total))

    if isinstance(task, EvaluateJob):
        ev = evaluate(task.model, task.dataset, task.split, limit=task.limit, device=task.device,
                      precision=task.precision, store=store, progress=report)
        return ev.summary()
    if isinstance(task, RobustnessJob):
        r = robustness(task.model, task.dataset, task.split, names=task.corruptions, severities=task.severities,
                       limit=task.limit, device=task.device, precision=task.precision, store=store, progress=report)
        return {k: r[k] for k in ("model", "dataset", "split", "clean_top1", "mean_corruption_top1", "ece",
                                  "temperature", "ece_heldout", "ece_scaled")}
    if isinstance(task, FaithfulnessJob):
        rows = faithfulness_rows(task.model, task.dataset, task.methods, task.split, limit=task.limit,
                                 layer=task.layer, store=store, progress=report)
        return {"model": task.model, "dataset": task.dataset,
                "rows": [{k: r.get(k) for k in ("method", "deletion_auc", "insertion_auc", "error")} for r in rows]}
    if isinstance(task, ArenaJob):
        out = run_arena(task.spec, store=store, device=task.device, progress=progress, should_stop=should_stop)
        return {**{k: out[k] for k in ("dataset", "budget", "seeds", "data_digest", "same_data", "complete")},
                "diverged": len(out["diverged"])}
    return run_demo(store=store, progress=progress, should_stop=should_stop)  # (checks that training is on)


# A background worker's niceness: jobs take whatever CPU the app's pages leave. Under 32 browser sessions on 2 cores
# an evaluation job at niceness 0 took 0.62 cores while pages waited (benchmarks/load_sessions.py, docs/reliability.md).
WORKER_NICENESS = 10


def train_processes(task: TrainJob, store: Store, progress: Callable[[Progress], None],
                    should_stop: Callable[[], bool], poll: float = 0.5) -> dict:
    """A training job with `world_size` processes on this machine: `torchrun --standalone --nproc-per-node N -m core
    train` in its own process group, followed from here. Progress: each epoch from the run's checkpoint, and which
    ranks are alive. Cancel stops every rank (SIGTERM to the group, SIGKILL after 10 s); a rank that dies ends the
    job interrupted (torchrun stops the others), and resuming it continues from the last complete epoch."""
    # lazy: pages read the job table and draw before torch loads; only a worker runs a job (torch)
    from core.train.runs import run_history

    r = task.recipe
    n = r.world_size
    logs = store.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{r.run_id}.torchrun.log"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", "-m", "core",
           "train", "--model", r.model, "--dataset", r.dataset, "--recipe-json", json.dumps(r.to_dict()), "--json",
           *(["--device", task.device] if task.device else [])]
    env = os.environ | {"CNNVIT_CACHE_DIR": str(store.root)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=_die_with_parent)
    seen, last_ranks = 0, None
    try:
        while proc.poll() is None:
            if should_stop():
                _stop_group(proc)
                raise Stopped(f"stopped ({n} processes); the run keeps its last complete epoch")
            ranks = _ranks(proc.pid)
            history = run_history(r.run_id, store)
            if len(history) != seen or ranks != last_ranks:
                alive = ", ".join(f"rank {k} {'alive' if ok else 'gone'}" for k, ok in sorted(ranks.items()))
                progress(Progress(epoch=len(history), epochs=r.epochs,
                                  row=history[-1] if len(history) != seen else None,
                                  message=f"{n} processes: {alive or 'starting'}"))
                seen, last_ranks = len(history), ranks
            time.sleep(poll)
    finally:
        if proc.poll() is None:
            _stop_group(proc)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise Interrupted(f"a training process ended with exit code {proc.returncode} ({n} processes; log: "
                          f"{log_path}): {' / '.join(tail)[:300]}; resume it to continue from its last complete "
                          "epoch")
    record = store.get(r.run_id)
    return {"run_id": r.run_id, "model_id": r.run_id, "val_top1": record.meta.get("val_top1") if record else None,
            "cached": False, "world_size": n}


def _die_with_parent() -> None:
    """In the torchrun child before it starts (Linux): SIGTERM when the worker thread that follows it dies, killed
    or crashed, so no rank trains on unwatched while the job is marked interrupted and may be resumed beside it
    (torchrun passes the signal to every rank). Elsewhere nothing: cancel still stops the group."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except OSError:
        pass


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to a process group (torchrun passes it to every rank), SIGKILL after 10 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _ranks(torchrun_pid: int) -> dict[int, bool]:
    """{rank: alive} of torchrun's worker processes, from /proc (their RANK environment variable); {} where /proc
    cannot tell (not Linux, not started yet)."""
    out = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            stat = (d / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != torchrun_pid:
                continue
            env = dict(x.split("=", 1) for x in (d / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in x)
            if "RANK" in env:
                out[int(env["RANK"])] = stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, ValueError, IndexError):
            continue
    return out


def spawn_worker(store: Store) -> int:
    """A detached `python -m core worker` for this store, at WORKER_NICENESS above ours; its output goes to a log
    in the store."""
    logs = store.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "worker.log", "ab")
    env = os.environ | {"CNNVIT_CACHE_DIR": str(store.root)}
    proc = subprocess.Popen([sys.executable, "-m", "core", "worker", "--nice", str(WORKER_NICENESS)], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    log.close()
    return proc.pid


class _Heartbeat(threading.Thread):
    """Beats every few seconds from a thread, so a long training step does not look like a dead worker."""

    def __init__(self, store: Store, job_id: int):
        super().__init__(daemon=True)
        self.store, self.job_id, self._stop_event = store, job_id, threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(HEARTBEAT_SECONDS):
            with self.store.transaction() as db:
                db.execute("UPDATE jobs SET heartbeat=? WHERE id=?", (time.time(), self.job_id))

    def stop(self) -> None:
        self._stop_event.set()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
