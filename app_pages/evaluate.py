"""Evaluate: models x datasets as background jobs, with progress; results land on every page."""
import itertools

import streamlit as st

from core.data.registry import list_datasets
from core.jobs import Jobs
from core.results import job_rows, model_choices

st.title("Evaluate")
st.caption("Each model x dataset pair is a background job; a pair already in the store is a cache hit. "
           "Pretrained ids need internet or a local copy (type its folder path).")

datasets = {e.id: f"{e.id} - {e.name} ({e.num_classes} classes, {e.source})" for e in list_datasets()}
with st.form("evaluate"):
    models = st.multiselect("Models", model_choices(), accept_new_options=True,
                            help="scratch architectures, trained runs, pretrained Hub ids, torchvision:NAME, "
                                 "timm:NAME, or a local model folder")
    c1, c2, c3 = st.columns([2, 1, 1])
    chosen = c1.multiselect("Datasets", list(datasets), default=["shapes"], format_func=lambda d: datasets.get(d, d),
                            accept_new_options=True, help="or type a folder path (Tiny ImageNet, ImageNet val, "
                                                          "an image folder, a CSV-labelled folder)")
    split = c2.selectbox("Split", ["val", "test", "train"])
    limit = c3.number_input("Images (0 = all)", 0, 10_000_000, 0, step=500)
    submitted = st.form_submit_button("Evaluate", type="primary")

if submitted:
    jobs = Jobs()
    for model_id, dataset in itertools.product(models, chosen):
        jobs.submit("evaluate", {"model": model_id, "dataset": dataset, "split": split, "limit": int(limit) or None},
                    f"evaluate {model_id} on {dataset}/{split}" + (f" ({int(limit)} images)" if limit else ""))
    if not models or not chosen:
        st.warning("Pick at least one model and one dataset.")


@st.fragment(run_every=2)
def progress() -> None:
    rows = [r for r in job_rows() if r["kind"] == "evaluate"][:20]
    if not rows:
        st.info("No evaluations submitted yet.")
        return
    for r in rows:
        if r["state"] in ("queued", "running"):
            st.progress(r["progress"], text=f"{r['title']}: {r['state']}")
        elif r["state"] == "failed":
            st.error(f"{r['title']}: {r['error']}")
        elif r["state"] == "done":
            st.success(f"{r['title']}: done - see Overview, Compare and Confusion matrix", icon=":material/check:")
        else:
            st.warning(f"{r['title']}: {r['state']}")


progress()
