"""One entry point per method, and the side-by-side comparison of several models on the same image and class."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.decode import decode_image
from core.errors import UserError
from core.explain.activations import feature_maps
from core.explain.attention import attention_maps, rollout
from core.explain.base import METHODS, ExplainError, Explanation
from core.explain.cams import eigencam, gradcam, gradcam_pp, scorecam
from core.explain.filters import filters
from core.explain.render import write_png
from core.models.wrapper import LoadedModel
from core.predict import load_for_prediction, predict_image

EXPLAINERS = {"filters": filters, "feature-maps": feature_maps, "attention": attention_maps, "rollout": rollout,
              "gradcam": gradcam, "gradcam++": gradcam_pp, "scorecam": scorecam, "eigencam": eigencam}


def explain(model: LoadedModel, image: np.ndarray, method: str, class_index: int | None = None, *,
            precision: str | None = None, **opts) -> Explanation:
    """`method` (one of METHODS) of `model` on one decoded uint8 image. opts: layer, head_fusion,
    discard_ratio, max_filters, max_channels.

    The top-5 shown and the default class (the predicted one) come from `predict_image` at `precision`
    (default the setting): the forward an evaluation runs, so Predict, the confusion matrix and the
    explanation name the same class. The maps are computed in fp32 (gradients, attention weights)."""
    if method not in EXPLAINERS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    pred = predict_image(model, image, top_k=5, precision=precision)
    chosen = pred.class_indices[0] if class_index is None else class_index
    expl = EXPLAINERS[method](model, image, class_index=chosen, **opts)
    expl.top5 = list(zip(pred.labels, pred.probabilities))
    expl.precision = pred.precision
    return expl


@dataclass
class ModelExplanation:
    """One model's row of a comparison: its explanation, or the message saying why there is none."""

    model_id: str
    name: str
    family: str
    explanation: Explanation | None
    error: str | None
    seconds: float


def explain_many(models: list[LoadedModel], image: np.ndarray, method: str, class_index: int | None = None,
                 **opts) -> list[ModelExplanation]:
    """The same method, image and class for each model; a model that fails gets its error message instead."""
    rows = []
    for model in models:
        t = time.perf_counter()
        try:
            expl, error = explain(model, image, method, class_index, **opts), None
        except UserError as e:
            expl, error = None, str(e)
        except Exception as e:  # noqa: BLE001  (one model's failure must not hide the others' results)
            expl, error = None, f"{type(e).__name__}: {e}"
        rows.append(ModelExplanation(model.id, model.name, model.family, expl, error, time.perf_counter() - t))
    return rows


def explain_to_png(model_id: str, image_path: str, method: str, out: str | Path, *, layer: str | None = None,
                   class_index: int | None = None, dataset: str | None = None, precision: str | None = None,
                   **opts) -> Explanation:
    """The CLI's `explain`: load the model (scratch ids get `dataset`'s label space, default shapes, as in
    predict), decode the image with the shared safe decoder, explain, write a PNG atomically."""
    if method not in EXPLAINERS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    image = decode_image(image_path)
    model = load_for_prediction(model_id, dataset)
    expl = explain(model, image, method, class_index, layer=layer, precision=precision, **opts)
    write_png(expl, out)
    return expl
