"""16-class-ImageNet: the categories of the published cue-conflict stimuli (Geirhos et al. 2019) and how an
ImageNet model's outputs map onto them.

The mapping (each category's ImageNet WordNet ids, 207 in all), the aggregation (the mean of the softmax
probabilities of a category's ImageNet classes) and the published shape-bias figures are data, written down with
their sources in cue_conflict_16class.json and docs/cue-conflict-sources.md. A stimulus file is named
`<shape><i>-<texture><j>.png` inside its shape's folder (`airplane/airplane1-bicycle2.png`); model-vs-human's
trial files prefix that with `<...>_`, which is skipped as its toolbox skips it.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

MAPPING_FILE = Path(__file__).with_name("cue_conflict_16class.json")
STIMULUS = re.compile(r"^(?:.*_)?([a-z]+)\d+-([a-z]+)\d+\.[A-Za-z]+$")


@functools.cache
def _table() -> dict:
    return json.loads(MAPPING_FILE.read_text())


def categories() -> list[str]:
    """The 16 categories in the toolbox's (alphabetical) order: the dataset's class order."""
    return sorted(_table()["categories"])


def wnids(category: str) -> list[str]:
    """The ImageNet-1k WordNet ids whose probabilities category averages."""
    return list(_table()["categories"][category]["wnids"])


def reference_figures() -> list[dict]:
    """Published shape bias on these stimuli: [{model, label, family, shape_bias, source}]."""
    return [dict(r) for r in _table()["reference_shape_bias"]]


def parse(name: str) -> tuple[str, str] | None:
    """(shape, texture) category of a stimulus file name, or None when the name is not a stimulus's."""
    m = STIMULUS.match(name)
    cats = _table()["categories"]
    return (m.group(1), m.group(2)) if m and m.group(1) in cats and m.group(2) in cats else None
