"""Result tables: how each result column is labelled, formatted and explained, written once for every page."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import streamlit as st


@dataclass(frozen=True)
class ResultColumn:
    """How one result column is drawn: its header, a number format (Streamlit's names or printf), a tooltip."""

    label: str
    format: str | None = None
    help: str | None = None
    number: bool = True  # False: a text column


FEW_CLASSES = "empty with 5 or fewer classes"
SCORING_HELP = ("what top-1, top-5, macro F1 and κ are over. native: the model predicts exactly the dataset's "
                "classes; 'all N model classes': an ImageNet model, where a prediction outside the dataset counts "
                "as wrong (the reference notebook)")

COLUMNS: dict[str, ResultColumn] = {
    "model_name": ResultColumn("name", number=False),
    "scoring": ResultColumn("scored over", help=SCORING_HELP, number=False),
    "top1": ResultColumn("top-1", "percent"),
    "top1_lo": ResultColumn("top-1 95% from", "percent", "the 95% Wilson interval of top-1 over the evaluation's "
                            "images: how sure the number is from the number of images alone (not over seeds)"),
    "top1_hi": ResultColumn("top-1 95% to", "percent", "the interval's upper end"),
    "top5": ResultColumn("top-5", "percent", FEW_CLASSES),
    "f1_macro": ResultColumn("macro F1", "%.3f"),
    "cohen_kappa": ResultColumn("Cohen's κ", "%.3f"),
    "outside": ResultColumn("top-1 outside dataset",
                            help="images whose top-1 class is not one of the dataset's (all-classes scoring)"),
    "top1_restricted": ResultColumn("top-1, dataset classes only", "percent"),
    "top5_restricted": ResultColumn("top-5, dataset classes only", "percent", FEW_CLASSES),
    "f1_macro_restricted": ResultColumn("macro F1, dataset classes only", "%.3f"),
    "cohen_kappa_restricted": ResultColumn("Cohen's κ, dataset classes only", "%.3f"),
    "ece": ResultColumn("ECE", "%.3f", "expected calibration error: 15 equal-width confidence bins, |accuracy - "
                        "confidence| weighted by each bin's images (0: calibrated); the Robustness page has more"),
    "nll": ResultColumn("NLL", "%.3f", "negative log-likelihood of the true class (mean over images)"),
    "params": ResultColumn("parameters", "localized"),
    "gflops": ResultColumn("GFLOPs/image", "%.3f", "torch flop counter, multiply-add = 2"),
    "seconds": ResultColumn("seconds", "%.2f"),
    "ms_per_image": ResultColumn("ms/image", "%.3f"),
    "images_per_second": ResultColumn("images/s", "%.0f"),
    "latency_ms_p50": ResultColumn("batch-1 latency p50 (ms)", "%.2f",
                                   "from `python -m core bench --model ID`; empty until run"),
    "forward_images_per_second": ResultColumn("forward images/s (bench)", "%.0f"),
    "bench_device": ResultColumn("bench machine", number=False),
}


def show_table(data, **kwargs) -> None:
    """`st.dataframe` as every page draws a table: without the index, a number not measured as "-" (as the CLI
    and the report print it), not "None"."""
    st.dataframe(data, hide_index=True, placeholder="-", **kwargs)


def significant(x: float, digits: int = 3) -> str:
    """`x` to `digits` significant figures, never in exponent form and with thousands grouped (all of a number's
    integer digits are kept): 0.04213 -> "0.0421", 12.34 -> "12.3", 1234.1 -> "1,234"."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:,.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"


def column_config(columns: Iterable[str], *, labels: dict[str, str] | None = None) -> dict:
    """`st.dataframe`'s column_config for the result columns among `columns` (any other column keeps its
    name); `labels` renames a column for one table."""
    labels = labels or {}
    config = {}
    for name in columns:
        spec = COLUMNS.get(name)
        if spec is None:
            continue
        label = labels.get(name, spec.label)
        config[name] = (st.column_config.NumberColumn(label, format=spec.format, help=spec.help) if spec.number
                        else st.column_config.TextColumn(label, help=spec.help))
    return config


def leaderboard_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a table to draw: without the record `key` (it opens a record, a reader has no use for it), and
    the numeric result columns as numbers, so a missing value is a missing number (pages draw it "-"), and the
    column keeps its number format."""
    # labels_assumed: said by assumed_labels; bar: a chart's short name, the table has the full label
    table = pd.DataFrame(rows).drop(columns=["key", "labels_assumed", "bar"], errors="ignore")
    numeric = [c for c in table.columns if c in COLUMNS and COLUMNS[c].number]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")
    return table


def assumed_labels(rows: list[dict]) -> None:
    """A caption under results whose model's class names were assumed (a Hub head with 1000 placeholder labels read
    as ImageNet-1k's): which models, and why, so nobody reads an assumed "goldfish" as the model's own word."""
    said = {(r.get("model_name") or r["model"]): r["labels_assumed"] for r in rows if r.get("labels_assumed")}
    if said:
        st.caption("**Class names assumed** - " + "; ".join(f"{m}: {why}" for m, why in said.items()))
