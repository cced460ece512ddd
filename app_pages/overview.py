"""Overview: every stored evaluation as a leaderboard; quick evaluations and the demo as background jobs."""
import pandas as pd
import streamlit as st

from core.errors import UserError
from core.hosted import is_hosted
from core.jobs import Jobs
from core.results import evaluation_table, job_rows, model_choices, pareto_front, quick_choices, speed_rows
from ui.charts import accuracy_vs_speed

st.title("CNN vs ViT Lab")
st.write(
    "Compare convolutional networks and vision transformers on the same images: accuracy, speed and "
    "what they look at. Train or pick models, evaluate them on a dataset, and every result is stored and reused."
)

rows = evaluation_table()
if not rows and not Jobs().list():
    st.info("The store is empty. The demo trains a small CNN, ResNet-20 and a small ViT on the embedded "
            "`shapes` dataset and evaluates them, offline, in a few minutes on a laptop CPU.")
    if st.button("Run the demo", type="primary"):
        try:
            Jobs().submit("demo", {}, "demo: train and evaluate a CNN, ResNet-20 and a ViT on shapes")
            st.rerun()
        except UserError as e:
            st.error(str(e))

choices = quick_choices()
hosted = is_hosted()  # a public deployment: allow-listed models only, nothing typed in
with st.form("quick-evaluate"):
    c1, c2, c3 = st.columns([2, 1, 1])
    models = c1.multiselect("Models", model_choices() if hosted else choices.models, default=choices.default_models,
                            key="ov_models", accept_new_options=not hosted)
    dataset = c2.selectbox("Dataset", choices.datasets, key="ov_dataset")
    limit = c3.number_input("Images (0 = whole split)", min_value=0, value=500, step=100, key="ov_limit")
    submitted = st.form_submit_button("Evaluate", type="primary")
st.caption("Scratch architectures start from random weights (chance level); trained runs are listed by run id.")

if submitted:
    for model_id in models:
        try:
            Jobs().submit("evaluate", {"model": model_id, "dataset": dataset, "split": None,
                                       "limit": int(limit) or None}, f"evaluate {model_id} on {dataset}")
        except UserError as e:
            st.error(f"{model_id}: {e}")


@st.fragment(run_every=2)
def progress() -> None:
    mine = [r for r in job_rows() if r["kind"] in ("evaluate", "demo")]  # one read of the job table per poll
    active = [r for r in mine if r["state"] in ("queued", "running")]
    failed = [r for r in mine[:10] if r["state"] == "failed"]
    for r in active:
        st.progress(r["progress"], text=f"{r['title']}: {r['state']}")
    for r in failed:
        st.error(f"{r['title']}: {r['error']}")
    if st.session_state.get("ov_active") and not active:
        st.session_state["ov_active"] = False
        st.rerun()  # jobs finished: redraw the leaderboard
    st.session_state["ov_active"] = bool(active)


progress()

if rows:
    st.subheader("Accuracy against inference time")
    fast = speed_rows()
    accuracy_vs_speed(fast, pareto_front(fast), key="overview-pareto")
    st.subheader("Stored evaluations")
    table = pd.DataFrame(rows)
    numeric = [c for c in table.columns if c not in ("model", "model_name", "family", "dataset", "split", "scoring",
                                                     "device", "precision")]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")  # None -> empty cell, not "None"
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "model_name": st.column_config.TextColumn("name"),
        "top1": st.column_config.NumberColumn("top-1", format="percent"),
        "top5": st.column_config.NumberColumn("top-5", format="percent", help="empty with 5 or fewer classes"),
        "scoring": st.column_config.TextColumn("scored over", help="what top-1, top-5, macro F1 and κ are over. "
                                               "native: the model predicts exactly the dataset's classes; 'all N "
                                               "model classes': an ImageNet model, where a prediction outside the "
                                               "dataset counts as wrong (the reference notebook)"),
        "outside": st.column_config.NumberColumn("top-1 outside dataset", help="images whose top-1 class is not "
                                                 "one of the dataset's (all-classes scoring)"),
        "top1_restricted": st.column_config.NumberColumn("top-1, dataset classes only", format="percent"),
        "top5_restricted": st.column_config.NumberColumn("top-5, dataset classes only", format="percent",
                                                         help="empty with 5 or fewer classes"),
        "f1_macro_restricted": st.column_config.NumberColumn("macro F1, dataset classes only", format="%.3f"),
        "cohen_kappa_restricted": st.column_config.NumberColumn("Cohen's κ, dataset classes only", format="%.3f"),
        "f1_macro": st.column_config.NumberColumn("macro F1", format="%.3f"),
        "cohen_kappa": st.column_config.NumberColumn("Cohen's κ", format="%.3f"),
        "params": st.column_config.NumberColumn("parameters", format="localized"),
        "seconds": st.column_config.NumberColumn("seconds", format="%.2f"),
        "images_per_second": st.column_config.NumberColumn("images/s", format="%.0f"),
    })
