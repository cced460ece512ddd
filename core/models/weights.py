"""Weights as safetensors: tensors in the file, everything else as JSON in its metadata. Nothing is
pickled, so loading weights can never run code. Each file is written atomically: a reader sees the
last complete file, never half of one. Trained runs (core/models/trained.py) and training
checkpoints (core/train/checkpoint.py) are both written and read here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from core.store import atomic_write

_META_KEY = "cnnvit"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                metadata={_META_KEY: json.dumps(meta, default=str)})
    atomic_write(path, lambda f: f.write(data))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    out = {}
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
        for k in f.keys():
            out[k] = f.get_tensor(k)
    return out, meta


def read_meta(path: Path) -> dict[str, Any]:
    """Only the JSON metadata of a safetensors file (its header), without reading the tensors."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
