"""Charts several pages draw, as Altair specs from plain rows."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

FAMILY_COLORS = alt.Scale(domain=["cnn", "vit", "hybrid", "other"], range=["#1f77b4", "#d62728", "#9467bd", "#7f7f7f"])


def training_curves(history: list[dict], *, key: str) -> None:
    """Loss, top-1, learning rate and per-layer-group gradient norms over epochs, in a 2x2 grid."""
    h = pd.DataFrame(history)
    long = lambda cols, names: h.melt("epoch", cols, "curve", "value").replace({"curve": names})  # noqa: E731
    loss = long(["train_loss", "val_loss"], {"train_loss": "train", "val_loss": "validation"})
    acc = long(["train_top1", "val_top1"], {"train_top1": "train", "val_top1": "validation"})
    grads = pd.DataFrame([{"epoch": row["epoch"], "group": g, "norm": v}
                          for row in history for g, v in (row.get("grad_norm") or {}).items()])
    x = alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1), title="epoch")

    def lines(df: pd.DataFrame, y: str, title: str, color: str, fmt: str = "", log: bool = False) -> alt.Chart:
        scale = alt.Scale(type="symlog" if log else "linear")
        legend = alt.Legend(title=None, symbolLimit=0, labelLimit=110, columns=1 if color == "curve" else 2)
        return (alt.Chart(df, title=title).mark_line(point=True)
                .encode(x, alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=fmt), scale=scale),
                        alt.Color(f"{color}:N", sort=None, scale=alt.Scale(scheme="tableau10"), legend=legend),
                        tooltip=["epoch", color, alt.Tooltip(y, format=fmt or ".4g")])
                .properties(height=300))  # tall enough for a legend of 16 layer groups in two columns

    c1, c2 = st.columns(2)
    c1.altair_chart(lines(loss, "value", "cross-entropy loss", "curve"), width="stretch", key=f"{key}-loss")
    c2.altair_chart(lines(acc, "value", "top-1 accuracy", "curve", fmt=".0%"), width="stretch", key=f"{key}-acc")
    c1, c2 = st.columns(2)
    c1.altair_chart(lines(h.assign(curve="learning rate"), "lr", "learning rate (first step of each epoch)", "curve",
                          fmt=".2g"), width="stretch", key=f"{key}-lr")
    if not grads.empty:
        c2.altair_chart(lines(grads, "norm", "gradient norm per layer group (mean per step)", "group", log=True),
                        width="stretch", key=f"{key}-grad")


def accuracy_vs_speed(rows: list[dict], front: list[dict], *, key: str) -> None:
    """Top-1 against milliseconds per image, one point per evaluation coloured by family, the Pareto front as a line."""
    df = pd.DataFrame(rows).dropna(subset=["ms_per_image", "top1"])
    if df.empty:
        return
    df["label"] = df["model_name"].fillna(df["model"]) + " on " + df["dataset"] + "/" + df["split"]
    base = alt.Chart(df).encode(
        alt.X("ms_per_image:Q", title="milliseconds per image (end to end, as measured)", scale=alt.Scale(type="log")),
        alt.Y("top1:Q", title="top-1 (the evaluation's own scoring)", axis=alt.Axis(format=".0%")))
    points = base.mark_circle(size=120, opacity=0.85).encode(
        alt.Color("family:N", scale=FAMILY_COLORS),
        tooltip=["label", "family", alt.Tooltip("top1", format=".1%"), alt.Tooltip("ms_per_image", format=".2f"),
                 alt.Tooltip("params", format=","), "device", "scoring"])
    line = alt.Chart(pd.DataFrame(front)).mark_line(strokeDash=[4, 3], color="#444").encode(
        x="ms_per_image:Q", y="top1:Q") if front else None
    chart = (points + line if line is not None else points).properties(height=340)
    st.altair_chart(chart, width="stretch", key=key)
    st.caption("Dashed: the Pareto front (no other evaluation is both faster and more accurate). Times are "
               "end to end on the device that computed each result; compare like with like.")


def confusion_chart(cells: pd.DataFrame, order: list[str], *, value: str, key: str, what: str = "class"):
    """A clickable confusion matrix from cell rows (true/pred index and name, count, row_share, correct):
    correct cells green and errors red, each scaled to its own maximum; empty error cells are the grey
    background. Returns the selected cells (dicts with "true" and "pred"), or []."""
    cells = cells.copy()
    top_right = float(cells.loc[cells["correct"], value].max() or 1)
    top_wrong = float(cells.loc[~cells["correct"], value].max() or 1)
    cells["shade"] = (cells[value] / top_right).where(cells["correct"], -cells[value] / top_wrong)
    columns = order + (["(outside the dataset)"] if (cells["pred_name"] == "(outside the dataset)").any() else [])
    cells = cells[(cells["count"] > 0) | cells["correct"]]  # fewer marks: 200 x 200 stays fast
    side = max(4, min(36, 900 // max(len(order), 1)))
    labels = alt.Axis(labels=side >= 10)
    pick = alt.selection_point(name="cell", fields=["true", "pred"], on="click", clear="dblclick")
    chart = (alt.Chart(cells).mark_rect(stroke="white", strokeWidth=0.5 if side >= 10 else 0)
             .encode(alt.X("pred_name:N", scale=alt.Scale(domain=columns), title=f"predicted {what}", axis=labels),
                     alt.Y("true_name:N", scale=alt.Scale(domain=order), title=f"true {what}", axis=labels),
                     color=alt.condition("datum.count == 0", alt.value("#f4f4f4"),
                                         alt.Color("shade:Q", legend=None, scale=alt.Scale(
                                             domain=[-1, 0, 1], range=["#c0392b", "#fdf2f0", "#1e8449"]))),
                     opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
                     tooltip=[alt.Tooltip("true_name", title="true"), alt.Tooltip("pred_name", title="predicted"),
                              alt.Tooltip("count", title="images"),
                              alt.Tooltip("row_share", title="share of row", format=".1%")])
             .add_params(pick)
             .properties(width=side * len(columns), height=side * len(order))
             .configure_view(fill="#f4f4f4"))
    event = st.altair_chart(chart, on_select="rerun", key=key)
    return (event.selection.get("cell") if event and event.selection else None) or []
