"""Training throughput: the real training loop end to end against the pure train step on preloaded tensors.

    .venv/bin/python benchmarks/train_speed.py [--model resnet20]

Used by benchmarks/speed.py (section `training`).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def recipe_for(model: str, epochs: int = 3, limit: int | None = 2000, amp: bool = True):
    from core.train.recipe import Recipe

    return Recipe(model=model, dataset="shapes", epochs=epochs, limit=limit, val_limit=200, image_size=32,
                  optimizer="adam", lr=1e-3, augment="flip", amp=amp)


def preloaded(recipe, device: str = "cpu", limit: int | None = None):
    """The recipe's model (in training mode, on `device`), its first `limit` training images (default the
    recipe's) as normalised tensors on `device`, their labels, and the precision the training loop would choose."""
    from core.precision import resolve_precision
    from core.train.runs import build_for_recipe

    ds, model = build_for_recipe(recipe)
    split = ds.split("train").limited(limit or recipe.limit)
    pre = model.preprocess
    # in the layout the training loop hands the model: in-memory images are (N, H, W, C) uint8, permuted to
    # NCHW as a view, and the float conversion keeps those strides, so convolutions run channels-last
    x = pre.normalize(pre.geometry_batch(split.images), channels_last=True).to(device)
    y = torch.from_numpy(split.labels).to(device)
    return model.module.to(device).train(), x, y, resolve_precision("auto" if recipe.amp else "fp32", device)


def train_step(module, opt, x, y, precision: str, device: str = "cpu") -> None:
    """One forward + backward + optimizer step on a batch, as the training loop takes it."""
    from core.models.wrapper import split_outputs
    from core.precision import autocast

    with autocast(precision, device):
        logits, _aux = split_outputs(module(x))
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def pure_step_rate(recipe, epochs: int = 3, device: str = "cpu") -> float:
    """Images/s of forward + backward + optimizer step over preloaded, already normalised tensors on `device`."""
    from core.train.loop import _optimizer

    module, x_all, y_all, precision = preloaded(recipe, device)
    opt = _optimizer(recipe, list(module.parameters()))
    gen = torch.Generator().manual_seed(0)
    rates = []
    for _ in range(epochs):
        order = torch.randperm(len(y_all), generator=gen).to(device)
        t = time.perf_counter()
        for s in range(0, len(order), recipe.batch_size):
            idx = order[s:s + recipe.batch_size]
            train_step(module, opt, x_all[idx], y_all[idx], precision, device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rates.append(len(order) / (time.perf_counter() - t))
    return statistics.median(rates)


def end_to_end_rate(recipe, store_dir: Path) -> float:
    """Images/s of the training loop's epochs (validation excluded), median over the recipe's epochs."""
    from core.store import Store
    from core.train.loop import train

    result = train(recipe, store=Store(store_dir))
    return statistics.median(row["images_per_second"] for row in result.history)


def train_rates(model: str, store_dir: Path, amp: bool = True) -> dict:
    """The pure step's and the loop's training images/s; amp: bf16 autocast where the hardware has it, else fp32."""
    recipe = recipe_for(model, amp=amp)
    return {"pure_step": pure_step_rate(recipe), "end_to_end": end_to_end_rate(recipe, store_dir)}


if __name__ == "__main__":
    import tempfile

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet20")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="train-speed-") as store:
        r = train_rates(args.model, Path(store))
    print(f"{args.model}: pure step {r['pure_step']:.1f} img/s, end to end {r['end_to_end']:.1f} img/s, "
          f"ratio {r['end_to_end'] / r['pure_step']:.2f}")
