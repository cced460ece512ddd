"""What `models` lists: scratch architectures and the default pretrained models, with their sizes."""
from __future__ import annotations

import torch
import torchvision

from core.models.defaults import HF_DEFAULTS, count
from core.models.scratch import build_scratch, scratch_specs
from core.models.spec import DEFAULT_SHAPE
from core.models.torchvision_models import TORCHVISION_DEFAULTS
from core.models.trained import list_runs


def model_rows() -> list[dict]:
    """DESIGN.md's `models --json` rows (id, name, family, source, params, input_size) plus GFLOPs per image."""
    rows = []
    for spec in scratch_specs():
        m = build_scratch(spec.id, DEFAULT_SHAPE)
        rows.append({"id": spec.id, "name": spec.name, "family": spec.family, "source": "scratch",
                     "params": m.params, "input_size": list(m.preprocess.size),
                     "gflops_per_image": m.flops_per_image() / 1e9, "citation": " ".join(spec.citation.split())})
    for hub in HF_DEFAULTS:
        params, flops = count(hub.architecture("meta"), hub.input_size)
        rows.append({"id": hub.id, "name": hub.name, "family": hub.family, "source": "hf", "params": params,
                     "input_size": list(hub.input_size), "gflops_per_image": flops / 1e9})
    rows += _torchvision_rows()
    rows += _trained_rows()
    return rows


def _trained_rows() -> list[dict]:
    """Finished training runs in the store: models like any other (source "trained")."""
    return [{"id": r["run_id"], "name": r["name"], "family": r["family"], "source": "trained", "params": r["params"],
             "input_size": r.get("input_size"), "gflops_per_image": (r.get("flops_per_image") or 0) / 1e9,
             "dataset": r["dataset"], "val_top1": r.get("val_top1")} for r in list_runs()]


def _torchvision_rows() -> list[dict]:
    rows = []
    for name in TORCHVISION_DEFAULTS:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        size = weights.transforms().crop_size[0]
        # as loaded with weights: torchvision's pretrained GoogLeNet / Inception drop their aux heads
        no_aux = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
        with torch.device("meta"):
            module = torchvision.models.get_model(name, weights=None, **no_aux).eval()
        params, flops = count(module, (size, size))
        rows.append({"id": f"torchvision:{name}", "name": f"{name} (torchvision {weights.name})",
                     "family": "vit" if name.startswith(("vit_", "swin_", "maxvit")) else "cnn",
                     "source": "torchvision", "params": params, "input_size": [size, size],
                     "gflops_per_image": flops / 1e9})
    return rows
