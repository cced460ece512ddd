"""A training recipe: every choice that changes the trained weights, and nothing else.

Its fingerprint is the run id, so the same recipe submitted twice is one run. Device and
worker count are not in it (like evaluation keys: they change speed, not the recipe).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.errors import UserError
from core.store import fingerprint

OPTIMIZERS = ("sgd", "adam", "adamw")
TRANSFER = {
    "none": "train every weight (from scratch, or fine-tune all of a pretrained model)",
    "new-head": "a new head for the dataset's classes, every weight trains",
    "frozen": "a new head for the dataset's classes, the backbone frozen (the leaves study's DeiT)",
    "layerwise": "a new head; backbone blocks unfreeze from the top, one more every `unfreeze_every` epochs "
                 "(the Tiny ImageNet slides' VGG16)",
}
RECIPE_VERSION = 1  # bump when the training loop changes what a recipe produces


@dataclass(frozen=True)
class Recipe:
    model: str  # a scratch id, pretrained id, local folder or trained run id
    dataset: str  # a dataset id or folder
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 30
    gamma: float = 0.1
    min_lr: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    clip_norm: float | None = None  # the Tiny ImageNet study clipped at 10
    label_smoothing: float = 0.0
    augment: str = "none"
    aux_weight: float = 0.3  # each GoogLeNet auxiliary head's loss weight (Szegedy et al.)
    transfer: str = "none"
    head_hidden: int | None = None  # 512: the leaves study's Linear-ReLU-Dropout(0.3)-Linear head
    unfreeze_every: int = 1
    limit: int | None = None  # train on a fixed subset of N images
    val_limit: int | None = None
    image_size: int | None = None  # scratch models: train (and later run) at this side, e.g. 32 for speed
    seed: int = 0
    amp: bool = True  # mixed precision (bfloat16 autocast), on CUDA only

    def __post_init__(self) -> None:
        from core.train.augment import parse_preset
        from core.train.schedules import SCHEDULES

        if self.epochs < 1 or self.epochs > 1000:
            raise UserError("epochs must be between 1 and 1000")
        if self.batch_size < 1:
            raise UserError("batch size must be positive")
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
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise UserError("gradient clipping norm must be positive")
        if self.image_size is not None and not 8 <= self.image_size <= 224:
            raise UserError("image size must be between 8 and 224 pixels")
        for name in ("limit", "val_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"{name} must be a positive number of images")
        parse_preset(self.augment)
        from core.models.registry import scratch_specs

        scratch = self.model in {s.id for s in scratch_specs()}
        if scratch and self.transfer != "none":
            raise UserError(f"transfer learning ({self.transfer}) needs a pretrained model or a trained run; "
                            f"{self.model} starts from random weights")
        if not scratch and self.image_size is not None:
            raise UserError(f"an image size can be chosen for scratch architectures only; {self.model} has its own")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
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
        return f"train {self.model} on {self.dataset}, {self.epochs} epochs ({', '.join(extra)})"

    @property
    def run_id(self) -> str:
        return "run-" + fingerprint({"kind": "run", "version": RECIPE_VERSION, **self.to_dict()})[:12]
