"""`python -m core demo`: fill an empty store so every page has something to show, offline.

A fair fight in miniature: the multi-layer CNN, ResNet-20, a plain ViT (ViT-Lite-2/4) and a data-efficient hybrid
(CCT-2/3x2) trained as one arena (core/arena): the same 5,000 `shapes` images in the same order, at 32 px, batch 64,
with one budget for all four, each with its own recipe; then each is evaluated on the validation split. Each step is a
cache hit when it has been done before, so running the demo twice costs nothing the second time.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from core.arena.run import arena_recipe, plan, run_arena
from core.arena.spec import ArenaSpec, Budget
from core.evaluate import evaluate
from core.hosted import check_demo
from core.progress import Progress
from core.store import Store
from core.train.recipe import Recipe

DEMO_DATASET = "shapes"
# The plain ViT is ViT-Lite-2/4, not `vit-small`: about the others' size (215 K parameters against 270 K for ResNet-20,
# 284 K for CCT-2; `vit-small` has 2.69 M and 4.5x ResNet-20's training FLOPs), and CCT-2 with its convolutional
# tokenizer and sequence pooling taken out, so the two ViTs' gap is what those buy. At this budget it scores no
# less than `vit-small` did, in a twelfth of the compute (docs/arena.md)
DEMO_MODELS = ("cnn-multilayer", "resnet20", "vit-lite-2", "cct-2")
# One budget for all four, sized so the demo fills an empty store in under 5 minutes on 2 CPU cores (2-3 with bf16
# arithmetic; about 5 on a CPU without it, which trains in fp32): measured in docs/arena.md, with the accuracies it
# reaches and the learning curves
DEMO_BUDGET = "epochs:8"


def demo_arena() -> ArenaSpec:
    return ArenaSpec(models=DEMO_MODELS, dataset=DEMO_DATASET, budget=DEMO_BUDGET, seeds=1, val_limit=500,
                     image_size=32, batch_size=64)


def demo_recipe(model: str) -> Recipe:
    """A scratch architecture trained as the demo trains its four: its own recipe, on the demo's images, at its
    budget in epochs, batch size and image side. The Train page starts from it, so the page's defaults for a demo
    model are the demo's run (a cache hit once the demo has run)."""
    return replace(arena_recipe(demo_arena(), model), epochs=int(Budget.parse(DEMO_BUDGET).amount))


DEMO_RECIPES = tuple(demo_recipe(m) for m in DEMO_MODELS)


def run_demo(*, store: Store | None = None, progress: Callable[[Progress], None] | None = None,
             should_stop: Callable[[], bool] | None = None, spec: ArenaSpec | None = None) -> dict:
    check_demo()  # hosted mode with training off
    store = store or Store()
    spec = spec or demo_arena()
    say = progress or (lambda p: None)
    steps = len(spec.models) + 1

    def report(p: Progress) -> None:  # the arena's runs, then one step of evaluations
        say(Progress(step=p.step, steps=steps, model=p.model, message=p.message))

    before = {c.recipe.run_id for c in plan(spec, store) if store.get(c.recipe.run_id) is not None}
    arena = run_arena(spec, store=store, progress=report, should_stop=should_stop)
    runs, evaluations = [], []
    for r in arena["results"]:
        if not r["runs_done"]:  # every seed diverged: no model to evaluate (the arena recorded why)
            run_id = r["run_ids"][0]
            [why] = [d["message"] for d in arena["diverged"] if d["run_id"] == run_id]
            runs.append({"model": r["model"], "run_id": run_id, "val_top1": None, "cached": False, "diverged": why})
            continue
        run_id = r["run_ids"][r["top1_seeds"][0]]  # the first seed that finished (seeds are 0..n-1, in order)
        runs.append({"model": r["model"], "run_id": run_id, "val_top1": r["top1_mean"], "cached": run_id in before})
        say(Progress(step=len(spec.models), steps=steps, model=r["model"],
                     message=f"      evaluating {run_id} ({r['model']}) on {spec.dataset}/val"))
        ev = evaluate(run_id, arena["dataset"], "val", store=store)
        evaluations.append({"model": r["model"], "model_id": run_id, **{k: ev.summary()[k] for k in (
            "dataset", "split", "n", "top1", "top5", "cached")}})
    say(Progress(step=steps, steps=steps,
                 message=f"      evaluated {len(evaluations)} models on {arena['dataset']}/val"))
    return {"runs": runs, "evaluations": evaluations, "budget": arena["budget"], "held_equal": arena["held_equal"],
            "same_data": arena["same_data"], "data_digest": arena["data_digest"], "diverged": arena["diverged"]}
