"""Arena: scratch architectures trained on the same images with the same budget over several seeds - the mean
top-1 with its 95% interval, learning curves, accuracy against training-set size, and the table as CSV."""
import pandas as pd
import streamlit as st

from core.arena.run import summarize
from core.arena.spec import BUDGET_KINDS, ArenaSpec, diverged_text, how_sure, largest_size
from core.errors import UserError
from core.hosted import training_limits
from core.jobs import ArenaJob, Job, Jobs
from core.models.scratch import scratch_specs
from core.results import csv_bytes
from core.settings import get_settings
from core.train.presets import PRESETS
from ui.charts import arena_bars, arena_data_size, arena_learning_curves
from ui.links import url_int, url_ints
from ui.pickers import dataset_select
from ui.stories import replace_query
from ui.tables import column_config, show_table

SIZES = [500, 1000, 2000, 5000, 10_000, 20_000, 50_000]
ACTIVE = ("queued", "running")
ARCHITECTURES = {s.id: f"{s.id} ({s.name}, {s.family})" for s in scratch_specs()}
qp = st.query_params


st.title("Arena")
st.caption("Architectures trained from scratch on the same images, in the same order, with the same budget, over "
           "several seeds. Each model keeps its own recipe (optimizer, learning rate, schedule); every number is a "
           "mean over seeds with its 95% interval. The settings live in the link: share it to share the arena.")

models = st.multiselect("Models", list(ARCHITECTURES), format_func=ARCHITECTURES.get, key="arena-models",
                        default=[m for m in qp.get_all("model") if m in ARCHITECTURES] or ["resnet20", "vit-lite-2",
                                                                                            "cct-2"],
                        help="scratch architectures only: the arena trains each one from random weights")
kind_in_url, _, amount_in_url = qp.get("budget", "epochs:8").partition(":")
kinds = list(BUDGET_KINDS)
c1, c2, c3, c4, c5, c6 = st.columns(6, vertical_alignment="bottom")
with c1:
    dataset = dataset_select("Dataset", key="arena-dataset", default=qp.get("dataset", "shapes"),
                             help_typed="an embedded dataset, or type a folder path")
kind = c2.selectbox("Budget", kinds, index=kinds.index(kind_in_url) if kind_in_url in kinds else 0,
                    key="arena-budget",
                    help="the same for every model: " + "; ".join(f"{k}: {w}" for k, w in BUDGET_KINDS.items()))
amount = c3.text_input("Amount", amount_in_url or "8", key="arena-amount",
                       help="a number: 8 epochs, 500 steps, 60 seconds, 2e13 FLOPs")
seeds = c4.number_input("Seeds", 1, 10, url_int("seeds", 3, 1, 10), key="arena-seeds",
                        help="runs per model; each seed sets the initial weights, data order and augmentation")
batch_size = c5.number_input("Batch size", 1, 4096, url_int("batch", 64, 1, 4096), key="arena-batch",
                              help="images per optimiser step, the same for every model")
lr = c6.text_input("Learning rate", qp.get("lr", ""), placeholder="model's own", key="arena-lr",
                   help="empty: each model's own recipe's peak learning rate; a number: that one for every model (a "
                        "learning-rate sweep, as `python -m core arena --lr`)").strip()
c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
sizes = c1.multiselect("Training-set sizes", sorted(set(SIZES) | set(url_ints("size"))), default=url_ints("size"),
                       key="arena-sizes",
                       help="train each model at each size (smaller sizes are subsets of larger ones) to see "
                            "accuracy against data; none: one size")
limit = c2.number_input("Train images (0 = all)", 0, 10_000_000, url_int("limit", 0, 0, 10_000_000), step=500,
                        key="arena-limit",
                        disabled=bool(sizes), help="without sizes: train on this many images")
val_limit = c3.number_input("Validation images (0 = all)", 0, 10_000_000, url_int("val", 500, 0, 10_000_000), step=100,
                            key="arena-val",
                            help="a fixed subset of val, the same for every model")
image_size = c4.number_input("Image side (0 = dataset's)", 0, 1024, url_int("image", 32, 0, 1024), step=8,
                             key="arena-image",
                             help="every model trains and is scored at this side")
augment = c5.multiselect("Augmentation", [p for p in PRESETS if p != "none"], help="the same for every model",
                         key="arena-augment",
                         default=[a for a in qp.get_all("augment") if a in PRESETS and a != "none"])

replace_query({"model": models, "dataset": dataset or "", "budget": f"{kind}:{amount.strip()}", "seeds": str(seeds),
              "size": [str(s) for s in sizes], "limit": [str(limit)] if limit and not sizes else [],
              "val": str(val_limit), "batch": str(batch_size), "image": str(image_size), "augment": augment,
              "lr": [lr] if lr else []})


def peak_lr(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        raise UserError(f"the learning rate {text!r} is not a number (e.g. 0.001); or leave it empty") from None


try:
    spec = ArenaSpec(models=tuple(models), dataset=dataset or "", budget=f"{kind}:{amount.strip()}", seeds=int(seeds),
                     sizes=tuple(sizes), limit=(limit or None) if not sizes else None, val_limit=val_limit or None,
                     image_size=image_size or None, batch_size=int(batch_size), augment="+".join(augment) or "none",
                     lr=peak_lr(lr))
except UserError as e:
    st.error(str(e))
    st.stop()


def arena_job(spec: ArenaSpec) -> Job | None:
    """The newest job of this arena (its key is the spec's fingerprint), if one was ever submitted."""
    return next((j for j in Jobs().list() if j.key == spec.key), None)


limits = training_limits()
training_off = limits is not None and not limits.enabled
if st.button("Run arena", type="primary", disabled=training_off,
             help="a background job; finished runs are cache hits, so a finished arena reopens at once"):
    try:
        st.toast(f"job {Jobs().submit(ArenaJob(spec)).id}: {spec.title}")
    except UserError as e:
        st.error(str(e))
job = arena_job(spec)


@st.cache_data(show_spinner="reading the arena's runs", max_entries=32, ttl=60)
def arena_summary(spec_json: dict, store: str, state: str | None, cells_done: int) -> dict:
    """summarize() of the runs finished so far; asked again when a run finishes or the job's state changes."""
    return summarize(ArenaSpec.from_json(spec_json))


@st.fragment(run_every=2 if job is not None and job.state in ACTIVE else None)
def arena_results(polling: bool) -> None:
    job = arena_job(spec)
    if job is not None and job.state in ACTIVE:
        p = job.progress
        c1, c2 = st.columns([5, 1])
        c1.progress(p.fraction(), text=f"job {job.id} {job.state}" + (f": {int(p.step or 0)} of {p.steps} runs done"
                    if p.steps else "") + (f", training {p.model}" if p.model else ""))
        if c2.button("Cancel", width="stretch", help="stops the arena's job; finished runs stay"):
            try:
                Jobs().cancel(job.id)
            except UserError as e:  # it finished meanwhile
                st.info(str(e))
    elif polling:
        st.rerun()  # it has just finished: draw it once more without polling
    elif job is not None and job.state != "done":
        st.warning(f"job {job.id} {job.state}{': ' + job.error if job.error else ''}. Press Run arena to resume "
                   "it: finished runs are kept.")
    # epochs and steps budgets are summarised from the store as runs finish; FLOPs and seconds budgets turn into
    # steps by building the models or by a stored timing, so they are read once the job is done
    if spec.budget.split(":")[0] not in ("epochs", "steps") and (job is None or job.state != "done"):
        st.info("Press **Run arena**: with a FLOPs or seconds budget the results show when the job is done.")
        return
    try:
        out = arena_summary(spec.to_json(), str(get_settings().cache_dir), job and job.state,
                            int(job.progress.step or 0) if job else 0)
    except UserError as e:  # a size the dataset does not have, a folder that is not there
        st.error(str(e))
        return
    done = sum(r["runs_done"] for r in out["results"])
    if not done:
        if out["diverged"]:
            st.warning(diverged_text(out["diverged"]))
        else:
            st.info("No run of this arena has finished yet: press **Run arena** to train it.")
        return
    draw(out, done)


def draw(out: dict, done: int) -> None:
    held = out["held_equal"]
    image = f"{held['image_size']} px" if held["image_size"] else "the dataset's own"
    st.subheader("What was held equal")
    st.markdown(f"- **data:** {held['data']}\n- **validation:** {held['validation']}\n- **budget:** {held['budget']}"
                f"\n- **batch size:** {held['batch_size']}; **image side:** {image}; **augmentation:** "
                f"{held['augmentation']}\n- **precision:** {held['precision']}\n- **seeds:** {held['seeds']}"
                + (f"\n- **learning rate:** {held['learning_rate']}" if "learning_rate" in held else "")
                + (f"\n- **micro-batches:** {held['micro_batches']}" if "micro_batches" in held else "")
                + f"\n\nEach model's own: {held['own']}.")
    if out["same_data"]:
        st.success(f"Data check passed: every model saw the same images in the same order at each size and seed "
                   f"(data digest `{out['data_digest']}`).")
    elif out["same_data"] is False:
        st.error(f"Data check failed: the models did not all train on the same images in the same order (data "
                 f"digest `{out['data_digest']}`); the comparison is not like with like.")
    if out["same_precision"] is False:
        st.warning(f"Precision was not held equal: these runs trained in {' and '.join(out['precisions'])} (runs "
                   "cached from other machines or devices). The same arena with `--no-amp` (`python -m core arena`) "
                   "trains every run in fp32, on any machine.")
    if not out["complete"]:
        st.caption(f"Partial results: {done} of {sum(r['runs'] for r in out['results'])} runs finished.")
    if out["diverged"]:
        st.warning(diverged_text(out["diverged"]))
    results = out["results"]
    shown = largest_size(results)
    st.subheader("Validation top-1" + (f" at {shown:,} training images" if len(out["sizes"]) > 1 else ""))
    arena_bars([r for r in results if r["size"] == shown], key="arena-bars")
    single = [r["model"] for r in results if r["size"] == shown and r["runs_done"] and r["top1_ci95"] is None]
    if single:
        st.caption(f"No interval for {', '.join(single)}: one seed finished, and an interval needs two or more.")
    for line in how_sure(results, out["dataset"]):  # of the size shown: the largest with a finished run
        st.caption(line)
    st.subheader("Learning curves" + (f" at {shown:,} training images" if len(out["sizes"]) > 1 else ""))
    arena_learning_curves([c for c in out["curves"] if c["size"] == shown], key="arena-curves")
    st.caption("Bold: the mean over seeds; faint: each seed's run.")
    if len({r["size"] for r in results if r["runs_done"]}) > 1:
        st.subheader("Accuracy against training-set size")
        arena_data_size(results, out["crossovers"], key="arena-sizes")
        st.markdown("\n".join(f"- {c['text']}" for c in out["crossovers"])
                    or "No crossover to report: it needs a CNN and a ViT or hybrid at two or more sizes.")
    st.subheader("Results")
    table = pd.DataFrame([{
        "model": r["model"], "family": r["family"], "size": r["size"], "top1": r["top1_mean"], "ci95": r["top1_ci95"],
        "seeds_done": f"{r['runs_done']}/{r['runs']}" + (f", {r['runs_diverged']} diverged" * bool(r["runs_diverged"])),
        "train_flops": r["train_flops"], "seconds": r["seconds"], "params": r["params"]} for r in results])
    show_table(table, width="stretch", column_config={
        **column_config(table.columns), "size": st.column_config.NumberColumn("training images", format="localized"),
        "ci95": st.column_config.NumberColumn("± 95% CI", format="percent", help="half-width over seeds (Student's t)"),
        "seeds_done": "seeds done", "train_flops": st.column_config.NumberColumn("train FLOPs", format="%.3e"),
        "seconds": st.column_config.NumberColumn("seconds (mean)", format="%.1f")})
    rows = [{"dataset": r["dataset"], "budget": out["budget"], **{k: r[k] for k in (
        "model", "family", "size", "top1_mean", "top1_ci95", "runs_done", "runs_diverged", "runs", "train_flops",
        "seconds", "params", "steps", "epochs")}, "top1_runs": " ".join(f"{t:.4f}" for t in r["top1_runs"]),
        "run_ids": " ".join(r["run_ids"]), "data_digest": out["data_digest"]} for r in results]
    st.download_button("Download the table as CSV", csv_bytes(rows), "arena.csv", "text/csv")
    with st.expander("Each model's own recipe"):
        show_table(pd.DataFrame([{"model": r["model"], **r["recipe"]} for r in results]).drop_duplicates("model"))


arena_results(job is not None and job.state in ACTIVE)
