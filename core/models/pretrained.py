"""Pretrained classifiers from the Hugging Face Hub or a local `save_pretrained` folder.

Safetensors only, `trust_remote_code` never. Preprocessing comes from the model's own image
processor config, labels from its config's id2label.
"""
from __future__ import annotations

import re
from pathlib import Path

from core.errors import ModelError
from core.models.preprocess import Preprocess
from core.models.imagenet import label_space_for_head
from core.models.wrapper import LoadedModel

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
VIT_TYPES = {"vit", "deit", "swin", "swinv2", "beit", "dinov2", "data2vec-vision", "levit", "vit_hybrid", "pvt", "pvt_v2"}
CNN_TYPES = {"bit", "resnet", "convnext", "convnextv2", "regnet", "efficientnet", "mobilenet_v1", "mobilenet_v2", "van"}
PIL_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic", 1: "bicubic", 4: "bilinear", 5: "bicubic"}


def looks_like_hub_id(model_id: str) -> bool:
    return bool(_HUB_ID.match(model_id)) and not Path(model_id).exists()


def offline_help(model_id: str) -> str:
    return (
        "to use it offline, save a local copy on a machine with internet: python -c \"from transformers import "
        f"AutoModelForImageClassification as M, AutoImageProcessor as P; M.from_pretrained('{model_id}')"
        f".save_pretrained('DIR'); P.from_pretrained('{model_id}').save_pretrained('DIR')\" and pass --model DIR"
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the Hub: offline machines then read only the local HF cache, at once,
    instead of huggingface_hub's retries with backoff (~25 s of warnings)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_hub(model_id: str, revision: str | None = None) -> LoadedModel:
    online = hub_reachable()
    try:
        return _load_hf(model_id, source="hf", revision=revision, local_files_only=not online)
    except (OSError, ValueError, KeyError) as e:
        first = _first_line(e)
        where = "the Hugging Face Hub" if online else "the local Hugging Face cache (the Hub is not reachable)"
        raise ModelError(f"cannot load {model_id!r} from {where}: {first}; {offline_help(model_id)}") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def load_local(path: Path) -> LoadedModel:
    path = Path(path).resolve()
    if (path / "config.json").is_file():
        try:
            return _load_hf(str(path), source="local")
        except (OSError, ValueError, KeyError) as e:  # ValueError: a config transformers does not recognise
            raise ModelError(f"{path} is not a loadable model folder: {_first_line(e)}") from None
    raise ModelError(f"{path} is not a model folder: it has no config.json (save_pretrained form expected)")


def _load_hf(name: str, *, source: str, revision: str | None = None, local_files_only: bool = False) -> LoadedModel:
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars on stderr would break the CLI's one-line contract
    kw: dict = {"revision": revision} if revision else {}
    if local_files_only:
        kw["local_files_only"] = True
    config = AutoConfig.from_pretrained(name, trust_remote_code=False, **kw)
    module = AutoModelForImageClassification.from_pretrained(name, use_safetensors=True, trust_remote_code=False, **kw)
    processor = AutoImageProcessor.from_pretrained(name, trust_remote_code=False, **kw)
    labels = label_space_for_head([str(config.id2label[i]) for i in range(config.num_labels)])
    model_type = getattr(config, "model_type", "")
    family = "vit" if model_type in VIT_TYPES else "cnn" if model_type in CNN_TYPES else "other"
    commit = getattr(config, "_commit_hash", None)
    return LoadedModel(
        id=name, name=Path(name).name if source == "local" else name, family=family, source=source, module=module,
        preprocess=preprocess_from_processor(processor, channels=getattr(config, "num_channels", 3)),
        labels=labels, revision=revision or commit,
    )


def preprocess_from_processor(processor, channels: int = 3) -> Preprocess:
    """Translate a transformers image processor's settings into our Preprocess, step for step."""
    size = dict(getattr(processor, "size", None) or {})
    crop = dict(getattr(processor, "crop_size", None) or {})
    interpolation = PIL_RESAMPLE.get(int(getattr(processor, "resample", 2) or 2), "bilinear")
    mean = tuple(float(v) for v in (processor.image_mean or [0.5] * channels))
    std = tuple(float(v) for v in (processor.image_std or [0.5] * channels))
    common = {"interpolation": interpolation, "mean": mean, "std": std, "channels": channels}
    do_crop = bool(getattr(processor, "do_center_crop", False)) and bool(crop)
    crop_hw = (int(crop.get("height", 0)), int(crop.get("width", 0))) if do_crop else None
    if "shortest_edge" in size:
        edge = int(size["shortest_edge"])
        crop_pct = getattr(processor, "crop_pct", None)
        if crop_pct is not None and not do_crop:
            # ConvNeXt: below 384 px resize the short side to edge / crop_pct and crop edge; else warp
            if edge < 384:
                return Preprocess(size=(edge, edge), resize=int(edge / crop_pct), **common)
            return Preprocess(size=(edge, edge), resize=None, **common)
        return Preprocess(size=crop_hw or (edge, edge), resize=edge, **common)
    h, w = int(size.get("height", 224)), int(size.get("width", 224))
    if crop_hw:  # DeiT: warp to (h, w), then centre-crop
        return Preprocess(size=crop_hw, resize=(h, w), **common)
    return Preprocess(size=(h, w), resize=None, **common)
