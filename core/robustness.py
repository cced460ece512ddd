"""How each model breaks when its images get worse, and how far its confidence can be trusted.

Every (model, dataset, corruption, severity) is an ordinary evaluation (core/evaluate.py) with the corruption applied
after decoding and before the model's own preprocessing, seeded per image, so every model sees the same corrupted
pixels and a repeated question is a cache hit. From those evaluations:

- top-1 per corruption and severity, and its mean over severities and corruptions;
- corruption error against a baseline model the user picks (Hendrycks & Dietterich 2019, section 4, who take
  AlexNet as the baseline): CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}, relative CE_c = sum_s (E_{s,c} - E_clean) /
  sum_s (E^base_{s,c} - E^base_clean), with E = 1 - top-1; mCE and relative mCE are their means over the
  benchmark's corruptions (12 of its 15 are here: corruptions.BENCHMARK; the extras get a CE but stay out of mCE);
- calibration (core/calibration.py) on clean and corrupted images, and temperature scaling fitted on the clean
  evaluation split and reported on a held-out one (the dataset's test split, or else the half of the split the fit
  did not see).
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from core import calibration
from core.data import corruptions
from core.data.base import Dataset
from core.data.registry import load_dataset
from core.errors import UserError
from core.evaluate import Evaluation, evaluate, find_evaluation, find_evaluation_meta
from core.records import EvaluationMeta
from core.store import Store

HALVES_SEED = 0  # the fixed permutation that halves a split when the dataset has no other to report on


def parse_corruptions(text: str | None) -> tuple[str, ...]:
    """'a,b' -> the named corruptions, in the order given; None or '' or 'all' -> every corruption."""
    if not text or text.strip() == "all":
        return corruptions.CORRUPTIONS
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        corruptions.check(n, 1)
    return names


def parse_severities(text: str | None) -> tuple[int, ...]:
    """'1,3,5' -> (1, 3, 5); None or '' -> 1 to 5."""
    if not text:
        return corruptions.SEVERITIES
    try:
        sev = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise UserError(f"--severities takes numbers from 1 to 5 separated by commas, not {text!r}") from None
    for s in sev:
        corruptions.check(corruptions.CORRUPTIONS[0], s)
    return sev


def heldout_split(ds: Dataset, split: str) -> str | None:
    """The split temperature scaling is reported on: the dataset's test split (its val when `split` is test), or
    None when it has no other, and `split` is halved instead."""
    for other in ("test", "val"):
        if other != split and other in ds.splits:
            return other
    return None


def temperature_scaling(fit: Evaluation, report: Evaluation | None) -> dict:
    """T fitted by NLL on `fit`'s stored log-probabilities and ECE/NLL/Brier before and after on `report` (or, when
    None, T fitted on one half of `fit` and reported on the other). {temperature, split, before, after} or
    {temperature: None, why} when the log-probabilities were not stored."""
    if fit.predictions.logp is None or (report is not None and report.predictions.logp is None):
        why = ("its scores are not over the dataset's own classes" if fit.meta.scoring != "native" else
               "its evaluation is too large to keep every image's log-probabilities; use --limit")
        return {"temperature": None, "why": f"no temperature scaling: {why}"}
    fp = fit.predictions
    if report is None:
        order = np.random.default_rng(HALVES_SEED).permutation(len(fp.y_true))
        a, b = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
        fit_logp, fit_y, rep_logp, rep_y = fp.logp[a], fp.y_true[a], fp.logp[b], fp.y_true[b]
        where = f"{fit.meta.split}: fitted on half of its images, reported on the other half"
    else:
        fit_logp, fit_y = fp.logp, fp.y_true
        rep_logp, rep_y = report.predictions.logp, report.predictions.y_true
        where = f"fitted on {fit.meta.split}, reported on {report.meta.split}"
    if len(fit_y) < 2 or len(rep_y) == 0:
        return {"temperature": None, "why": "no temperature scaling: too few images to fit and report on"}
    t = calibration.fit_temperature(fit_logp, fit_y)
    return {"temperature": t, "split": where, "n": len(rep_y),
            "before": calibration.from_logits(rep_logp, rep_y).to_json(),
            "after": calibration.from_logits(rep_logp, rep_y, t).to_json()}


def corrupted_image(dataset: str, split: str, index: int, name: str, severity: int) -> np.ndarray:
    """Image `index` of a split as the model saw it under `name` at `severity` (severity 0: clean): the same pixels
    an evaluation of that corruption scored."""
    data = load_dataset(dataset).split(split)
    if not 0 <= index < len(data):
        raise UserError(f"{dataset}/{split} has no image #{index} (it has {len(data)})")
    image = data.load(index)
    return image if severity == 0 else corruptions.corrupt_indexed(name, severity, image, int(data.index[index]))


def corruption_errors(model: dict, baseline: dict) -> dict:
    """CE, relative CE per corruption and their means (mCE, relative mCE) of `model` against `baseline` (two
    `robustness` results), over the corruptions and severities both have; None where the baseline's error does not
    grow (a zero denominator)."""
    def table(r: dict) -> dict[tuple[str, int], float]:
        return {(x["corruption"], x["severity"]): x["top1"] for x in r["results"]}

    mine, base = table(model), table(baseline)
    rows: list[dict] = []
    for c in dict.fromkeys(name for name, _ in mine):
        sev = [s for (n, s) in mine if n == c and (n, s) in base]
        if not sev:
            continue
        err = sum(1 - mine[c, s] for s in sev)
        base_err = sum(1 - base[c, s] for s in sev)
        rel = sum(model["clean_top1"] - mine[c, s] for s in sev)
        base_rel = sum(baseline["clean_top1"] - base[c, s] for s in sev)
        rows.append({"corruption": c, "severities": sev, "ce": err / base_err if base_err > 0 else None,
                     "relative_ce": rel / base_rel if base_rel > 0 else None})

    bench = [r for r in rows if r["corruption"] in corruptions.BENCHMARK]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in bench]
        return float(np.mean(vals)) if vals and all(v is not None for v in vals) else None

    return {"baseline": baseline["model"], "per_corruption_errors": rows, "mce": mean("ce"),
            "relative_mce": mean("relative_ce"), "mce_corruptions": [r["corruption"] for r in bench]}


def error_rows(results: list[dict], base: dict | None) -> list[dict]:
    """A table row per `robustness` result: clean and mean corrupted top-1, and against `base` (None: no baseline
    measured) mCE, relative mCE and each corruption's CE."""
    rows = []
    for r in results:
        ce = corruption_errors(r, base) if base else {}
        rows.append({"model": r["model_name"] or r["model"], "family": r["family"], "clean top-1": r["clean_top1"],
                     "mean corrupted top-1": r["mean_corruption_top1"], "mCE": ce.get("mce"),
                     "relative mCE": ce.get("relative_mce"),
                     **{c["corruption"]: c["ce"] for c in ce.get("per_corruption_errors", [])}})
    return rows


def calibration_rows(results: list[dict]) -> list[dict]:
    """A table row per `robustness` result: clean calibration, ECE at severity 3 (mean over the corruptions) and
    temperature scaling's before and after on the held-out images."""
    rows = []
    for r in results:
        ts = r["temperature_scaling"]
        at3 = [x["ece"] for x in r["results"] if x["severity"] == 3 and x["ece"] is not None]
        rows.append({"model": r["model_name"] or r["model"], "ECE": r["ece"], "adaptive ECE": r["adaptive_ece"],
                     "NLL": r["nll"], "Brier": r["brier"], "ECE at severity 3": float(np.mean(at3)) if at3 else None,
                     "temperature": ts["temperature"], "held-out ECE": ts.get("before", {}).get("ece"),
                     "ECE scaled": ts.get("after", {}).get("ece"), "held-out NLL": ts.get("before", {}).get("nll"),
                     "NLL scaled": ts.get("after", {}).get("nll")})
    return rows


def flat_rows(results: list[dict]) -> list[dict]:
    """One row per model, corruption and severity (severity 0, corruption "none": clean), for a CSV."""
    return [{"model": r["model"], "family": r["family"], "dataset": r["dataset"], "split": r["split"],
             "precision": r["precision"], **x} for r in results
            for x in [{"corruption": "none", "severity": 0, "top1": r["clean_top1"], "ece": r["ece"], "nll": r["nll"],
                       "brier": r["brier"]}, *({k: v for k, v in y.items() if k != "key"} for y in r["results"])]]


def robustness(model: str, dataset: str | Dataset, split: str | None = None, *,
               names: tuple[str, ...] | None = None, severities: tuple[int, ...] | None = None,
               limit: int | None = None, baseline: str | None = None, store: Store | None = None,
               precision: str | None = None, device: str | None = None, stored_only: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict | None:
    """The `robustness` CLI's JSON (shared/DESIGN.md) for `model` on one split of `dataset`, with per-corruption
    means, the clean reliability diagram, temperature scaling and, with `baseline`, corruption errors against it.
    `stored_only`: from stored evaluations alone, the ones found (`complete` says whether all were); None when not
    even the clean one is stored. `progress(images done, images in all)` across every evaluation it runs, the
    baseline's included."""
    store = store or Store()
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    split = split or ds.default_split()
    names = names or corruptions.CORRUPTIONS
    severities = severities or corruptions.SEVERITIES
    held = heldout_split(ds, split)
    size = {sp: len(ds.split(sp).limited(limit)) for sp in (split, held) if sp}
    sweep = [(c, s) for c in names for s in severities]
    own = size[split] * (1 + len(sweep)) + size.get(held, 0)  # images this model's evaluations read
    total = own * (2 if baseline is not None else 1)  # the baseline's as many
    done = 0

    def report(d: int, _n: int, offset: int = 0) -> None:
        if progress:
            progress(offset + d, total)

    kw = dict(limit=limit, store=store, precision=precision, device=device)
    clean_evs: dict[str, Evaluation] = {}  # the clean splits: their predictions are read (reliability, temperature)
    for sp in size:
        ev = (find_evaluation(model, ds, sp, **kw) if stored_only
              else evaluate(model, ds, sp, progress=functools.partial(report, offset=done), **kw))
        done += size[sp]
        if ev is not None:
            clean_evs[sp] = ev
    found: dict[tuple[str, int], tuple[str, EvaluationMeta, bool]] = {}  # corrupted: (key, figures, cached)
    for corr in sweep:
        if stored_only:  # figures only: 75 evaluations' predictions are not read
            if (hit := find_evaluation_meta(model, ds, split, corruption=corr, **kw)) is not None:
                found[corr] = (*hit, True)
        else:
            ev = evaluate(model, ds, split, corruption=corr, progress=functools.partial(report, offset=done), **kw)
            found[corr] = (ev.key, ev.meta, ev.cached)
        done += size[split]
    clean = clean_evs.get(split)
    if clean is None:
        return None
    results = []
    for (c, s), (key, m, _) in found.items():
        cal = m.calibration or {}
        results.append({"corruption": c, "severity": s, "top1": m.top1, "ece": cal.get("ece"), "nll": cal.get("nll"),
                        "brier": cal.get("brier"), "key": key})
    per_corruption = []
    for c in names:
        acc = [r["top1"] for r in results if r["corruption"] == c]
        if acc:
            per_corruption.append({"corruption": c, "mean_top1": float(np.mean(acc)), "severities": len(acc)})
    meta, cal = clean.meta, clean.meta.calibration or {}
    p = clean.predictions
    if held and held not in clean_evs:  # stored_only, its evaluation not stored yet: not a fit on halves instead
        scaled = {"temperature": None, "why": f"no temperature scaling yet: {held} is not evaluated"}
    else:
        scaled = temperature_scaling(clean, clean_evs.get(held) if held else None)
    out = {
        "model": meta.model, "model_name": meta.model_name, "family": meta.family, "dataset": ds.id, "split": split,
        "n": meta.n, "limit": limit,
        "parameters": corruptions.parameter_table(ds.image_size) if ds.image_size else "by each image's size",
        "clean_top1": meta.top1, "results": results, "per_corruption": per_corruption,
        "mean_corruption_top1": float(np.mean([r["top1"] for r in results])) if results else None,
        **{k: cal.get(k) for k in ("ece", "adaptive_ece", "nll", "brier")},
        "reliability": calibration.reliability(p.top_prob[:, 0], p.top_idx[:, 0] == p.y_true)
        if meta.calibration else None,
        "temperature": scaled["temperature"], "temperature_scaling": scaled,
        # before and after temperature scaling, on the held-out images (`ece` is on `split`, before)
        "ece_heldout": scaled["before"]["ece"] if scaled["temperature"] else None,
        "ece_scaled": scaled["after"]["ece"] if scaled["temperature"] else None,
        "precision": meta.precision, "clean_key": clean.key,
        "complete": len(clean_evs) == len(size) and len(found) == len(sweep),
        "cached": all(ev.cached for ev in clean_evs.values()) and all(f[2] for f in found.values()),
    }
    if baseline is not None:
        base = robustness(baseline, ds, split, names=names, severities=severities, limit=limit, store=store,
                          precision=precision, device=device, stored_only=stored_only,
                          progress=lambda d, _n: report(d, _n, offset=own))
        if base is not None:
            out |= corruption_errors(out, base)
    return out
