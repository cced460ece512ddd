"""Top-k predictions for single images (uploads, files)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.decode import decode_image
from core.data.registry import default_dataset, load_dataset
from core.errors import ImageDecodeError, UserError
from core.models.reference import ModelKind, resolve
from core.models.registry import create_model
from core.models.wrapper import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    labels: list[str]
    probabilities: list[float]
    class_indices: list[int]
    seconds: float


def predict_image(model: LoadedModel, image: np.ndarray, top_k: int = 5) -> Prediction:
    """Ranked top-k for one decoded uint8 (H, W, C) image."""
    k = min(top_k, len(model.labels))
    t = time.perf_counter()
    with torch.inference_mode():
        x = model.preprocess(image).to(model.device)
        prob = torch.softmax(model.logits(x).float(), dim=1)[0]
        p, idx = prob.topk(k)
    seconds = time.perf_counter() - t
    idx_list = idx.cpu().tolist()
    return Prediction([model.labels.names[i] for i in idx_list], p.cpu().tolist(), idx_list, seconds)


def predict_files(model_id: str, images: list[str], *, top_k: int = 5, dataset: str | None = None) -> list[dict]:
    """The CLI's `predict --json` list: per image {image, top: [{label, probability}]} (or an error)."""
    if top_k <= 0:
        raise UserError("--top-k must be positive")
    model = load_for_prediction(model_id, dataset)
    out = []
    for path in images:
        if not Path(path).is_file():
            problem = "is a directory, not an image file" if Path(path).is_dir() else "does not exist"
            out.append({"image": path, "top": [], "error": f"{path} {problem}"})
            continue
        try:
            pred = predict_image(model, decode_image(path), top_k)
        except ImageDecodeError as e:
            out.append({"image": path, "top": [], "error": str(e)})
            continue
        out.append({"image": path, "top": [{"label": lab, "probability": p}
                                           for lab, p in zip(pred.labels, pred.probabilities)]})
    return out


def example_images(dataset: str | None = None, split: str = "val") -> dict[str, np.ndarray]:
    """One bundled example per class (the first of each in the split; by default of `shapes`, see
    `default_dataset`), for pages offering examples offline."""
    dataset = dataset or default_dataset()
    ds = load_dataset(dataset)
    data = ds.split(split)
    out = {}
    for c, name in enumerate(ds.classes):
        hits = np.flatnonzero(data.labels == c)
        if len(hits):
            out[f"{name} ({dataset} {split} #{int(hits[0])})"] = data.load(int(hits[0]))
    return out


def load_for_prediction(model_id: str, dataset: str | None = None) -> LoadedModel:
    """A model ready for `predict_image`: scratch architectures take their label space from `dataset`
    (default: the embedded default); everything else carries its own labels."""
    t = time.perf_counter()
    ref = resolve(model_id)
    ds = None
    if dataset is not None or ref.kind is ModelKind.SCRATCH:
        ds = load_dataset(dataset or default_dataset())
    model = create_model(ref, ds)
    log.info("model loaded: %s (%.2f s)", model_id, time.perf_counter() - t)  # the app's server log: one per load
    return model
