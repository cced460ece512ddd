"""Overview: what is in the store, and a quick evaluation on an embedded dataset."""
import pandas as pd
import streamlit as st

from core.errors import UserError
from core.results import evaluation_table, quick_choices

st.title("CNN vs ViT Lab")
st.write(
    "Compare convolutional networks and vision transformers on the same images: accuracy, speed and "
    "what they look at. Pick models and a dataset below; every result is stored and reused."
)

choices = quick_choices()
with st.form("quick-evaluate"):
    c1, c2, c3 = st.columns([2, 1, 1])
    models = c1.multiselect("Models", choices.models, default=choices.default_models, key="ov_models")
    dataset = c2.selectbox("Dataset", choices.datasets, key="ov_dataset")
    limit = c3.number_input("Images (0 = whole split)", min_value=0, value=500, step=100, key="ov_limit")
    submitted = st.form_submit_button("Evaluate", type="primary")

st.caption("Scratch models start from random weights; their scores are chance level until they are trained.")

if submitted:
    # Quick runs on embedded data only; long work moves to background jobs (core/jobs.py) with the Evaluate page.
    from core.evaluate import evaluate

    bar = st.progress(0.0, text="starting")
    for i, model_id in enumerate(models):
        try:
            ev = evaluate(model_id, dataset, limit=int(limit) or None,
                          progress=lambda done, total, i=i: bar.progress(
                              min(1.0, (i + done / total) / len(models)), text=f"{model_id}: {done}/{total}"))
        except UserError as e:
            st.error(f"{model_id}: {e}")
    bar.empty()

rows = evaluation_table()
if rows:
    st.subheader("Stored evaluations")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "top1": st.column_config.NumberColumn("top-1", format="percent"),
        "top5": st.column_config.NumberColumn("top-5", format="percent"),
        "scoring": st.column_config.TextColumn("top-1/5 over", help="native: the model predicts exactly the "
                                               "dataset's classes; 'all N model classes': an ImageNet model, where a "
                                               "prediction outside the dataset counts as wrong (the reference notebook)"),
        "top1_restricted": st.column_config.NumberColumn("top-1, dataset classes only", format="percent"),
        "top5_restricted": st.column_config.NumberColumn("top-5, dataset classes only", format="percent"),
        "f1_macro": st.column_config.NumberColumn("macro F1", format="%.3f"),
        "cohen_kappa": st.column_config.NumberColumn("Cohen's κ", format="%.3f"),
        "params": st.column_config.NumberColumn("parameters", format="localized"),
        "seconds": st.column_config.NumberColumn("seconds", format="%.2f"),
        "images_per_second": st.column_config.NumberColumn("images/s", format="%.0f"),
    })
else:
    st.info("No evaluations yet: press Evaluate above.")
