"""`python -m core demo`: fill an empty store so every page has something to show, offline.

Trains a small CNN, ResNet-20 and the small ViT on `shapes` (subsets and few epochs, sized to
finish in a few minutes on 2 CPU cores) and evaluates each on the validation split. Each step is
a cache hit when it has been done before, so running the demo twice costs nothing the second time.
"""
from __future__ import annotations

from typing import Callable

from core.evaluate import evaluate
from core.hosted import check_demo
from core.progress import Progress
from core.store import Store
from core.train.loop import train
from core.train.recipe import Recipe

DEMO_DATASET = "shapes"
# At 32 px (the 64-px images resized; 4x less compute). Measured on 2 CPU cores: the CNN ~45 s (36% val top-1),
# ResNet-20 ~80 s (83%), the ViT ~95 s (13%: a ViT from scratch on 3,000 images barely starts to learn, which is
# the point the ViT paper makes about data). SGD at lr 0.1 left ResNet-20 at 18% after 8 epochs; Adam 2e-3 is used.
DEMO_RECIPES = (
    Recipe(model="cnn-multilayer", dataset=DEMO_DATASET, epochs=8, val_limit=500, image_size=32, optimizer="adam",
           lr=1e-3, weight_decay=0.0),
    Recipe(model="resnet20", dataset=DEMO_DATASET, epochs=8, val_limit=500, image_size=32, optimizer="adam", lr=2e-3,
           weight_decay=0.0),
    Recipe(model="vit-small", dataset=DEMO_DATASET, epochs=5, limit=3000, val_limit=500, image_size=32,
           optimizer="adamw", lr=5e-4, warmup_epochs=1, weight_decay=0.05),
)


def run_demo(*, store: Store | None = None, progress: Callable[[Progress], None] | None = None,
             should_stop: Callable[[], bool] | None = None, recipes: tuple[Recipe, ...] = DEMO_RECIPES) -> dict:
    check_demo()  # hosted mode with training off
    store = store or Store()
    say = progress or (lambda p: None)
    runs, evaluations = [], []
    for i, recipe in enumerate(recipes):
        say(Progress(step=i, steps=len(recipes), message=f"[{i + 1}/{len(recipes)}] training {recipe.model} on "
                     f"{recipe.dataset} ({recipe.epochs} epochs, {recipe.limit or 'all'} images)"))

        def report(p: Progress, i: int = i, model: str = recipe.model) -> None:  # models done, as a fraction
            within = (p.epoch or 0) / p.epochs if p.epochs else 0.0
            row = p.row
            say(Progress(step=round(i + within, 3), steps=len(recipes), model=model,
                         message=f"      epoch {row['epoch']}/{p.epochs}: val top-1 {row['val_top1']:.1%}, "
                                 f"{row['seconds']:.1f} s" if row and row.get("val_top1") is not None else None))

        res = train(recipe, store=store, progress=report, should_stop=should_stop)
        runs.append({"model": recipe.model, "run_id": res.run_id, "val_top1": res.meta.get("val_top1"),
                     "cached": res.cached})
        say(Progress(step=i, steps=len(recipes), message=f"      evaluating {res.model_id} on {recipe.dataset}/val"))
        ev = evaluate(res.model_id, recipe.dataset, "val", store=store)
        evaluations.append({"model": recipe.model, "model_id": res.model_id, **{k: ev.summary()[k] for k in (
            "dataset", "split", "n", "top1", "top5", "cached")}})
    return {"runs": runs, "evaluations": evaluations}
