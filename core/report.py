"""A comparison a reviewer can take away: one self-contained HTML file (`python -m core report`, Compare's
"Download report"), and a PDF of the same HTML printed by headless Chromium.

Everything is read from the store: the evaluations of the chosen models on one dataset split (the leaderboard,
accuracy against time, per-class recall, confusion matrices), the runs behind them (training curves), and, where
stored, the arena they took part in, their shape bias and their robustness. The one thing computed is a few
explanations (Grad-CAM of each model on the same images, chosen where the models disagree).

Charts are the pages' own specs (core/figures.py), rendered to SVG by vl-convert (the Vega renderer Altair's
`save` uses) and embedded as data: URIs, pictures as PNG data: URIs, styles inline: the file makes no network
request when it is opened offline. Each figure says what produced it: the models with their digests (the
evaluation record's key, a fingerprint of the weights, data, preprocessing, precision and library versions; a run's
id, a fingerprint of its recipe, and the digest of the images it trained on), the data, the recipe and seed,
precision, device, versions, and the command that reproduces it.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import figures
from core.errors import UserError
from core.hosted import is_hosted
from core.records import EvaluationMeta
from core.results import compare_rows, evaluation_labels, evaluation_table, overlay_histories, pareto_front
from core.store import Store, atomic_write

MAX_CLASSES = 20  # confusion matrices and the per-class table show at most this many classes (the most confused)
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    body: str  # HTML


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def html(self) -> str:
        toc = "".join(f'<li><a href="#{s.id}">{_e(s.title)}</a></li>' for s in self.sections)
        body = "".join(f'<section id="{s.id}"><h2>{_e(s.title)}</h2>{s.body}</section>' for s in self.sections)
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(self.title)}</title>"
                f"<style>{CSS}</style></head><body><header><h1>{_e(self.title)}</h1><p>{_e(self.subtitle)}</p>"
                f"<ol class=toc>{toc}</ol></header>{body}</body></html>")


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; max-width: 1100px;
       margin: 24px auto; padding: 0 20px; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; } th { background: #f6f6f6; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 10px 0 16px; break-inside: avoid; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 12.5px; color: #444; }
.prov { font-size: 11.5px; color: #555; background: #fafafa; border-left: 3px solid #ccc; padding: 4px 8px;
        margin: 4px 0 14px; break-inside: avoid; }
.prov code { font-size: 11px; word-break: break-all; }
.note { color: #8a4b00; } .toc { columns: 2; font-size: 13px; }
.cams { display: grid; gap: 6px; align-items: start; } .cams img { width: 100%; image-rendering: pixelated; }
.cams div { font-size: 11.5px; text-align: center; }
@page { size: A4; margin: 14mm; }
@media print { body { max-width: none; margin: 0; padding: 0; } section { break-before: page; }
               a { color: inherit; text-decoration: none; } }
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}%}"


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)


# --- what the report compares --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Compared:
    """The evaluations a report compares: one per model, all of one dataset split."""

    dataset: str
    split: str
    keys: list[str]
    metas: dict[str, EvaluationMeta]
    runs: dict[str, dict]  # model id -> its run record's meta, for the compared models trained here


def _compared(dataset: str, split: str, metas: dict[str, EvaluationMeta], store: Store) -> Compared:
    runs = {m.model: r.meta for m in metas.values() if (r := store.get(m.model)) is not None and r.kind == "run"}
    return Compared(dataset, split, list(metas), metas, runs)


def choose_evaluations(models: list[str], dataset: str, split: str | None = None,
                       store: Store | None = None) -> Compared:
    """Each model's stored evaluation on `dataset` (clean images): on `split`, or on the split most of the models
    were evaluated on (val first on a tie); of several, the one on the most images, then the newest. UserError
    naming the models without one, and the command that would make it."""
    store = store or Store()
    models = list(dict.fromkeys(m.strip() for m in models if m.strip()))
    if not models:
        raise UserError("name at least one model (--models A,B)")
    rows = [r for r in evaluation_table(store) if r["dataset"] == dataset and r["model"] in models]
    if split is None:
        splits = Counter(s for _, s in {(r["model"], r["split"]) for r in rows})  # models evaluated per split
        if not splits:
            raise UserError(f"no stored evaluation of {', '.join(models)} on {dataset}; evaluate them first "
                            f"(python -m core evaluate --model {models[0]} --dataset {dataset})")
        split = max(splits, key=lambda s: (splits[s], s == "val", s == "test"))
    chosen: dict[str, dict] = {}
    for r in rows:  # newest first: the first with the most images wins
        if r["split"] == split and (r["model"] not in chosen or r["n"] > chosen[r["model"]]["n"]):
            chosen[r["model"]] = r
    missing = [m for m in models if m not in chosen]
    if missing:
        raise UserError(f"no stored evaluation of {', '.join(missing)} on {dataset}/{split}; evaluate first: "
                        + "; ".join(f"python -m core evaluate --model {m} --dataset {dataset} --split {split}"
                                    for m in missing))
    keys = [chosen[m]["key"] for m in models]
    return _compared(dataset, split, {k: EvaluationMeta.from_json(store.get(k).meta) for k in keys}, store)


def compared_from_keys(keys: list[str], store: Store | None = None) -> Compared:
    """The evaluations under `keys` (the Compare page's choice); UserError unless they share one dataset split."""
    store = store or Store()
    metas = {k: EvaluationMeta.from_json(r.meta) for k in keys if (r := store.get(k)) is not None}
    if not metas:
        raise UserError("none of these evaluations is stored")
    where = {(m.dataset, m.split) for m in metas.values()}
    if len(where) > 1:
        raise UserError("a report compares models on the same images: pick evaluations of one dataset and split "
                        f"(these span {', '.join(sorted(f'{d}/{s}' for d, s in where))})")
    (dataset, split), = where
    return _compared(dataset, split, metas, store)


# --- provenance ----------------------------------------------------------------------------------------------------
def evaluate_command(m: EvaluationMeta) -> str:
    return (f"python -m core evaluate --model {shlex.quote(m.model)} --dataset {shlex.quote(m.dataset)} "
            f"--split {shlex.quote(m.split)} --precision {m.precision}" + (f" --limit {m.limit}" if m.limit else ""))


def train_command(run: dict) -> str:
    return "python -m core train --recipe-json " + shlex.quote(json.dumps(run["recipe"], separators=(",", ":")))


def provenance(c: Compared, store: Store, *, commands: list[str] | None = None, extra: dict | None = None,
               keys: list[str] | None = None) -> str:
    """The block under a figure: what produced it, and how to produce it again."""
    runs = c.runs
    items = []
    for k in keys or c.keys:
        m = c.metas[k]
        model = f"{_e(m.model_name or m.model)} (<code>{_e(m.model)}</code>; evaluation <code>{_e(k[:16])}</code>"
        if (run := runs.get(m.model)) is not None:
            r = run["recipe"]
            model += (f"; run trained {r.get('epochs')} epochs on {_e(run['dataset'])}, seed {r.get('seed')}, "
                      f"{_e(r.get('optimizer'))} lr {r.get('lr')}, batch {r.get('batch_size')}, "
                      f"data digest <code>{_e(run.get('data_digest', '-'))}</code>")
        items.append(model + ")")
    metas = [c.metas[k] for k in keys or c.keys]
    ns = sorted({m.n for m in metas})
    fps = sorted({(m.dataset_fingerprint or "-")[:12] for m in metas})
    same = "the same images" if len(fps) == 1 else "<span class=note>different images</span>"
    rows = [("models", "; ".join(items)),
            ("data", f"{_e(c.dataset)}/{_e(c.split)}, {'/'.join(map(str, ns))} images, {same} "
                     f"(fingerprint <code>{_e(', '.join(fps))}</code>)"),
            ("precision, device", ", ".join(sorted({f"{m.precision} on {m.device}" for m in metas}))),
            ("versions", _e(_versions(metas)))]
    rows += [(k, v) for k, v in (extra or {}).items()]
    cmds = commands if commands is not None else [evaluate_command(m) for m in metas]
    rows.append(("reproduce", "<br>".join(f"<code>{_e(x)}</code>" for x in cmds)))
    return "<div class=prov>" + "<br>".join(f"<b>{name}:</b> {value}" for name, value in rows) + "</div>"


def _versions(metas: list[EvaluationMeta]) -> str:
    seen: dict[str, set] = {}
    for m in metas:
        for k, v in (m.versions or {}).items():
            seen.setdefault(k, set()).add(str(v))
    return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(seen.items())) or "not recorded"


# --- rendering -----------------------------------------------------------------------------------------------------
def svg_uri(chart, width: int | None = 640) -> str:
    """An Altair chart as an SVG data: URI (vl-convert: Vega's renderer, no browser and no network). Single and
    layered charts take `width`; facets and concatenations keep their own."""
    # lazy: vl-convert loads a JavaScript engine (~0.5 s the first time); only a report renders charts
    import altair as alt
    import vl_convert as vlc

    if width and isinstance(chart, (alt.Chart, alt.LayerChart)):
        chart = chart.properties(width=width)
    svg = vlc.vegalite_to_svg(chart.to_dict())
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def png_uri(image: np.ndarray) -> str:
    # lazy: Pillow is only needed for the explanations' pictures
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def figure(chart, caption: str, prov: str = "", *, width: int | None = 640) -> str:
    """A chart with its caption and, below, what produced it (`prov`; figures that share one source share one
    block, after the last of them)."""
    if chart is None:
        return ""
    return (f'<figure><img alt="{_e(caption)}" src="{svg_uri(chart, width)}"><figcaption>{_e(caption)}</figcaption>'
            f"</figure>{prov}")


def table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- sections ------------------------------------------------------------------------------------------------------
def _summary(c: Compared, rows: list[dict], store: Store) -> Section:
    metas = list(c.metas.values())
    held, differs = [], []
    fps = {m.dataset_fingerprint for m in metas}
    (held if len(fps) == 1 and len({m.n for m in metas}) == 1 else differs).append(
        f"images: {c.dataset}/{c.split}, {', '.join(sorted({str(m.n) for m in metas}))} images"
        + (" (the same files, by fingerprint)" if len(fps) == 1 else " (different files)"))
    for name, values in (("precision", {m.precision for m in metas}), ("device", {m.device for m in metas}),
                         ("scoring", {m.scoring for m in metas})):
        (held if len(values) == 1 else differs).append(f"{name}: {', '.join(sorted(map(str, values)))}")
    runs = c.runs
    if runs and len(runs) == len(metas):
        for name in ("epochs", "batch_size", "augment", "image_size", "seed"):
            values = {json.dumps(r["recipe"].get(name)) for r in runs.values()}
            (held if len(values) == 1 else differs).append(f"training {name}: {', '.join(sorted(values))}")
        digests = {r.get("data_digest") for r in runs.values()}
        (held if len(digests) == 1 else differs).append(
            "training images and their order: " + ("the same (one data digest)" if len(digests) == 1
                                                   else f"{len(digests)} different data digests"))
    best = max(rows, key=lambda r: r["top1"] or 0)
    lines = [f"<p>{len(rows)} models on <b>{_e(c.dataset)}/{_e(c.split)}</b>. Best top-1: "
             f"<b>{_e(best['label'])}</b> at {_pct(best['top1'])} (95% interval over its {best['n']} images "
             f"{_pct(best['top1_lo'])} to {_pct(best['top1_hi'])}).</p>",
             "<h3>Held equal</h3><ul>" + "".join(f"<li>{_e(x)}</li>" for x in held) + "</ul>"]
    if differs:
        lines.append("<h3 class=note>Not held equal (read the comparison with this in mind)</h3><ul>"
                     + "".join(f"<li>{_e(x)}</li>" for x in differs) + "</ul>")
    lines.append("<p>How sure: each top-1 carries a 95% Wilson interval over the evaluation's images; it says nothing "
                 "of the spread over training seeds, which only an arena's several seeds measure (its section, when "
                 "one is stored).</p>")
    assumed = [m for m in metas if m.labels_assumed]
    if assumed:
        lines.append("<p class=note>Class names assumed: " + "; ".join(
            f"{_e(m.model_name or m.model)}: {_e(m.labels_assumed)}" for m in assumed) + "</p>")
    return Section("summary", "What was compared", "".join(lines))


def _leaderboard(c: Compared, rows: list[dict], store: Store) -> Section:
    df = pd.DataFrame([{"model": r["label"], "family": r["family"], "top-1": _pct(r["top1"]),
                        "95% interval": f"{_pct(r['top1_lo'])} to {_pct(r['top1_hi'])}", "top-5": _pct(r["top5"]),
                        "macro F1": _num(r["f1_macro"]), "kappa": _num(r["cohen_kappa"]), "ECE": _num(r["ece"]),
                        "params": "-" if r["params"] is None else f"{r['params']:,}", "GFLOPs": _num(r["gflops"]),
                        "ms/image": _num(r["ms_per_image"]), "device": r["device"], "precision": r["precision"]}
                       for r in rows])
    acc, time = figures.compare_bars(rows)
    body = (table_html(df) + figure(acc, "Top-1 with its 95% interval over the images")
            + figure(time, "Milliseconds per image, end to end (each on its own device)")
            + "<p>The table and both charts above come from:</p>" + provenance(c, store))
    return Section("leaderboard", "Leaderboard", body)


def _speed(c: Compared, store: Store) -> Section:
    pts = [dict(r) for r in evaluation_table(store) if r["key"] in c.keys]
    for r in pts:
        r["ms_per_image"] = 1000.0 / r["images_per_second"] if r.get("images_per_second") else None
    chart = figures.accuracy_vs_speed(pts, pareto_front(pts))
    return Section("speed", "Accuracy against time", figure(chart, figures.PARETO_NOTE, provenance(c, store)))


def _classes(c: Compared, evs: dict, classes: list[str], store: Store) -> Section:
    # lazy: core.confusion reads datasets (torch-free, but numpy-heavy); only this section needs it
    from core.confusion import confusion

    recall, support = {}, None
    for k, ev in evs.items():
        cm = confusion(ev)
        support = cm.sum(axis=1)  # the same images for every evaluation compared
        recall[k] = np.divide(np.diag(cm[:, :len(classes)]).astype(np.float64), support,
                              out=np.full(len(classes), np.nan), where=support > 0)
    table = np.stack([recall[k] for k in c.keys], axis=1)
    shown = np.arange(len(classes))
    note = ""
    if len(classes) > MAX_CLASSES:
        if table.shape[1] > 1:
            score = np.nan_to_num(np.nanmax(table, axis=1) - np.nanmin(table, axis=1))
            why = "differs most between the models"
        else:
            score, why = -np.nan_to_num(table[:, 0], nan=1.0), "is lowest"
        shown = np.sort(np.argsort(-score, kind="stable")[:MAX_CLASSES])
        note = f"<p>{MAX_CLASSES} of {len(classes)} classes: those whose recall {why}.</p>"
    names = [c.metas[k].model_name or c.metas[k].model for k in c.keys]
    df = pd.DataFrame({"class": [classes[i] for i in shown],
                       **{n: [_pct(table[i, j], 0) for i in shown] for j, n in enumerate(names)},
                       "images": [int(support[i]) for i in shown]})
    body = note + "<p>Per class: the share of its images each model ranked first (recall).</p>" + table_html(df)
    return Section("classes", "Per class", body + provenance(c, store))


def _confusion(c: Compared, evs: dict, classes: list[str], store: Store) -> Section:
    # lazy: as in _classes
    from core.confusion import class_subset, confusion_cells

    parts = []
    for k in c.keys:
        ev, m = evs[k], c.metas[k]
        mode = "most confused" if len(classes) > MAX_CLASSES else "first"
        subset = class_subset(ev, classes, mode, MAX_CLASSES)
        cells = pd.DataFrame(confusion_cells(ev, classes, subset))
        chart = figures.confusion_matrix(cells, [classes[i] for i in subset], value="count")
        what = (f"the {len(subset)} most confused of {len(classes)} classes" if mode == "most confused"
                else f"all {len(classes)} classes")
        parts.append(f"<h3>{_e(m.model_name or m.model)}</h3>" + figure(
            chart, f"Confusion matrix, {what}: rows true, columns predicted; green correct, red errors. "
                   f"Top-1 {_pct(m.top1)}.", provenance(c, store, keys=[k]), width=None))
    return Section("confusion", "Confusion matrices", "".join(parts))


def _curves(c: Compared, store: Store) -> Section | None:
    curves = overlay_histories(c.keys, store)
    if not curves:
        return None
    runs = c.runs
    prov = provenance(c, store, keys=[k for k in c.keys if c.metas[k].model in runs],
                      commands=[train_command(r) for r in runs.values()])
    body = "".join(figure(figures.curve_overlay(curves, metric), title)
                   for metric, title in (("val_top1", "Validation top-1 per epoch"),
                                         ("train_loss", "Training loss per epoch"))) + prov
    return Section("curves", "Training curves", body)


def _explanations(c: Compared, evs: dict, classes: list[str], store: Store, *, images: int,
                  method: str) -> Section:
    # lazy: loading models and computing maps imports torch (~2 s); the rest of the report does not need it
    from core.data.registry import load_dataset
    from core.explain.compare import explain_many
    from core.explain.render import enlarge, overlay
    from core.models.registry import create_model

    first = evs[c.keys[0]]
    top1 = {k: np.where(evs[k].predictions.top_idx[:, 0] < 0, -1, evs[k].predictions.top_idx[:, 0])
            for k in c.keys}
    index = first.predictions.index
    agree = np.all([top1[k] == top1[c.keys[0]] for k in c.keys], axis=0) if len(c.keys) > 1 else np.ones(len(index),
                                                                                                         bool)
    order = np.concatenate([np.flatnonzero(~agree), np.flatnonzero(agree)])[:images]  # disagreements first
    ds = load_dataset(c.dataset)
    split = ds.split(c.split)
    models = [create_model(c.metas[k].model, ds, store=store) for k in c.keys]
    cols = 1 + len(models)
    rows_html = []
    for row in order:
        idx = int(index[row])
        img = split.load(idx)
        if img.ndim == 2 or img.shape[-1] == 1:
            img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
        truth = classes[int(first.predictions.y_true[row])]
        cells = [f'<div><img alt="image {idx}" src="{png_uri(enlarge(img))}">image #{idx}<br>'
                 f"true: {_e(truth)}</div>"]
        for key, model in zip(c.keys, models):  # each model predicts at its own evaluation's precision
            precision = c.metas[key].precision
            [got] = explain_many([model], img, method, precision=precision)
            if got.explanation is None or got.explanation.heatmap is None:
                cells.append(f"<div>{_e(got.name)}<br><span class=note>{_e(got.error or 'no map')}</span></div>")
                continue
            x = got.explanation
            label, p = x.top5[0]
            picture = png_uri(enlarge(overlay(x.image, x.heatmap)))
            cells.append(f'<div><img alt="{_e(got.name)}" src="{picture}">'
                         f"{_e(got.name)}<br>says {_e(label)} ({p:.0%}, {_e(precision)})</div>")
        rows_html.append(f'<div class=cams style="grid-template-columns: repeat({cols}, 1fr)">{"".join(cells)}</div>')
    what = ("images where the models disagree first" if (~agree).any() else "the split's first images (the models "
            "agree on every image)")
    cmds = [f"python -m core explain --model {shlex.quote(c.metas[k].model)} --image IMAGE --method {method} "
            f"--dataset {shlex.quote(c.dataset)} --precision {c.metas[k].precision}" for k in c.keys]
    body = (f"<p>{_e(method)} of each model for its own top-1 class (predicted at the precision of the model's "
            f"evaluation; the maps are fp32), on {what}. Warm colours: where the map says the class evidence "
            "is.</p>" + "".join(rows_html)
            + provenance(c, store, commands=cmds, extra={"images": f"#{', #'.join(str(int(index[r])) for r in order)} "
                                                                   f"of {_e(c.dataset)}/{_e(c.split)}"}))
    return Section("explanations", "Explanations side by side", body)


def _arena(c: Compared, store: Store) -> Section | None:
    # lazy: the arena's summary builds recipes (the scratch registry imports torch)
    from core.arena.run import Cell, summarize
    from core.arena.spec import ArenaSpec, diverged_text, how_sure
    from core.train.recipe import Recipe

    models = {m.model for m in c.metas.values()}
    for rec in store.records("arena-plan"):  # newest first: the newest arena one of the compared runs is in
        cells_meta = rec.meta.get("cells", [])
        if not any(Recipe.from_dict(x["recipe"]).run_id in models for x in cells_meta):
            continue
        spec = ArenaSpec.from_json(rec.meta["spec"])
        cells = [Cell(x["model"], x["size"], x["seed"], Recipe.from_dict(x["recipe"])) for x in cells_meta]
        s = summarize(spec, store, cells=cells)
        if not any(r["runs_done"] for r in s["results"]):
            continue
        df = pd.DataFrame([{"model": r["model"], "family": r["family"], "size": r["size"],
                            "top-1 mean": _pct(r["top1_mean"]),
                            "95% CI (seeds)": "-" if not r["runs_done"] else "one seed" if r["top1_ci95"] is None
                            else f"± {r['top1_ci95']:.1%}",
                            "seeds done": f"{r['runs_done']}/{r['runs']}"
                                          + f", {r['runs_diverged']} diverged" * bool(r["runs_diverged"]),
                            "params": "-" if r["params"] is None else f"{r['params']:,}",
                            "training PFLOPs": "-" if r["train_flops"] is None else _num(r["train_flops"] / 1e15)}
                           for r in s["results"]])
        held = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in s["held_equal"].items())
        prov = (f"<div class=prov><b>arena:</b> {_e(spec.title)}<br><b>runs:</b> "
                + ", ".join(f"<code>{_e(i)}</code>" for r in s["results"] for i in r["run_ids"])
                + f"<br><b>same data checked:</b> {_e(s['same_data'])} (digest <code>{_e(s['data_digest'])}</code>)"
                + f"<br><b>reproduce:</b> <code>{_e(spec.command)}</code></div>")
        sizes = figures.arena_data_size(s["results"], s["crossovers"]) if spec.sizes else None
        body = (f"<p>{_e(spec.title)}. Mean validation top-1 over seeds with its 95% interval (Student's t).</p>"
                f"<h3>Held equal</h3><ul>{held}</ul>" + table_html(df)
                + "".join(f"<p>{_e(line)}</p>" for line in how_sure(s["results"], s["dataset"]))
                + (f"<p><b>{_e(diverged_text(s['diverged']))}</b></p>" if s["diverged"] else "")
                + figure(figures.arena_bars(s["results"]), "Validation top-1, mean over seeds, 95% interval")
                + figure(sizes, "Accuracy against training-set size")
                + figure(figures.arena_learning_curves(s["curves"]), "Learning curves (faint: each seed)") + prov)
        return Section("arena", "Arena: the same data, budget and seeds", body)
    return None


def _shape_bias(c: Compared, store: Store) -> Section | None:
    # lazy: the cue-conflict sets are generated with torch-free numpy, but they are only needed here
    from core.shape_bias import shape_bias

    results = []
    for m in c.metas.values():
        try:
            r = shape_bias(m.model, store=store, precision=m.precision, stored_only=True)
        except UserError:
            r = None
        if r is not None:
            results.append(r)
    if not results:
        return None
    prov = ("<div class=prov><b>evaluations:</b> " + "; ".join(
        f"{_e(r['model'])}: " + ", ".join(f"{_e(s)} <code>{_e(k[:16])}</code>" for s, k in r["evaluations"].items())
        for r in results) + f"<br><b>data:</b> {_e(results[0]['dataset'])} (cue-conflict images)<br><b>reproduce:</b> "
        + "<br>".join(f"<code>python -m core shape-bias --model {_e(shlex.quote(r['model']))}</code>" for r in results)
        + "</div>")
    return Section("shape-bias", "Shape vs texture", figure(figures.shape_bias_bars(results, results[0]["reference"]),
                                                            "Shape bias and coverage per model", prov, width=None))


def _robustness(c: Compared, store: Store) -> Section | None:
    # lazy: as in _shape_bias
    from core.robustness import robustness

    results = [r for m in c.metas.values()
               if (r := robustness(m.model, c.dataset, c.split, store=store, precision=m.precision,
                                   stored_only=True)) is not None
               and r.get("results")]
    if not results:
        return None
    prov = ("<div class=prov><b>data:</b> " + f"{_e(c.dataset)}/{_e(c.split)} under ImageNet-C corruptions "
            "(Hendrycks &amp; Dietterich 2019)<br><b>reproduce:</b> " + "<br>".join(
                f"<code>python -m core robustness --model {_e(shlex.quote(r['model']))} --dataset "
                f"{_e(shlex.quote(c.dataset))} --split {_e(c.split)}</code>" for r in results) + "</div>")
    return Section("robustness", "Robustness and calibration",
                   figure(figures.robustness_lines(results), "Top-1 against corruption severity", width=None)
                   + figure(figures.reliability_diagrams(results), "Reliability diagrams (clean images)", width=None)
                   + prov)


def _environment(command: str) -> Section:
    # lazy: importlib.metadata only here
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    packages = ", ".join(f"{p} {v(p)}" for p in ("torch", "torchvision", "transformers", "timm", "altair",
                                                 "vl-convert-python", "numpy"))
    machine = "a hosted deployment" if is_hosted() else platform.platform()  # a public server keeps its details
    body = (f"<p>Written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {_e(machine)}, "
            f"Python {platform.python_version()}; {_e(packages)}.</p><p>This report: <code>{_e(command)}</code></p>")
    return Section("environment", "How this report was made", body)


# --- the whole ----------------------------------------------------------------------------------------------------
def build_report(c: Compared, *, store: Store | None = None, images: int = 3, method: str = "gradcam",
                 explain: bool = True, made_by: str | None = None) -> Report:
    """The report of the compared evaluations. `explain`: the explanations section (loads every model). `made_by`:
    how the comparison was chosen, when not by the `report` command's --models (the Compare page's evaluations)."""
    # lazy: core.evaluate imports torch (~2 s); the page's button builds a report on click only
    from core.data.registry import load_dataset
    from core.evaluate import load_evaluation

    store = store or Store()
    rows = compare_rows(c.keys, store)
    short = evaluation_labels([{"key": k, **dict(c.metas[k])} for k in c.keys], short=True)  # one split: no need
    for r in rows:                                                                           # to repeat it
        r["label"] = short[r["key"]]
    evs = {k: load_evaluation(k, store) for k in c.keys}
    classes = list(load_dataset(c.dataset).classes)
    command = made_by or (f"python -m core report --models {','.join(shlex.quote(c.metas[k].model) for k in c.keys)} "
                          f"--dataset {shlex.quote(c.dataset)} --split {shlex.quote(c.split)} --out report.html")
    sections = [_summary(c, rows, store), _leaderboard(c, rows, store), _speed(c, store),
                _classes(c, evs, classes, store), _confusion(c, evs, classes, store), _curves(c, store)]
    if explain and images > 0:
        sections.append(_explanations(c, evs, classes, store, images=images, method=method))
    sections += [_arena(c, store), _shape_bias(c, store), _robustness(c, store), _environment(command)]
    names = "; ".join(short.values())
    return Report(title=f"CNN vs ViT Lab report: {len(c.keys)} models on {c.dataset}/{c.split}", subtitle=names,
                  sections=[s for s in sections if s is not None])


def find_chromium() -> str:
    for name in CHROMIUMS:
        if found := shutil.which(name):
            return found
    raise UserError("a PDF is printed by headless Chromium, and none was found on the PATH ("
                    + ", ".join(CHROMIUMS) + "); write .html, or install chromium")


def print_pdf(html_text: str, out: Path, *, timeout: float = 180) -> None:
    """The HTML printed to a PDF by headless Chromium (A4, the report's page breaks, no header or footer), written
    atomically."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="cnnvit-report-") as tmp:
        page, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/profile",
               "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
        except subprocess.TimeoutExpired:
            raise UserError(f"Chromium did not print the report within {timeout:.0f} s") from None
        if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
            raise UserError(f"Chromium could not print the report (exit {proc.returncode}): "
                            + (proc.stderr.strip().splitlines() or ["no message"])[-1])
        data = pdf.read_bytes()
    atomic_write(out, lambda f: f.write(data))


def write_report(report: Report, out: str | Path) -> dict:
    """The report as `out`: HTML, or a PDF when `out` ends in .pdf. Returns the CLI's JSON (DESIGN.md):
    {path, bytes, sections}."""
    out = Path(out)
    text = report.html()
    if out.suffix.lower() == ".pdf":
        print_pdf(text, out)
    else:
        data = text.encode("utf-8")
        atomic_write(out, lambda f: f.write(data))
    return {"path": str(out), "bytes": out.stat().st_size, "sections": [s.id for s in report.sections]}
