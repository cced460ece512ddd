"""A model's colour says its family on every chart that draws models: each chart is rendered to SVG (vl-convert,
Vega's own renderer) and the colour of every mark that names a model is read back. CNNs are blues, ViTs reds, hybrids
purples; the first model of a family has the family's colour (the one the family-coloured charts use), and two
models of one family still differ."""
import re

import pytest

from core import figures

MODELS = [("cnn-multilayer", "cnn"), ("resnet20", "cnn"), ("vit-small", "vit"), ("cct-2", "hybrid")]
FAMILY = dict(MODELS)
BLUE, RED, PURPLE = "#1f77b4", "#d62728", "#9467bd"


def _curves():
    return [{"model": m, "family": f, "size": 5000, "seed": s, "epoch": e, "images_seen": 5000 * e,
             "val_top1": 0.1 + 0.05 * (i + 1) * e / 8 + 0.01 * s}
            for i, (m, f) in enumerate(MODELS) for s in range(3) for e in range(1, 5)]


def _results(sizes=(500, 2000)):
    return [{"model": m, "family": f, "size": n, "top1_mean": 0.2 + 0.1 * i + n / 1e5, "top1_ci95": 0.04,
             "runs_done": 3} for i, (m, f) in enumerate(MODELS) for n in sizes]


def _faithfulness():
    return [{"model": m, "family": f,
             "curves": {"deletion": [1 - k / 8 for k in range(9)],
                        "insertion": [k / 8 * (i + 1) / 4 for k in range(9)]},
             "baseline_curves": {"random": {"deletion": [1 - k / 10 for k in range(9)],
                                            "insertion": [k / 10 for k in range(9)]}}}
            for i, (m, f) in enumerate(MODELS)]


def _reach():
    return [{"model": m, "family": f, "depth": d, "pixels": 4.0 * d + i, "share": (4.0 * d + i) / 32,
             "what": "receptive field" if f == "cnn" or (f == "hybrid" and d <= 2) else "attention distance"}
            for i, (m, f) in enumerate(MODELS) for d in range(1, 5)]


def _overlay():
    return [{"label": m, "family": f, "epoch": e, "val_top1": 0.1 * (i + 1) + 0.02 * e, "val_loss": 1.0,
             "train_loss": 1.0} for i, (m, f) in enumerate(MODELS) for e in range(1, 4)]


CHARTS = {
    "arena bars": lambda: figures.arena_bars(_results((5000,))),
    "arena learning curves": lambda: figures.arena_learning_curves(_curves()),
    "arena data size": lambda: figures.arena_data_size(_results(), []),
    "deletion curves": lambda: figures.deletion_curves(_faithfulness()),
    "layer reach": lambda: figures.layer_reach(_reach()),
    "training-curve overlay": lambda: figures.curve_overlay(_overlay(), "val_top1"),
}


def _colors_by_model(chart) -> dict[str, set[str]]:
    """Each model's fill and stroke colours, from the SVG marks whose aria-label names it (legend symbols
    excluded: only the data marks)."""
    import vl_convert as vlc

    svg = vlc.vegalite_to_svg(chart.to_json())
    found: dict[str, set[str]] = {m: set() for m, _ in MODELS}
    for tag in re.findall(r"<path [^>]*>", svg):
        label = re.search(r'aria-label="([^"]*)"', tag)
        if not label:
            continue
        named = [m for m, _ in MODELS if re.search(rf"(^|[:;] ?){re.escape(m)}(;|$)", label.group(1))]
        colors = set(re.findall(r'(?:fill|stroke)="(#[0-9a-f]{6})"', tag))
        for m in named:
            found[m] |= colors
    return found


@pytest.mark.parametrize("name", CHARTS)
def test_each_model_in_its_familys_hue(name):
    found = _colors_by_model(CHARTS[name]())
    for model, family in MODELS:
        assert found[model], f"{name}: no mark names {model}"
        assert found[model] <= set(figures.FAMILY_SHADES[family]), f"{name}: {model} drawn in {found[model]}"
    # the first model of each family in the family's own colour, as on the family-coloured charts
    assert found["cnn-multilayer"] == {BLUE} and found["vit-small"] == {RED} and found["cct-2"] == {PURPLE}, name
    assert found["resnet20"].isdisjoint(found["cnn-multilayer"]), f"{name}: two CNNs drawn alike"


def test_family_colours_are_distinct_hues_with_distinct_shades():
    assert dict(zip(figures.FAMILY_COLORS.to_dict()["domain"], figures.FAMILY_COLORS.to_dict()["range"])) == {
        "cnn": BLUE, "vit": RED, "hybrid": PURPLE, "other": "#7f7f7f"}
    assert all(len(set(shades)) == len(shades) for shades in figures.FAMILY_SHADES.values())


def test_a_confusion_matrix_draws_a_rarely_right_class_green_and_a_rare_error_red():
    """Correct cells green and errors red, each scaled to its own largest: class b, right on 3 of 20 images, came
    out beige from the pinkish middle of the scale, easy to read as a faint error (a reviewer's finding)."""
    import colorsys

    import pandas as pd
    import vl_convert as vlc

    names = ["a", "b", "c"]
    cells = pd.DataFrame([{"true": t, "pred": p, "true_name": names[t], "pred_name": names[p], "count": n,
                           "row_share": n / 20, "correct": t == p}
                          for t, p, n in [(0, 0, 20), (1, 1, 3), (1, 0, 17), (2, 2, 20), (2, 1, 1)]])
    svg = vlc.vegalite_to_svg(figures.confusion_matrix(cells, names, value="count").to_json())
    fills = {}
    for tag in re.findall(r"<path [^>]*>", svg):
        label, fill = re.search(r'aria-label="([^"]*)"', tag), re.search(r'fill="rgb\(([\d, ]+)\)"', tag)
        if label and fill and (pair := re.search(r"true: (\w); predicted: (\w)", label.group(1))):
            fills[pair.groups()] = tuple(int(c) / 255 for c in fill.group(1).split(","))

    def hue(rgb: tuple) -> float:  # degrees: red about 0 or 360, green about 120
        return 360 * colorsys.rgb_to_hls(*rgb)[0]

    assert 90 <= hue(fills[("b", "b")]) <= 160, fills  # green, if pale
    assert hue(fills[("c", "b")]) <= 20 or hue(fills[("c", "b")]) >= 340, fills  # red, if pale
