"""Every environment variable the project reads, in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # inference; core/precision.py resolves "auto"


HOSTED_DATASETS = ("shapes", "digits")  # the embedded datasets: no download, no folder
HOSTED_MAX_UPLOAD_MB = 5.0
HOSTED_MAX_EPOCHS = 10
HOSTED_MAX_TRAIN_IMAGES = 5000  # all of `shapes`' train split


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    hosted: bool
    datasets_dir: Path  # generated datasets (`shapes` and its kin): several stores may share one
    device: str  # "auto", "cpu" or "cuda"
    max_jobs: int = 1  # background jobs running at once
    keep_freed_memory: bool = True  # CPU inference: see core/allocator.py
    precision: str = "auto"  # inference: auto (bf16 on GPUs and CPUs with AMX or AVX-512 BF16), fp32, bf16, fp16
    # hosted mode (CNNVIT_HOSTED=1); core/hosted.py applies these
    hosted_datasets: tuple[str, ...] = HOSTED_DATASETS
    hosted_models: tuple[str, ...] | None = None  # Hub ids allowed besides scratch and trained; None: the defaults
    max_upload_mb: float | None = None  # per uploaded file; None: only Streamlit's server.maxUploadSize
    hosted_max_epochs: int = HOSTED_MAX_EPOCHS  # 0: training is off
    hosted_max_train_images: int = HOSTED_MAX_TRAIN_IMAGES


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; read afresh so tests can change them)."""
    cache = Path(os.environ.get("CNNVIT_CACHE_DIR") or str(REPO_ROOT / "cache")).expanduser().resolve()
    datasets = os.environ.get("CNNVIT_DATASETS_DIR")
    device = os.environ.get("CNNVIT_DEVICE", "auto").strip().lower() or "auto"
    if device not in ("auto", "cpu", "cuda"):
        device = "auto"
    try:
        max_jobs = max(1, int(os.environ.get("CNNVIT_MAX_JOBS", "1")))
    except ValueError:
        max_jobs = 1
    hosted = _flag("CNNVIT_HOSTED", False)
    upload = _number("CNNVIT_MAX_UPLOAD_MB", float, HOSTED_MAX_UPLOAD_MB if hosted else None)
    return Settings(
        max_jobs=max_jobs,
        precision=os.environ.get("CNNVIT_PRECISION", "auto").strip().lower() or "auto",
        keep_freed_memory=_flag("CNNVIT_KEEP_FREED_MEMORY", True),
        cache_dir=cache,
        datasets_dir=Path(datasets).expanduser().resolve() if datasets else cache / "datasets",
        hosted=hosted,
        device=device,
        hosted_datasets=_names("CNNVIT_HOSTED_DATASETS") or HOSTED_DATASETS,
        hosted_models=_names("CNNVIT_HOSTED_MODELS"),
        max_upload_mb=upload if upload and upload > 0 else None,
        hosted_max_epochs=max(0, _number("CNNVIT_HOSTED_MAX_EPOCHS", int, HOSTED_MAX_EPOCHS)),
        hosted_max_train_images=max(1, _number("CNNVIT_HOSTED_MAX_TRAIN_IMAGES", int, HOSTED_MAX_TRAIN_IMAGES)),
    )


def _flag(var: str, default: bool) -> bool:
    """On or off: unset or empty is `default`; 0, false or False is off; anything else is on."""
    raw = os.environ.get(var, "")
    return default if raw == "" else raw not in ("0", "false", "False")


def _names(var: str) -> tuple[str, ...] | None:
    """A comma-separated list (None when the variable is unset; empty when set to nothing)."""
    raw = os.environ.get(var)
    return None if raw is None else tuple(n.strip() for n in raw.split(",") if n.strip())


def _number(var: str, kind: type, default):
    """A number from the environment; a value that does not parse is an error, not a silent default
    (a typo in a limit must not lift it)."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise UserError(f"{var}={raw!r} is not a number") from None


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_device(preference: str | None = None) -> str:
    """Turn auto|cpu|cuda into the device string torch should use ("cuda" only when present)."""
    # lazy: torch takes ~2 s to import; commands that only read settings (datasets, jobs) need none
    import torch

    pref = (preference or get_settings().device).lower()
    if pref == "cuda" and not torch.cuda.is_available():
        if preference is None:  # from the environment: name the setting, not a flag nobody typed
            raise UserError("CNNVIT_DEVICE=cuda asks for a CUDA device, but this machine has none; set CNNVIT_DEVICE "
                            "to auto or cpu")
        raise UserError("--device cuda was asked for, but no CUDA device is available; use --device cpu or auto")
    return "cpu" if pref == "cpu" or not torch.cuda.is_available() else "cuda"


def device_description() -> str:
    """What `auto` resolves to, in words: the GPU's name, or the CPU and its thread count."""
    # lazy: torch takes ~2 s to import; commands that only read settings (datasets, jobs) need none
    import torch

    dev = resolve_device("auto") if get_settings().device != "cpu" else "cpu"
    if dev == "cuda":
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU ({torch.get_num_threads()} threads)"
