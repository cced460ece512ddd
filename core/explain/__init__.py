"""Explain views: filters, feature maps, attention, rollout, Grad-CAM / Grad-CAM++ / Score-CAM / EigenCAM,
attention distance, receptive fields; and how faithful each heat map is (faithfulness.py, scores.py).

Every hook is registered inside a context manager and removed on exit, so a shared, cached model is left as it
was: same outputs, no hooks, same requires_grad flags and train/eval mode, same attention implementation.
"""
from core.explain.activations import feature_maps, layer_output
from core.explain.attention import (
                                    attention_distances,
                                    attention_maps,
                                    attention_rollout,
                                    attention_weights,
                                    eager_attention,
                                    mean_attention_distance,
                                    rollout,
)
from core.explain.base import MAP_METHODS, METHODS, ExplainError, Explanation
from core.explain.cams import CAMS, cam, eigencam, gradcam, gradcam_pp, scorecam
from core.explain.compare import ModelExplanation, explain, explain_many, explain_to_png
from core.explain.filters import filters
from core.explain.receptive import layer_reach, receptive_fields
from core.explain.render import colorize, overlay, render, write_png

__all__ = [
    "CAMS", "ExplainError", "Explanation", "MAP_METHODS", "METHODS", "ModelExplanation", "attention_distances",
    "attention_maps", "attention_rollout", "attention_weights", "cam", "colorize", "eager_attention", "eigencam",
    "explain", "explain_many", "explain_to_png", "feature_maps", "filters", "gradcam", "gradcam_pp", "layer_output",
    "layer_reach", "mean_attention_distance", "overlay", "receptive_fields", "render", "rollout", "scorecam",
    "write_png",
]
