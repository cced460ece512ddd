"""Markdown pieces the doc-writing scripts share (benchmarks/arena.py, shape_bias.py, robustness.py,
explanations.py)."""
from __future__ import annotations

from pathlib import Path

from core.arena.spec import ArenaSpec
from core.metrics import mean_ci95


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
    sizes = f" --sizes {','.join(map(str, spec.sizes))}" if spec.sizes else ""
    return (f"python -m core arena --models {','.join(spec.models)} --dataset {spec.dataset} --budget {spec.budget} "
            f"--seeds {spec.seeds}{sizes} --val-limit {spec.val_limit}" + (f" --lr {spec.lr:g}" if spec.lr else "")
            + ("" if spec.amp else " --no-amp") + (f" --image-size {spec.image_size}" if spec.image_size != 32 else "")
            + extra)
