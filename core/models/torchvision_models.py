"""torchvision's ImageNet classifiers (`--model torchvision:resnet18`), weights and preprocessing from torchvision.

Weights: the model's weights enum (`torchvision.models.get_model_weights(name)`), `DEFAULT` unless the id names
another (`torchvision:resnet50@IMAGENET1K_V2`). torchvision caches them as
`torch.hub.get_dir()/checkpoints/<basename of weights.url>`: a file already there is used without any network.

No arbitrary code runs: weights_only unpickler. torchvision's weights are `.pth` pickles, and the installed
torch's `torch.hub.load_state_dict_from_url` defaults to `weights_only=False` (full unpickling) when torchvision
calls it, so every torchvision weights load in this process is routed through `_safe_load_state_dict_from_url`,
which always passes `weights_only=True` (tensors and plain containers only; anything else is refused).

Downloads: only when the file is not cached and download.pytorch.org answers a TCP connect within 3 s; the
file lands in the cache only after its sha256 prefix (the `-f37072fd` in `resnet18-f37072fd.pth`) checks out.
A cached file is trusted by name: torch does not re-hash it (neither do we).
"""
from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlparse

import torch
import torchvision.models as tvm
from torch.hub import HASH_REGEX, download_url_to_file
from torchvision.models import _api
from torchvision.transforms._presets import ImageClassification

from core.data.transforms import INTERPOLATIONS, Preprocess
from core.errors import ModelError
from core.models.imagenet import imagenet1k
from core.models.wrapper import LabelSpace, LoadedModel

# the architectures the lab compares; any other torchvision classification name works too
TORCHVISION_DEFAULTS = ("alexnet", "vgg16", "googlenet", "resnet18", "resnet50", "vit_b_16")
VIT_PREFIXES = ("vit_", "swin_", "maxvit")
REACH_TIMEOUT_S = 3.0

_PRETTY = {
    "alexnet": "AlexNet", "googlenet": "GoogLeNet", "inception_v3": "Inception-v3", "maxvit_t": "MaxViT-T",
    "squeezenet1_0": "SqueezeNet 1.0", "squeezenet1_1": "SqueezeNet 1.1",
}
_PRETTY_PATTERNS = (
    (r"^resnet(\d+)$", "ResNet-{}"), (r"^vgg(\d+)$", "VGG-{}"), (r"^vgg(\d+)_bn$", "VGG-{}-BN"),
    (r"^densenet(\d+)$", "DenseNet-{}"), (r"^wide_resnet(\d+)_2$", "Wide ResNet-{}-2"),
    (r"^vit_([bhl])_(\d+)$", "ViT-{}/{}"), (r"^swin_([tsb])$", "Swin-{}"), (r"^swin_v2_([tsb])$", "Swin-V2-{}"),
    (r"^convnext_(\w+)$", "ConvNeXt-{}"), (r"^efficientnet_(b\d)$", "EfficientNet-{}"),
    (r"^efficientnet_v2_([sml])$", "EfficientNetV2-{}"), (r"^mobilenet_v2$", "MobileNetV2"),
    (r"^mobilenet_v3_(\w+)$", "MobileNetV3-{}"), (r"^regnet_([xy])_(\w+)$", "RegNet{}-{}"),
    (r"^resnext(\d+)_(\w+)$", "ResNeXt-{}-{}"),
)


def pretty_name(name: str) -> str:
    """resnet18 -> ResNet-18, vit_b_16 -> ViT-B/16; unknown names stay as they are."""
    if name in _PRETTY:
        return _PRETTY[name]
    for pattern, fmt in _PRETTY_PATTERNS:
        m = re.match(pattern, name)
        if m:
            return fmt.format(*(_pretty_part(g) for g in m.groups()))
    return name


def _pretty_part(g: str) -> str:
    if g.isdigit() or len(g) > 2 and not g.isalpha():
        return g  # 101, 32x8d
    return g.upper() if len(g) <= 2 else g.capitalize()  # b -> B, b0 -> B0, tiny -> Tiny


def family_of(name: str) -> str:
    return "vit" if name.startswith(VIT_PREFIXES) else "cnn"


def classification_names() -> list[str]:
    return tvm.list_models(module=tvm)


def resolve_weights(name: str, weights: str = "DEFAULT"):
    """The weights enum member for `name` (`DEFAULT`, `IMAGENET1K_V2` or `ResNet50_Weights.IMAGENET1K_V2`)."""
    if name not in classification_names():
        raise ModelError(
            f"unknown torchvision model {name!r}; the lab's: {', '.join(TORCHVISION_DEFAULTS)} "
            "(or any torchvision.models.list_models(module=torchvision.models) name)"
        )
    enum = tvm.get_model_weights(name)
    member = str(weights).split(".")[-1]
    try:
        return enum[member]
    except KeyError:
        raise ModelError(
            f"torchvision {name} has no weights {weights!r}; available: DEFAULT, {', '.join(w.name for w in enum)}"
        ) from None


def torchvision_published(name: str, weights: str = "DEFAULT") -> dict:
    """torchvision's documented cost of these weights: `params` (meta num_params) and `gflops` (meta `_ops`).

    torchvision's `_ops` are GFLOPS in its docs' sense, counting a multiply-add as ONE op; our
    `LoadedModel.flops_per_image()` counts a multiply-add as 2, so expect ours ~= 2 x `gflops`.
    """
    meta = resolve_weights(name, weights).meta
    return {"params": int(meta["num_params"]), "gflops": float(meta["_ops"])}


def checkpoint_path(w) -> str:
    """Where torchvision looks for (and caches) these weights."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(w.url).path))


def offline_help(url: str, model_dir: str) -> str:
    base = os.path.basename(urlparse(url).path)
    return f"to use it offline, copy {base} (from {url}) into {model_dir}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> bool:
    """One TCP connect to the weights' host, so an offline machine fails at once instead of hanging in urlopen."""
    parts = urlparse(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _safe_load_state_dict_from_url(url, model_dir=None, map_location=None, progress=True, check_hash=False,
                                   file_name=None, weights_only=True):
    """torch.hub.load_state_dict_from_url, but weights_only=True always, offline-aware, and silent on stdout.

    torch prints "Downloading: ..." to stdout (which would corrupt `--json` output) and has no timeout, so the
    download, if one is needed, is done here (progress on stderr, sha256 prefix checked before the file is
    moved into the cache); torch then only loads the cached file, with the weights_only unpickler.
    """
    model_dir = model_dir or os.path.join(torch.hub.get_dir(), "checkpoints")
    filename = file_name or os.path.basename(urlparse(url).path)
    cached = os.path.join(model_dir, filename)
    if not os.path.exists(cached):
        if not _reachable(url):
            raise ModelError(
                f"torchvision weights {filename} are not in {model_dir} and {urlparse(url).hostname} is not reachable; "
                + offline_help(url, model_dir)
            )
        os.makedirs(model_dir, exist_ok=True)
        match = HASH_REGEX.search(filename) if check_hash else None
        try:
            download_url_to_file(url, cached, match.group(1) if match else None, progress=progress)
        except (OSError, RuntimeError) as e:  # URLError, timeouts, "invalid hash value"
            raise ModelError(f"cannot download {url}: {_first_line(e)}; {offline_help(url, model_dir)}") from None
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=model_dir, map_location="cpu", progress=progress,
                                                  check_hash=check_hash, file_name=file_name, weights_only=True)
    except Exception as e:  # UnpicklingError (not plain weights), RuntimeError (truncated / not a torch file)
        raise ModelError(
            f"{cached} is not a plain torchvision weights file (weights_only unpickler: {_first_line(e)}); "
            f"delete it and {offline_help(url, model_dir)}"
        ) from None


def _install_safe_loader() -> None:
    """Route torchvision's weights loading (WeightsEnum.get_state_dict) through the weights_only loader."""
    if getattr(_api, "load_state_dict_from_url", None) is not _safe_load_state_dict_from_url:
        _api.load_state_dict_from_url = _safe_load_state_dict_from_url


def preprocess_from_preset(preset) -> Preprocess:
    """torchvision's ImageClassification preset (resize shorter side, centre crop, normalise) as our Preprocess."""
    if not isinstance(preset, ImageClassification):
        raise ModelError(f"unsupported torchvision preprocessing {type(preset).__name__} (not ImageClassification)")
    crop = [int(v) for v in preset.crop_size]
    resize = [int(v) for v in preset.resize_size]
    interpolation = str(preset.interpolation.value)
    if interpolation not in INTERPOLATIONS:
        raise ModelError(f"unsupported interpolation {interpolation!r} in torchvision's preset")
    if preset.antialias is False:
        raise ModelError("torchvision preset without antialiasing is not supported")
    return Preprocess(
        size=(crop[0], crop[-1]),
        resize=resize[0] if len(resize) == 1 else (resize[0], resize[1]),
        interpolation=interpolation,
        mean=tuple(float(v) for v in preset.mean),
        std=tuple(float(v) for v in preset.std),
    )


def _citation(name: str) -> str:
    doc = (tvm.get_model_builder(name).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def load_torchvision(name: str, weights: str = "DEFAULT") -> LoadedModel:
    """torchvision's pretrained ImageNet classifier `name` (optionally `name@WEIGHTS`) as a LoadedModel."""
    spec = name
    if "@" in name:
        name, weights = name.split("@", 1)
    w = resolve_weights(name, weights)
    _install_safe_loader()
    try:
        module = tvm.get_model(name, weights=w)
    except ModelError:
        raise
    except RuntimeError as e:  # load_state_dict: a cached file with the wrong keys or shapes
        raise ModelError(
            f"{checkpoint_path(w)} does not fit torchvision {name}: {_first_line(e)}; delete it and "
            f"{offline_help(w.url, os.path.dirname(checkpoint_path(w)))}"
        ) from None
    categories = list(w.meta["categories"])
    imagenet = imagenet1k()
    if len(categories) != len(imagenet.wnids):
        raise ModelError(f"torchvision {name} {w.name} has {len(categories)} classes, not ImageNet-1k's 1000")
    return LoadedModel(
        id=f"torchvision:{spec}", name=f"{pretty_name(name)} (torchvision, {w.name})", family=family_of(name),
        source="torchvision", module=module, preprocess=preprocess_from_preset(w.transforms()),
        labels=LabelSpace(names=categories, wnids=list(imagenet.wnids)), citation=_citation(name), revision=w.name,
    )
