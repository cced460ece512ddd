"""What a `--model` value names, decided once: a scratch architecture, a trained run, a Hugging Face Hub id,
a torchvision or timm model, or a local model folder.

`resolve(text)` classifies the text and applies hosted mode's policy (`CNNVIT_HOSTED=1`) to the result;
the factory (core/models/registry.py) builds whatever a `ModelRef` names, and every entry point (CLI, jobs,
pages, evaluate, train, explain, predict) goes through it.

Hosted mode judges the text alone and never looks at the file system: a run id names a run of the store,
anything else that is not a scratch id, a run id or an allow-listed pretrained id is refused, folders
included. Outside hosted mode, an existing run folder or model folder is read as such.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.errors import ModelError
from core.hosted import looks_like_path
from core.models.defaults import HF_DEFAULTS
from core.models.pretrained import looks_like_hub_id
from core.models.scratch import is_scratch, scratch_specs
from core.models.trained import is_run_folder, is_run_id
from core.settings import Settings, get_settings

TORCHVISION_PREFIX = "torchvision:"  # torchvision:resnet18 -> torchvision's ImageNet weights
TIMM_PREFIX = "timm:"  # timm:convnext_tiny -> timm's pretrained weights


class ModelKind(StrEnum):
    """Where a model comes from; the values are `LoadedModel.source`'s."""

    SCRATCH = "scratch"
    TRAINED = "trained"
    HUB = "hf"
    TORCHVISION = "torchvision"
    TIMM = "timm"
    LOCAL = "local"


@dataclass(frozen=True)
class ModelRef:
    """A classified model reference. `name` is what the kind's loader takes (scratch id, run id, Hub id,
    torchvision or timm name); `folder` is a local model folder or a run folder named by path (None for a
    run of the store, found by its id)."""

    text: str
    kind: ModelKind
    name: str
    folder: Path | None = None


def allowed_hub_models(settings: Settings | None = None) -> tuple[str, ...]:
    """Pretrained ids (Hugging Face, torchvision:NAME, timm:NAME) a hosted deployment loads."""
    listed = (settings or get_settings()).hosted_models
    return listed if listed is not None else tuple(h.id for h in HF_DEFAULTS)


def resolve(text: str | ModelRef) -> ModelRef:
    """`text` classified, and refused with a ModelError when hosted mode does not offer it. A ModelRef is
    returned as it is: it was resolved where it was made."""
    if isinstance(text, ModelRef):
        return text
    settings = get_settings()
    ref = classify(text, hosted=settings.hosted)
    if settings.hosted:
        _check_offered(ref, settings)
    return ref


def classify(text: str, *, hosted: bool) -> ModelRef:
    """What `text` names. Hosted: from the text alone. Otherwise an existing folder wins over a Hub id of the
    same spelling, and a missing path or an unknown id is a ModelError saying what was expected."""
    if is_scratch(text):
        return ModelRef(text, ModelKind.SCRATCH, text)
    if text.startswith(TORCHVISION_PREFIX):
        return ModelRef(text, ModelKind.TORCHVISION, text[len(TORCHVISION_PREFIX):])
    if text.startswith(TIMM_PREFIX):
        return ModelRef(text, ModelKind.TIMM, text[len(TIMM_PREFIX):])
    if hosted:  # a run of the store or a Hub id, never a folder that happens to share its name
        return ModelRef(text, ModelKind.TRAINED if is_run_id(text) else ModelKind.HUB, text)
    path = Path(text).expanduser()
    if is_run_id(text) and not path.exists():
        return ModelRef(text, ModelKind.TRAINED, text)
    if path.is_dir():
        if is_run_folder(path):
            return ModelRef(text, ModelKind.TRAINED, text, folder=path)
        return ModelRef(text, ModelKind.LOCAL, text, folder=path)
    if path.is_file():
        raise ModelError(f"{text} is a file; --model needs a model id or a model folder (save_pretrained form)")
    if looks_like_hub_id(text):
        return ModelRef(text, ModelKind.HUB, text)
    if text.startswith((".", "/", "~")) or "\\" in text:
        raise ModelError(f"model folder {text} does not exist")
    raise ModelError(
        f"unknown model {text!r}; scratch models: {', '.join(sorted(s.id for s in scratch_specs()))}; "
        "or a Hugging Face id like google/vit-base-patch16-224, or a path to a local model folder"
    )


def _check_offered(ref: ModelRef, settings: Settings) -> None:
    """Hosted mode: scratch architectures, runs of the store and allow-listed pretrained ids only."""
    hub = allowed_hub_models(settings)
    if ref.kind in (ModelKind.SCRATCH, ModelKind.TRAINED) or ref.text in hub:
        return
    if looks_like_path(ref.text):
        raise ModelError(f"this deployment does not load model folders ({ref.text}); choose a listed model")
    listed = ", ".join(hub) if hub else "none"
    raise ModelError(f"model {ref.text!r} is not on this deployment's allow-list; it offers the scratch architectures, "
                     f"trained runs and these pretrained ids: {listed}")
