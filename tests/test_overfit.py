"""Every scratch architecture can fit one fixed batch of 256 `shapes` images (>= 99% train accuracy) within a
bounded number of steps: a check that catches initialisation, position-embedding and learning-rate bugs that a
training loss merely going down hides (the plain ViT's failure to learn `shapes` in a short run is not one of
those: see docs/arena.md).

Real parts: each registered architecture as `build_scratch` makes it, the images as the training loop resizes
them (`in_geometry`), the loop's optimizer for the model's own recipe (`_optimizer`, at its own peak learning
rate, constant, without weight decay or label smoothing: fitting, not generalising), and the loop's precision
(bf16 autocast where the CPU has it). Accuracy is measured in eval mode (dropout off, BatchNorm's running
statistics) on the same 256 images every 5 steps.

At 16 px, so the suite stays quick (the ViTs keep their 8 x 8 token grid of 2-px patches); the linear model and
the 2-layer CNN at 32 px (at 16 px they need more steps than the bound, being too small to memorise faster). The architectures
that cost more than a few seconds a step here are marked `slow`: `pytest -m slow tests/test_overfit.py` runs them
(measured steps and seconds for every architecture are in docs/arena.md).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.arena.run import model_recipe
from core.data.registry import load_dataset
from core.models.scratch import build_scratch, scratch_specs
from core.models.spec import input_shape_for
from core.models.wrapper import split_outputs
from core.precision import autocast, resolve_precision
from core.train.loop import _optimizer, in_geometry
from core.train.recipe import Recipe

SIZE = 16
SIZES = {"linear": 32, "cnn-2layer": 32}  # too small to fit 256 images at 16 px in the bound: at 32 px, still cheap
BATCH = 256
MAX_STEPS = 150
STEPS = {"vgg16": 300}  # no BatchNorm: fits at its lr (Adam 1e-4) in 250 steps, measured (core/models/scratch.py)
# vit-small: 575 s on 2 AVX2 cores without bf16 (fp32 at ~4 s a step), against 70 steps in about a minute with bf16
SLOW = {"alexnet-reduced", "googlenet-reduced", "vgg16", "resnet18", "se-googlenet", "cct-7", "vit-small",
        "vit-convstem", "vit-spt-lsa"}


def steps_to_fit(model_id: str, max_steps: int = MAX_STEPS, lr: float | None = None) -> tuple[int | None, float]:
    """(the step at which eval-mode accuracy on the batch first reached 99%, or None; the last accuracy)."""
    ds = load_dataset("shapes")
    model = build_scratch(model_id, input_shape_for(ds, SIZES.get(model_id, SIZE)), seed=0)
    batch = in_geometry(ds.split("train").take(np.arange(BATCH)), model.preprocess)
    x = model.preprocess.normalize(torch.from_numpy(batch.images).permute(0, 3, 1, 2).contiguous())
    y = torch.from_numpy(batch.labels)
    own = model_recipe(model_id)
    recipe = Recipe(model=model_id, dataset="shapes", optimizer=own["optimizer"], lr=lr or own["lr"],
                    weight_decay=0.0)
    module = model.module.train()
    optimizer = _optimizer(recipe, list(module.parameters()))
    precision = resolve_precision("auto", "cpu")
    torch.manual_seed(0)
    accuracy = 0.0
    for step in range(1, max_steps + 1):
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, "cpu"):
            logits, aux = split_outputs(module(x))
        F.cross_entropy(logits.float(), y).backward()
        optimizer.step()
        if step % 5 == 0:
            module.eval()
            with torch.no_grad(), autocast(precision, "cpu"):
                accuracy = float((split_outputs(module(x))[0].argmax(1) == y).float().mean())
            module.train()
            if accuracy >= 0.99:
                return step, accuracy
    return None, accuracy


@pytest.mark.parametrize("model_id", [pytest.param(s.id, marks=pytest.mark.slow) if s.id in SLOW else s.id
                                      for s in scratch_specs()])
def test_each_architecture_fits_one_batch(model_id):
    bound = STEPS.get(model_id, MAX_STEPS)
    step, accuracy = steps_to_fit(model_id, max_steps=bound)
    assert step is not None, f"{model_id} reached only {accuracy:.1%} on its training batch in {bound} steps"


def test_a_broken_learning_rate_is_caught():
    # the check can fail: ResNet-20 at a learning rate 1000x below its own does not fit the batch in 30 steps
    step, accuracy = steps_to_fit("resnet20", max_steps=30, lr=model_recipe("resnet20")["lr"] / 1000)
    assert step is None and accuracy < 0.9
