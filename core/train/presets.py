"""Augmentation presets by name: what a recipe may ask for (core/train/augment.py applies them).

Kept apart from the augmentation code, which needs torch, so a recipe can be read and checked (the CLI
builds its `train` flags from the recipe's fields) without importing torch.
"""
from __future__ import annotations

from core.errors import UserError

PRESETS: dict[str, str] = {
    "none": "no augmentation",
    "flip": "random horizontal flip",
    "slides": "flip, translation, rotation and contrast 0.7-1.3 (the Tiny ImageNet slides)",
    "ten-crop": "one of 10 crops at 7/8 of the side (4 corners + centre, each maybe flipped), "
                "resized back (the Tiny ImageNet study)",
    "cutmix": "paste a box from another image; labels mixed by area (CutMix)",
    "mixup": "blend with another image; labels mixed by the same weight (MixUp)",
}

_ORDER = ("ten-crop", "flip", "slides", "cutmix", "mixup")


def parse_preset(text: str) -> list[str]:
    """"slides+cutmix" -> ["slides", "cutmix"] (canonical order, no duplicates, "none" dropped)."""
    parts = {p.strip().lower() for p in text.split("+") if p.strip()}
    unknown = sorted(parts - set(PRESETS))
    if unknown:
        raise UserError(f"unknown augmentation {', '.join(map(repr, unknown))}; "
                        f"choose from {', '.join(PRESETS)}, joined with '+'")
    return [p for p in _ORDER if p in parts]
