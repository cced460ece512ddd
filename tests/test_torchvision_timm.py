"""torchvision and timm models through the real loaders, offline: random weights of the real classes, saved
where torchvision's cache / timm's folder scheme / the Hugging Face cache would hold the real ones."""
import os
import socket
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.decode import decode_image
from core.errors import ModelError
from core.models.registry import create_model

SIZES = [(500, 375), (375, 500), (224, 224)]  # (width, height): landscape, portrait, exactly the crop size


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """Real JPEG files of smooth random images (upscaled small random arrays)."""
    d = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    files = []
    for i, (w, h) in enumerate(SIZES):
        small = (rng.random((9, 12, 3)) * 255).astype(np.uint8)
        path = d / f"{i}.jpg"
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(path, quality=90)
        files.append(path)
    return files


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME / torch.hub dir; returns its checkpoints folder. Restored after the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # restored by monkeypatch
    torch.hub.set_dir(str(tmp_path / "torch" / "hub"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach a host fails the test: cached weights must load without one."""
    from core.models import torchvision_models

    def refuse(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(torchvision_models, "_reachable", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def connections(monkeypatch):
    """Records (and fails) every TCP connect: huggingface_hub swallows errors, so assert on the record."""
    calls = []

    def refuse(*a, **k):
        calls.append(a)
        raise OSError("offline (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    """The Hub is off and the HF cache is an empty temp folder; returns the cache folder."""
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _weights(name: str):
    from core.models.torchvision_models import resolve_weights

    return resolve_weights(name)


def _save_checkpoint(checkpoints, w, state_dict) -> None:
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, checkpoints / os.path.basename(w.url))


def _same_weights(a: torch.nn.Module | dict, b: torch.nn.Module) -> bool:
    sa = a if isinstance(a, dict) else a.state_dict()
    sb = b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _answers(model) -> None:
    """Each loaded model evaluates: logits for 1000 classes, and a FLOP count."""
    h, w = model.preprocess.size
    with torch.no_grad():
        out = model.logits(model.preprocess(np.full((h + 30, w, 3), 128, np.uint8)))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 1000)
    assert model.flops_per_image() > 0


# ---------------------------------------------------------------- torchvision


def test_torchvision_loads_cached_weights_without_network(torch_home, no_network):
    """The file torchvision would have downloaded, already in <hub>/checkpoints: loaded as is, no network.

    A cached file is not re-hashed (torch checks the sha256 prefix of `resnet18-f37072fd.pth` only while
    downloading), which is what lets random weights stand in for the real ones here.
    """
    import torchvision

    w = _weights("resnet18")
    torch.manual_seed(1)
    saved = torchvision.models.resnet18().state_dict()
    _save_checkpoint(torch_home, w, saved)

    model = create_model("torchvision:resnet18")
    assert _same_weights(saved, model.module)
    assert model.id == "torchvision:resnet18" and model.source == "torchvision" and model.family == "cnn"
    assert model.name == "ResNet-18 (torchvision, IMAGENET1K_V1)" and model.revision == "IMAGENET1K_V1"
    assert len(model.labels) == 1000 and model.labels.names == list(w.meta["categories"])
    assert model.labels.wnids[0] == "n01440764" and len(model.labels.wnids) == 1000
    t = w.transforms()
    p = model.preprocess
    assert p.size == (t.crop_size[0], t.crop_size[0]) and p.resize == t.resize_size[0]
    assert p.interpolation == t.interpolation.value and p.mean == tuple(t.mean) and p.std == tuple(t.std)
    _answers(model)


def test_googlenet_drops_its_untrained_aux_heads(torch_home, no_network):
    """GoogLeNet's checkpoint has aux heads; torchvision drops them after loading: eval gives plain logits."""
    from torchvision.models import GoogLeNet

    w = _weights("googlenet")
    saved = GoogLeNet(aux_logits=True, transform_input=True, init_weights=False).state_dict()
    _save_checkpoint(torch_home, w, saved)
    model = create_model("torchvision:googlenet")
    assert model.module.aux1 is None and model.family == "cnn"
    assert _same_weights({k: v for k, v in saved.items() if not k.startswith("aux")}, model.module)
    _answers(model)


_UNPICKLED = []


def _record(what):
    _UNPICKLED.append(what)
    return what


class _Payload:
    """Runs `_record` when unpickled by a full unpickler: the weights_only unpickler must refuse it."""

    def __reduce__(self):
        return (_record, ("payload ran",))


def test_checkpoint_with_foreign_objects_is_refused_unrun(torch_home, no_network):
    import torchvision

    w = _weights("resnet18")
    state = dict(torchvision.models.resnet18().state_dict())
    state["extra"] = _Payload()
    _save_checkpoint(torch_home, w, state)
    with pytest.raises(ModelError, match="weights_only"):
        create_model("torchvision:resnet18")
    assert _UNPICKLED == []


def test_torchvision_offline_messages(torch_home, monkeypatch):
    from core.models import torchvision_models

    w = _weights("resnet50")
    base = os.path.basename(w.url)
    # the host does not answer: fail at once, saying which file to put where
    monkeypatch.setattr(torchvision_models, "_reachable", lambda url, timeout=3.0: False)
    with pytest.raises(ModelError) as e:
        create_model("torchvision:resnet50")
    assert base in str(e.value) and str(torch_home) in str(e.value) and w.url in str(e.value)

    # the host answers but the download fails (URLError): the same advice, and nothing left in the cache
    def fail(*a, **k):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision_models, "_reachable", lambda url, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(ModelError) as e:
        create_model("torchvision:resnet50")
    assert base in str(e.value) and str(torch_home) in str(e.value) and "\n" not in str(e.value)
    assert not (torch_home / base).exists()

    with pytest.raises(ModelError) as e:
        create_model("torchvision:nope")
    assert all(n in str(e.value) for n in torchvision_models.TORCHVISION_DEFAULTS)
    with pytest.raises(ModelError, match="IMAGENET1K_V2"):
        create_model("torchvision:resnet50@IMAGENET1K_V9")


def _levels(x: torch.Tensor, std) -> np.ndarray:
    """A normalised (C, H, W) difference in grey levels of the original uint8 image."""
    return (x.abs() * torch.tensor(std).view(-1, 1, 1) * 255).numpy()


@pytest.mark.parametrize("name", ["resnet18", "vit_b_16", "inception_v3"])
def test_preprocess_matches_torchvision_presets(jpegs, name):
    """Ours vs torchvision's own `weights.transforms()` (no weights needed: the preset comes from the enum).

    Exact (atol 1e-5) against the preset's steps run with torchvision.transforms.v2 kernels, which our
    Preprocess uses. The preset itself calls the v1 kernels: on uint8 tensors v1 resizes in float and rounds,
    v2 uses the fixed-point uint8 kernel (like PIL), so they differ by at most 1 grey level. On PIL images
    the preset resizes with PIL: within 3 grey levels (a little less than 3/255/std in normalised units).
    """
    from torchvision.transforms.v2 import functional as F

    from core.models.torchvision_models import preprocess_from_preset

    preset = _weights(name).transforms()
    ours = preprocess_from_preset(preset)
    assert ours.size == (preset.crop_size[0],) * 2 and ours.resize == preset.resize_size[0]
    assert ours.interpolation == preset.interpolation.value
    assert ours.mean == tuple(preset.mean) and ours.std == tuple(preset.std)
    for f in jpegs:
        img = Image.open(f).convert("RGB")
        x = ours(decode_image(f))[0]
        u8 = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()
        steps = F.center_crop(F.resize(u8, preset.resize_size, interpolation=preset.interpolation, antialias=True),
                              preset.crop_size)
        steps = F.normalize(F.to_dtype(steps, torch.float32, scale=True), mean=preset.mean, std=preset.std)
        np.testing.assert_allclose(x.numpy(), steps.numpy(), atol=1e-5, err_msg=f"{name} {f.name}")
        d_tensor = _levels(x - preset(u8), ours.std)
        assert d_tensor.max() < 1.01 and d_tensor.mean() < 0.5, f"{name} {f.name}"  # ~1 pixel in 5 is off by 1
        d_pil = _levels(x - preset(img), ours.std)
        assert d_pil.max() < 3, f"{name} {f.name}"


def test_published_figures_come_from_torchvision_meta():
    import torchvision

    from core.models.torchvision_models import TORCHVISION_DEFAULTS, family_of, torchvision_published

    pub = torchvision_published("resnet18")
    assert pub == {"params": 11689512, "gflops": 1.814}
    assert sum(p.numel() for p in torchvision.models.resnet18().parameters()) == pub["params"]
    assert {n: family_of(n) for n in TORCHVISION_DEFAULTS}["vit_b_16"] == "vit"
    assert [family_of(n) for n in ("alexnet", "vgg16", "googlenet", "swin_t", "maxvit_t")] == ["cnn"] * 3 + ["vit"] * 2


# ---------------------------------------------------------------- timm


def test_timm_offline_fails_fast(hf_offline, connections, monkeypatch):
    """Offline: no connection is even attempted (HF_HUB_OFFLINE) and the message says how to make a local folder."""
    calls = connections
    with pytest.raises(ModelError) as e:
        create_model("timm:resnet18")
    msg = str(e.value)
    assert "local-dir" in msg and "save_for_hf" in msg and "safe_serialization=True" in msg and "\n" not in msg
    assert calls == []

    # without HF_HUB_OFFLINE: one TCP connect (core.models.pretrained.hub_reachable), then the local cache only
    monkeypatch.delenv("HF_HUB_OFFLINE")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelError, match="local-dir"):
        create_model("timm:resnet18")
    assert len(calls) == 1

    with pytest.raises(ModelError, match="unknown timm model"):
        create_model("timm:not_a_model")


def _timm_model(arch: str):
    import timm

    torch.manual_seed(2)
    return timm.create_model(arch, pretrained=False)


@pytest.mark.parametrize("arch,family", [("test_vit", "vit"), ("test_resnet", "cnn")])
def test_timm_local_dir(tmp_path, jpegs, hf_offline, connections, arch, family):
    from timm.data import create_transform, resolve_data_config
    from timm.models import save_for_hf

    m = _timm_model(arch)
    folder = tmp_path / arch
    save_for_hf(m, str(folder), safe_serialization=True)
    model = create_model(f"timm:local-dir:{folder}")
    assert _same_weights(m, model.module)
    assert model.source == "timm" and model.family == family and model.id == f"timm:local-dir:{folder}"
    assert model.revision == m.pretrained_cfg["tag"]
    assert len(model.labels) == 1000 and model.labels.wnids[0] == "n01440764"

    cfg = resolve_data_config({}, model=m)
    p = model.preprocess
    assert (p.channels, *p.size) == tuple(cfg["input_size"]) and p.interpolation == cfg["interpolation"]
    assert p.mean == tuple(cfg["mean"]) and p.std == tuple(cfg["std"])
    assert p.resize == int(cfg["input_size"][1] / cfg["crop_pct"])  # center crop_mode: the shorter side
    ref = create_transform(**cfg)  # timm's eval transform works on PIL images: within 3 grey levels
    for f in jpegs:
        d = _levels(p(decode_image(f))[0] - ref(Image.open(f).convert("RGB")), p.std)
        assert d.max() < 3, f.name
    _answers(model)
    assert connections == []


def test_a_timm_folder_named_by_its_path_alone_is_built_by_timm(tmp_path, hf_offline, connections):
    """`--model DIR` for a folder timm's save_for_hf wrote (what the offline message tells users to make), without
    the `timm:local-dir:` prefix: timm builds it. transformers' TimmWrapper, which read such folders before, failed
    with a TypeError (num_classes given twice) that reached the user as a traceback."""
    from timm.models import save_for_hf

    m = _timm_model("test_resnet")
    save_for_hf(m, str(tmp_path / "r"), safe_serialization=True)
    model = create_model(str(tmp_path / "r"))
    assert _same_weights(m, model.module)
    assert model.source == "local" and model.id == str((tmp_path / "r").resolve()) and model.family == "cnn"
    assert len(model.labels) == 1000 and model.labels.wnids[0] == "n01440764"
    assert connections == []


def test_timm_folder_with_only_pickles_is_refused(tmp_path):
    from timm.models import save_for_hf

    save_for_hf(_timm_model("test_vit"), str(tmp_path / "m"))  # timm's default: pytorch_model.bin only
    with pytest.raises(ModelError, match="pytorch_model.bin"):
        create_model(f"timm:local-dir:{tmp_path / 'm'}")
    with pytest.raises(ModelError, match="does not exist"):
        create_model(f"timm:local-dir:{tmp_path / 'missing'}")


def test_timm_registry_name_from_the_hf_cache(hf_offline, connections):
    """`timm:test_vit` offline: model.safetensors found in the local HF cache, exactly where a download puts it."""
    from safetensors.torch import save_file
    from timm.models import get_pretrained_cfg

    repo = get_pretrained_cfg("test_vit").hf_hub_id  # timm/test_vit.r160_in1k
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = hf_offline / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(commit)
    (entry / "snapshots" / commit).mkdir(parents=True)
    m = _timm_model("test_vit")
    save_file(m.state_dict(), entry / "snapshots" / commit / "model.safetensors")

    model = create_model("timm:test_vit")
    assert _same_weights(m, model.module)
    assert model.id == "timm:test_vit" and model.revision == "r160_in1k" and model.family == "vit"
    assert model.preprocess.size == (160, 160) and model.preprocess.resize == 168  # floor(160 / 0.95)
    _answers(model)
    assert connections == []


def test_timm_preprocess_modes(jpegs):
    """squash: exact resize to size / crop_pct, then crop; modes with no Preprocess form are refused."""
    from timm.data import create_transform

    from core.models.timm_models import preprocess_from_data_config

    cfg = {"input_size": (3, 192, 224), "interpolation": "bilinear", "mean": (0.5,) * 3, "std": (0.25,) * 3,
           "crop_pct": 0.9, "crop_mode": "squash"}
    p = preprocess_from_data_config(cfg)
    assert p.size == (192, 224) and p.resize == (213, 248)  # floor(192 / 0.9), floor(224 / 0.9)
    ref = create_transform(**cfg)
    for f in jpegs:
        d = _levels(p(decode_image(f))[0] - ref(Image.open(f).convert("RGB")), p.std)
        assert d.max() < 3, f.name
    lanczos = {"interpolation": "lanczos", "input_size": (3, 224, 224)}
    for bad in ({"crop_mode": "border"}, {"crop_mode": "center"}, lanczos):
        with pytest.raises(ModelError, match="unsupported"):
            preprocess_from_data_config({**cfg, **bad})
