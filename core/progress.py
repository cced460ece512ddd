"""How far a job is: one typed event, written to the job table as JSON and read back from it.

Producers: training (steps within epochs, ETA, and each finished epoch's history row), evaluation (images
scored) and the demo (models done, with a message). Readers: the job table, the CLI's progress lines and
the pages' progress bars, which all ask this record rather than decoding the JSON themselves. Fields that
are None are left out of its JSON.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from core.records import JsonRecord


@dataclass(frozen=True)
class Progress(JsonRecord):
    omit_none: ClassVar[bool] = True
    step: float = 0  # images scored, training steps in the epoch, or demo models done (fractional)
    steps: int = 0
    epoch: int | None = None  # training: epochs finished once `row` is set, else the epoch running (0-based)
    epochs: int | None = None
    eta_seconds: float | None = None
    row: dict | None = None  # training: the history row of the epoch that just finished
    message: str | None = None  # the demo's line for people
    model: str | None = None  # the demo: the model being trained

    def fraction(self, done: bool = False) -> float:
        """0..1 for a progress bar: training counts epochs plus the running epoch's steps."""
        if done:
            return 1.0
        if self.epochs and self.steps:  # "epoch" counts finished epochs once a row is in
            within = 0 if self.row else (self.step or 0) / self.steps
            frac = ((self.epoch or 0) + within) / self.epochs
        elif self.steps:
            frac = (self.step or 0) / self.steps
        elif self.epochs:  # epochs alone (a job with several processes follows its checkpoints)
            frac = (self.epoch or 0) / self.epochs
        else:
            frac = 0.0
        return min(1.0, frac)

    def where(self) -> str:
        """A short position for job lists: "epoch 3/8" or "120/500"."""
        if self.epochs:
            return f"epoch {self.epoch}/{self.epochs}"
        return f"{self.step}/{self.steps}" if self.steps else ""
