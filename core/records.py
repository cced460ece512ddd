"""Typed records that cross a boundary as JSON (the store, the job table, `--json`), and the evaluation record's
metadata, which pages read from the store without importing the evaluation code (and torch).

A record is a frozen dataclass: code between the layers reads its fields by name. It becomes JSON only where
it is written (`to_json`) and is read back with `from_json`, which ignores keys it does not know and fills
fields an older writer left out with their defaults. It also reads as the JSON object it is stored as
(`record["top1"]`, `record.get("scoring")`, `dict(record)`), for code that handles any stored object.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="JsonRecord")


class JsonRecord(Mapping):
    omit_none: ClassVar[bool] = False  # leave fields that are None out of the JSON

    @classmethod
    def from_json(cls: type[R], d: Mapping | None) -> R:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in (d or {}).items() if k in names})

    def to_json(self) -> dict[str, Any]:
        return dict(self)

    def _json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {k: v for k, v in out.items() if v is not None} if self.omit_none else out

    def __getitem__(self, key: str) -> Any:
        return self._json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json())

    def __len__(self) -> int:
        return len(self._json())


@dataclass(frozen=True)
class EvaluationMeta(JsonRecord):
    """What an evaluation record says besides its predictions: the model, the data, the scores, the cost.

    top1..balanced_accuracy are over all the model's classes, named by `scoring`; for a model with more
    classes than the dataset, `restricted` holds the same scores over the dataset's classes only and
    `outside` counts top-1 predictions outside them. Timings, device and batch size are those of the run
    that computed the record."""

    model: str = ""
    dataset: str = ""
    split: str = ""
    n: int = 0
    num_classes: int = 0
    top1: float | None = None
    top5: float | None = None
    f1_macro: float | None = None
    cohen_kappa: float | None = None
    balanced_accuracy: float | None = None
    scoring: str = "native"
    outside: int | None = None
    restricted: dict | None = None
    model_name: str | None = None
    family: str | None = None
    source: str | None = None
    params: int | None = None
    flops_per_image: int | None = None
    dataset_name: str | None = None
    dataset_fingerprint: str | None = None
    model_classes: int | None = None
    limit: int | None = None
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    seconds: float | None = None
    model_seconds: float | None = None
    images_per_second: float | None = None
    # the batch size that fitted: out of memory halves it (oom_halvings times) and retries
    batch_size: int | None = None
    batch_size_requested: int | None = None
    oom_halvings: int = 0
    device: str | None = None
    precision: str = "fp32"  # records from before the precision choice ran in fp32
    world_size: int = 1  # processes that computed it (torchrun); the predictions do not depend on it
    labels_assumed: str | None = None  # why the model's class names were assumed (LabelSpace.assumed), if they were
    preprocess: dict | None = None
    versions: dict | None = None
    # {n, ece, adaptive_ece, nll, brier} (core/calibration.py); None where the scores are not a distribution
    calibration: dict | None = None
    corruption: str | None = None  # an ImageNet-C corruption applied to every image, at `severity` 1-5
    severity: int | None = None

    @property
    def ms_per_image(self) -> float | None:
        return 1000.0 / self.images_per_second if self.images_per_second else None
