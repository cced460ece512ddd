"""The Train page's recipe widgets, one per `Recipe` field, with the labels, help and bounds of
`core.train.recipe.recipe_fields()` (the same help `python -m core train --help` prints)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.hosted import TrainingLimits
from core.train.recipe import RecipeField, recipe_fields

COLUMNS = 4


def recipe_widgets(defaults: dict[str, Any], limits: TrainingLimits | None = None, *,
                   key: str | None = None) -> dict[str, Any]:
    """Draw every recipe field but model and dataset (the page picks those) inside the caller's `st.form`;
    return them as `Recipe` keyword arguments. `defaults` overrides the Recipe's own; hosted `limits` bound
    the epochs and the train images (no "all"). With a `key`, each field is keyed `{key}-{field}` and kept for
    the session: what was submitted is still there after a visit to another page."""
    values = {}
    for i, f in enumerate(f for f in recipe_fields() if not f.required):
        if i % COLUMNS == 0:
            row = st.columns(COLUMNS, vertical_alignment="bottom")  # a label on two lines keeps the row level
        with row[i % COLUMNS]:
            kept = dict(key=f"{key}-{f.name}", persist_state="session") if key else {}
            values[f.name] = _widget(f, defaults.get(f.name, f.default), limits, kept)
    return values


def _widget(f: RecipeField, default: Any, limits: TrainingLimits | None, kept: dict[str, str]) -> Any:
    if f.type is bool:
        return st.checkbox(f.label, value=default, help=f.help, **kept)
    if f.combine:  # augmentation presets, joined with "+"
        picked = st.multiselect(f.label, [c for c in f.choices if c != "none"],
                                default=[c for c in default.split("+") if c != "none"], help=f.help, **kept)
        return "+".join(picked) or "none"
    if f.choices:
        return st.selectbox(f.label, f.choices, index=f.choices.index(default), help=f.help, **kept)
    label, low, high = f.label, f.low, f.high
    if f.name == "epochs" and limits is not None and limits.enabled:
        high = limits.max_epochs
    if f.name == "limit" and limits is not None:  # hosted: every run names its image count, within the limit
        label, low, high = f"Train images (at most {limits.max_images:,})", 1, limits.max_images
        default = limits.max_images
    value = st.number_input(label, f.type(low), f.type(high), f.type(min(default or 0, high)),
                            step=None if f.step is None else f.type(f.step),
                            format="%g" if f.type is float else None, help=f.help, **kept)
    return (value or None) if f.optional else value  # an optional field's 0: unset
