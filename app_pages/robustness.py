"""Robustness and calibration: each model's top-1 under the ImageNet-C corruptions at severities 1-5, corruption
errors against a baseline (mCE), reliability diagrams, ECE before and after temperature scaling, and the corrupted
images behind any point with each model's top-5."""
import pandas as pd
import streamlit as st

from core.data.corruptions import CORRUPTIONS, LEFT_OUT, SEVERITIES, TABLE_NAMES
from core.errors import UserError
from core.jobs import Jobs, RobustnessJob
from core.results import csv_bytes, job_rows, quick_choices
from core.robustness import calibration_rows, corrupted_image, error_rows, flat_rows, robustness
from ui.charts import reliability_diagrams, robustness_lines
from ui.jobs import ACTIVE, any_active, poll_every, rerun_when_done, show_jobs
from ui.links import url_int, url_ints
from ui.pickers import (
    cached_evaluation,
    dataset_classes,
    dataset_select,
    pick_models,
    pick_precision,
    run_names,
)
from ui.stories import replace_query
from ui.tables import show_table

EXAMPLES = 8
qp = st.query_params

st.title("Robustness and calibration")
st.caption("Every image is corrupted after decoding and before the model's own preprocessing, seeded per image, so "
           "every model sees the same corrupted pixels (Hendrycks & Dietterich 2019's corruptions and parameters: "
           "CIFAR-10-C's at 32 px, Tiny-ImageNet-C's at 64, ImageNet-C's above). Calibration: is a model that says "
           "90% right 90% of the time? The settings live in the link.")

c1, c2 = st.columns([3, 2])
with c1:
    # the dataset the newest runs learned (a store of digits runs opened on shapes, with no run to score there)
    dataset = dataset_select("Dataset", key="rb-dataset",
                             default=qp.get("dataset") or quick_choices().default_dataset or "shapes",
                             help_typed="an embedded dataset, or type a dataset id or folder",
                             help_hosted="the datasets this deployment offers")
with c2:
    precision = pick_precision("rb-precision")
models = pick_models("rb-models", families=("cnn", "vit", "hybrid"), dataset=dataset)
c1, c2, c3, c4 = st.columns([4, 2, 2, 1])
from_url = [c for c in qp.get_all("corruption_set") if c in CORRUPTIONS]
names = c1.multiselect("Corruptions", CORRUPTIONS, default=from_url or list(CORRUPTIONS), key="rb-corruptions",
                       help="left out (they need image files or ImageMagick): "
                            + "; ".join(f"{k}: {v}" for k, v in LEFT_OUT.items()))
sev_url = [s for s in url_ints("severities") if s in SEVERITIES]
severities = c2.multiselect("Severities", SEVERITIES, default=sev_url or list(SEVERITIES), key="rb-severities",
                            help="1 (mild) to 5 (strong); each is its own evaluation")
names_of = run_names()
if models and not any(m in names_of for m in models):
    st.info("None of these models is trained (a scratch architecture scores at chance, whatever the corruption): run "
            "the demo on the Overview page, or train one on the Train page, then pick it here.")
baseline = c3.selectbox("Baseline for mCE", models, key="rb-baseline", format_func=lambda m: names_of.get(m, m),
                        index=models.index(qp["baseline"]) if qp.get("baseline") in models else 0,
                        help="corruption errors are each model's errors divided by this model's (Hendrycks & "
                             "Dietterich take AlexNet); its own mCE is 1") if models else None
limit = c4.number_input("Images", min_value=0, step=100, key="rb-limit",
                        value=url_int("limit", 0, 0, 10_000_000),
                        help="a fixed subset of each split (0: every image); the same images for every model") or None
replace_query({"dataset": dataset, "model": models, "precision": precision,
              **({"corruption_set": names} if set(names) != set(CORRUPTIONS) else {}),
              "severities": [str(s) for s in severities], **({"baseline": baseline} if baseline else {}),
              **({"limit": str(limit)} if limit else {}), **{k: qp[k] for k in ("corruption", "severity") if k in qp}})
if not (models and names and severities):
    st.info("Pick one or more models, corruptions and severities. No trained run yet? Run the demo on the Overview "
            "page, or train one on the Train page.")
    st.stop()
names, severities = tuple(names), tuple(sorted(severities))


def job_for(model: str) -> RobustnessJob:
    """The job measuring `model` in exactly this view: the same data, corruptions, severities and precision."""
    return RobustnessJob(model, dataset, None, names, severities, limit, precision=precision)


def page_jobs() -> list[dict]:
    """The jobs measuring exactly this view."""
    keys = {job_for(m).key for m in models}
    return [r for r in job_rows() if r["key"] in keys]


if st.button("Measure", type="primary", help="evaluates each model clean and under every corruption and severity "
             "as a background job; stored evaluations are reused, so a stopped job resumes where it was"):
    jobs = Jobs()
    for m in models:
        try:
            jobs.submit(job_for(m))
        except UserError as e:
            st.error(f"{names_of.get(m, m)}: {e}")


@st.cache_data(show_spinner="reading stored evaluations", max_entries=64, ttl=60)
def stored_result(model: str, dataset: str, names: tuple, severities: tuple, limit: int | None, precision: str,
                  jobs_seen: tuple) -> dict | None:
    """robustness() from stored evaluations only; asked again when one of the page's jobs changes state."""
    return robustness(model, dataset, names=names, severities=severities, limit=limit, precision=precision,
                      stored_only=True)


@st.cache_data(show_spinner=False, max_entries=256)
def corrupted(dataset: str, split: str, index: int, name: str, severity: int):
    return corrupted_image(dataset, split, index, name, severity)


@st.fragment(run_every=poll_every(page_jobs()))
def results() -> None:
    jobs = page_jobs()
    rerun_when_done("rb_active", jobs)
    show_jobs(jobs)
    seen = tuple(sorted((r["title"], r["state"], round(r["progress"] or 0, 1)) for r in jobs))
    out, waiting = [], []
    for m in models:
        try:
            r = stored_result(m, dataset, names, severities, limit, precision, seen)
        except UserError as e:
            st.error(f"{names_of.get(m, m)}: {e}")
            continue
        if r is not None:  # charts and captions name a run by architecture, dataset and id; `picked`: as chosen
            r = {**r, "model_name": names_of.get(m, r["model_name"]), "picked": m}
        (out if r is not None else waiting).append(r or names_of.get(m, m))  # a run by its name, not its id
    if waiting and not any_active(jobs):
        st.info(f"Not measured yet at {precision}: {', '.join(waiting)}. Press **Measure**.")
    sweep, active = len(names) * len(severities), {r["key"] for r in jobs if r["state"] in ACTIVE}
    for busy, said in ((True, "Being measured"), (False, "Partly measured, press **Measure** for the rest")):
        if partial := [f"{r['model_name']} ({len(r['results'])} of {sweep} corrupted sets"
                       + (", its held-out split not evaluated" * (len(r["results"]) == sweep)) + ")"
                       for r in out if not r["complete"] and (job_for(r["picked"]).key in active) == busy]:
            st.caption(f"{said}: {'; '.join(partial)}.")
    if out:
        draw(out)


def draw(out: list[dict]) -> None:
    st.subheader("Top-1 under each corruption")
    picked = robustness_lines(out, key="rb-lines")
    table = out[0]["parameters"]
    st.caption(f"{out[0]['n']} images of {out[0]['dataset']}/{out[0]['split']}, {TABLE_NAMES.get(table, table)}'s "
               "corruption parameters (by the images' native size). Click a point to see its images below.")
    if picked:
        qp["corruption"], qp["severity"] = picked[0]["corruption"], str(picked[0]["severity"])
    base = next((r for r in out if r["picked"] == baseline), None)
    show_table(pd.DataFrame(error_rows(out, base)), column_config={
        c: st.column_config.NumberColumn(c, format="percent") for c in ("clean top-1", "mean corrupted top-1")})
    st.caption("Corruption error CE = the model's errors summed over severities ÷ "
               f"{base['model_name'] if base else names_of.get(baseline, baseline)}'s"
               + ("" if base else " (not measured yet: no CE)") + "; mCE is its mean over the benchmark's "
               "corruptions (not the extras speckle_noise, gaussian_blur, saturate), relative mCE the same for the "
               "drop from clean (Hendrycks & Dietterich 2019). Below 1: more robust than the baseline.")
    draw_calibration(out)
    st.download_button("Download as CSV", csv_bytes(flat_rows(out)), "robustness.csv", "text/csv")
    draw_images(out)


def draw_calibration(out: list[dict]) -> None:
    st.subheader("Calibration")
    reliability_diagrams(out, key="rb-reliability")
    show_table(pd.DataFrame(calibration_rows(out)).round(4))
    notes = {r["temperature_scaling"].get("split") or r["temperature_scaling"].get("why") for r in out}
    st.caption("ECE: 15 equal-width bins (adaptive: 15 equal-mass bins), clean images; at severity 3: the mean over "
               "the corruptions. Temperature scaling divides the logits by one number fitted by NLL (Guo et al. "
               "2017): " + "; ".join(sorted(n for n in notes if n)) + ".")


def draw_images(out: list[dict]) -> None:
    name, sev = qp.get("corruption"), url_int("severity", 0, 0, max(SEVERITIES))
    if name not in names or sev not in severities:
        return
    st.subheader(f"{name}, severity {sev}: the images and each model's top-5")
    try:
        show_images(out, name, sev)
    except UserError as e:  # the dataset's files changed since the evaluation, say
        st.error(f"The images do not load: {e}")


def show_images(out: list[dict], name: str, sev: int) -> None:
    classes, _ = dataset_classes(dataset)
    preds, truth = {}, {}
    for r in out:
        key = next((x["key"] for x in r["results"] if x["corruption"] == name and x["severity"] == sev), None)
        if key:
            p = cached_evaluation(key).predictions
            truth |= {int(i): int(y) for i, y in zip(p.index, p.y_true)}
            preds[r["model_name"] or r["model"]] = {int(i): (t, pr) for i, t, pr in zip(p.index, p.top_idx,
                                                                                       p.top_prob)}
    if not preds:
        st.info("Not measured yet for these models.")
        return
    indices = sorted(next(iter(preds.values())))[:EXAMPLES]
    cols = st.columns(4)
    for n, i in enumerate(indices):
        with cols[n % 4]:
            c1, c2 = st.columns(2)
            c1.image(corrupted(dataset, out[0]["split"], i, name, 0), caption="clean", width="stretch")
            c2.image(corrupted(dataset, out[0]["split"], i, name, sev), caption=f"severity {sev}", width="stretch")
            lines = [f"#{i}, true class *{classes[truth[i]]}*"]
            for model, rows in preds.items():
                top, prob = rows[i]
                lines.append(f"{model}: " + ", ".join(f"**{classes[t]}** {p:.0%}" if k == 0 else f"{classes[t]} "
                                                      f"{p:.0%}" for k, (t, p) in enumerate(zip(top, prob)) if t >= 0))
            st.caption("  \n".join(lines))


results()
