"""Why is ResNet-20's interval in the demo's fight so wide, and does a standard fix for a slow start narrow it?
(docs/arena.md, "Why ResNet-20's interval is so wide".)

    python benchmarks/resnet20_start.py [--variants recipe,lr1e-3,warmup,zero-gamma] [--seeds 5] [--store DIR]

Each variant trains ResNet-20 with the demo's recipe for it (`core.demo.DEMO_RECIPES`: epochs:8 on `shapes`'s 5,000
training images at 32 px, batch 64, Adam at lr 2e-3 with a cosine schedule, no warm-up; bf16 autocast where the
CPU has it) at seeds 0 to N-1, so `recipe` is the demo's arena run for run (the same run ids: a store that holds
them reads them back). It prints the train loss and val top-1 (the demo's 500 val images) after each epoch per
seed, then per variant the mean val top-1 with its 95% interval over seeds and the gap to `recipe`, paired by seed.

- recipe: the registered model and its own recipe.
- lr1e-3: the learning-rate sweep's other rate.
- warmup: a linear warm-up over the first 5% of the steps (`--warmup-fraction 0.05`).
- zero-gamma: the last BatchNorm of each basic block starts with its scale at zero, so each block starts as the
  identity (Goyal et al. 2017, "Accurate, Large Minibatch SGD", section 5.1), registered in this process only; the
  lab's model is unchanged.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.demo import DEMO_RECIPES  # noqa: E402
from core.metrics import mean_ci95  # noqa: E402
from core.models import scratch  # noqa: E402
from core.models.spec import InputShape, register_scratch  # noqa: E402
from core.store import Store  # noqa: E402
from core.train.loop import train  # noqa: E402


def zero_gamma(shape: InputShape) -> nn.Module:
    net = scratch.resnet20(shape)
    for block in net.modules():
        if isinstance(block, scratch._BasicBlock):
            nn.init.zeros_(block.bn2.weight)
    return net


VARIANTS = {"recipe": {}, "lr1e-3": {"lr": 1e-3}, "warmup": {"warmup_fraction": 0.05},
            "zero-gamma": {"model": "resnet20-zero-gamma"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--store", help="a store to train in and read runs back from (default: a temporary one)")
    args = p.parse_args()
    if unknown := [v for v in args.variants if v not in VARIANTS]:
        p.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    register_scratch("resnet20-zero-gamma", name="ResNet-20 (zero-init last BN scale)", family="cnn",
                     recipe=scratch.RESNET20_RECIPE)(zero_gamma)
    base = next(r for r in DEMO_RECIPES if r.model == "resnet20")
    print(f"Recipe: {base.to_dict()}\n")
    final: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="resnet20-start-") as tmp:
        store = Store(args.store or tmp)
        for name in args.variants:
            print(f"{name}: train loss / val top-1 after each epoch")
            for seed in range(args.seeds):
                result = train(replace(base, seed=seed, **VARIANTS[name]), store=store)
                print(f"  seed {seed} ({result.meta['run_id']}): " + "  ".join(
                    f"{h['train_loss']:.2f} / {h['val_top1']:.1%}" for h in result.history), flush=True)
                final.setdefault(name, []).append(result.history[-1]["val_top1"])
    print("\n| variant | val top-1 per seed | mean ± 95% CI | gap to recipe, paired by seed |\n|---|---|---|---|")
    for name, tops in final.items():
        mean, half = mean_ci95(tops)
        gap = ""
        if name != "recipe" and "recipe" in final:
            g_mean, g_half = mean_ci95([a - b for a, b in zip(tops, final["recipe"])])
            gap = f"{100 * g_mean:+.1f} ± {100 * g_half:.1f} points"
        print(f"| {name} | {' / '.join(f'{100 * t:.1f}' for t in tops)} | {100 * mean:.1f}% ± {100 * half:.1f} | "
              f"{gap} |")


if __name__ == "__main__":
    main()
