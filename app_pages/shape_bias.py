"""Shape vs texture: which cue each model decides by on cue-conflict images (Geirhos et al. 2019), with coverage,
per class, beside the published figures, and the images themselves with each model's decision."""
import pandas as pd
import streamlit as st

from core.data import imagenet16
from core.data.embedded import TEXTURED_ID
from core.errors import UserError
from core.jobs import EvaluateJob, Jobs
from core.results import csv_bytes, job_rows
from core.shape_bias import bias_splits, examples, scoreable_runs, shape_bias
from ui.charts import shape_bias_bars, shape_bias_per_class
from ui.jobs import any_active, poll_every, rerun_when_done, show_jobs
from ui.pickers import (
    PickerOptions,
    cached_evaluation,
    choice_widget,
    dataset_image,
    model_options,
    pick_precision,
    run_names,
    typing_accepted,
)
from ui.stories import replace_query
from ui.tables import show_table

qp = st.query_params

st.title("Shape vs texture")
st.caption("Each cue-conflict image has the shape of one class and the texture of another. A decision is a *shape* "
           "decision when the model names the shape class, a *texture* decision when it names the texture class. "
           "**Shape bias** = shape ÷ (shape + texture) decisions; **coverage** = (shape + texture) ÷ all images, so "
           "a bias read off a low coverage rests on few decisions (Geirhos et al. 2019, scored as the "
           "model-vs-human toolbox scores it). The settings live in the link.")

sets = PickerOptions([TEXTURED_ID], typing_accepted(), {
    TEXTURED_ID: f"{TEXTURED_ID} - generated: shapes filled with another class's texture (900 images, 90 pairs)"})
c1, c2 = st.columns([3, 2])
with c1:
    dataset = choice_widget("Cue-conflict images", sets, multi=False, key="sb-dataset", default=qp.get("dataset"),
                            help_typed="the generated set, or type the folder of the published stimuli "
                                       "(16 folders, airplane/airplane1-bicycle2.png) to score ImageNet models",
                            help_hosted="the generated set")
with c2:
    precision = pick_precision("sb-precision")
try:
    dataset_id, splits = bias_splits(dataset)
except UserError as e:
    st.error(str(e))
    st.stop()
generated = dataset_id == TEXTURED_ID

if generated:  # models with shapes' ten classes: trained runs, best first
    runs = scoreable_runs()
    short = run_names()
    labels = {r["run_id"]: short[r["run_id"]] for r in runs}
    picker = PickerOptions(list(labels), typing_accepted(), labels)
    best = [next(r["run_id"] for r in runs if r["family"] == f) for f in ("cnn", "vit", "hybrid")
            if any(r["family"] == f for r in runs)]
    help_ = ("trained runs with shapes' ten classes (trained on shapes, shapes-N or a textured variant); "
             "train on shapes-textured for both cues to be learnable")
else:
    picker, best, short = model_options(pretrained=True), [], {}
    help_ = "ImageNet-1k models: their 1000 probabilities are averaged over each category's ImageNet classes"
from_url = [m for m in qp.get_all("model") if picker.typed or m in picker.options]
models = choice_widget("Models", picker, multi=True, key="sb-models", default=from_url or best, help_typed=help_,
                       help_hosted=help_)
replace_query({"dataset": dataset_id, "model": models, "precision": precision,
              **({"shape": qp["shape"]} if "shape" in qp else {})})
if not models:
    st.info("Pick one or more models. " + ("No trained run with shapes' classes yet: train one on the Train page "
                                           f"(dataset {TEXTURED_ID}), or run the demo." if generated and not runs
                                           else ""))
    st.stop()


def bias_jobs() -> list[EvaluateJob]:
    """The evaluations that measure the picked models' shape bias (submitting a stored one is a cache hit)."""
    return [EvaluateJob(m, dataset_id, s, precision=precision) for m in models for s in splits]


if st.button("Measure", type="primary", help="evaluates each model on the cue-conflict split"
             + (" and the two controls" if generated else "") + " as background jobs; stored results are reused"):
    jobs = Jobs()
    for job in bias_jobs():
        try:
            jobs.submit(job)
        except UserError as e:
            st.error(f"{job.model}: {e}")


@st.cache_data(show_spinner="reading stored evaluations", max_entries=64, ttl=60)
def stored_result(model: str, dataset: str, precision: str, jobs_seen: tuple) -> dict | None:
    """shape_bias() from stored evaluations only; asked again when one of the page's jobs changes state."""
    return shape_bias(model, dataset, precision=precision, stored_only=True)


def page_jobs() -> list[dict]:
    titles = {j.title for j in bias_jobs()}
    return [r for r in job_rows() if r["kind"] == "evaluate" and r["title"] in titles]


@st.fragment(run_every=poll_every(page_jobs()))
def results() -> None:
    jobs = page_jobs()
    rerun_when_done("sb_active", jobs)
    show_jobs(jobs)
    seen = tuple(sorted((r["title"], r["state"]) for r in jobs))
    out, waiting = [], []
    for m in models:
        try:
            r = stored_result(m, dataset_id, precision, seen)
        except UserError as e:
            st.error(f"{short.get(m, m)}: {e}")
            continue
        if r is not None:  # what charts and captions call it: the run's architecture, dataset and id
            r = {**r, "model_name": short.get(m, r["model_name"])}
        (out if r is not None else waiting).append(r or short.get(m, m))  # a run by its name, not its id
    if waiting and not any_active(jobs):
        st.info(f"Not measured yet at {precision}: {', '.join(waiting)}. Press **Measure**.")
    if out:
        draw(out)


def draw(out: list[dict]) -> None:
    refs = imagenet16.reference_figures()
    st.subheader("Shape bias and coverage")
    shape_bias_bars(out, refs, key="sb-bars")
    st.caption("Grey marks: published shape bias on the 1,280 published stimuli (ResNet-50 and SWAG ViT-B/16: "
               "model-vs-human raw data; humans: its 10 subjects pooled; sources in docs/cue-conflict-sources.md)."
               + (" They are ImageNet models and people on other images: on this generated set they are a scale, "
                  "not a target." if generated else ""))
    if generated:
        show_table(pd.DataFrame([{"model": r["model_name"] or r["model"], "family": r["family"],
                                 "shape-only top-1": r["controls"]["shape-only"],
                                 "texture-only top-1": r["controls"]["texture-only"]} for r in out]),
                  column_config={c: st.column_config.NumberColumn(c, format="percent")
                                 for c in ("shape-only top-1", "texture-only top-1")})
        st.caption("Controls: silhouettes filled flat (shape cue alone) and texture patches without a silhouette "
                   "(texture cue alone). A model that reads neither cue alone has no bias to speak of.")
    st.subheader("Per class")
    shape_bias_per_class(out, key="sb-classes")
    st.caption("Each class's shape bias (the images whose shape is that class), models as symbols, as in the "
               "paper's figure; the line is each model's overall value. Classes a model never decided by either cue "
               "have no point.")
    rows = [{"model": r["model"], "model_name": r["model_name"], "family": r["family"], "dataset": r["dataset"],
             "precision": r["precision"], **c} for r in out
            for c in [{"class": "all", "n": r["n"], "shape": r["shape_decisions"], "texture": r["texture_decisions"],
                       "shape_bias": r["shape_bias"], "coverage": r["coverage"]}, *r["per_class"]]]
    st.download_button("Download as CSV", csv_bytes(rows), "shape-bias.csv", "text/csv")
    draw_examples(out)


def draw_examples(out: list[dict]) -> None:
    classes = out[0]["per_class"]
    names = [c["class"] for c in classes]
    st.subheader("The images, and each model's decision")
    shape = st.selectbox("Shape class", range(len(names)), format_func=names.__getitem__, key="sb-shape",
                         index=names.index(qp["shape"]) if qp.get("shape") in names else 0)
    qp["shape"] = names[shape]
    preds = {r["model"]: cached_evaluation(r["evaluations"]["conflict"]).predictions for r in out}
    rows = {m: {int(i): int(t) for i, t in zip(p.index, p.top_idx[:, 0])} for m, p in preds.items()}
    cols = st.columns(4)
    for n, ex in enumerate(examples(dataset_id, shape, limit=8)):
        with cols[n % 4]:
            st.image(dataset_image(dataset_id, "conflict", ex["index"]), width="stretch")
            lines = [f"shape {names[ex['shape']]} · texture {names[ex['texture']]} (conflict #{ex['index']})"]
            for r in out:
                d = rows[r["model"]].get(ex["index"])
                cue = "shape" if d == ex["shape"] else "texture" if d == ex["texture"] else "neither"
                lines.append(f"{r['model_name'] or r['model']}: **{names[d] if d is not None and d >= 0 else '?'}** "
                             f"({cue})")
            st.caption("  \n".join(lines))
            link = {"image_dataset": dataset_id, "image_split": "conflict", "image_index": str(ex["index"]),
                    "model": [r["model"] for r in out], "precision": precision}
            c1, c2 = st.columns(2)
            c1.page_link("app_pages/predict.py", label="Predict", icon=":material/image_search:", query_params=link)
            c2.page_link("app_pages/attention.py", label="Grad-CAM", icon=":material/visibility:", query_params=link)


results()
