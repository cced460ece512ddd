"""Overview: every stored evaluation as a leaderboard; quick evaluations and the demo as background jobs."""
import streamlit as st

from core.arena.spec import diverged_text
from core.errors import UserError
from core.jobs import DemoJob, EvaluateJob, Jobs
from core.results import demo_fight, evaluation_table, job_rows, pareto_front, quick_choices, speed_rows
from ui.charts import accuracy_vs_speed
from ui.jobs import ACTIVE, poll_every, rerun_when_done, show_jobs
from ui.pickers import model_select
from ui.tables import assumed_labels, column_config, leaderboard_frame, show_table
from ui.tour import first_visit_tour

st.title("CNN vs ViT Lab")
st.write(
    "Compare convolutional networks and vision transformers on the same images: accuracy, speed and "
    "what they look at. Train or pick models, evaluate them on a dataset, and every result is stored and reused."
)
first_visit_tour()

rows = evaluation_table()
if not rows and not Jobs().list():
    st.info("The store is empty. The demo trains a small CNN, ResNet-20, a plain ViT of their size (ViT-Lite) and "
            "CCT-2 (a data-efficient ViT) on the same images of the embedded `shapes` dataset with one budget, and "
            "evaluates them, offline, in 2-3 minutes on 2 CPU cores with bf16 arithmetic (AMD Zen 4 and later, "
            "Intel Xeon since Sapphire Rapids), about 5 on other CPUs, which train in fp32.")
    if st.button("Run the demo", type="primary"):
        try:
            Jobs().submit(DemoJob())
            st.rerun()
        except UserError as e:
            st.error(str(e))

choices = quick_choices()
# keyed by whether the store has runs: a widget keeps its value across reruns, so the session that ran the demo kept
# the scratch pair it opened with; its first runs now move the form to them, as a new session starts
first = "" if choices.has_runs else "-scratch"
with st.form("quick-evaluate"):
    c1, c2, c3 = st.columns([2, 1, 1])
    with c1:
        models = model_select("Models", multi=True, key="ov_models" + first, default=choices.default_models,
                              help_typed="scratch architectures (random weights) and trained runs; type a pretrained "
                                         "id or a local model folder",
                              help_hosted="scratch architectures, trained runs and the pretrained ids this "
                                          "deployment offers")
    dataset = c2.selectbox("Dataset", choices.datasets, key="ov_dataset" + first,
                           index=choices.datasets.index(choices.default_dataset) if choices.default_dataset else 0,
                           help="the images every model is scored on; the embedded ones work offline")
    limit = c3.number_input("Images (0 = whole split)", min_value=0, value=500, step=100, key="ov_limit",
                            help="a fixed subset of the default split, the same images for every model")
    submitted = st.form_submit_button("Evaluate", type="primary", help="each model is evaluated as a background job; "
                                      "a result already stored is read back")
st.caption("Scratch architectures (listed by id) start from random weights, at chance level; trained runs are "
           "listed by architecture, data, validation top-1 and seed.")

if submitted:
    for model_id in models:
        try:
            Jobs().submit(EvaluateJob(model_id, dataset, limit=int(limit) or None))
        except UserError as e:
            st.error(f"{model_id}: {e}")


def overview_jobs() -> list[dict]:
    return [r for r in job_rows() if r["kind"] in ("evaluate", "demo")]  # one read of the job table


@st.fragment(run_every=poll_every(overview_jobs()))
def progress() -> None:
    mine = overview_jobs()
    show_jobs([r for r in mine if r["state"] in ACTIVE] + [r for r in mine[:10] if r["state"] == "failed"])
    rerun_when_done("ov_active", mine)  # jobs finished: redraw the leaderboard


progress()

if rows and (fight := demo_fight()):
    held = fight["held_equal"]
    st.caption(f"**The demo's fight** ({', '.join(fight['models'])}): held equal - {held['data']}; "
               f"{held['validation']}; budget {held['budget']}; batch {held['batch_size']}, "
               f"{held['image_size']} px, augmentation {held['augmentation']}, precision {held['precision']}"
               + (f"; micro-batches {held['micro_batches']}" if "micro_batches" in held else "")
               + f". Each model's own: {held['own']}. "
               "The Arena page repeats it over seeds, with confidence intervals.")
    if fight["diverged"]:
        st.warning(diverged_text(fight["diverged"]))

if rows:
    st.subheader("Accuracy against inference time")
    fast = speed_rows()
    accuracy_vs_speed(fast, pareto_front(fast), key="overview-pareto")
    st.subheader("Stored evaluations")
    table = leaderboard_frame(rows)
    show_table(table, width="stretch", column_config=column_config(table.columns))
    assumed_labels(rows)
