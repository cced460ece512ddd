"""Train: a recipe form, the job list with cancel and resume, and live curves of the selected run."""
import pandas as pd
import streamlit as st

from core.errors import UserError
from core.hosted import training_limits
from core.jobs import Jobs
from core.results import job_rows, model_choices, quick_choices
from core.train.augment import PRESETS
from core.train.recipe import TRANSFER, Recipe
from core.train.runs import list_runs, run_history
from core.train.schedules import SCHEDULES
from ui.charts import training_curves

st.title("Train")
st.caption("Training runs as a background job: leave the page, close the tab, come back. A run that was "
           "interrupted resumes from its last complete epoch.")

choices = quick_choices()
limits = training_limits()  # hosted mode: bounded (or off); None elsewhere
hosted = limits is not None
if hosted and not limits.enabled:
    st.info("Training is off on this deployment. Trained runs already in the store work on every page.")
elif hosted:
    st.caption(f"This deployment trains at most {limits.max_epochs} epochs on at most {limits.max_images:,} images, "
               "with the models and datasets listed.")
models = model_choices() if hosted else choices.models
with st.form("recipe"):
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("Architecture", models, index=models.index("resnet20"), accept_new_options=not hosted,
                         help=("a scratch architecture, a trained run or a pretrained id" if hosted else "a scratch "
                               "architecture, or type a pretrained id, local folder or run id")
                         + " (it gets a new head for the dataset's classes)")
    dataset = c2.selectbox("Dataset", choices.datasets, accept_new_options=not hosted,
                           help=None if hosted else "an embedded dataset, or type a folder path")
    max_epochs = limits.max_epochs if hosted and limits.enabled else 1000
    epochs = c3.number_input("Epochs", 1, max_epochs, min(8, max_epochs))
    c1, c2, c3, c4, c5 = st.columns(5)
    optimizer = c1.selectbox("Optimizer", ["sgd", "adam", "adamw"], index=1)
    lr = c2.number_input("Learning rate", 1e-6, 10.0, 0.002, format="%.5f")
    weight_decay = c3.number_input("Weight decay", 0.0, 1.0, 0.0, format="%.5f")
    batch_size = c4.number_input("Batch size", 1, 4096, 64)
    image_size = c5.number_input("Image side (0 = dataset's)", 0, 224, 32, help="scratch architectures train and "
                                 "run at this side; 32 px costs a quarter of 64 px")
    c1, c2, c3, c4 = st.columns(4)
    schedule = c1.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index("cosine"),
                            help="cyclic: the Tiny ImageNet study's cosine within every epoch; plateau: "
                                 "ReduceLROnPlateau, factor 0.5, patience 5 (the leaves study)")
    warmup = c2.number_input("Warm-up epochs", 0.0, 100.0, 0.0)
    clip = c3.number_input("Clip gradient norm (0 = off)", 0.0, 1000.0, 0.0, help="the Tiny ImageNet study used 10")
    smoothing = c4.number_input("Label smoothing", 0.0, 0.9, 0.0)
    c1, c2, c3 = st.columns([2, 1, 1])
    augment = c1.multiselect("Augmentation", [p for p in PRESETS if p != "none"],
                             help="; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
    momentum = c2.number_input("Momentum (SGD)", 0.0, 0.999, 0.9)
    nesterov = c3.checkbox("Nesterov")
    c1, c2, c3, c4 = st.columns(4)
    transfer = c1.selectbox("Transfer learning", list(TRANSFER), help="; ".join(f"{k}: {v}" for k, v in TRANSFER.items()))
    head = c2.selectbox("New head", ["linear", "Linear 512 - ReLU - Dropout 0.3 - Linear"])
    unfreeze = c3.number_input("Unfreeze a block every N epochs", 1, 100, 1)
    if hosted:  # no "all": every run names its image count, within the limit
        limit = c4.number_input(f"Train images (at most {limits.max_images:,})", 1, limits.max_images,
                                limits.max_images, step=500)
    else:
        limit = c4.number_input("Train images (0 = all)", 0, 10_000_000, 0, step=500)
    submitted = st.form_submit_button("Start training", type="primary", disabled=hosted and not limits.enabled)

if submitted:
    try:
        recipe = Recipe(model=model, dataset=dataset, epochs=int(epochs), batch_size=int(batch_size),
                        optimizer=optimizer, lr=float(lr), momentum=float(momentum), nesterov=nesterov,
                        weight_decay=float(weight_decay), schedule=schedule, warmup_epochs=float(warmup),
                        clip_norm=float(clip) or None, label_smoothing=float(smoothing),
                        augment="+".join(augment) or "none", transfer=transfer,
                        head_hidden=None if head == "linear" else 512, unfreeze_every=int(unfreeze),
                        limit=int(limit) or None, image_size=int(image_size) or None)
        job = Jobs().submit("train", {"recipe": recipe.to_dict()}, recipe.title)
        st.session_state["train_run"] = recipe.run_id
        st.toast(f"job {job.id}: {job.state} (run {recipe.run_id})")
    except UserError as e:
        st.error(str(e))


@st.fragment(run_every=2)
def jobs_and_curves() -> None:
    rows = [r for r in job_rows() if r["kind"] == "train"]
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
    run_id = st.selectbox("Run", list(options), format_func=lambda r: f"{r}: {options[r]}",
                          index=list(options).index(default) if default in options else 0,
                          key=f"train_curves_run-{default}")  # a new submission selects its own run
    history = run_history(run_id)
    if history:
        training_curves(history, key=f"curves-{run_id}")
    else:
        st.caption("Curves appear after the first epoch.")


def job_list(rows: list[dict]) -> None:
    st.subheader("Jobs")
    table = pd.DataFrame(rows)[["id", "state", "title", "progress", "eta_s", "error", "run_id"]]
    table["eta_s"] = pd.to_numeric(table["eta_s"], errors="coerce")
    table["error"] = table["error"].fillna("")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        "eta_s": st.column_config.NumberColumn("ETA (s)", format="%.0f"),
    })
    c1, c2, c3 = st.columns([3, 1, 1])
    labels = {r["id"]: f"job {r['id']} - {r['state']} - {r['title']}" for r in rows}
    job_id = c1.selectbox("Job", list(labels), format_func=labels.get, key="train_job")
    row = next(r for r in rows if r["id"] == job_id)
    if c2.button("Cancel", disabled=row["state"] not in ("queued", "running"), width="stretch"):
        Jobs().cancel(job_id)
    if c3.button("Resume", disabled=row["state"] not in ("failed", "cancelled", "interrupted"), width="stretch"):
        Jobs().resume(job_id)
    if row["error"] and row["state"] != "done":
        st.warning(row["error"])


jobs_and_curves()
