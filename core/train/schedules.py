"""Learning-rate schedules, computed per optimiser step so a resumed run gets the same curve.

A `Schedule` is a pure function of (epoch, step) plus, for "plateau", the validation losses
it has been shown; its state is a small JSON-able dict saved with each checkpoint.

- constant: lr.
- step:     lr * gamma ** (epoch // step_size)                      (torch's StepLR)
- cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2, t = (g - W) / (T - W),
            g the global step, T = epochs * steps_per_epoch (or max_steps, if fewer), W the warm-up steps: one
            half-cosine over the whole run after warm-up.
- cyclic:   the Tiny ImageNet study (4.2.2), restarting every epoch:
            min_lr + (lr - min_lr) * (1 + cos(pi * step / steps_per_epoch)) / 2.
            The study counts curr_step from 1 yet says the first step gets exactly the input
            lr; we use the 0-based `step` (= curr_step - 1), so step 0 is exactly lr, half an
            epoch is (lr + min_lr) / 2, and the last step approaches min_lr.
- plateau:  torch's ReduceLROnPlateau (mode "min", threshold_mode "rel", cooldown 0,
            eps 1e-8, floor min_lr): after more than `plateau_patience` epochs whose val
            loss is not below best * (1 - plateau_threshold), lr *= plateau_factor.

Warm-up (any schedule): for the first W = round(warmup_epochs * steps_per_epoch) global steps
(or W = round(warmup_fraction * T), DeiT-style: a share of the run whatever its length) g, lr_now * (g + 1) / W, rising linearly from ~0 to the schedule's lr; after it the
schedule's own value (step and cyclic keep their epoch clock; cosine starts after warm-up).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import UserError

SCHEDULES = ("constant", "step", "cosine", "cyclic", "plateau")


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant"
    lr: float = 0.01
    epochs: int = 10
    steps_per_epoch: int = 1
    warmup_epochs: float = 0.0  # linear warm-up from ~0 to lr over this many epochs (counted in steps)
    warmup_fraction: float = 0.0  # ... or over this share of all the run's steps
    max_steps: int | None = None  # a step budget: the run (and cosine) ends after this many steps
    step_size: int = 30  # "step": multiply by gamma every step_size epochs
    gamma: float = 0.1
    min_lr: float = 0.0  # floor for cosine / cyclic / plateau
    plateau_factor: float = 0.5  # "plateau": ReduceLROnPlateau, as in the leaves study
    plateau_patience: int = 5
    plateau_threshold: float = 1e-4  # relative, like torch's default threshold_mode "rel"


def _validate(cfg: ScheduleConfig) -> None:
    problems = []
    if cfg.name not in SCHEDULES:
        problems.append(f"unknown schedule {cfg.name!r}; choose one of {', '.join(SCHEDULES)}")
    if not cfg.lr > 0:
        problems.append(f"learning rate must be > 0, got {cfg.lr}")
    if cfg.epochs < 1:
        problems.append(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.steps_per_epoch < 1:
        problems.append(f"steps per epoch must be >= 1, got {cfg.steps_per_epoch}")
    if not 0 <= cfg.warmup_fraction <= 0.5:
        problems.append(f"warm-up fraction must be between 0 and 0.5, got {cfg.warmup_fraction}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        problems.append(f"max steps must be >= 1, got {cfg.max_steps}")
    if cfg.warmup_epochs < 0:
        problems.append(f"warm-up epochs must be >= 0, got {cfg.warmup_epochs}")
    if cfg.name == "step" and (cfg.step_size < 1 or not cfg.gamma > 0):
        problems.append(f"step schedule needs step_size >= 1 and gamma > 0, got {cfg.step_size}, {cfg.gamma}")
    if not 0 <= cfg.min_lr <= cfg.lr:
        problems.append(f"min_lr must be between 0 and lr ({cfg.lr}), got {cfg.min_lr}")
    if cfg.name == "plateau" and not (0 < cfg.plateau_factor < 1 and cfg.plateau_patience >= 0
                                      and cfg.plateau_threshold >= 0):
        problems.append("plateau schedule needs 0 < factor < 1, patience >= 0 and threshold >= 0")
    if problems:
        raise UserError("; ".join(problems))


class Schedule:
    """The lr for each optimiser step of a run; `end_epoch` feeds it validation losses."""

    def __init__(self, cfg: ScheduleConfig):
        _validate(cfg)
        self.cfg = cfg
        self.total_steps = cfg.epochs * cfg.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.warmup_steps = round(cfg.warmup_epochs * cfg.steps_per_epoch + cfg.warmup_fraction * self.total_steps)
        # plateau state, named as in torch's ReduceLROnPlateau
        self.current_lr = cfg.lr
        self.best = math.inf
        self.num_bad_epochs = 0

    def lr(self, epoch: int, step: int) -> float:
        """The lr for optimiser step `step` of epoch `epoch` (both 0-based)."""
        c = self.cfg
        g = epoch * c.steps_per_epoch + step
        if c.name == "constant":
            value = c.lr
        elif c.name == "step":
            value = c.lr * c.gamma ** (epoch // c.step_size)
        elif c.name == "cosine":
            t = max(0, g - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
            value = c.min_lr + (c.lr - c.min_lr) * (1 + math.cos(math.pi * min(t, 1.0))) / 2
        elif c.name == "cyclic":
            value = c.min_lr + (c.lr - c.min_lr) * (1 + math.cos(math.pi * step / c.steps_per_epoch)) / 2
        else:  # plateau
            value = self.current_lr
        if g < self.warmup_steps:
            value *= (g + 1) / self.warmup_steps
        return value

    def end_epoch(self, epoch: int, val_loss: float | None) -> None:
        """Tell the schedule an epoch ended with this validation loss (None: not measured, ignored)."""
        c = self.cfg
        if c.name != "plateau" or val_loss is None:
            return
        if val_loss < self.best * (1 - c.plateau_threshold):
            self.best = float(val_loss)
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > c.plateau_patience:
            new_lr = max(self.current_lr * c.plateau_factor, c.min_lr)
            if self.current_lr - new_lr > 1e-8:  # torch's eps: ignore negligible updates
                self.current_lr = new_lr
            self.num_bad_epochs = 0

    def state_dict(self) -> dict:
        """Plain JSON-able state (infinity written as None) for resumable checkpoints."""
        return {"name": self.cfg.name, "current_lr": self.current_lr,
                "best": None if math.isinf(self.best) else self.best, "num_bad_epochs": self.num_bad_epochs}

    def load_state_dict(self, d: dict) -> None:
        if d.get("name") != self.cfg.name:
            raise UserError(f"checkpoint was saved with schedule {d.get('name')!r}, not {self.cfg.name!r}")
        self.current_lr = float(d["current_lr"])
        self.best = math.inf if d["best"] is None else float(d["best"])
        self.num_bad_epochs = int(d["num_bad_epochs"])


def make_schedule(cfg: ScheduleConfig) -> Schedule:
    return Schedule(cfg)


def set_lr(optimizer, lr: float) -> None:
    """Set the lr of every param group of a torch optimiser."""
    for group in optimizer.param_groups:
        group["lr"] = lr
