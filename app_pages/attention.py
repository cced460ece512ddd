"""Attention & Grad-CAM: where each model looks for the same image and class, how far its layers see, and how
faithful each heat map is (deletion, insertion and ROAD against a random and a centre-prior map)."""
import pandas as pd
import streamlit as st

from core.errors import UserError
from core.explain import explain_many
from core.explain import layer_reach as reach_of
from core.explain.render import render
from core.explain.scores import DEFAULT_IMAGES, MAP_METHODS, explain_score, faithfulness_rows
from core.jobs import FaithfulnessJob, Jobs
from core.results import csv_bytes, job_rows, learned_dataset
from ui.charts import deletion_curves, faithfulness_bars, layer_reach
from ui.jobs import any_active, poll_every, rerun_when_done, show_jobs
from ui.links import first_run, url_int
from ui.pickers import cached_model, dataset_select, pick_images, pick_models, pick_precision, run_names
from ui.tables import show_table

NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "eigencam": "EigenCAM",
         "rollout": "attention rollout", "attention": "attention per head (CLS)"}
qp = st.query_params

st.title("Attention & Grad-CAM")
picked = pick_models("attention-models", families=("cnn", "vit"))
c1, c2, c3 = st.columns([2, 1, 1])
method = c1.radio("Method", list(NAMES), horizontal=True, key="attention-method", format_func=NAMES.get,
                  index=list(NAMES).index(qp["method"]) if qp.get("method") in NAMES else 0,
                  help="Grad-CAM and Grad-CAM++ weigh a layer's channels by gradients, Score-CAM by how much each "
                       "channel alone keeps the class, EigenCAM takes their first principal component (no class); "
                       "rollout and per-head attention read a ViT's attention")
qp["method"] = method
fusion = c2.selectbox("Head fusion (rollout)", ["mean", "max", "min"], disabled=method != "rollout",
                      help="how rollout combines each layer's heads (Abnar & Zuidema 2020)")
discard = c3.slider("Discard ratio (rollout)", 0.0, 0.95, 0.0, 0.05, disabled=method != "rollout",
                    help="the share of each layer's weakest attention links rollout drops")
precision = pick_precision("attention-precision")
images = pick_images("attention", many=False, models=picked)
if not picked:
    st.info("Pick one or more models above.")
    st.stop()
name, image = next(iter(images.items()))
models = []
for model_id in picked:
    try:
        models.append(cached_model(model_id))
    except UserError as e:
        st.error(f"{model_id}: {e}")
labels = models[0].labels.names if models else []
shared = all(m.labels.names == labels for m in models)
cls = st.selectbox("Class (the same for every model)", [None] + list(range(len(labels))) if shared else [None],
                   help="the class every map explains (models must share their classes to pick one)",
                   format_func=lambda i: "each model's own top-1" if i is None else labels[i])
opts = {"head_fusion": fusion, "discard_ratio": discard} if method == "rollout" else {}
rows = explain_many(models, image, method, cls, **opts, precision=precision)
cols = st.columns(max(1, len(rows)))
for col, row in zip(cols, rows):
    with col:
        st.markdown(f"**{row.name}**  \n`{row.model_id}` · {row.family}")
        if row.error:
            st.warning(row.error)  # e.g. attention asked of a CNN: a message in place, the others still draw
            continue
        e = row.explanation
        st.image(render(e), width="stretch", caption=" · ".join(p for p in (e.class_label, e.layer) if p))
        st.caption(" · ".join(f"{lab} {p:.0%}" for lab, p in e.top5[:5]) + f" ({e.precision})  \n"
                   f"{1000 * row.seconds:.0f} ms for the prediction and the map (one call, not warmed)")
        if e.note:
            st.caption(e.note)
        if (why := next((m.labels.assumed for m in models if m.id == row.model_id), None)):
            st.caption(f"**Class names assumed** - {why}")

st.subheader("How faithful?")
st.caption("A heat map claims some pixels matter more. Deletion removes them in the map's order (to the model's mean "
           "colour) and insertion puts them back onto a blurred copy, while the model's probability of the class is "
           "watched (Petsiuk et al. 2018): a faithful map makes deletion fall fast (low area) and insertion rise fast "
           "(high area). ROAD (Rong et al. 2022) fills removed pixels from their neighbours instead. A map must beat "
           "the random map and the centre prior for its score to mean anything.")
@st.cache_data(show_spinner=False, max_entries=64)
def image_curves(model_id: str, _model, image, method: str, class_index: int, heatmap) -> dict:
    """explain_score for the image on screen, once per (model, image, map): a rerun does not redo its 132 forwards."""
    return explain_score(_model, image, method, class_index, with_road=False, baselines=("random",), heatmap=heatmap)


if method in MAP_METHODS:
    curves = []
    for m, row in zip(models, rows):
        if row.error is None:
            try:  # the map and class drawn above; fp32; deletion and insertion only, against the random map
                curves.append({**image_curves(row.model_id, m, image, method, row.explanation.class_index,
                                              row.explanation.heatmap), "model": row.name, "family": row.family})
            except UserError as e:
                st.caption(f"{row.name}: {e}")
    deletion_curves(curves, key="faith-curves")
    if curves:
        st.caption(f"{NAMES[method]} on the image above: " + "; ".join(
            f"{c['model']} deletion {c['deletion_auc']:.3f} (random {c['baselines']['random']['deletion_auc']:.3f}), "
            f"insertion {c['insertion_auc']:.3f} (random {c['baselines']['random']['insertion_auc']:.3f})"
            for c in curves) + ". One image says little: score a dataset below.")
else:
    st.caption(f"{NAMES.get(method, method)} draws many maps, not one: pick a heat-map method to score it.")

c1, c2, c3 = st.columns([2, 1, 3])
with c1:
    # the images of the picked runs' own classes: on a link's first load the link's choice, later the dataset the
    # picked runs learned whenever a new pick changes it (the widget is keyed by it; the URL holds the last choice,
    # which would otherwise win over a new pick), and otherwise what the user chose here
    learned, linked = learned_dataset(picked), first_run("faith")
    start = learned if learned and not linked else qp.get("faith_dataset") or learned or "shapes"
    fdata = dataset_select("Dataset to score on", key=f"faith-dataset-{learned}", default=start,
                           help_typed="the images the maps are scored on: an embedded dataset, a dataset id or folder",
                           help_hosted="the datasets this deployment offers")
n_images = int(c2.number_input("Images", 1, 5000, url_int("faith_images", DEFAULT_IMAGES, 1, 5000), key="faith-images",
                               help="the dataset's fixed subset of its default split: the same images for every "
                                    "model and method"))
chosen = [m for m in qp.get_all("faith_method") if m in MAP_METHODS]
methods = c3.multiselect("Methods", list(MAP_METHODS), default=chosen or ["gradcam", "gradcam++", "scorecam",
                                                                          "eigencam", "rollout"],
                         format_func=NAMES.get, key="faith-methods",
                         help="the random map and the centre prior are always scored beside them")
qp.from_dict({k: v for k, v in qp.to_dict().items() if not k.startswith("faith_")} | {"model": picked} | {
    "faith_dataset": fdata, "faith_images": str(n_images), "faith_method": methods})


def faith_jobs() -> list[dict]:
    keys = {FaithfulnessJob(m, fdata, tuple(methods), None, n_images).key for m in picked}
    return [r for r in job_rows() if r["key"] in keys]


if methods and st.button("Measure", type="primary", help="scores every method and both baselines for each model "
                         "as a background job; stored scores are reused"):
    for m in picked:
        try:
            Jobs().submit(FaithfulnessJob(m, fdata, tuple(methods), None, n_images))
        except UserError as e:
            st.error(f"{m}: {e}")


@st.cache_data(show_spinner="reading stored scores", max_entries=64, ttl=60)
def stored_scores(model: str, dataset: str, methods: tuple, limit: int, jobs_seen: tuple) -> list[dict]:
    """faithfulness_rows() from the store only; asked again when one of the section's jobs changes state."""
    return faithfulness_rows(model, dataset, methods, limit=limit, stored_only=True)


@st.fragment(run_every=poll_every(faith_jobs()))
def faith_results() -> None:
    jobs = faith_jobs()
    rerun_when_done("faith_active", jobs)
    show_jobs(jobs)
    seen = tuple(sorted((r["title"], r["state"], round(r["progress"] or 0, 1)) for r in jobs))
    names_of, out, waiting = run_names(), [], []
    for m in picked:
        try:
            got = stored_scores(m, fdata, tuple(methods), n_images, seen)
        except UserError as e:
            st.error(f"{m}: {e}")
            continue
        out += [{**r, "model_name": names_of.get(m, r["model_name"])} for r in got]
        if not any(r["method"] in methods for r in got):
            waiting.append(names_of.get(m, m))
    if waiting and not any_active(jobs):
        st.info(f"Not scored yet on {n_images} images of {fdata}: {', '.join(waiting)}. Press **Measure**.")
    scored = [r for r in out if "error" not in r]
    if not scored:
        return
    faithfulness_bars(scored, key="faith-bars", labels=NAMES | {"random": "random map", "centre": "centre prior"})
    table = pd.DataFrame([{"model": r["model_name"], "method": NAMES.get(r["method"], r["method"] + " (baseline)"),
                           "images": r.get("n"), **{k: r.get(k) for k in (
                               "deletion_auc", "deletion_auc_ci95", "deletion_auc_vs_random", "insertion_auc",
                               "insertion_auc_ci95", "insertion_auc_vs_random", "road_morf", "road_lerf")},
                           "error": r.get("error")} for r in out])
    show_table(table.round(3))
    st.caption("Mean ± 95% interval over the images (Student's t); *vs random*: the paired per-image difference from "
               "the random map (deletion: below 0 is better; insertion: above 0). ROAD: mean P(class) with 10-90% of "
               "the most (MoRF, lower is better) or least (LeRF, higher) relevant pixels imputed. Each image is "
               "explained for the model's own fp32 top-1 class.")
    st.download_button("Download as CSV", csv_bytes(out), "faithfulness.csv", "text/csv", key="faith-csv")


faith_results()

st.subheader("How far each layer sees")
st.caption("Attention: the attention-weighted mean distance between a token and the tokens it attends to, per "
           "layer and head (the ViT paper's Figure 7). Convolution: the theoretical receptive field of each conv "
           "layer. A hybrid shows both, its convolutions first. Both as a share of each model's input side, so models "
           "run at different sizes compare. Early ViT heads already reach across the image; a CNN's field grows "
           "layer by layer.")
data = []
for m in models:
    try:
        data += reach_of(m, image)
    except UserError as e:
        st.caption(f"{m.name}: {e}")
layer_reach(data, key="attention-distance")
