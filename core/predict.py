"""Top-k predictions for single images (uploads, files)."""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.data.decode import decode_image
from core.data.registry import default_dataset, load_dataset
from core.errors import ImageDecodeError, UserError
from core.models.reference import ModelKind, resolve
from core.models.registry import create_model
from core.models.wrapper import LoadedModel
from core.precision import resolve_precision, runner_for

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    labels: list[str]
    probabilities: list[float]
    class_indices: list[int]
    seconds: float  # this call: resize, normalise and the forward pass (the first call also builds the runner)
    precision: str = "fp32"  # what the forward ran at (an evaluation at the same precision gives the same top-1)
    wnids: list[str | None] = field(default_factory=list)  # WordNet id of each class, where the model has them
    warm_seconds: float | None = None  # median forward of `timing_repeats` calls after a warm-up (as `bench`)
    timing_repeats: int = 0


def predict_image(model: LoadedModel, image: np.ndarray, top_k: int = 5, *, precision: str | None = None,
                  timing_repeats: int = 0) -> Prediction:
    """Ranked top-k for one decoded uint8 (H, W, C) image, through the forward an evaluation runs
    (`runner_for`): at one `precision` (auto|fp32|bf16|fp16; default the setting), Predict, explain and the
    confusion matrix give an image the same top-1. `timing_repeats` > 0 also times that many forward passes
    after one untimed warm-up and reports their median (a first call pays one-time costs)."""
    k = min(top_k, len(model.labels))
    device = model.device.type
    prec = resolve_precision(precision, device)
    t = time.perf_counter()
    run = runner_for(model, prec, device)
    with torch.inference_mode():
        x = model.preprocess.normalize(model.preprocess.geometry(image).unsqueeze(0).to(model.device),
                                       channels_last=run.channels_last)
        prob = torch.softmax(run(x), dim=1)[0]
        p, idx = prob.topk(k)
        idx_list = idx.cpu().tolist()
        seconds = time.perf_counter() - t
        warm = _median_forward(run, x, timing_repeats) if timing_repeats > 0 else None
    wnids = model.labels.wnids
    return Prediction([model.labels.names[i] for i in idx_list], p.cpu().tolist(), idx_list, seconds, prec,
                      [wnids[i] if wnids else None for i in idx_list], warm, timing_repeats)


def _median_forward(run, x: torch.Tensor, repeats: int) -> float:
    """Seconds of one forward pass: the median of `repeats` timed calls after one warm-up call."""
    run(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(x).cpu()  # .cpu() waits for a GPU
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def predict_files(model_id: str, images: list[str], *, top_k: int = 5, dataset: str | None = None,
                  precision: str | None = None) -> list[dict]:
    """The CLI's `predict --json` list: per image {image, precision, top: [{label, probability, index, wnid}]}
    (or an error). `index` is the model's class index (ImageNet-1k repeats names: "crane" is a bird and a
    machine); `wnid` its WordNet id, null where the model has none."""
    if top_k <= 0:
        raise UserError("--top-k must be positive")
    model = load_for_prediction(model_id, dataset)
    prec = resolve_precision(precision, model.device.type)
    out = []
    for path in images:
        if not Path(path).is_file():
            problem = "is a directory, not an image file" if Path(path).is_dir() else "does not exist"
            out.append({"image": path, "precision": prec, "top": [], "error": f"{path} {problem}"})
            continue
        try:
            pred = predict_image(model, decode_image(path), top_k, precision=prec)
        except ImageDecodeError as e:
            out.append({"image": path, "precision": prec, "top": [], "error": str(e)})
            continue
        out.append({"image": path, "precision": pred.precision,
                    "top": [{"label": lab, "probability": p, "index": i, "wnid": w}
                            for lab, p, i, w in zip(pred.labels, pred.probabilities, pred.class_indices, pred.wnids)]})
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
