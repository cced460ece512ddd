"""timm's pretrained classifiers (`--model timm:convnext_tiny`), safetensors only, preprocessing from timm's config.

Model ids after `timm:`
  NAME[.TAG]             a timm registry model (`resnet18`, `resnet18.a1_in1k`): its `model.safetensors` from
                         the Hugging Face Hub (repo `pretrained_cfg.hf_hub_id`), or from the local HF cache when
                         the Hub is not reachable;
  local-dir:DIR          timm's own folder scheme: DIR/config.json + DIR/model.safetensors, as written by
                         `timm.models.save_for_hf(model, DIR, safe_serialization=True)`;
  hf-hub:OWNER/REPO      a timm repo on the Hub (config.json + model.safetensors), cached like any HF download.

Safetensors only: pickled checkpoints (`pytorch_model.bin`, `.pth`, timm's older GitHub release URLs) are
refused, never unpickled. Offline: `core.models.pretrained.hub_reachable()` decides once; unreachable means
`local_files_only=True`, so a missing file fails at once instead of after huggingface_hub's retries.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from torch import nn

from core.data.transforms import INTERPOLATIONS, Preprocess
from core.errors import ModelError
from core.models.imagenet import imagenet1k
from core.models.pretrained import hub_reachable
from core.models.wrapper import LabelSpace, LoadedModel

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"
SAFE_WEIGHTS = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".pth.tar", ".ckpt")

# architecture-name prefixes: attention-first models ("vit") and convolution-stage models ("cnn")
VIT_PREFIXES = (
    "vit", "deit", "swin", "beit", "eva", "cait", "xcit", "levit", "pvt", "mvit", "crossvit", "tnt", "twins",
    "convit", "pit_", "volo", "davit", "gcvit", "maxvit", "maxxvit", "coat_", "coatnet", "flexivit", "samvit",
    "sequencer", "efficientformer", "fastvit", "hiera", "hieradet", "nextvit", "tiny_vit", "vitamin", "aimv2",
    "naflexvit", "deepseek_vit", "nest_", "visformer", "mobilevit", "swiftformer",
    "iformer",
)
CNN_PREFIXES = (
    "resnet", "resnext", "resnetv2", "resnetrs", "resnetblur", "resnetaa", "seresne", "skresne", "ecaresnet",
    "gcresnet", "regnet", "efficientnet", "tf_efficientnet", "mobilenet", "tf_mobilenet", "convnext", "densenet",
    "vgg", "inception", "xception", "dla", "dpn", "ghostnet", "hrnet", "mnasnet", "nfnet", "dm_nfnet", "nf_",
    "eca_nfnet", "ecaresnext", "gcresnext", "sedarknet", "hgnet", "nasnet", "pnasnet", "tf_mixnet", "repvit",
    "mambaout",
    "rexnet", "res2net", "res2next", "resnest", "selecsls", "senet", "legacy_", "tresnet", "cspdarknet", "cspresne",
    "darknet", "repvgg", "gernet", "hardcorenas", "lcnet", "mixnet", "tinynet", "fbnet", "spnasnet", "semnasnet",
    "bat_resnext", "wide_resnet", "convmixer", "cs3", "edgenext", "efficientvit", "ese_vovnet", "vovnet",
    "repghostnet",
    "fasternet", "inception_next", "mobileone", "rdnet", "regnetz", "starnet", "byobnet", "gc_efficientnet",
)


def offline_help(name: str) -> str:
    return (
        "to use it offline, save a local copy on a machine with internet: python -c \"import timm; "
        f"from timm.models import save_for_hf; save_for_hf(timm.create_model('{name}', pretrained=True), 'DIR', "
        "safe_serialization=True)\", copy DIR here and pass --model timm:local-dir:DIR"
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def family_of(architecture: str, module=None) -> str:
    """A simple rule on the architecture name; unknown names by their layers (attention blocks / convolutions)."""
    arch = architecture.lower()
    arch = arch[len("test_"):] if arch.startswith("test_") else arch
    if arch.startswith(VIT_PREFIXES):
        return "vit"
    if arch.startswith(CNN_PREFIXES):
        return "cnn"
    if module is not None:
        kinds = {type(m).__name__ for m in module.modules()}
        if any(k.endswith("Attention") for k in kinds) or nn.MultiheadAttention.__name__ in kinds:
            return "vit"
        if any(isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in module.modules()):
            return "cnn"
    return "other"


def preprocess_from_data_config(cfg: dict) -> Preprocess:
    """timm's eval transform (`transforms_imagenet_eval`) for a `resolve_data_config` dict, as our Preprocess.

    crop_mode "center" (default): Resize(floor(size / crop_pct)) of the shorter side, then CenterCrop(size);
    "squash": resize to exactly (floor(h / crop_pct), floor(w / crop_pct)), then CenterCrop(size).
    "border" (letterbox padding) and a non-square "center" target (timm's ResizeKeepRatio) have no Preprocess form.
    """
    # lazy: timm takes ~2 s to import; only timm models and ImageNet label lookups need it
    from timm.data import DEFAULT_CROP_PCT

    channels, h, w = (int(v) for v in cfg["input_size"])
    crop_pct = float(cfg.get("crop_pct") or DEFAULT_CROP_PCT)
    crop_mode = cfg.get("crop_mode") or "center"
    interpolation = cfg.get("interpolation") or "bilinear"
    if interpolation not in INTERPOLATIONS:
        raise ModelError(f"unsupported timm interpolation {interpolation!r} (supported: {', '.join(INTERPOLATIONS)})")
    if cfg.get("crop_border_pixels"):
        raise ModelError("unsupported timm preprocessing: crop_border_pixels")
    scale = (math.floor(h / crop_pct), math.floor(w / crop_pct))
    if crop_mode == "squash":
        resize: int | tuple[int, int] = scale
    elif crop_mode == "center":
        if h != w:
            raise ModelError(f"unsupported timm preprocessing: crop_mode 'center' with a non-square input {h}x{w}")
        resize = scale[0]
    else:
        raise ModelError(f"unsupported timm preprocessing: crop_mode {crop_mode!r} (supported: center, squash)")
    return Preprocess(
        size=(h, w), resize=resize, interpolation=interpolation, channels=channels,
        mean=tuple(float(v) for v in cfg["mean"]), std=tuple(float(v) for v in cfg["std"]),
    )


# the tag part of timm's pretrained names that says which ImageNet a head was trained on (resnet50.a1_in1k)
_SUBSET_TAGS = {"imagenet-1k": "in1k", "imagenet-12k": "in12k", "imagenet-22k": "in22k", "imagenet-22k-ms": "in22k",
                "imagenet-21k-goog": "in21k", "imagenet-21k-miil": "in21k"}


def labels_for(module) -> LabelSpace:
    """The head's classes: the names its pretrained_cfg gives (label_names, label_descriptions) first; else an
    ImageNet label set by class count (1000: ImageNet-1k; 11821: ImageNet-12k; ...), marked `assumed` unless the
    weights' tag names that set (`in1k`); else generic names."""
    n = int(getattr(module, "num_classes", 0) or 0)
    cfg = getattr(module, "pretrained_cfg", {}) or {}
    label_names = cfg.get("label_names")
    if isinstance(label_names, dict):  # index -> name, possibly with gaps
        label_names = [label_names.get(i, label_names.get(str(i), f"class {i}")) for i in range(n)]
    if label_names and len(label_names) == n:
        desc = cfg.get("label_descriptions") or {}
        names = [str(desc.get(k, k)) for k in label_names]
        wnids = [str(k) for k in label_names] if all(re.fullmatch(r"n\d{8}", str(k)) for k in label_names) else None
        return LabelSpace(names=names, wnids=wnids)
    # lazy: timm takes ~2 s to import; only timm models and ImageNet label lookups need it
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(module)  # by class count only
    if subset:
        tag = str(cfg.get("tag") or "")
        assumed = None if _SUBSET_TAGS.get(subset, subset) in tag else (
            f"{subset.replace('imagenet', 'ImageNet')} class names assumed: the head has {n} outputs and its config "
            "names no classes")
        if subset == "imagenet-1k":
            ref = imagenet1k()
            return LabelSpace(names=list(ref.names), wnids=list(ref.wnids), assumed=assumed)
        info = ImageNetInfo(subset)
        if info.num_classes() == n:
            return LabelSpace(names=[info.index_to_description(i) for i in range(n)],
                              wnids=[info.index_to_label_name(i) for i in range(n)], assumed=assumed)
    return LabelSpace(names=[f"class {i}" for i in range(n)])


def is_timm_folder(folder: Path) -> bool:
    """True for a folder in timm's `save_for_hf` form: a config.json naming a timm `architecture`, without the
    `model_type` that transformers' own configs carry. transformers reads such a folder through its TimmWrapper,
    which passes `num_classes` twice when timm wrote `model_args` (transformers 5.x, timm 1.0): timm builds it."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "architecture" in config and "model_type" not in config


def _check_local_dir(folder: Path) -> Path:
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise ModelError(f"timm model folder {folder} does not exist")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} is not a timm model folder: it has no config.json (timm's save_for_hf form)")
    if not (folder / SAFE_WEIGHTS).is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        what = f"only pickled weights ({', '.join(pickles)})" if pickles else f"no {SAFE_WEIGHTS}"
        raise ModelError(
            f"{folder} has {what}; pickles are never loaded: re-save it with "
            "timm.models.save_for_hf(model, DIR, safe_serialization=True)"
        )
    return folder


def _hub_file(repo_id: str, filename: str, *, revision: str | None, online: bool, name: str) -> Path:
    """A file of a Hub repo: downloaded (or already cached) when online, else from the local HF cache only.

    Offline, `try_to_load_from_cache` reads the cache folders and nothing else: hf_hub_download even with
    local_files_only=True builds request headers, and huggingface_hub 2.x then fetches its agent registry
    from the Hub (a 3 s timeout) unless HF_HUB_OFFLINE was set before it was imported.
    """
    # lazy: huggingface_hub loads only when a timm checkpoint is fetched
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    missing = (f"timm {name}: {repo_id}/{filename} is not in the local Hugging Face cache{{}}; "
               f"{offline_help(name)}")
    if not online:
        hit = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(hit, str):
            return Path(hit)
        raise ModelError(missing.format(" (the Hub is not reachable)"))
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, library_name="timm"))
    except LocalEntryNotFoundError:  # the Hub stopped answering mid-way
        raise ModelError(missing.format("")) from None
    except EntryNotFoundError:  # the repo exists but has no such file: pickled weights only
        raise ModelError(f"timm {name}: {repo_id} has no {filename} (safetensors only; pickles are never loaded)") \
            from None
    except (OSError, ValueError) as e:  # RepositoryNotFoundError, HTTP errors, a bad revision
        raise ModelError(f"timm {name}: cannot fetch {repo_id}/{filename}: {_first_line(e)}; {offline_help(name)}") \
            from None


def _create(timm_name: str, label: str, **kw):
    # lazy: timm takes ~2 s to import; only timm models and ImageNet label lookups need it
    import timm

    try:
        return timm.create_model(timm_name, pretrained=True, **kw)
    except ModelError:
        raise
    except (RuntimeError, ValueError, KeyError, OSError, AssertionError) as e:
        raise ModelError(f"timm {label} cannot be built from its weights: {_first_line(e)}") from None


def load_timm(name: str) -> LoadedModel:
    """timm's pretrained model `name` (registry name, `local-dir:DIR` or `hf-hub:REPO`) as a LoadedModel."""
    # lazy: timm takes ~2 s to import; only timm models and ImageNet label lookups need it
    import timm
    from timm.models import get_pretrained_cfg, split_model_name_tag

    revision = None
    if name.startswith(LOCAL_PREFIX):
        folder = _check_local_dir(Path(name[len(LOCAL_PREFIX):]))
        module = _create(LOCAL_PREFIX + str(folder), name)
    elif name.startswith(HUB_PREFIX):
        repo, _, rev = name[len(HUB_PREFIX):].partition("@")
        online = hub_reachable()
        config = _hub_file(repo, "config.json", revision=rev or None, online=online, name=name)
        weights = _hub_file(repo, SAFE_WEIGHTS, revision=rev or None, online=online, name=name)
        if config.parent != weights.parent:
            raise ModelError(f"timm {name}: config.json and {SAFE_WEIGHTS} come from different revisions")
        module = _create(LOCAL_PREFIX + str(weights.parent), name)
        revision = weights.parent.name  # the snapshot's commit
    else:
        arch, _tag = split_model_name_tag(name)
        if not timm.is_model(arch):
            raise ModelError(
                f"unknown timm model {name!r}; see timm.list_models(pretrained=True) for names (e.g. resnet18, "
                "convnext_tiny, vit_base_patch16_224), or use timm:local-dir:DIR"
            )
        cfg = get_pretrained_cfg(name)
        if cfg is None or not cfg.hf_hub_id:
            raise ModelError(f"timm {name} has no pretrained weights on the Hugging Face Hub (safetensors only)")
        filename = cfg.hf_hub_filename or SAFE_WEIGHTS
        if cfg.custom_load or not filename.endswith(".safetensors"):
            raise ModelError(f"timm {name}'s weights are {filename}, not safetensors; they are never loaded")
        repo, _, rev = cfg.hf_hub_id.partition("@")
        path = _hub_file(repo, filename, revision=rev or None, online=hub_reachable(), name=name)
        # pretrained_cfg "file" takes precedence over the Hub in timm's loader: it loads exactly this file
        module = _create(name, name, pretrained_cfg_overlay={"file": str(path)})
    cfg = dict(getattr(module, "pretrained_cfg", {}) or {})
    if not getattr(module, "num_classes", 0):
        raise ModelError(f"timm {name} has no classification head (num_classes 0): it gives features, not logits")
    # lazy: timm takes ~2 s to import; only timm models and ImageNet label lookups need it
    from timm.data import resolve_data_config

    preprocess = preprocess_from_data_config(resolve_data_config({}, model=module))
    architecture = cfg.get("architecture") or split_model_name_tag(name)[0]
    tag = cfg.get("tag")
    citation = " ".join(str(v) for v in (cfg.get("paper_name"), cfg.get("paper_ids"), cfg.get("origin_url")) if v)
    return LoadedModel(
        id=f"timm:{name}", name=f"{architecture}{'.' + tag if tag else ''} (timm)",
        family=family_of(architecture, module), source="timm", module=module, preprocess=preprocess,
        labels=labels_for(module), citation=citation, revision=revision or tag or None,
    )
