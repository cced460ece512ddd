"""A training recipe: every choice that changes the trained weights, and nothing else.

Its fingerprint is the run id, so the same recipe submitted twice is one run. Device and
worker count are not in it (like evaluation keys: they change speed, not the recipe).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from core.store import fingerprint
from core.train.presets import PRESETS, parse_preset
from core.train.schedules import SCHEDULES

OPTIMIZERS = ("sgd", "adam", "adamw")
TRANSFER = {
    "none": "train every weight (from scratch, or fine-tune all of a pretrained model)",
    "new-head": "a new head for the dataset's classes, every weight trains",
    "frozen": "a new head for the dataset's classes, the backbone frozen (the leaves study's DeiT)",
    "layerwise": "a new head; backbone blocks unfreeze from the top, one more every `unfreeze_every` epochs "
                 "(the Tiny ImageNet slides' VGG16)",
}
RECIPE_VERSION = 3  # bump when the training loop changes what a recipe produces (2: bf16 autocast on CPUs with bf16
# hardware, warm-up fraction and step budgets, DeiT initialisation of the ViTs; 3: dropout masks drawn by
# core.models.dropout on the CPU, the same distribution from another generator)


def _about(default: Any = dataclasses.MISSING, *, label: str, help: str, choices: Any = (), combine: bool = False,
           low: float | None = None, high: float | None = None, step: float | None = None) -> Any:
    """A `Recipe` field with what the CLI and the Train page say about it (read back by `recipe_fields`).

    choices: a tuple, or a dict of name -> what it does (added to the help)."""
    return dataclasses.field(default=default, metadata={"label": label, "help": help, "choices": choices,
                                                        "combine": combine, "low": low, "high": high, "step": step})


@dataclass(frozen=True)
class RecipeField:
    """One recipe choice as offered to a person: a `train` flag with its help, a Train page widget."""

    name: str
    type: type  # int, float, str or bool
    default: Any  # dataclasses.MISSING: required (model, dataset)
    label: str  # the Train page's label
    help: str  # what it does, in the user's words (with what each choice does)
    choices: tuple[str, ...] = ()  # the allowed values; empty: any value of `type`
    combine: bool = False  # several choices joined with "+" ("slides+cutmix")
    low: float | None = None  # the Train page's bounds; an optional field's 0 there means None
    high: float | None = None
    step: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def optional(self) -> bool:
        """None is a value: unset (no clipping, all images, the dataset's side)."""
        return self.default is None


@dataclass(frozen=True)
class Recipe:
    model: str = _about(label="Architecture", help="a scratch architecture id, a pretrained id or local model folder "
                        "(it gets a new head for the dataset's classes), or a trained run id")
    dataset: str = _about(label="Dataset", help="a dataset id or folder")
    epochs: int = _about(5, label="Epochs", help="passes over the training images", low=1, high=1000)
    batch_size: int = _about(64, label="Batch size", help="images per optimiser step", low=1, high=4096)
    optimizer: str = _about("sgd", label="Optimizer", help="sgd: SGD with momentum; adam: Adam; adamw: Adam with "
                            "decoupled weight decay (the demo's ViT)", choices=OPTIMIZERS)
    lr: float = _about(0.05, label="Learning rate", help="the peak learning rate; the schedule and warm-up scale it",
                       low=1e-6, high=10.0)
    momentum: float = _about(0.9, label="Momentum (SGD)", help="SGD's momentum (Adam and AdamW ignore it)",
                             low=0.0, high=0.999)
    nesterov: bool = _about(False, label="Nesterov", help="SGD: Nesterov momentum")
    weight_decay: float = _about(5e-4, label="Weight decay", help="SGD and Adam add it to the gradient (L2); AdamW "
                                 "shrinks the weights directly", low=0.0, high=1.0)
    schedule: str = _about("cosine", label="Schedule", help="how the learning rate moves: constant; step: times gamma "
                           "every step_size epochs; cosine: one half-cosine down to min_lr over the run; cyclic: the "
                           "Tiny ImageNet study's cosine within every epoch; plateau: ReduceLROnPlateau, cut by "
                           "plateau_factor after plateau_patience epochs without a better val loss (the leaves "
                           "study)", choices=SCHEDULES)
    warmup_epochs: float = _about(0.0, label="Warm-up epochs", help="the learning rate rises linearly from ~0 over "
                                  "this many epochs (fractions allowed), any schedule", low=0.0, high=100.0)
    warmup_fraction: float = _about(0.0, label="Warm-up (fraction of the run)", help="the learning rate rises "
                                    "linearly from ~0 over this share of all optimiser steps (DeiT-style, whatever "
                                    "the run's length); instead of warm-up epochs", low=0.0, high=0.5, step=0.01)
    max_steps: int | None = _about(None, label="Stop after N steps (0 = epochs decide)", help="a step budget: stop "
                                   "after this many optimiser steps, the schedule spread over them (the arena's "
                                   "steps, seconds and FLOPs budgets); unset: all the epochs", low=0, high=10_000_000)
    step_size: int = _about(30, label="Step size (epochs)", help="schedule step: multiply the learning rate by gamma "
                            "every this many epochs", low=1, high=1000)
    gamma: float = _about(0.1, label="Gamma (step)", help="schedule step: the factor applied every step_size epochs",
                          low=0.0, high=1.0)
    min_lr: float = _about(0.0, label="Minimum learning rate", help="the floor of cosine, cyclic and plateau",
                           low=0.0, high=10.0)
    plateau_factor: float = _about(0.5, label="Plateau factor", help="schedule plateau: multiply the learning rate by "
                                   "this when the val loss stops improving (0.5 in the leaves study)",
                                   low=0.01, high=0.99)
    plateau_patience: int = _about(5, label="Plateau patience (epochs)", help="schedule plateau: epochs without a "
                                   "better val loss before a cut (5 in the leaves study)", low=0, high=1000)
    clip_norm: float | None = _about(None, label="Clip gradient norm (0 = off)", help="clip the gradients' total "
                                     "norm to this before each step (the Tiny ImageNet study clipped at 10); "
                                     "unset: no clipping", low=0.0, high=1000.0)
    label_smoothing: float = _about(0.0, label="Label smoothing", help="the share of each target spread over the "
                                    "other classes", low=0.0, high=0.9)
    augment: str = _about("none", label="Augmentation", help="random changes to each training batch, combined with "
                          "+ (slides+cutmix)", choices=PRESETS, combine=True)
    aux_weight: float = _about(0.3, label="Auxiliary loss weight", help="GoogLeNet: each auxiliary head's loss weight "
                               "(0.3, Szegedy et al.); other models have no auxiliary heads", low=0.0, high=10.0)
    transfer: str = _about("none", label="Transfer learning", help="what trains in a pretrained model or trained run",
                           choices=TRANSFER)
    head_hidden: int | None = _about(None, label="Head hidden units (0 = none)", help="a hidden layer in the "
                                     "new head: Linear - ReLU - Dropout(0.3) - Linear (512 in the leaves study); "
                                     "unset: one Linear layer", low=0, high=8192)
    unfreeze_every: int = _about(1, label="Unfreeze a block every N epochs", help="transfer layerwise: one more "
                                 "backbone block trains every N epochs, from the top", low=1, high=100)
    limit: int | None = _about(None, label="Train images (0 = all)", help="train on a fixed subset of N images; "
                               "unset: all of them", low=0, high=10_000_000, step=500)
    val_limit: int | None = _about(None, label="Validation images (0 = all)", help="validate on a fixed subset of N "
                                   "images; unset: all of them", low=0, high=10_000_000, step=500)
    image_size: int | None = _about(None, label="Image side (0 = dataset's)", help="scratch architectures: train "
                                    "(and later run) at this side, images resized, e.g. 32 for speed (32 px costs a "
                                    "quarter of 64 px); unset: the dataset's side", low=0, high=224)
    seed: int = _about(0, label="Seed", help="seeds the initial weights, the batch order and the augmentation",
                       low=0, high=2**31 - 1)
    amp: bool = _about(True, label="Mixed precision", help="bfloat16 autocast on CUDA and on CPUs with bf16 "
                       "hardware (AMX, AVX-512 BF16); fp32 elsewhere, or everywhere when off (--no-amp)")
    world_size: int = _about(1, label="Processes", help="train with N processes (DistributedDataParallel under "
                             "torchrun: one per GPU, or N on the CPU); the batch size is the global one and must "
                             "divide by N", low=1, high=64)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.epochs > 1000:
            raise UserError("epochs must be between 1 and 1000")
        if self.batch_size < 1:
            raise UserError("batch size must be positive")
        if self.world_size < 1 or self.batch_size % self.world_size:
            raise UserError(f"the batch size ({self.batch_size}) must divide by the number of processes "
                            f"({self.world_size}): each process takes an equal share of every batch")
        if not self.lr > 0:
            raise UserError("learning rate must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; one of {', '.join(SCHEDULES)}")
        if self.transfer not in TRANSFER:
            raise UserError(f"unknown transfer mode {self.transfer!r}; one of {', '.join(TRANSFER)}")
        if not 0 <= self.label_smoothing < 1:
            raise UserError("label smoothing must be in [0, 1)")
        if not 0 <= self.warmup_fraction <= 0.5:
            raise UserError("warm-up fraction must be between 0 and 0.5 of the run")
        if self.warmup_fraction and self.warmup_epochs:
            raise UserError("give a warm-up in epochs or as a fraction of the run, not both")
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError("max steps must be a positive number of steps")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise UserError("gradient clipping norm must be positive")
        if self.image_size is not None and not 8 <= self.image_size <= 224:
            raise UserError("image size must be between 8 and 224 pixels")
        for name in ("limit", "val_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"{name} must be a positive number of images")
        parse_preset(self.augment)
        # lazy: core.models imports torch (~2 s), and the CLI reads this module to build its `train` flags
        from core.models.scratch import is_scratch

        scratch = is_scratch(self.model)
        if scratch and self.transfer != "none":
            raise UserError(f"transfer learning ({self.transfer}) needs a pretrained model or a trained run; "
                            f"{self.model} starts from random weights")
        if not scratch and self.image_size is not None:
            raise UserError(f"an image size can be chosen for scratch architectures only; {self.model} has its own")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown recipe fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    @property
    def title(self) -> str:
        """One line for job lists: what is trained on what, and the choices that tell two runs apart."""
        extra = [f"{self.optimizer} lr {self.lr:g}", self.schedule]
        if self.limit:
            extra.append(f"{self.limit} images")
        if self.image_size:
            extra.append(f"{self.image_size} px")
        if self.augment != "none":
            extra.append(self.augment)
        if self.transfer != "none":
            extra.append(self.transfer)
        if self.world_size > 1:
            extra.append(f"{self.world_size} processes")
        length = f"{self.max_steps} steps" if self.max_steps else f"{self.epochs} epochs"
        return f"train {self.model} on {self.dataset}, {length} ({', '.join(extra)})"

    @property
    def run_id(self) -> str:
        d = self.to_dict()
        if d["world_size"] == 1:  # one process: the id every run had before several processes could train it
            del d["world_size"]
        return "run-" + fingerprint({"kind": "run", "version": RECIPE_VERSION, **d})[:12]


def recipe_fields() -> list[RecipeField]:
    """Every `Recipe` field in order, with its help, choices and the Train page's bounds."""
    hints = typing.get_type_hints(Recipe)
    fields = []
    for f in dataclasses.fields(Recipe):
        about = dict(f.metadata)
        choices = about.pop("choices")
        if isinstance(choices, dict):  # name -> what it does: the help says
            about["help"] += "".join(f"; {k}: {v}" for k, v in choices.items())
        kind = hints[f.name]
        if typing.get_args(kind):  # int | None -> int
            [kind] = [t for t in typing.get_args(kind) if t is not type(None)]
        fields.append(RecipeField(f.name, kind, f.default, choices=tuple(choices), **about))
    return fields
