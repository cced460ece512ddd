"""Markdown pieces the doc-writing scripts share (benchmarks/arena.py, shape_bias.py, robustness.py,
explanations.py), and the CLI runner of those that measure in processes of their own (scaling.py, gpu.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.arena.run import run_arena
from core.arena.spec import ArenaSpec
from core.demo import DEMO_MODELS
from core.metrics import mean_ci95
from core.settings import get_settings


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def ci(values: list, fmt=pct, scale: float = 100.0) -> str:
    """Mean ± half-width of the 95% interval over seeds (`fmt` the mean; the half-width times `scale`, one
    decimal for percentages, three otherwise); `-` for no value."""
    mean, half = mean_ci95([v for v in values if v is not None])
    if mean is None:
        return "-"
    return fmt(mean) + (f" ± {scale * half:.{1 if scale == 100 else 3}f}" if half is not None else "")


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows), ""]


def write_doc(out: Path, lines: list[str], notes: Path | None) -> None:
    """Write the doc and print it: `lines`, then the reading of the figures in `notes` when given and present."""
    reading = notes.read_text() if notes is not None and notes.exists() else ""
    out.write_text("\n".join(lines) + ("\n" + reading if reading else ""))
    print("\n".join(lines))
    print(f"wrote {out}")


def arena_cmd(spec: ArenaSpec, extra: str = "") -> str:
    """The `python -m core arena` command that trains `spec`'s runs."""
    return spec.command + extra


ARENA_MODELS = (*DEMO_MODELS, "vit-convstem")  # the demo's four and the arena's conv-stem hybrid
ARENA_VAL_LIMIT = 500  # the arena's validation images


def trained_arena(models, dataset: str, budget: str, seeds: int) -> tuple[ArenaSpec, dict]:
    """The arena the doc-writing scripts measure: `models` on `dataset` at 32 px, validated on ARENA_VAL_LIMIT
    images; trained runs are read back from the store, missing ones trained."""
    spec = ArenaSpec(models=tuple(models), dataset=dataset, budget=budget, seeds=seeds, val_limit=ARENA_VAL_LIMIT,
                     image_size=32)
    return spec, run_arena(spec)


def core_json(args: list[str], store: Path, *, processes: int = 1, env: dict[str, str] | None = None,
              timeout: float | None = None) -> dict:
    """`python -m core ARGS --json` (under `torchrun --standalone` for processes > 1) in the repository, with
    `store` as its store and this process's generated datasets (not generated again for each store); its JSON. A
    failure raises RuntimeError with the end of its stderr."""
    launch = [sys.executable, *(["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
                                if processes > 1 else [])]
    p = subprocess.run([*launch, "-m", "core", *args, "--json"], cwd=Path(__file__).resolve().parent.parent,
                       env=os.environ | {"CNNVIT_CACHE_DIR": str(store),
                                         "CNNVIT_DATASETS_DIR": str(get_settings().datasets_dir)} | (env or {}),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"python -m core {' '.join(args)} ({processes} process(es)): exit {p.returncode}: "
                           f"{p.stderr[-2000:]}")
    return json.loads(p.stdout)
