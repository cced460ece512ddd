"""Every environment variable the project reads, in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    hosted: bool
    device: str  # "auto", "cpu" or "cuda"
    max_jobs: int = 1  # background jobs running at once


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; read afresh so tests can change them)."""
    cache = os.environ.get("CNNVIT_CACHE_DIR") or str(REPO_ROOT / "cache")
    device = os.environ.get("CNNVIT_DEVICE", "auto").strip().lower() or "auto"
    if device not in ("auto", "cpu", "cuda"):
        device = "auto"
    try:
        max_jobs = max(1, int(os.environ.get("CNNVIT_MAX_JOBS", "1")))
    except ValueError:
        max_jobs = 1
    return Settings(
        max_jobs=max_jobs,
        cache_dir=Path(cache).expanduser().resolve(),
        hosted=os.environ.get("CNNVIT_HOSTED", "") not in ("", "0", "false", "False"),
        device=device,
    )


def resolve_device(preference: str | None = None) -> str:
    """Turn auto|cpu|cuda into the device string torch should use ("cuda" only when present)."""
    import torch

    pref = (preference or get_settings().device).lower()
    if pref == "cuda":
        if not torch.cuda.is_available():
            from core.errors import UserError

            raise UserError("--device cuda was asked for, but no CUDA device is available; use --device cpu or auto")
        return "cuda"
    if pref == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_description() -> str:
    """What `auto` resolves to, in words: the GPU's name, or the CPU and its thread count."""
    import torch

    dev = resolve_device("auto") if get_settings().device != "cpu" else "cpu"
    if dev == "cuda":
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU ({torch.get_num_threads()} threads)"
