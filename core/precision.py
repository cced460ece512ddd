"""Inference precision: fp32, or bfloat16/float16 autocast where the hardware runs it fast.

`auto` picks bf16 on a CPU with bf16 dot products in hardware (AMX: Intel Sapphire Rapids and
later; AVX-512 BF16: AMD Zen 4 and later; bf16 matrix multiplies run several times faster than
fp32) and on a CUDA GPU (bf16 where supported, fp16 otherwise), and fp32 everywhere else.
Convolutional models also get channels-last memory layout under reduced precision, which oneDNN
and cuDNN need for their fastest kernels. The precision is part of an
evaluation's key, so fp32 and bf16 results are stored side by side and never mixed up.
"""
from __future__ import annotations

import contextlib
import copy
import functools

import torch

from core.allocator import keep_freed_memory
from core.errors import UserError
from core.models.fold import fold_batchnorm
from core.models.wrapper import logits_of
from core.settings import PRECISIONS, get_settings

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """bf16 dot products in hardware: AMX tiles, or AVX-512 BF16 (AMD Zen 4 and later, Intel Cooper Lake).
    Without them oneDNN emulates bf16 with fp32 arithmetic and conversions: 10 to 600 times slower than fp32 on an
    AVX2 CPU (docs/arena.md), so `auto` runs fp32 there."""
    return cpu_has_amx() or "avx512_bf16" in cpu_flags()


@functools.lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """AMX tiles with bf16, advertised by the CPU and enabled for this process by the kernel."""
    if not {"amx_bf16", "amx_tile"} <= cpu_flags():
        return False
    init = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)  # asks the kernel for the AMX state
    return bool(init()) if init is not None else True


def ieee_fp32_on_cuda() -> None:
    """fp32 means IEEE fp32 on CUDA too. PyTorch lets cuDNN's convolutions run in TF32 (a 10-bit mantissa) unless
    told not to, and an "fp32" record, or a bf16-against-fp32 comparison, would then be of TF32; reduced precision
    is asked for by name (bf16, fp16: autocast) and is unaffected. Process-wide, so set by every path that computes
    on CUDA (each resolves its precision first); fp32 convolutions on Ampere and later GPUs run slower for it."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def resolve_precision(requested: str | None, device: str) -> str:
    """auto|fp32|bf16|fp16 -> the precision to run with on `device` ("cpu", "cuda" or a rank's "cuda:N")."""
    device = device.split(":")[0]
    p = (requested or get_settings().precision).lower()
    if p not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not {p!r}")
    if device == "cuda":
        ieee_fp32_on_cuda()
    if p == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if p == "fp16" and device != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; on the CPU use bf16 or fp32")
    return p


def autocast(precision: str, device: str):
    """The context a forward pass runs in: autocast to bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=_DTYPES[precision])


class _Fp32OnOnePixel:
    """A strided convolution's forward that leaves CPU autocast when its input is 1x1 (guard_strided_one_pixel)."""

    def __init__(self, conv: torch.nn.Conv2d):
        self.forward = conv.forward

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (1, 1) and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return self.forward(x.float())
        return self.forward(x)


def guard_strided_one_pixel(module: torch.nn.Module) -> int:
    """Run every strided Conv2d of `module` in fp32 when its input is 1x1, under CPU bf16 autocast; how many were
    guarded. Measured here (torch 2.14.1, oneDNN, AMD EPYC with AVX-512 BF16): the weight gradient of a 3x3,
    stride-2 convolution on a 1x1 input under CPU bf16 autocast is garbage (1e10-1e32) in 4 to 19 of 20 calls,
    depending on the channels; stride 1, or a 2x2 input, is right. Training meets it where a network is deep for
    its images (ResNet-18 on 8x8 digits: layer3 and layer4 start on 1x1 maps). Those convolutions cost nothing."""
    guarded = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1) and not isinstance(m.forward, _Fp32OnOnePixel):
            m.forward = _Fp32OnOnePixel(m)
            guarded += 1
    return guarded


def inference_fn(model, device: str, precision: str):
    """Move `model` to `device` and return f(normalised float batch) -> float32 logits at `precision`;
    `f.channels_last` says which layout the model wants its input in.

    The forward runs a copy with batch norms folded into their convolutions where the model has such pairs
    (core/models/fold.py); a convolutional network under reduced precision runs channels-last, the layout
    oneDNN's and cuDNN's fastest kernels want (a ViT's one patch-embedding convolution does not gain from it).
    `model` itself is left as it was, apart from the device."""
    if device == "cpu":
        keep_freed_memory()  # large activations stop costing page faults on every batch
    model.to(device)
    example = torch.randn(1, model.preprocess.channels, *model.preprocess.size, device=device)
    folded = fold_batchnorm(model.module, example)
    module = folded if folded is not None else model.module
    cl = precision != "fp32" and model.family == "cnn"
    if cl:
        module = module if folded is not None else copy.deepcopy(module)
        module.to(memory_format=torch.channels_last)

    def run(x: torch.Tensor) -> torch.Tensor:
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)  # a no-op when normalize made it so
        with autocast(precision, device):
            return logits_of(module(x)).float()

    run.channels_last = cl  # for `Preprocess.normalize`, to write the input in the model's layout at once
    run.folded = folded is not None  # whether the batch-norm-folded copy runs
    return run


def runner_for(model, precision: str, device: str | None = None):
    """`inference_fn(model, device, precision)` for one image at a time (Predict, explain): the same forward an
    evaluation runs (folded copy, layout, autocast), so an image gets the same top-1 on every page at one
    precision. Kept on the model for the next call; only the last (device, precision) is kept, since a folded
    copy costs the model's size again. `device`: default the model's."""
    device = device or model.device.type
    if model._runner is None or model._runner[0] != (device, precision):
        model._runner = ((device, precision), inference_fn(model, device, precision))
    return model._runner[1]
