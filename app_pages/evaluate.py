"""Evaluate: models x datasets as background jobs, with progress; results land on every page."""
import itertools

import streamlit as st

from core.errors import UserError
from core.jobs import EvaluateJob, Jobs
from core.results import evaluation_table, job_rows
from ui.jobs import poll_every, rerun_when_done
from ui.pickers import dataset_select, model_select, pick_precision, typing_accepted

st.title("Evaluate")
st.caption("Each model x dataset pair is a background job; a pair already in the store is a cache hit. "
           + ("Pretrained ids need internet or a local copy (type its folder path)." if typing_accepted() else
              "This deployment offers the models and datasets listed."))

with st.form("evaluate"):
    models = model_select("Models", multi=True, pretrained=True, key="eval_models",  # kept when a run joins them
                          help_typed="scratch architectures, trained runs, pretrained Hub ids, torchvision:NAME, "
                                     "timm:NAME, or a local model folder",
                          help_hosted="scratch architectures, trained runs and pretrained ids")
    c1, c2, c3 = st.columns([2, 1, 1])
    with c1:
        chosen = dataset_select("Datasets", multi=True, registered=True, default=["shapes"],
                                help_typed="or type a folder path (Tiny ImageNet, ImageNet val, an image folder, "
                                           "a CSV-labelled folder)")
    split = c2.selectbox("Split", ["val", "test", "train"], help="which split of the dataset to score")
    limit = c3.number_input("Images (0 = all)", 0, 10_000_000, 0, step=500,
                            help="a fixed subset of the split, the same images for every model")
    precision = pick_precision("evaluate-precision")
    submitted = st.form_submit_button("Evaluate", type="primary",
                                      help="each model is a background job; stored results are read back")

if submitted:
    jobs = Jobs()
    for model_id, dataset in itertools.product(models, chosen):
        try:
            jobs.submit(EvaluateJob(model_id, dataset, split, limit=int(limit) or None, precision=precision))
        except UserError as e:
            st.error(f"{model_id} on {dataset}: {e}")
    if not models or not chosen:
        st.warning("Pick at least one model and one dataset.")


def evaluate_jobs() -> list[dict]:
    return [r for r in job_rows() if r["kind"] == "evaluate"][:20]


@st.fragment(run_every=poll_every(evaluate_jobs()))
def progress() -> None:
    rows = evaluate_jobs()
    rerun_when_done("ev_active", rows)
    if not rows:
        st.info("No evaluation jobs yet." + (" Evaluations already stored are on the Overview, Compare and "
                                              "Confusion matrix pages." if evaluation_table() else ""))
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
