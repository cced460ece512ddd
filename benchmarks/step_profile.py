"""Where one training step's time goes, and what the lab's dropout saves: for docs/arena.md's notes.

    .venv/bin/python benchmarks/step_profile.py [--model cnn-multilayer] [--fp32] [--nn-dropout]

The step is train_speed.pure_step_rate's (forward + backward + Adam on preloaded tensors, batch 64, 32 px,
`shapes`, bf16 autocast where the CPU has it). Prints
- the operators' share of the step's CPU time (torch.profiler, 10 steps after 5 warm-up steps), with the lab's
  dropout or (`--nn-dropout`) with torch's;
- images/s of the step with the lab's dropout (core.models.dropout), with nn.Dropout in its place, and with no
  dropout at all, in one process, interleaved, median of 5 rounds of 20 steps.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from train_speed import preloaded, recipe_for, train_step  # noqa: E402  (benchmarks/, the script's own folder)

from core.train.loop import _optimizer  # noqa: E402

BATCH, STEPS = 64, 20


def _swap_dropout(module: nn.Module, make) -> nn.Module:
    module = copy.deepcopy(module)
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Dropout):
                setattr(parent, name, make(child.p))
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn-multilayer")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    p.add_argument("--nn-dropout", action="store_true", help="profile the step with nn.Dropout")
    args = p.parse_args()
    recipe = recipe_for(args.model, amp=not args.fp32)
    lab, x, y, precision = preloaded(recipe, limit=BATCH * STEPS)

    def run(module: nn.Module, opt: torch.optim.Optimizer, steps: int = STEPS) -> float:
        t = time.perf_counter()
        for i in range(steps):
            s = slice(i * BATCH, (i + 1) * BATCH)
            train_step(module, opt, x[s], y[s], precision)
        return steps * BATCH / (time.perf_counter() - t)

    variants = {"lab dropout": lab, "nn.Dropout": _swap_dropout(lab, nn.Dropout),
                "no dropout": _swap_dropout(lab, lambda _p: nn.Identity())}
    opts = {k: _optimizer(recipe, list(m.parameters())) for k, m in variants.items()}
    profiled = "nn.Dropout" if args.nn_dropout else "lab dropout"
    run(variants[profiled], opts[profiled], 5)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(variants[profiled], opts[profiled], 10)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::") or e.key.startswith("Optimizer.step")]
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.model}, {precision}, batch {BATCH}, {profiled}: share of the step's CPU time (self), top 10")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]:
        print(f"  {e.key:45s} {e.self_cpu_time_total / total:6.1%}  ({e.count // 10} calls a step)")
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for k in variants:
        run(variants[k], opts[k], 5)
    for _ in range(5):
        for k in variants:
            rates[k].append(run(variants[k], opts[k]))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print("images/s (median of 5 interleaved rounds): " + ", ".join(f"{k} {v:,.0f}" for k, v in med.items())
          + f"; lab dropout / nn.Dropout {med['lab dropout'] / med['nn.Dropout']:.2f}x")


if __name__ == "__main__":
    main()
