"""What an arena is (core/arena/run.py trains it): which models, on which data, with which budget and seeds.

Kept apart from the training code so the job table and the CLI read and check an arena without importing torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from core.data.embedded import GENERATED_TRAIN, TEXTURED_VARIANTS, parse_sized, sized_id
from core.data.registry import ENTRIES
from core.errors import UserError
from core.metrics import expected_ci95, mean_ci95
from core.records import JsonRecord
from core.store import fingerprint
from core.train.recipe import Recipe

BUDGET_KINDS = {
    "epochs": "passes over the training images",
    "steps": "optimiser steps",
    "seconds": "wall seconds of training on this machine (each model's rate measured once, then a step count)",
    "flops": "training FLOPs, forward and backward, counted (a cheaper model trains for more steps)",
}
# Recipe fields the arena holds equal for every model; a model's own recipe may not set them
HELD_EQUAL = ("dataset", "limit", "val_limit", "image_size", "batch_size", "augment", "seed", "epochs",
              "max_steps", "amp")
# what a scratch architecture without its own recipe trains with: the demo's CNN recipe (Adam, cosine)
DEFAULT_RECIPE = {"optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "schedule": "cosine"}
CALIBRATION_STEPS = 4  # timed training steps (after one untimed) per seconds-budget calibration


@dataclass(frozen=True)
class Budget:
    kind: str
    amount: float

    @classmethod
    def parse(cls, text: str) -> Budget:
        kind, _, amount = str(text).strip().partition(":")
        kind = kind.strip().lower()
        if kind not in BUDGET_KINDS or not amount.strip():
            raise UserError(f"budget {text!r} does not read; give one of " +
                            ", ".join(f"{k}:N" for k in BUDGET_KINDS) + " (e.g. epochs:8, flops:2e13)")
        try:
            value = float(amount)
        except ValueError:
            raise UserError(f"budget {text!r}: {amount!r} is not a number") from None
        if not value > 0 or not math.isfinite(value):
            raise UserError(f"budget {text!r} must be a positive number")
        if kind in ("epochs", "steps") and value != int(value):
            raise UserError(f"budget {text!r}: {kind} must be a whole number")
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"


GENERATED = ("shapes", *TEXTURED_VARIANTS)  # the datasets generated at any training size


@dataclass(frozen=True)
class ArenaSpec(JsonRecord):
    """One arena: which models, on which data, with which budget, how many seeds, at which training sizes."""

    models: tuple[str, ...] = ()
    dataset: str = "shapes"
    budget: str = "epochs:8"
    seeds: int = 3
    sizes: tuple[int, ...] = ()  # training-set sizes; empty: `limit` images (or all of them)
    limit: int | None = None
    val_limit: int | None = 500
    image_size: int | None = 32
    batch_size: int = 64
    augment: str = "none"
    amp: bool = True  # bf16 autocast where the hardware has it (False: fp32), for every model alike
    lr: float | None = None  # one peak learning rate for every model instead of each one's own (a learning-rate sweep)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(m.strip() for m in self.models if m.strip()))
        object.__setattr__(self, "sizes", tuple(sorted({int(s) for s in self.sizes})))
        if not self.models:
            raise UserError("the arena needs at least one model")
        if len(set(self.models)) != len(self.models):
            raise UserError("a model is named twice")
        # lazy: the scratch registry builds on torch (~2 s); the job table reads specs without it
        from core.models.scratch import SCRATCH, is_scratch

        for m in self.models:
            if not is_scratch(m):
                raise UserError(f"the arena trains architectures from scratch, and {m!r} is not one; "
                                f"choose from: {', '.join(SCRATCH)}")
        if self.lr is not None and not 0 < self.lr <= 10:
            raise UserError("the learning rate must be positive (and at most 10)")
        if not 1 <= self.seeds <= 20:
            raise UserError("seeds must be between 1 and 20")
        if any(s < 1 for s in self.sizes):
            raise UserError("training-set sizes must be positive")
        if self.sizes and self.limit:
            raise UserError("give training-set sizes or a limit, not both")
        Budget.parse(self.budget)
        Recipe(model=self.models[0], dataset=self.dataset, batch_size=self.batch_size, augment=self.augment,
               image_size=self.image_size, limit=self.limit, val_limit=self.val_limit)  # the shared fields check

    @classmethod
    def from_json(cls, d) -> ArenaSpec:
        d = dict(d or {})
        for k in ("models", "sizes"):
            if k in d:
                d[k] = tuple(d[k])
        return super().from_json(d)

    def to_json(self) -> dict:
        return {**dict(self), "models": list(self.models), "sizes": list(self.sizes)}

    @property
    def key(self) -> str:
        return "arena-" + fingerprint({"kind": "arena", **self.to_json()})[:16]

    @property
    def title(self) -> str:
        sizes = f", sizes {','.join(map(str, self.sizes))}" if self.sizes else ""
        lr = f", lr {self.lr:g} for all" if self.lr else ""
        return f"arena: {', '.join(self.models)} on {self.dataset}, {self.budget}, {self.seeds} seeds{sizes}{lr}"

    @property
    def command(self) -> str:
        """The `python -m core arena` command that trains this arena's runs (defaults left out)."""
        d = ArenaSpec.__dataclass_fields__
        flags = [f"--models {','.join(self.models)}", f"--dataset {self.dataset}", f"--budget {self.budget}",
                 f"--seeds {self.seeds}"]
        flags += [f"--sizes {','.join(map(str, self.sizes))}"] if self.sizes else []
        flags += [f"--limit {self.limit}"] if self.limit else []
        flags += [f"--val-limit {self.val_limit or 0}"]
        flags += [f"--{name.replace('_', '-')} {getattr(self, name) or 0}" for name in ("image_size", "batch_size",
                                                                                       "augment")
                  if getattr(self, name) != d[name].default]
        flags += ([f"--lr {self.lr:g}"] if self.lr else []) + ([] if self.amp else ["--no-amp"])
        return "python -m core arena " + " ".join(flags)

    def train_dataset(self) -> str:
        """The dataset the largest runs train on: a generated one (`shapes`, `shapes-textured`, ...) grows to
        `shapes-N` when a size asks for more than its 5,000 training images."""
        base, have = parse_sized(self.dataset) or (self.dataset, GENERATED_TRAIN)
        if base in GENERATED and self.sizes and self.sizes[-1] > have:
            return sized_id(base, self.sizes[-1])
        return self.dataset

    def datasets_said(self) -> str:
        """The training data in words: one dataset, or a generated one's sizes on the datasets `dataset_at` gives."""
        at = {s: self.dataset_at(s) for s in self.sizes}
        if len(set(at.values())) <= 1:
            return self.train_dataset()
        return (f"{self.dataset} (" + "; ".join(f"{', '.join(f'{s:,}' for s in at if at[s] == d)} from {d}"
                                                for d in dict.fromkeys(at.values())) + ")")

    def dataset_at(self, size: int | None) -> str:
        """The dataset the runs at `size` training images train on. A generated dataset named by its base id
        (`shapes`) gives each size the smallest that holds it: a subset of `shapes`'s 5,000 up to 5,000, and
        `shapes-N` (all N) above, whose first 5,000 are `shapes`'s. So a size's runs do not depend on the arena's
        other sizes (adding 20,000 to an arena keeps its runs at 500), smaller sets are still subsets of larger
        ones, and an arena's 5,000 is the demo's `shapes`. Any other dataset, a sized one named as such included,
        is the arena's `train_dataset()` at every size; so is a `limit` without sizes (above 5,000: refused)."""
        if self.dataset in GENERATED and self.sizes and size and size > GENERATED_TRAIN:
            return sized_id(self.dataset, size)
        return self.dataset if self.dataset in GENERATED else self.train_dataset()


WIDE_CI = 0.10  # a 95% half-width above this (10 points) gets spread_text's line


def largest_size(results: list[dict]) -> int | None:
    """The largest training-set size among `results` (summarize's) with a finished run: the one pages, the CLI and
    the report show bars, curves and the spread line at. None before any run finished."""
    return max((r["size"] for r in results if r["runs_done"]), default=None)


def spread_text(results: list[dict]) -> str | None:
    """How sure the widest interval among `results` (summarize's, one size) is, in words, where it is wider than 10
    points: the model, its seeds' figures, and about what more seeds would give at that spread (metrics.expected_ci95;
    the spread of new seeds will differ). None where every interval is narrower, or none has two seeds."""
    wide = [r for r in results if r.get("top1_ci95") is not None and r["top1_ci95"] > WIDE_CI]
    if not wide:
        return None
    r = max(wide, key=lambda r: r["top1_ci95"])
    n = len(r["top1_runs"])
    a, b = [m for m in (5, 10, 20, 40, 80) if m > n][:2] if n < 40 else (2 * n, 4 * n)
    runs = ", ".join(f"{100 * t:.1f}" for t in r["top1_runs"])
    return (f"The widest interval is {r['model']}'s: ± {100 * r['top1_ci95']:.1f} points over {n} seeds, whose runs "
            f"read {runs}%. At that spread, {a} seeds would give about ± {100 * expected_ci95(r['top1_runs'], a):.1f}"
            f" points and {b} about ± {100 * expected_ci95(r['top1_runs'], b):.1f}.")


def by_seed(result: dict) -> dict[int, float]:
    """A model's val top-1 per seed, from one of summarize's rows."""
    return dict(zip(result["top1_seeds"], result["top1_runs"]))


def paired_gap(a: dict[int, float], b: dict[int, float]) -> tuple[float | None, float | None, int]:
    """a minus b (top-1 per seed, `by_seed`) over the seeds both have, which trained on the same images in the same
    order: (mean, half-width of its 95% interval over those seeds (`mean_ci95`), how many seeds it pairs)."""
    seeds = sorted(set(a) & set(b))
    mean, half = mean_ci95([a[s] - b[s] for s in seeds])
    return mean, half, len(seeds)


def chance_level(dataset: str) -> float | None:
    """What guessing scores on a registered or generated dataset (1 / its classes; `shapes-20000` is `shapes`'s),
    known without loading it; None for a folder."""
    entry = ENTRIES.get((parse_sized(dataset) or (dataset, 0))[0])
    return 1 / entry.num_classes if entry else None


def chance_text(results: list[dict], chance: float | None) -> str | None:
    """The models among `results` (summarize's, one size) whose 95% interval reaches down to `chance` (chance_level),
    in words: their seeds do not show that they learned anything. None where there are none, where chance is unknown,
    and for a model with one seed (no interval to read)."""
    near = [r for r in results if chance is not None and r.get("top1_ci95") is not None
            and r["top1_mean"] - r["top1_ci95"] <= chance]
    if not near:
        return None
    them = ", ".join(f"{r['model']} ({100 * r['top1_mean']:.1f}% ± {100 * r['top1_ci95']:.1f})" for r in near)
    one = len(near) == 1
    return (f"Within reach of chance ({100 * chance:.1f}%, a guess among {round(1 / chance)} classes): {them}. "
            f"{'Its' if one else 'Their'} 95% interval{'' if one else 's'} reach{'es' if one else ''} down to chance, "
            f"so these seeds do not show that {'it' if one else 'they'} learned the task in this budget.")


def how_sure(results: list[dict], dataset: str) -> list[str]:
    """What an arena says of how sure its figures are, under its bars (the Arena page, the CLI, the report): at its
    largest size with a finished run, spread_text and chance_text, where each has something to say."""
    size = largest_size(results)
    at = [r for r in results if r["size"] == size]
    return [t for t in (spread_text(at), chance_text(at, chance_level(dataset))) if t]


def diverged_text(diverged: list[dict]) -> str:
    """The runs that diverged (summarize's `diverged`), in words: which, where, and what leaving them out does."""
    n = len(diverged)
    runs = "; ".join(f"{d['model']} seed {d['seed']} at {d['size']:,} images: {d['message'].split(';')[0]}"
                     for d in diverged)
    return (f"{n} run{'s' if n > 1 else ''} diverged (the loss became NaN or infinite) and {'have' if n > 1 else 'has'}"
            f" no accuracy ({runs}). A model's mean and interval are over its seeds that finished, so they leave "
            "these failures out: its recipe is less reliable than its mean says. The arena tries them again only on "
            "another machine, device or precision (on the same one, the same recipe and seed diverge the same way); "
            "a lower learning rate makes new runs.")
