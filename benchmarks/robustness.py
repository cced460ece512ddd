"""Write docs/robustness.md: the demo's and the arena's models on `shapes` val under every corruption at severities
1-5, corruption errors against ResNet-20, and calibration clean, corrupted and after temperature scaling.

    .venv/bin/python benchmarks/robustness.py [--seeds 3] [--models resnet20,vit-small,...] [--baseline resnet20]

The models are trained by the arena on `shapes` (the same images in the same order for every model, one budget, each
model's own recipe; several seeds), then every run is measured with `python -m core robustness --model RUN
--dataset shapes --limit 500 --baseline BASELINE_RUN` (the baseline run of the same seed). Figures are means over
seeds with Student's t 95% intervals. Runs and evaluations are ordinary cached results in the store
(CNNVIT_CACHE_DIR, default cache/): a second run of this script reads them back.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

# benchmarks/, the script's own folder
from doc_tables import (  # noqa: E402
    ARENA_MODELS,
    ARENA_VAL_LIMIT,
    arena_cmd,
    ci,
    num,
    pct,
    table,
    trained_arena,
    write_doc,
)

from core.bench import cores, cpu_description  # noqa: E402
from core.data.corruptions import BENCHMARK, CORRUPTIONS, LEFT_OUT, SEVERITIES, TABLE_NAMES  # noqa: E402
from core.demo import DEMO_BUDGET  # noqa: E402
from core.precision import resolve_precision  # noqa: E402
from core.robustness import corruption_errors, robustness  # noqa: E402

NOTES = ROOT / "benchmarks" / "robustness_notes.md"  # the reading of these figures, appended to the doc
MODELS = ARENA_MODELS
LIMIT = ARENA_VAL_LIMIT  # robustness is measured on the arena's validation images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--models", type=lambda s: s.split(","), default=list(MODELS))
    p.add_argument("--baseline", default="resnet20")
    p.add_argument("--budget", default=DEMO_BUDGET)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--out", default=str(ROOT / "docs" / "robustness.md"))
    args = p.parse_args()
    os.environ.setdefault("CNNVIT_CACHE_DIR", str(ROOT / "cache"))
    t0 = time.perf_counter()
    spec, arena = trained_arena(args.models, "shapes", args.budget, args.seeds)
    runs = {r["model"]: r for r in arena["results"]}
    measured = {m: [robustness(run_id, "shapes", limit=LIMIT, precision=args.precision) for run_id in r["run_ids"]]
                for m, r in runs.items()}
    base = measured[args.baseline]
    errors = {m: [corruption_errors(x, b) for x, b in zip(rs, base)] for m, rs in measured.items()}
    prec = resolve_precision(args.precision, "cpu")
    lines = [
        "## The models", "",
        f"Trained with `{arena_cmd(spec)}` (the demo's budget; held equal: the same training images in the same order, "
        f"batch size, image size, augmentation; each model's own optimiser and schedule). Same data for every "
        f"model, checked from each run's digest: **{'yes' if arena['same_data'] else 'NO'}**. Each run measured "
        f"with `python -m core robustness --model RUN --dataset shapes --limit {LIMIT} --precision {args.precision} "
        f"--baseline {args.baseline.upper()}_RUN_OF_THE_SAME_SEED` (run ids at the end), at {prec}: "
        f"{len(CORRUPTIONS)} corruptions x {len(SEVERITIES)} severities x {LIMIT} images. `shapes` images are "
        f"64 px, so {TABLE_NAMES[base[0]['parameters']]}'s parameters apply; the corruption is applied at 64 px, "
        "before each model's own preprocessing resizes to 32 px.", "",
        "## Summary", ""]
    rows = []
    for m, rs in measured.items():
        e = errors[m]
        at3 = [sum(x["ece"] for x in r["results"] if x["severity"] == 3) / len(CORRUPTIONS) for r in rs]
        rows.append([m, rs[0]["family"], ci([r["clean_top1"] for r in rs]),
                     ci([r["mean_corruption_top1"] for r in rs]), ci([x["mce"] for x in e], num, 1),
                     ci([x["relative_mce"] for x in e], num, 1), ci([r["ece"] for r in rs], num, 1),
                     ci(at3, num, 1), ci([r["nll"] for r in rs], num, 1), ci([r["brier"] for r in rs], num, 1),
                     ci([r["temperature"] for r in rs], num, 1),
                     ci([r["temperature_scaling"]["before"]["ece"] for r in rs], num, 1),
                     ci([r["ece_scaled"] for r in rs], num, 1)])
    lines += table(["model", "family", "clean top-1", "mean corrupted top-1", f"mCE vs {args.baseline}",
                    "relative mCE", "ECE clean", "ECE at severity 3", "NLL", "Brier", "temperature",
                    "test ECE", "test ECE scaled"], rows)
    lines += [f"Mean ± 95% interval over {args.seeds} seeds (Student's t). Top-1 and calibration on {LIMIT} `shapes` "
              "val images; mCE: errors summed over severities, divided by the baseline run's of the same seed, "
              f"averaged over the benchmark's {len(BENCHMARK)} corruptions here (Hendrycks & Dietterich 2019, with "
              f"{args.baseline} in AlexNet's place; "
              "relative mCE does the same for the drop from clean). ECE: 15 equal-width bins; at severity 3: the mean "
              "over the corruptions. Temperature fitted by NLL on val, ECE before and after on "
              f"{LIMIT} test images.", "",
              "## Top-1 per corruption (mean over severities 1-5)", ""]
    lines += table(["corruption", *measured], [
        [c, *(ci([next(x["mean_top1"] for x in r["per_corruption"] if x["corruption"] == c) for r in rs])
              for rs in measured.values())] for c in CORRUPTIONS])
    def per_severity(key: str, fmt, scale: float) -> list[list]:
        """Clean, then each severity's mean over the corruptions, per model (mean ± interval over seeds)."""
        clean = ["clean", *(ci([r["clean_top1" if key == "top1" else key] for r in rs], fmt, scale)
                            for rs in measured.values())]
        return [clean] + [[str(s), *(ci([sum(x[key] for x in r["results"] if x["severity"] == s) / len(CORRUPTIONS)
                                         for r in rs], fmt, scale) for rs in measured.values())] for s in SEVERITIES]

    lines += ["## Top-1 per severity (mean over corruptions)", ""]
    lines += table(["severity", *measured], per_severity("top1", pct, 100.0))
    lines += ["## ECE per severity (mean over corruptions)", ""]
    lines += table(["severity", *measured], per_severity("ece", num, 1))
    lines += ["Left out: " + "; ".join(f"`{k}` ({v})" for k, v in LEFT_OUT.items()) + ".", "", "Runs:", "",
              *(f"- {m}: " + ", ".join(f"`{i}`" for i in r["run_ids"]) for m, r in runs.items()), ""]
    cpu = cpu_description()
    head = ["# Robustness and calibration of the lab's models", "",
            f"Written by `benchmarks/robustness.py` on {time.strftime('%Y-%m-%d')}: {cpu['name']}, {cores()} cores, "
            f"torch {torch.__version__}; the script took {(time.perf_counter() - t0) / 60:.0f} minutes (cached runs "
            "and evaluations are read back, not recomputed).", "",
            "How each model's top-1 falls under the common corruptions of Hendrycks & Dietterich 2019, and whether "
            "its confidence means what it says. The Robustness page draws the same figures for any trained run.", ""]
    write_doc(Path(args.out), head + lines, NOTES if args.models == list(MODELS) else None)


if __name__ == "__main__":
    main()
