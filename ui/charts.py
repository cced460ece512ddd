"""Charts several pages draw: core/figures.py builds each spec (the report renders the same ones); this draws it,
with the page's key, width, captions and click selections."""
from __future__ import annotations

import streamlit as st

from core import figures


def training_curves(history: list[dict], *, key: str) -> None:
    """Loss, top-1, learning rate and per-layer-group gradient norms over epochs, in a 2x2 grid."""
    charts = figures.training_curves(history)
    for i, (name, chart) in enumerate(charts.items()):
        if i % 2 == 0:
            columns = st.columns(2)
        columns[i % 2].altair_chart(chart, width="stretch", key=f"{key}-{name}")


def accuracy_vs_speed(rows: list[dict], front: list[dict], *, key: str) -> None:
    """Top-1 against milliseconds per image, one point per evaluation coloured by family, the Pareto front as a line."""
    chart = figures.accuracy_vs_speed(rows, front)
    if chart is not None:
        st.altair_chart(chart, width="stretch", key=key)
        st.caption(figures.PARETO_NOTE)


def confusion_chart(cells, order: list[str], *, value: str, key: str, what: str = "class",
                    selected: tuple[int, int] | None = None) -> list[dict]:
    """A clickable confusion matrix (figures.confusion_matrix), `selected` (true, pred) drawn as picked. Returns the
    selected cells (dicts with "true" and "pred"), or []."""
    event = st.altair_chart(figures.confusion_matrix(cells, order, value=value, what=what, selected=selected),
                            on_select="rerun", key=key, width="content")  # its own size: square cells
    return (event.selection.get("cell") if event and event.selection else None) or []


def _draw(chart, key: str, *, stretch: bool = True) -> None:
    if chart is not None:
        st.altair_chart(chart, key=key, **({"width": "stretch"} if stretch else {}))


def arena_bars(results: list[dict], *, key: str) -> None:
    _draw(figures.arena_bars(results), key)


def arena_learning_curves(curves: list[dict], *, key: str) -> None:
    _draw(figures.arena_learning_curves(curves), key)


def arena_data_size(results: list[dict], crossovers: list[dict], *, key: str) -> None:
    _draw(figures.arena_data_size(results, crossovers), key)


def shape_bias_bars(results: list[dict], references: list[dict], *, key: str) -> None:
    _draw(figures.shape_bias_bars(results, references), key, stretch=False)


def shape_bias_per_class(results: list[dict], *, key: str) -> None:
    chart = figures.shape_bias_per_class(results)
    if chart is None:
        st.info("No model decided any class by shape or texture.")
    _draw(chart, key)


def robustness_lines(results: list[dict], *, key: str) -> list[dict]:
    """Top-1 against severity per corruption (figures.robustness_lines). Returns the clicked points (dicts with
    "corruption" and "severity"), or []."""
    chart = figures.robustness_lines(results)
    if chart is None:
        return []
    event = st.altair_chart(chart, on_select="rerun", key=key)
    return (event.selection.get("point") if event and event.selection else None) or []


def reliability_diagrams(results: list[dict], *, key: str) -> None:
    chart = figures.reliability_diagrams(results)
    if chart is None:
        st.info("No reliability diagram: these evaluations' scores are not probabilities over the dataset's classes.")
    _draw(chart, key, stretch=False)


def faithfulness_bars(rows: list[dict], *, key: str, labels: dict[str, str] | None = None) -> None:
    _draw(figures.faithfulness_bars(rows, labels=labels), key, stretch=False)


def layer_reach(rows: list[dict], *, key: str) -> None:
    _draw(figures.layer_reach(rows), key)


def deletion_curves(rows: list[dict], *, key: str) -> None:
    _draw(figures.deletion_curves(rows), key, stretch=False)
