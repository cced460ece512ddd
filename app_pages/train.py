"""Train: a recipe form, the job list with cancel and resume, and live curves of the selected run."""
import pandas as pd
import streamlit as st

from core.demo import demo_recipe
from core.errors import UserError
from core.hosted import training_limits
from core.jobs import Jobs, TrainJob
from core.models.scratch import is_scratch
from core.models.trained import list_runs
from core.results import job_rows
from core.train.recipe import Recipe
from core.train.runs import run_history
from ui.charts import training_curves
from ui.jobs import poll_every, rerun_when_done
from ui.pickers import dataset_select, model_select
from ui.recipe_form import recipe_widgets
from ui.tables import show_table


def starting_recipe(model: str | None) -> dict:
    """The form's starting values: a scratch architecture's own recipe at the demo's budget, data and image side
    (for a demo model, the demo's run: a cache hit once the demo has run), as the Arena trains it; for a
    pretrained id or a trained run, ResNet-20's (adam, lr 2e-3, 8 epochs at 32 px on shapes)."""
    return demo_recipe(model if model and is_scratch(model) else "resnet20").to_dict()


st.title("Train")
st.caption("Training runs as a background job: leave the page, close the tab, come back. A run that was "
           "interrupted resumes from its last complete epoch.")

limits = training_limits()  # hosted mode: bounded (or off); None elsewhere
hosted = limits is not None
if hosted and not limits.enabled:
    st.info("Training is off on this deployment. Trained runs already in the store work on every page.")
elif hosted:
    st.caption(f"This deployment trains at most {limits.max_epochs} epochs on at most {limits.max_images:,} images, "
               "with the models and datasets listed.")
# outside the form, so that choosing an architecture sets the recipe below to its own
c1, c2 = st.columns(2)
with c1:
    # keyed: a finished run joins the options, and an unkeyed selectbox would start over at its default
    model = model_select("Architecture", default="resnet20", key="train_model", persist=True,
                         help_typed="a scratch architecture, or type a pretrained id, local folder or run id (it "
                                    "gets a new head for the dataset's classes); the recipe below starts at its own",
                         help_hosted="a scratch architecture, a trained run or a pretrained id (it gets a new head "
                                     "for the dataset's classes); the recipe below starts at its own")
with c2:
    dataset = dataset_select("Dataset", key="train_dataset", persist=True,
                             help_typed="an embedded dataset, or type a folder path")
with st.form("recipe", enter_to_submit=False):  # Enter in a number field must not start a training job
    # keyed by architecture: each starts at its own recipe and keeps what was submitted for it this session
    settings = recipe_widgets(starting_recipe(model), limits, key=f"train-{model}")
    submitted = st.form_submit_button("Start training", type="primary", disabled=hosted and not limits.enabled,
                                      help="queues a background job; the same recipe twice is one run")

if submitted:
    try:
        recipe = Recipe(model=model, dataset=dataset, **settings)
        job = Jobs().submit(TrainJob(recipe))
        st.session_state["train_run"] = recipe.run_id
        st.session_state["train_job"] = job.id  # Cancel and Resume act on the job just started
        st.toast(f"job {job.id}: {job.state} (run {recipe.run_id})")
    except UserError as e:
        st.error(str(e))


def train_jobs() -> list[dict]:
    return [r for r in job_rows() if r["kind"] == "train"]


@st.fragment(run_every=poll_every(train_jobs()))
def jobs_and_curves() -> None:
    rows = train_jobs()
    rerun_when_done("train_active", rows)
    if rows:
        job_list(rows)
    finished = {r["run_id"]: r["name"] for r in list_runs()}
    live = {r["run_id"]: r["title"] for r in rows if r["state"] != "done" and r["run_id"] not in finished}
    options = {**live, **finished}
    if not options:
        st.info("No training runs yet: fill in the recipe above and press Start training.")
        return
    st.subheader("Curves")
    default = st.session_state.get("train_run")
    run_id = st.selectbox("Run", list(options), format_func=lambda r: f"{r}: {options[r]}", help="whose curves to draw",
                          index=list(options).index(default) if default in options else 0,
                          # a new submission selects its own run; a new widget once it finishes, whose label then
                          # becomes the run's name (the browser keeps a label it was sent while the key stays)
                          key=f"train_curves_run-{default}-{default in finished}")
    history = run_history(run_id)
    if history:
        training_curves(history, key=f"curves-{run_id}")
    else:
        st.caption("Curves appear after the first epoch.")


def job_list(rows: list[dict]) -> None:
    st.subheader("Jobs")
    table = pd.DataFrame(rows)[["id", "state", "title", "progress", "eta_s", "message", "error", "run_id"]]
    table["eta_s"] = pd.to_numeric(table["eta_s"], errors="coerce")
    table["error"] = table["error"].fillna("")
    show_table(table, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        "eta_s": st.column_config.NumberColumn("ETA (s)", format="%.0f"),
        "message": st.column_config.TextColumn("processes", help="a job with several processes: each rank alive?",
                                               width="medium"),
    })
    c1, c2, c3 = st.columns([3, 1, 1])
    # no state in the labels: a selectbox's label travels as its value, and the browser would keep showing the
    # state its job had when picked (the table above shows the state)
    labels = {r["id"]: f"job {r['id']} - {r['title']}" for r in rows}
    job_id = c1.selectbox("Job", list(labels), format_func=labels.get, key="train_job",
                          help="the job Cancel and Resume act on")
    row = next(r for r in rows if r["id"] == job_id)
    if c2.button("Cancel", disabled=row["state"] not in ("queued", "running"), width="stretch",
                 help="stops at the next step; the run keeps its last complete epoch"):
        Jobs().cancel(job_id)
    if c3.button("Resume", disabled=row["state"] not in ("failed", "cancelled", "interrupted"), width="stretch",
                 help="continues from the last complete epoch"):
        Jobs().resume(job_id)
    if row["error"] and row["state"] != "done":
        st.warning(row["error"])


jobs_and_curves()
