"""Read-side helpers for pages: stored results as plain rows, and the choices a form offers."""
from __future__ import annotations

import csv
import difflib
import io
from collections import Counter
from dataclasses import dataclass

from core.data.registry import ENTRIES, default_dataset, list_datasets, recorded_id
from core.hosted import allowed_datasets, dataset_offered, is_hosted
from core.jobs import Jobs
from core.metrics import proportion_ci95
from core.records import EvaluationMeta
from core.store import Store

EVALUATION_COLUMNS = ("model", "model_name", "family", "dataset", "split", "n", "scoring", "top1", "top5", "f1_macro", "cohen_kappa",
                      "outside", "top1_restricted", "top5_restricted", "f1_macro_restricted",
                      "cohen_kappa_restricted", "ece", "nll", "params", "seconds", "images_per_second", "device",
                      "precision")


def evaluation_table(store: Store | None = None) -> list[dict]:
    """One row per stored evaluation, newest first, with the columns a leaderboard shows.
    `scoring` names what top1/top5/f1_macro/cohen_kappa are over; *_restricted are over the dataset's
    classes only; `outside` counts top-1 predictions outside the dataset's classes (None when native).
    `key` is the record's key (for pages that open one evaluation). In hosted mode, only evaluations on
    the allow-listed datasets."""
    store = store or Store()
    rows = []
    for r in store.records("evaluation"):
        m = EvaluationMeta.from_json(r.meta)
        if not dataset_offered(m.dataset):
            continue  # hosted: a server folder's results are neither listed nor opened
        if m.corruption:
            continue  # a robustness measurement, not a model's score on its data: the Robustness page shows them
        restricted = m.restricted or {}
        flat = (dict(m) | {f"{k}_restricted": restricted.get(k) for k in ("top1", "top5", "f1_macro", "cohen_kappa")}
                | (m.calibration or {}))
        flat["outside"] = m.outside if restricted else None
        rows.append({c: flat.get(c) for c in EVALUATION_COLUMNS} | {"key": r.key, "labels_assumed": m.labels_assumed})
    return rows


def most_informative(rows: list[dict]) -> str | None:
    """The evaluation a page opens on when the link names none: the best top-1 that still has errors to show (a
    model that learned, and where it fails), newest first among equals; None for no rows. The newest evaluation,
    the old default, was often the weakest model: whatever was evaluated last."""
    candidates = [r for r in rows if r.get("top1") is not None and r["top1"] < 1.0] or rows
    if not candidates:
        return None
    best = max(range(len(candidates)), key=lambda i: (candidates[i].get("top1") or 0.0, -i))  # rows: newest first
    return candidates[best]["key"]


def evaluation_labels(rows: list[dict], *, short: bool = False) -> dict[str, str]:
    """Key -> what a picker shows for each evaluation row: the model, the data (unless `short`) and the precision,
    with the key's start where two would still read the same. Pickers need them distinct: Streamlit 1.67 tells a
    selectbox's options apart by their labels, and one fp32 and one bf16 evaluation of a split flipped the
    confusion matrix from one to the other after every click."""
    def base(r: dict) -> str:
        name = r["model_name"] or r["model"]
        return name if short else f"{name} on {r['dataset']}/{r['split']} ({r['n']} images, {r['precision']})"

    return _told_apart({r["key"]: base(r) for r in rows}, 6)


def _told_apart(labels: dict[str, str], chars: int) -> dict[str, str]:
    """Key -> label, with the key's first `chars` characters added to the labels that two keys share."""
    seen = Counter(labels.values())
    return {k: v if seen[v] == 1 else f"{v} · {k[:chars]}" for k, v in labels.items()}


def run_labels(store: Store | None = None) -> dict[str, str]:
    """Run id -> what a picker shows for a trained run, in a person's words: "ResNet-20 · shapes · 76.8% val ·
    seed 0" (the architecture as the run names it, the data, its final validation top-1, its seed), with the run
    id's start only where two runs would read the same. Never the bare id."""
    out = {}
    for r in (store or Store()).records("run"):
        m = r.meta
        arch = str(m.get("name") or m.get("model") or r.key).split(" trained on ")[0]
        val = f" · {m['val_top1']:.1%} val" if isinstance(m.get("val_top1"), (int, float)) else ""
        seed = (m.get("recipe") or {}).get("seed")
        out[r.key] = f"{arch} · {m.get('dataset', '?')}{val}" + (f" · seed {seed}" if seed is not None else "")
    return _told_apart(out, 8)


def pareto_front(rows: list[dict], x: str = "ms_per_image", y: str = "top1") -> list[dict]:
    """The rows no other row beats on both: lower `x` (cost) and higher `y` (accuracy), sorted by `x`."""
    ok = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    front, best = [], float("-inf")
    for r in sorted(ok, key=lambda r: (r[x], -r[y])):
        if r[y] > best:
            front.append(r)
            best = r[y]
    return front


def speed_rows(store: Store | None = None) -> list[dict]:
    """Evaluation rows with milliseconds per image (end to end, from the run that computed them)."""
    rows = evaluation_table(store)
    for r in rows:
        ips = r.get("images_per_second")
        r["ms_per_image"] = 1000.0 / ips if ips else None
    return rows


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_bytes(rows: list[dict]) -> bytes:
    """Rows as UTF-8 CSV for download, with text cells that a spreadsheet would run as a formula
    (starting with = + - @, tab or carriage return) prefixed by an apostrophe (OWASP's CSV injection advice).
    Numbers are left as numbers: a negative kappa stays -0.12."""
    if not rows:
        return b""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START) else v for k, v in r.items()})
    return buf.getvalue().encode("utf-8")


def compare_rows(keys: list[str], store: Store | None = None) -> list[dict]:
    """The Compare table: one row per stored evaluation, in the order given, with the model's newest
    `bench` measurement (batch-1 latency, forward throughput) when there is one. top1_lo/top1_hi: the 95% Wilson
    interval of top-1 over the evaluation's images."""
    # lazy: core.bench imports torch (~2 s); pages draw their title and stored results first
    from core.bench import latest_bench

    store = store or Store()
    metas = {key: EvaluationMeta.from_json(r.meta) for key in keys if (r := store.get(key)) is not None}
    labels = evaluation_labels([{"key": key, **dict(m)} for key, m in metas.items()])  # the table's, in full
    bars = _bar_labels(metas, store)
    out = []
    for key, m in metas.items():
        b = latest_bench(m.model, store) or {}
        lo, hi = proportion_ci95(m.top1, m.n)
        out.append({"key": key, "label": labels[key], "bar": bars[key], "model": m.model, "family": m.family,
                    "scoring": m.scoring, "n": m.n, "top1": m.top1,
                    "top1_lo": lo, "top1_hi": hi, "top5": m.top5, "f1_macro": m.f1_macro, "cohen_kappa": m.cohen_kappa,
                    "ece": (m.calibration or {}).get("ece"), "nll": (m.calibration or {}).get("nll"),
                    "params": m.params, "gflops": (m.flops_per_image or 0) / 1e9 or None,
                    "ms_per_image": m.ms_per_image, "images_per_second": m.images_per_second,
                    "device": m.device, "precision": m.precision, "batch_size": m.batch_size,
                    "latency_ms_p50": b.get("latency_ms_p50"), "forward_images_per_second":
                        b.get("forward_images_per_second"), "bench_device": b.get("machine"),
                    "labels_assumed": m.labels_assumed})
    return out


def _bar_labels(metas: dict[str, EvaluationMeta], store: Store) -> dict[str, str]:
    """Key -> a chart's short name for each evaluation: the run as pickers name it ("2-layer CNN · digits · 90.0%
    val · seed 1") or the model's name, followed, where two would read the same, by what differs between them (the
    data, the images, the precision), and the key's start after that. The table's full labels end in what tells
    two runs of one architecture apart, which a chart's axis cut off ("2-layer CNN trained on Digits (scikit-l..."
    twice)."""
    runs = run_labels(store)
    names = {key: runs.get(m.model) or m.model_name or m.model for key, m in metas.items()}
    facts = {key: {"data": f"{m.dataset}/{m.split}", "images": f"{m.n} images", "precision": m.precision}
             for key, m in metas.items()}
    out = {}
    for name in set(names.values()):
        keys = [k for k, v in names.items() if v == name]
        differ = [f for f in ("data", "images", "precision") if len({facts[k][f] for k in keys}) > 1]
        out |= {k: f"{name} ({', '.join(facts[k][f] for f in differ)})" if differ else name for k in keys}
    return _told_apart(out, 6)


def overlay_histories(keys: list[str], store: Store | None = None) -> list[dict]:
    """Per-epoch rows of the trained runs behind these evaluations, for overlaid curves: each run once (its val and
    test evaluations share one history), labelled as pickers name it (twins told apart)."""
    store = store or Store()
    runs = {}  # run id -> its record, in the order the evaluations name them
    for key in keys:
        r = store.get(key)
        run = store.get(r.meta["model"]) if r is not None else None
        if run is not None and run.kind == "run":
            runs.setdefault(run.key, run)
    labels = run_labels(store) if runs else {}
    return [{"label": labels[k], "family": run.meta.get("family", "other"),
             **{m: h.get(m) for m in ("epoch", "train_loss", "val_loss", "val_top1")}}
            for k, run in runs.items() for h in run.meta["history"]]


@dataclass(frozen=True)
class Choices:
    models: list[str]
    default_models: list[str]
    datasets: list[str]
    default_dataset: str | None = None  # the one the default models were trained on, where it is offered
    has_runs: bool = False  # the defaults are runs (else the scratch pair)


SCRATCH_DEFAULTS = ("cnn-2layer", "vit-small")  # a CNN and a ViT: the models a picker starts at without runs


def quick_choices(store: Store | None = None) -> Choices:
    """Scratch architectures and finished runs (newest first), embedded datasets (hosted mode: the allow-listed
    datasets), and the default picks (`_newest_picks`)."""
    # lazy: the model registry imports torch (~2 s); pages draw their title and stored results first
    from core.models.scratch import scratch_specs
    from core.models.trained import list_runs

    recs, datasets = list_runs(store), _offered_datasets()
    dataset, picks = _newest_picks(recs, datasets)
    return Choices(models=[s.id for s in scratch_specs()] + [r["run_id"] for r in recs], default_models=picks,
                   datasets=datasets, default_dataset=dataset, has_runs=bool(recs))


def _offered_datasets() -> list[str]:
    return list(allowed_datasets()) if is_hosted() else [e.id for e in list_datasets() if e.source == "embedded"]


def _newest_picks(recs: list[dict], datasets: list[str]) -> tuple[str | None, list[str]]:
    """The default dataset and models: the newest runs (up to 3) of the newest run's dataset among `datasets`, and
    that dataset, so that the first Evaluate scores each model on the classes it learned (runs of digits picked
    with shapes queued jobs that failed); without such runs, the newest runs of any dataset (a folder's, say)
    and the first dataset; without runs, a scratch CNN and ViT."""
    offered = [r for r in recs if r.get("dataset") in datasets]
    if offered:
        dataset = offered[0]["dataset"]
        return dataset, [r["run_id"] for r in offered if r["dataset"] == dataset][:3]
    return (datasets[0] if datasets else None), [r["run_id"] for r in recs[:3]] or list(SCRATCH_DEFAULTS)


def default_models(families: tuple[str, ...] = (), dataset: str | None = None,
                   store: Store | None = None) -> list[str]:
    """What a model picker starts at: the best run (validation top-1) of each family in `families`, else the
    quick choices' picks. With `dataset` (a page that scores the models on it), only runs that learned it (a
    run of other classes cannot be scored on it: opening a page on one was an error box), else their newest,
    else a scratch CNN and ViT."""
    # lazy: the model registry imports torch (~2 s); pages draw their title and stored results first
    from core.models.trained import list_runs

    recs = list_runs(store)
    if dataset is not None:
        recs = [r for r in recs if r.get("dataset") == recorded_id(dataset)]
    best = sorted(recs, key=lambda r: -(r.get("val_top1") or 0))
    picks = [next(r["run_id"] for r in best if r["family"] == f) for f in families
             if any(r["family"] == f for r in best)]
    if picks or dataset is not None:
        return picks or [r["run_id"] for r in recs[:3]] or list(SCRATCH_DEFAULTS)
    return _newest_picks(recs, _offered_datasets())[1]  # the runs already read, not the store again


def learned_dataset(models: list[str], store: Store | None = None) -> str | None:
    """The one dataset the trained runs among `models` learned (scratch and pretrained ids learned none here), or
    None where they learned different ones or none: where a page scores them, the images of their own classes."""
    # lazy: the run listing (core.models) imports torch (~2 s)
    from core.models.trained import list_runs

    learned = {r.get("dataset") for r in list_runs(store) if r["run_id"] in models}
    return next(iter(learned)) if len(learned) == 1 else None


def example_dataset(models: list[str], store: Store | None = None) -> str:
    """Where a page's bundled examples come from: the embedded dataset the picked runs learned (images of their own
    classes: a digits run was shown shapes), else the pages' default (core.data.registry.default_dataset). A run
    of a folder or of ImageNet gets the default: examples are one image per class, loaded offline."""
    learned = learned_dataset(models, store)
    entry = ENTRIES.get(learned or "")
    return learned if entry and entry.source == "embedded" and dataset_offered(learned) else default_dataset()


def model_choices(store: Store | None = None) -> list[str]:
    """What a model picker offers: scratch architectures, finished runs, then the default pretrained ids
    (hosted mode: the allow-listed ones)."""
    # lazy: the model registry imports torch (~2 s); pages draw their title and stored results first
    from core.models.defaults import HF_DEFAULTS
    from core.models.reference import allowed_hub_models
    from core.models.scratch import scratch_specs
    from core.models.trained import list_runs

    hub = list(allowed_hub_models()) if is_hosted() else [h.id for h in HF_DEFAULTS]
    return [s.id for s in scratch_specs()] + [r["run_id"] for r in list_runs(store)] + hub


def typed_model_problem(text: str, labels: dict[str, str] | None = None) -> str | None:
    """What is wrong with a model value typed into a picker, said before anything is submitted, or None where the
    text has the form of something a model loads from (a scratch id, a run, a model folder, a Hub, torchvision or
    timm id; whether a Hub id exists is known only when it loads). A typed label is the usual slip (a picker's
    search box keeps what was typed when Enter comes before a click), so the message names the listed option it
    most likely meant: the one label (`labels`: option -> what the list shows) that starts with the text, else the
    closest."""
    # lazy: the model registry imports torch (~2 s); pages draw their title and stored results first
    from core.errors import ModelError
    from core.models.reference import resolve

    try:
        resolve(text)
        return None
    except ModelError as e:
        reason = str(e)
    shown = list((labels or {}).values())
    wanted = text.strip().casefold()
    starts = [label for label in shown if wanted and label.casefold().startswith(wanted)]
    if len(starts) > 1:
        return f"“{text}” is not in the list, and {len(starts)} listed models start with it: pick one from the list."
    meant = starts or difflib.get_close_matches(text.strip(), shown, n=1, cutoff=0.6)
    if meant:
        return f"“{text}” is not in the list: did you mean “{meant[0]}”? Pick it from the list."
    return reason[:1].upper() + reason[1:]


def dataset_labels() -> dict[str, str]:
    """The datasets a form offers, id -> label: every registered one, or in hosted mode the allow-list
    (an operator may allow-list a folder; it is offered by its path)."""
    ids = list(allowed_datasets()) if is_hosted() else list(ENTRIES)
    return {d: f"{d} - {e.name} ({e.num_classes} classes, {e.source})" if (e := ENTRIES.get(d)) else d for d in ids}


def demo_fight(store: Store | None = None) -> dict | None:
    """What the last finished demo held equal between its models, and its budget (from the demo job's result);
    None before a demo has finished."""
    store = store or Store()
    for j in Jobs(store).list():
        if j.kind == "demo" and j.state == "done" and j.result and j.result.get("held_equal"):
            return {"budget": j.result.get("budget"), "held_equal": j.result["held_equal"],
                    "same_data": j.result.get("same_data"), "models": [r["model"] for r in j.result.get("runs", [])],
                    # a run trained to the end since (elsewhere, in another precision) no longer counts
                    "diverged": [d for d in j.result.get("diverged", []) if store.get(d["run_id"]) is None]}
    return None


def job_rows(store: Store | None = None) -> list[dict]:
    """The job table as rows for a page: state, progress as a fraction, ETA, error."""
    rows = []
    for j in Jobs(store).list():
        rows.append({"id": j.id, "state": j.state, "title": j.title, "progress": j.progress.fraction(j.state == "done"),
                     "eta_s": j.progress.eta_seconds if j.state == "running" else None, "error": j.error,
                     "run_id": j.key if j.kind == "train" else None,  # a train job's key is its run id
                     "kind": j.kind, "key": j.key,
                     # a training job with several processes: which ranks are alive (core/jobs.py::train_processes)
                     "message": j.progress.message if j.kind == "train" and j.state == "running" else None})
    return rows

