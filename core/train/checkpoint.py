"""Training checkpoints: weights, buffers and optimizer state in one safetensors file per run
(core/models/weights.py writes it atomically), so a resumed run sees the last complete epoch,
never half of one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.models.weights import load_tensors, save_tensors


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """torch optimizer state_dict -> (tensors, JSON skeleton). Per-parameter state values that
    are tensors go to the file; numbers stay in the skeleton."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for pid, values in state["state"].items():
        entry = {}
        for name, v in values.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = v
                entry[name] = {"tensor": f"optim.{pid}.{name}"}
            else:
                entry[name] = {"value": v}
        skeleton["state"][str(pid)] = entry
    return tensors, skeleton


def unflatten_optimizer(tensors: dict[str, torch.Tensor], skeleton: dict) -> dict:
    state = {}
    for pid, entry in skeleton["state"].items():
        state[int(pid)] = {name: tensors[v["tensor"]] if "tensor" in v else v["value"] for name, v in entry.items()}
    return {"param_groups": skeleton["param_groups"], "state": state}


def save_checkpoint(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    opt_tensors, skeleton = flatten_optimizer(optimizer.state_dict())
    tensors = {f"model.{k}": v for k, v in module.state_dict().items()} | opt_tensors
    save_tensors(path, tensors, meta | {"optimizer": skeleton})


def load_checkpoint(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore module and optimizer in place; return the checkpoint's metadata (epoch, history, ...)."""
    tensors, meta = load_tensors(path)
    module.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(unflatten_optimizer(tensors, meta.pop("optimizer")))
    return meta
