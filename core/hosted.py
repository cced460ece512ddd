"""Hosted mode (`CNNVIT_HOSTED=1`): what a public deployment accepts.

Datasets, uploads and training are judged here; models where a model reference is classified
(core/models/reference.py). `load_dataset`, the model resolver, job submission and the upload picker
ask, so pages, the CLI and job workers obey the same rules. Outside hosted mode every check passes
(except an explicit `CNNVIT_MAX_UPLOAD_MB`, which applies everywhere).

- datasets: only ids on the allow-list (`CNNVIT_HOSTED_DATASETS`, default the embedded `shapes`,
  `digits`); a folder path is refused without looking at the file system.
- models (judged in core/models/reference.py): scratch architectures, trained runs of the store, and
  the Hub ids on the allow-list (`CNNVIT_HOSTED_MODELS`, default the pretrained list of `models`); no
  local folders.
- uploads: at most `CNNVIT_MAX_UPLOAD_MB` per file (default 5 in hosted mode), checked before decoding.
- training: at most `CNNVIT_HOSTED_MAX_EPOCHS` epochs (0 turns training off) on at most
  `CNNVIT_HOSTED_MAX_TRAIN_IMAGES` images.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import DatasetError, ImageDecodeError, UserError
from core.settings import Settings, get_settings


@dataclass(frozen=True)
class TrainingLimits:
    """What the Train page bounds its inputs to; `None` outside hosted mode."""

    max_epochs: int  # 0: training is off
    max_images: int

    @property
    def enabled(self) -> bool:
        return self.max_epochs > 0


def is_hosted() -> bool:
    return get_settings().hosted


def allowed_datasets(settings: Settings | None = None) -> tuple[str, ...]:
    return (settings or get_settings()).hosted_datasets


def looks_like_path(ref: str) -> bool:
    """Judged from the text alone: hosted mode never looks at the file system for a user's string."""
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1 or ":" in ref and "/" in ref


def check_dataset(ref: str) -> None:
    """Refuse, in hosted mode, a dataset that is not on the allow-list (every folder path included)."""
    settings = get_settings()
    if not settings.hosted or ref in settings.hosted_datasets:
        return
    choices = ", ".join(settings.hosted_datasets)
    if "/" in ref or looks_like_path(ref):
        raise DatasetError(f"this deployment does not read dataset folders ({ref}); choose one of: {choices}")
    raise DatasetError(f"dataset {ref!r} is not offered on this deployment; choose one of: {choices}")


def dataset_offered(ref: str) -> bool:
    """Whether results on dataset `ref` may be shown: always outside hosted mode; in it, only the allow-list's
    (a store copied from a workstation may hold evaluations of server folders)."""
    settings = get_settings()
    return not settings.hosted or ref in settings.hosted_datasets


def max_upload_bytes() -> int | None:
    mb = get_settings().max_upload_mb
    return None if mb is None else int(mb * 1024 * 1024)


def check_upload(name: str, size_bytes: int) -> None:
    """Refuse an uploaded file above the per-file limit, before anything decodes it."""
    limit = max_upload_bytes()
    if limit is not None and size_bytes > limit:
        raise ImageDecodeError(f"{name} is {size_bytes / 1024 / 1024:.1f} MB; uploads are limited to "
                               f"{get_settings().max_upload_mb:g} MB per file here")


def training_limits() -> TrainingLimits | None:
    settings = get_settings()
    if not settings.hosted:
        return None
    return TrainingLimits(settings.hosted_max_epochs, settings.hosted_max_train_images)


def check_training(epochs: int, limit: int | None) -> None:
    """Refuse, in hosted mode, a recipe above the epoch or image limits (or any when training is off)."""
    limits = training_limits()
    if limits is None:
        return
    if not limits.enabled:
        raise UserError("training is off on this deployment (CNNVIT_HOSTED_MAX_EPOCHS=0)")
    if epochs > limits.max_epochs:
        raise UserError(f"this deployment trains at most {limits.max_epochs} epochs (asked for: {epochs})")
    if limit is None or limit > limits.max_images:
        asked = "no limit" if limit is None else f"{limit:,}"
        raise UserError(f"this deployment trains on at most {limits.max_images:,} images (asked for: {asked}); "
                        f"set the number of training images (--limit) to {limits.max_images:,} or fewer")


def check_demo() -> None:
    """The demo trains three fixed recipes: allowed in hosted mode unless training is off."""
    limits = training_limits()
    if limits is not None and not limits.enabled:
        raise UserError("the demo trains models, and training is off on this deployment (CNNVIT_HOSTED_MAX_EPOCHS=0)")
