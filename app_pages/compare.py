"""Compare: the chosen evaluations side by side - accuracy and time bars, a table, training curves overlaid."""
import pandas as pd
import streamlit as st

from core.errors import UserError
from core.figures import compare_bars, curve_overlay
from core.report import build_report, compared_from_keys
from core.results import compare_rows, csv_bytes, evaluation_labels, overlay_histories
from ui.pickers import stored_evaluations
from ui.tables import assumed_labels, column_config, leaderboard_frame, show_table

st.title("Compare")
rows = stored_evaluations()

labels = evaluation_labels(rows)
wanted = [k for k in st.query_params.get_all("eval") if k in labels] or list(labels)[:4]
keys = st.multiselect("Evaluations", list(labels), default=wanted, format_func=labels.get, key="cmp-evals",
                      help="stored evaluations to put side by side; the same dataset and split compare best")
st.query_params["eval"] = keys
if not keys:
    st.stop()
compared = compare_rows(keys)
table = pd.DataFrame(compared)

acc, time = compare_bars(compared)
c1, c2 = st.columns(2)
c1.altair_chart(acc, width="stretch", key="cmp-acc")
c2.altair_chart(time, width="stretch", key="cmp-time")

shown = leaderboard_frame(compared)
show_table(shown, width="stretch",
          column_config=column_config(shown.columns, labels={"images_per_second": "images/s (evaluation)"}))
assumed_labels(compared)
if table["latency_ms_p50"].isna().any():
    st.caption("Batch-1 latency and forward throughput come from `python -m core bench --model ID`.")
c1, c2 = st.columns(2)
c1.download_button("Download the table as CSV", csv_bytes(table.drop(columns=["key", "bar"]).to_dict("records")),
                   "compare.csv", "text/csv", help="the table above, one row per evaluation")
try:
    same_images = compared_from_keys(keys)
except UserError as e:
    c2.caption(f"**Report:** {e}")
else:
    made_by = "the Compare page's evaluations " + ", ".join(k[:16] for k in keys)
    c2.download_button(
        "Download report", lambda: build_report(same_images, made_by=made_by).html(), on_click="ignore",
        file_name=f"cnn-vit-report-{same_images.dataset}-{same_images.split}.html", mime="text/html",
        type="primary", icon=":material/description:", help="one HTML file to take away: what was held equal, the "
        "leaderboard with intervals, time, per-class recall, confusion matrices, curves, Grad-CAM side by side and "
        "any stored arena, shape-bias or robustness results; every figure says what produced it. Opens offline; "
        "print it to PDF from the browser or with `python -m core report --out report.pdf`")

curves = overlay_histories(keys)
if curves:
    st.subheader("Training curves")
    metric = st.radio("Curve", ["val_top1", "val_loss", "train_loss"], horizontal=True,
                      help="which training curve to draw, for runs trained here")
    st.altair_chart(curve_overlay(curves, metric), width="stretch", key="cmp-curves")
