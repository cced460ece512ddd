"""Pretrained classifiers from the Hugging Face Hub or a local `save_pretrained` folder.

Safetensors only, `trust_remote_code` never. Preprocessing comes from the model's own image
processor config, labels from its config's id2label.
"""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from torchvision.transforms.v2 import InterpolationMode

from core.data.transforms import INTERPOLATIONS, Preprocess
from core.errors import ModelError
from core.models.imagenet import label_space_for_head
from core.models.wrapper import LoadedModel

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
VIT_TYPES = {"vit", "deit", "swin", "swinv2", "beit", "dinov2", "data2vec-vision", "levit", "vit_hybrid", "pvt", "pvt_v2"}
CNN_TYPES = {"bit", "resnet", "convnext", "convnextv2", "regnet", "efficientnet", "mobilenet_v1", "mobilenet_v2", "van"}


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
    # lazy: transformers and huggingface_hub load only for Hugging Face models (scratch and runs never need them)
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
    except (OSError, ValueError, KeyError, RuntimeError) as e:
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
        # ValueError: a config transformers does not recognise; RuntimeError: weights of the wrong shapes;
        # TypeError: a config whose arguments its model class does not take
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
            raise ModelError(f"{path} is not a loadable model folder: {_first_line(e)}") from None
    raise ModelError(f"{path} is not a model folder: it has no config.json (save_pretrained form expected)")


def _load_hf(name: str, *, source: str, revision: str | None = None, local_files_only: bool = False) -> LoadedModel:
    # lazy: transformers and huggingface_hub load only for Hugging Face models (scratch and runs never need them)
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars on stderr would break the CLI's one-line contract
    kw: dict = {"revision": revision} if revision else {}
    if local_files_only:
        kw["local_files_only"] = True
    config = AutoConfig.from_pretrained(name, trust_remote_code=False, **kw)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report (a multi-line warning) is read below, not printed
    try:
        module, info = AutoModelForImageClassification.from_pretrained(
            name, use_safetensors=True, trust_remote_code=False, output_loading_info=True, **kw)
    finally:
        hf_logging.set_verbosity(verbosity)
    _check_all_weights_loaded(name, module, config, info.get("missing_keys") or ())
    processor = AutoImageProcessor.from_pretrained(name, trust_remote_code=False, **kw)
    labels = label_space_for_head([str(config.id2label[i]) for i in range(config.num_labels)])
    model_type = getattr(config, "model_type", "")
    family = "vit" if model_type in VIT_TYPES else "cnn" if model_type in CNN_TYPES else "other"
    commit = getattr(config, "_commit_hash", None)
    return LoadedModel(
        id=name, name=Path(name).name if source == "local" else name, family=family, source=source, module=module,
        preprocess=preprocess_from_processor(processor, channels=getattr(config, "num_channels", 3), model=name),
        labels=labels, revision=revision or commit,
    )


def _check_all_weights_loaded(name: str, module, config, missing) -> None:
    """Refuse a checkpoint that lacks weights the classifier needs: transformers would fill them with random
    values (a backbone saved without its head, e.g. a ViTModel, gets a random `classifier`)."""
    if not missing:
        return
    missing = sorted(missing)
    prefix = f"{getattr(module, 'base_model_prefix', '') or '//'}."
    head = [k for k in missing if not k.startswith(prefix)]
    saved_as = ", ".join(getattr(config, "architectures", None) or []) or "an unknown architecture"
    if head:
        raise ModelError(
            f"{name} has no trained classification head: {', '.join(head[:2])}"
            f"{f' and {len(head) - 2} more' if len(head) > 2 else ''} are not in the checkpoint (saved as {saved_as}), "
            "so its class scores would be random; it needs a new head trained for a dataset's classes (fine-tuning)"
        )
    raise ModelError(
        f"{name}'s checkpoint lacks {len(missing)} weights ({', '.join(missing[:2])}"
        f"{', ...' if len(missing) > 2 else ''}) that would be randomly initialised; it is not this architecture's "
        "complete model"
    )


# the steps an image processor may override; one that overrides any is only read when we know what it does
_STEPS = ("preprocess", "_preprocess", "_preprocess_image_like_inputs", "process_image", "resize", "center_crop",
          "rescale", "normalize", "rescale_and_normalize", "_fuse_mean_std_and_rescale_factor", "pad")
# processors with their own steps, each reproduced below (the PIL backends' "...Pil" twins do the same)
_TRANSLATED = {"ConvNextImageProcessor", "LevitImageProcessor", "PoolFormerImageProcessor",
               "EfficientNetImageProcessor", "MobileViTImageProcessor"}
# the do_* switches read below; any other one that is on is refused (do_reduce_labels: segmentation maps only)
_SWITCHES = {"do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_convert_rgb", "do_pad",
             "do_reduce_labels", "do_flip_channel_order"}
_RESAMPLE = {0: "nearest-exact", 2: "bilinear", 3: "bicubic"}  # PIL codes; transformers maps NEAREST to NEAREST_EXACT
_RESAMPLE_NAMES = {1: "LANCZOS", 4: "BOX", 5: "HAMMING"}


def preprocess_from_processor(processor, channels: int = 3, *, model: str | None = None) -> Preprocess:
    """Translate a transformers image processor into our Preprocess, step for step (its torchvision backend, which
    `from_pretrained` gives).

    A processor whose steps have no exact Preprocess form is refused with a ModelError naming it and `model`:
    channel flips (MobileViT), padding, a resize by the longest edge, a shorter-side resize with no crop (images
    would come out in several sizes), a crop without a resize, and resampling filters other than nearest, bilinear
    and bicubic. do_resize=False with an input size (height, width): images of that size go in untouched, as the
    processor passes them; images of another size are resized straight to it, which a fixed-size model needs and
    the processor would not do.
    """
    # lazy: transformers and huggingface_hub load only for Hugging Face models (scratch and runs never need them)
    from transformers.image_processing_backends import PilBackend, TorchvisionBackend

    cls = type(processor).__name__
    kind = cls.removesuffix("Pil")

    def refuse(reason: str) -> ModelError:
        return ModelError(
            f"cannot reproduce the image preprocessing of {model or 'this model'}: its {cls} {reason}; "
            "scores with other preprocessing would not be the model's own"
        )

    base = TorchvisionBackend if isinstance(processor, TorchvisionBackend) else \
        PilBackend if isinstance(processor, PilBackend) else None
    if base is None:
        raise refuse("is not a transformers image processor with a torchvision or PIL backend")
    custom = [m for m in _STEPS if getattr(type(processor), m, None) is not getattr(base, m, None)]
    if custom and kind not in _TRANSLATED:
        raise refuse(f"has its own {', '.join(custom)} step (custom preprocessing this lab does not reproduce)")
    switches = {k for k, v in vars(processor).items() if k.startswith("do_") and v}
    if switches - _SWITCHES:
        raise refuse(f"sets {', '.join(sorted(switches - _SWITCHES))}")
    if "do_pad" in switches:
        raise refuse("pads images (do_pad)")
    if "do_flip_channel_order" in switches:
        raise refuse("flips the colour channels from RGB to BGR (do_flip_channel_order)")
    mean, std = _scaling(processor, kind, channels, refuse)
    return Preprocess(**_geometry(processor, kind, refuse), interpolation=_interpolation(processor, refuse),
                      mean=mean, std=std, channels=channels, crop_anchor="floor")


def _field(size, key: str):
    """One entry of a processor's size / crop_size (a SizeDict, or a plain dict in older configs)."""
    if size is None:
        return None
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else None


def _interpolation(processor, refuse) -> str:
    resample = getattr(processor, "resample", None)
    if resample is None:
        return "bilinear"  # the torchvision backend's resize default
    if isinstance(resample, InterpolationMode):
        if resample.value in INTERPOLATIONS:
            return resample.value
        raise refuse(f"resizes with {resample.value} interpolation (supported: {', '.join(INTERPOLATIONS)})")
    code = int(resample)  # an int or PILImageResampling; 0 is NEAREST, so never `or`-defaulted
    if code in _RESAMPLE:
        return _RESAMPLE[code]
    raise refuse(f"resizes with PIL resample {code} ({_RESAMPLE_NAMES.get(code, 'unknown')}; "
                 "supported: NEAREST, BILINEAR, BICUBIC)")


def _per_channel(values, channels: int, what: str, refuse) -> list[float]:
    if values is None:
        raise refuse(f"has no {what}")
    if isinstance(values, (int, float)):
        return [float(values)] * channels
    values = [float(v) for v in values]
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise refuse(f"has {len(values)} {what} values for {channels} channels")
    return values


def _scaling(processor, kind: str, channels: int, refuse) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The processor's pixel arithmetic as Preprocess's (x - 255 mean) / (255 std) on 0..255 pixels.

    It computes y = (x a - B) / C per channel: a = rescale_factor when do_rescale (else 1); B = the mean when
    do_normalize, plus EfficientNet's rescale_offset 1; C = the std when do_normalize, times the std again for
    EfficientNet's include_top. MobileViT never normalises. So mean = B / (255 a), std = C / (255 a); with the
    usual a = 1/255 they are the processor's own, and without do_normalize they are 0 and 1 (pixels / 255).
    """
    a = float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else 1.0
    if a <= 0:
        raise refuse(f"rescales by {a}")
    offset = [0.0] * channels
    divisor = [1.0] * channels
    if kind == "EfficientNetImageProcessor" and getattr(processor, "do_rescale", False) \
            and getattr(processor, "rescale_offset", False):
        offset = [1.0] * channels  # x a - 1
    if getattr(processor, "do_normalize", False) and kind != "MobileViTImageProcessor":
        offset = [o + m for o, m in zip(offset, _per_channel(processor.image_mean, channels, "image_mean", refuse))]
        divisor = _per_channel(processor.image_std, channels, "image_std", refuse)
    if kind == "EfficientNetImageProcessor" and getattr(processor, "include_top", False):
        divisor = [d * s for d, s in zip(divisor, _per_channel(processor.image_std, channels, "image_std", refuse))]
    return tuple(b / (255.0 * a) for b in offset), tuple(c / (255.0 * a) for c in divisor)


def _geometry(processor, kind: str, refuse) -> dict:
    """Preprocess's size and resize for the processor's resize (and centre crop)."""
    size, crop = getattr(processor, "size", None), getattr(processor, "crop_size", None)
    do_resize = bool(getattr(processor, "do_resize", False))
    do_crop = bool(getattr(processor, "do_center_crop", False))
    edge, h, w = _field(size, "shortest_edge"), _field(size, "height"), _field(size, "width")
    crop_hw = (_field(crop, "height"), _field(crop, "width"))
    if do_crop and not all(crop_hw):
        raise refuse(f"centre-crops but its crop_size {crop} has no height and width")
    if do_resize:
        other = [k for k in ("longest_edge", "max_height", "max_width", "min_pixels", "max_pixels") if _field(size, k)]
        if other:
            raise refuse(f"resizes by {other[0]} ({size})")
        if kind == "ConvNextImageProcessor":
            if not edge:
                raise refuse(f"needs a shortest_edge size, not {size}")
            if do_crop:
                raise refuse("centre-crops twice (crop_pct, then crop_size)")
            if edge >= 384:  # warped to a square, no crop
                return {"size": (edge, edge), "resize": None}
            if not getattr(processor, "crop_pct", None):
                raise refuse("has no crop_pct")
            # the shorter side to edge / crop_pct, then a centre crop of edge x edge
            return {"size": (edge, edge), "resize": int(edge / processor.crop_pct)}
        crop_pct = getattr(processor, "crop_pct", None) if kind == "PoolFormerImageProcessor" else None
        if kind == "LevitImageProcessor" and edge:
            target: int | tuple[int, int] = int((256 / 224) * edge)  # LeViT's own resize, same expression
        elif crop_pct is not None and edge:
            target = int(edge / crop_pct)
        elif crop_pct is not None and h and w:
            target = int(h / crop_pct) if h == w else (int(h / crop_pct), int(w / crop_pct))
        elif edge:
            target = edge
        elif h and w:
            target = (h, w)
        else:
            raise refuse(f"has no size to resize to ({size})")
        if do_crop:
            return {"size": crop_hw, "resize": target}
        if isinstance(target, tuple):
            return {"size": target, "resize": None}
        raise refuse(f"resizes the shorter side to {target} without a crop, so images of other shapes come out in "
                     "other sizes, and a batch needs one size")
    if do_crop:
        raise refuse(f"centre-crops to {crop_hw[0]}x{crop_hw[1]} without resizing first (do_resize false)")
    if h and w:
        return {"size": (h, w), "resize": None}
    raise refuse("does not resize images (do_resize false) and names no input height and width")
