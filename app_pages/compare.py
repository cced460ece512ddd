"""Compare: the chosen evaluations side by side - accuracy and time bars, a table, training curves overlaid."""
import altair as alt
import pandas as pd
import streamlit as st

from core.results import compare_rows, csv_bytes, evaluation_labels, overlay_histories
from ui.charts import FAMILY_COLORS
from ui.pickers import stored_evaluations
from ui.tables import assumed_labels, column_config, leaderboard_frame

st.title("Compare")
rows = stored_evaluations()

labels = evaluation_labels(rows)
wanted = [k for k in st.query_params.get_all("eval") if k in labels] or list(labels)[:4]
keys = st.multiselect("Evaluations", list(labels), default=wanted, format_func=labels.get,
                      help="stored evaluations to put side by side; the same dataset and split compare best")
st.query_params["eval"] = keys
if not keys:
    st.stop()
compared = compare_rows(keys)
table = pd.DataFrame(compared)

c1, c2 = st.columns(2)
bars = alt.Chart(table).encode(alt.Y("label:N", title=None, sort=None), color=alt.Color("family:N", scale=FAMILY_COLORS))
c1.altair_chart(bars.mark_bar().encode(alt.X("top1:Q", title="top-1 (each evaluation's scoring)",
                                             axis=alt.Axis(format=".0%")), tooltip=["label", alt.Tooltip("top1", format=".2%")])
                .properties(title="accuracy", height=alt.Step(36)), width="stretch", key="cmp-acc")
c2.altair_chart(bars.mark_bar().encode(alt.X("ms_per_image:Q", title="milliseconds per image, end to end"),
                                       tooltip=["label", alt.Tooltip("ms_per_image", format=".3f"), "device"])
                .properties(title="inference time", height=alt.Step(36)), width="stretch", key="cmp-time")

shown = leaderboard_frame(compared)
st.dataframe(shown, hide_index=True, width="stretch",
             column_config=column_config(shown.columns, labels={"images_per_second": "images/s (evaluation)"}))
assumed_labels(compared)
if table["latency_ms_p50"].isna().any():
    st.caption("Batch-1 latency and forward throughput come from `python -m core bench --model ID`.")
st.download_button("Download the table as CSV", csv_bytes(table.drop(columns=["key"]).to_dict("records")), "compare.csv",
                   "text/csv")

curves = overlay_histories(keys)
if curves:
    st.subheader("Training curves")
    df = pd.DataFrame(curves)
    metric = st.radio("Curve", ["val_top1", "val_loss", "train_loss"], horizontal=True,
                      help="which training curve to draw, for runs trained here")
    st.altair_chart(alt.Chart(df).mark_line(point=True).encode(
        alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)), alt.Y(f"{metric}:Q"), alt.Color("label:N", title=None),
        tooltip=["label", "epoch", alt.Tooltip(metric, format=".4g")]).properties(height=320),
        width="stretch", key="cmp-curves")
