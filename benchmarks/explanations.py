"""Write docs/explanations.md: which heat map tells the truth, on the demo's models and the arena's hybrids.

    .venv/bin/python benchmarks/explanations.py [--images 200] [--models resnet20,vit-small,...] [--seed 0]

The models are the arena's runs on `shapes` (the demo's budget; the same images in the same order for every model;
`--seed` picks which seed's run). For each run, every heat-map method it can draw and the two baselines are scored
on the first `--images` images of `shapes` val (the dataset's fixed subset) with
`python -m core explain --model RUN --dataset shapes --limit N --method M1,M2,... --score`: deletion and insertion
AUC and ROAD (core/explain/faithfulness.py), mean ± 95% interval over the images (Student's t), and the paired
difference from the random map. Scores are cached in the store (CNNVIT_CACHE_DIR, default cache/): a second run
of this script reads them back.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

# benchmarks/, the script's own folder
from doc_tables import (  # noqa: E402
    ARENA_MODELS,
    arena_cmd,
    num,
    table,
    trained_arena,
    write_doc,
)

from core.bench import cores, cpu_description  # noqa: E402
from core.demo import DEMO_BUDGET  # noqa: E402
from core.explain.faithfulness import SUBSTRATES  # noqa: E402
from core.explain.layers import default_layer, default_token_layer  # noqa: E402
from core.explain.scores import METRICS, SCORED, faithfulness_rows, settings  # noqa: E402
from core.predict import load_for_prediction  # noqa: E402

NOTES = ROOT / "benchmarks" / "explanations_notes.md"  # the reading of these figures, appended to the doc
MODELS = ARENA_MODELS
NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "eigencam": "EigenCAM",
         "rollout": "attention rollout", "attention": "CLS attention (last layer, mean of heads)",
         "random": "random map (baseline)", "centre": "centre prior (baseline)"}


def ci(mean, half) -> str:
    return "-" if mean is None else num(mean) + (f" ± {half:.3f}" if half is not None else "")


CAMS = ("gradcam", "gradcam++", "scorecam", "eigencam")


def hybrid_layers(measured: dict, images: int) -> list[str]:
    """A section: each hybrid's CAMs at its default layer (the last conv stage) against its last token layer (the
    one a ViT's CAMs read, `core.explain.layers.default_token_layer`), on the same images."""
    body = []
    for model, (run_id, _, rows) in measured.items():
        if rows[0]["family"] != "hybrid":
            continue
        loaded = load_for_prediction(run_id, "shapes")
        x = loaded.preprocess(np.zeros((32, 32, 3), np.uint8))
        conv, tokens = default_layer(loaded, x), default_token_layer(loaded, x)
        at_conv = {x["method"]: x for x in rows}
        at_tokens = {x["method"]: x for x in faithfulness_rows(run_id, "shapes", CAMS, "val", limit=images,
                                                                layer=tokens)}
        for m in CAMS:
            a, b = at_conv[m], at_tokens[m]
            body.append([model, NAMES[m], *(f"`{x['layer'] or conv}`: {ci(x['insertion_auc'], x['insertion_auc_ci95'])}"
                                            f" / {ci(x['road_morf'], x['road_morf_ci95'])}" for x in (a, b))])
    if not body:
        return []
    return ["## The hybrids' CAMs: the last conv stage or the last token layer?", "",
            "A hybrid's CAMs read its last conv stage by default (above). The other choice is the layer a ViT's CAMs "
            "read: its last token layer whose patch tokens reach the class score. Both on the same images, "
            f"`python -m core explain --model RUN --dataset shapes --split val --limit {images} --method "
            f"{','.join(CAMS)} --layer LAYER --score`; insertion AUC (higher is better) / ROAD MoRF (lower is "
            "better), mean ± 95% interval over the images.", "",
            *table(["model", "method", "last conv stage", "last token layer"], body)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--models", type=lambda s: s.split(","), default=list(MODELS))
    p.add_argument("--seed", type=int, default=0, help="which seed's arena run of each model (0-based)")
    p.add_argument("--seeds", type=int, default=3, help="the arena's seeds (its key: 3 reads the stored arena)")
    p.add_argument("--budget", default=DEMO_BUDGET)
    p.add_argument("--out", default=str(ROOT / "docs" / "explanations.md"))
    args = p.parse_args()
    os.environ.setdefault("CNNVIT_CACHE_DIR", str(ROOT / "cache"))
    t0 = time.perf_counter()
    spec, arena = trained_arena(args.models, "shapes", args.budget, args.seeds)
    methods = tuple(m for m in SCORED if m not in ("random", "centre"))
    measured = {}
    for r in arena["results"]:
        run_id = r["run_ids"][args.seed]
        t = time.perf_counter()
        r = r | {"top1": dict(zip(r["top1_seeds"], r["top1_runs"]))[args.seed]}  # this seed's, not the n-th finished
        measured[r["model"]] = (run_id, r, faithfulness_rows(run_id, "shapes", methods, "val", limit=args.images))
        print(f"{r['model']} ({run_id}): {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    s = settings()
    lines = [
        "## Setup", "",
        f"- **Models:** seed {args.seed}'s run of each model in `{arena_cmd(spec)}` (the demo's budget; the same "
        "training images in the same order for every model). Their val top-1 (500 images) is in the tables: a model "
        "that learned little has little for a map to find.",
        f"- **Images:** the first {args.images} of `shapes` val (the dataset's fixed subset), each explained for the "
        "model's own fp32 top-1 class.",
        f"- **Command**, per run: `python -m core explain --model RUN --dataset shapes --split val --limit "
        f"{args.images} --method {','.join(methods)} --score` (methods a model cannot draw, such as attention of a "
        "CNN, are listed as such).",
        f"- **Deletion:** {s['steps']} steps, substrate {SUBSTRATES['deletion']}; area under P(class) against the "
        "fraction deleted; **lower is better**.",
        f"- **Insertion:** {s['steps']} steps, substrate {SUBSTRATES['insertion']}; **higher is better**.",
        f"- **ROAD:** {SUBSTRATES['road']}, removing {', '.join(map(str, s['road_percents']))}% of the pixels; "
        "mean P(class) with the most relevant removed (MoRF, **lower is better**) and the least relevant removed "
        "(LeRF, **higher is better**).",
        "- **Intervals:** mean ± 95% interval over the images (Student's t). *vs random*: the paired per-image "
        "difference from the random map (deletion: negative is better than random; insertion: positive), with its "
        "interval; an interval that spans 0 means the method is not distinguishable from noise on these images.",
        "- **Layers:** each method's default: a CNN's last stage output, a ViT's last block input norm (the CLS "
        "token's last-block pitfall avoided: the final norm feeds only the CLS token to the head), the hybrids' "
        "last conv stage for CAMs.", ""]
    summary, computed = [], 0.0
    for model, (run_id, r, rows) in measured.items():
        lines += [f"## {model} (`{run_id}`, {rows[0]['family']}, val top-1 {100 * r['top1']:.1f}%; "
                  f"{100 * r['top1_mean']:.1f}% over the arena's {args.seeds} seeds)", ""]
        body = []
        for x in rows:
            if "error" in x:
                why = x["error"].split(":")[0].replace(run_id, "the model")  # "the model is a convolutional network..."
                body.append([NAMES[x["method"]], f"not drawn: {why}", "", "", "", "", "", ""])
                continue
            body.append([NAMES[x["method"]], ci(x["deletion_auc"], x["deletion_auc_ci95"]),
                         ci(x.get("deletion_auc_vs_random"), x.get("deletion_auc_vs_random_ci95")),
                         ci(x["insertion_auc"], x["insertion_auc_ci95"]),
                         ci(x.get("insertion_auc_vs_random"), x.get("insertion_auc_vs_random_ci95")),
                         ci(x["road_morf"], x["road_morf_ci95"]), ci(x["road_lerf"], x["road_lerf_ci95"]),
                         f"{x['seconds'] / x['n']:.2f}"])
            if not x["baseline"]:
                summary.append([model, x["family"], NAMES[x["method"]], x])
        lines += table(["method", "deletion AUC", "vs random", "insertion AUC", "vs random", "ROAD MoRF",
                        "ROAD LeRF", "s / image"], body)
        computed += sum(x.get("seconds", 0) for x in rows if "error" not in x)
    lines += hybrid_layers(measured, args.images)
    best = []
    for model, (_, r, rows) in measured.items():
        mine = [x for m, _, _, x in summary if m == model]
        centre = next(x for x in rows if x["method"] == "centre")
        if mine:
            i = max(mine, key=lambda x: x["insertion_auc"])
            m = min(mine, key=lambda x: x["road_morf"])
            clear = [NAMES[x["method"]] for x in mine if x["insertion_auc_vs_random_ci95"] is not None
                     and x["insertion_auc_vs_random"] - x["insertion_auc_vs_random_ci95"] > 0]
            both = [NAMES[x["method"]] for x in mine
                    if x["insertion_auc"] > centre["insertion_auc"] and x["road_morf"] < centre["road_morf"]]
            best.append([model, mine[0]["family"], f"{100 * r['top1']:.1f}%",
                         f"{NAMES[i['method']]} {num(i['insertion_auc'])}",
                         f"{NAMES[m['method']]} {num(m['road_morf'])}",
                         f"{num(centre['insertion_auc'])} / {num(centre['road_morf'])}", ", ".join(clear) or "none",
                         ", ".join(both) or "none"])
    head = ["# Which heat map tells the truth? Faithfulness of explanations, CNN against ViT", "",
            f"Written by `benchmarks/explanations.py` on {time.strftime('%Y-%m-%d')}: {cpu_description()['name']}, "
            f"{cores()} cores, torch {torch.__version__}; the script took "
            f"{(time.perf_counter() - t0) / 60:.0f} minutes; the scores took {computed / 60:.0f} minutes to compute "
            "(summed from their records; a second run reads them back).", "",
            "A heat map claims that some pixels matter more than others. Deletion and insertion (Petsiuk et al. "
            "2018) and ROAD (Rong et al. 2022) test the claim: change the pixels in the map's order and watch the "
            "model's probability of the class. The random map and the centre prior are what a map must beat for "
            "its score to mean anything. The Attention & Grad-CAM page's \"How faithful?\" section shows the same "
            "scores for any model.", "",
            "## Summary", ""]
    head += table(["model", "family", "val top-1", "highest insertion AUC", "lowest ROAD MoRF",
                   "centre prior: insertion / MoRF", "insertion above random (paired 95% clear of 0)",
                   "beats the centre prior on insertion and MoRF (means)"], best)
    write_doc(Path(args.out), head + lines + [f"Metrics: {', '.join(METRICS)}.", ""],
              NOTES if args.models == list(MODELS) else None)


if __name__ == "__main__":
    main()
