"""Batches that fit in device memory: what was asked, halved on each out-of-memory error.

Evaluation (whole batches in chunks) and training (a step in micro-batches) share one rule: when the
device runs out of memory the size is halved, for this batch and every later one, and the batch is
tried again, down to a single image; a single image that does not fit is a UserError.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from core.errors import UserError

T = TypeVar("T")


@dataclass
class BatchSize:
    """The batch size that fits on the device: what was asked, halved on each out-of-memory error."""

    size: int
    halvings: int = 0


def halving_on_oom(fit: BatchSize, n: int, attempt: Callable[[int], T], *, too_big: str,
                   reset: Callable[[], None] | None = None) -> T:
    """`attempt(size)` for `n` rows with size = min(fit.size, n), halving `fit` after each out-of-memory
    error; `too_big` is the UserError's message when one row does not fit. `reset` undoes what a failed
    attempt changed (a training step's BatchNorm statistics and gradients) before the retry."""
    while True:
        try:
            return attempt(min(fit.size, n))
        except torch.OutOfMemoryError:
            if fit.size <= 1 or n <= 1:
                raise UserError(too_big) from None
            fit.size = max(1, min(fit.size, n) // 2)
            fit.halvings += 1
        # out of the except block, so the failed attempt's tensors are released before the cache is emptied
        if reset is not None:
            reset()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def in_chunks(fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], x: torch.Tensor, fit: BatchSize,
              device: str) -> tuple[torch.Tensor, ...]:
    """`fn` over `x` in chunks of at most `fit.size` rows, outputs concatenated (inference)."""

    def attempt(size: int) -> tuple[torch.Tensor, ...]:
        parts = [fn(x[s:s + size]) for s in range(0, len(x), size)]
        return tuple(torch.cat(p) for p in zip(*parts))

    too_big = (f"out of memory on {device} even with a batch of 1 image; free the device (other jobs, other programs) "
               "or use --device cpu")
    return halving_on_oom(fit, len(x), attempt, too_big=too_big)
