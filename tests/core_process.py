"""`python -m core ARGS` for the tests, as a new process each time, without paying the imports each time.

Each call is its own process, with its own stdout, stderr, exit status, environment (the caller's, at the time of the
call) and working directory, which is what `subprocess.run([sys.executable, "-m", "core", ...])` gives. The
difference: the process is forked from multiprocessing's forkserver, which imported the CLI's dependencies (torch,
torchvision, transformers: about 5 s on 2 cores) once, so a call costs its own work and not that import. The
CLI itself (core/__main__.py -> core.cli.main) runs unchanged; a few tests still start a real `python -m core`.
"""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

# what the commands import lazily: the forkserver imports them before it forks anything
PRELOAD = ["core.cli", "core.evaluate", "core.predict", "core.train.loop", "core.explain", "core.bench",
           "core.arena.run", "core.shape_bias", "core.models.listing", "core.jobs"]
_context: multiprocessing.context.ForkServerContext | None = None


def _ctx() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(args: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):  # file-descriptor level: output from C code is captured too
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
    sys.argv = ["python -m core", *args]
    from core.cli import main

    try:
        code = main(args)
    except SystemExit as e:  # argparse's usage errors
        code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def run_core(*args: str, cwd: str | Path, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m core *args` in a new (forked) process; its exit status, stdout and stderr."""
    with tempfile.TemporaryDirectory(prefix="core-process-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        out.touch()
        err.touch()
        p = _ctx().Process(target=_child, args=(list(args), dict(env if env is not None else os.environ), str(cwd),
                                                 str(out), str(err)))
        # multiprocessing's child re-runs the parent's __main__ module unless it is a `-m` module; under AppTest that
        # is the app script (Streamlit runs it as __main__), which must not run in a CLI process
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            p.start()
        finally:
            sys.modules["__main__"] = main
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join()
            raise subprocess.TimeoutExpired(["python", "-m", "core", *args], timeout)
        return subprocess.CompletedProcess(["python", "-m", "core", *args], p.exitcode,
                                           out.read_text(encoding="utf-8", errors="replace"),
                                           err.read_text(encoding="utf-8", errors="replace"))
