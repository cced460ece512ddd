"""Charts several pages draw, as Altair specs from plain rows."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st


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
