"""Write docs/shape-bias.md: shape bias and coverage of the demo's and the arena's models on generated cue conflict.

    .venv/bin/python benchmarks/shape_bias.py [--seeds 3] [--models resnet20,vit-small,...] [--no-sanity]

The models are trained by the arena on `shapes-textured` (the same images in the same order for every model, one
budget, each model's own recipe; several seeds), then every run is scored on the 900 cue-conflict images and the two
controls (`python -m core shape-bias --model RUN`). Figures are means over seeds with Student's t 95% intervals.
The sanity section trains ResNet-20 on one cue only (the slow tests of tests/test_shape_bias.py, seed 0).
Runs and evaluations are ordinary cached results in the store (CNNVIT_CACHE_DIR, default cache/): a second run of
this script reads them back.
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
    arena_cmd,
    ci,
    pct,
    table,
    trained_arena,
    write_doc,
)

from core.arena.run import model_recipe  # noqa: E402
from core.bench import cores, cpu_description  # noqa: E402
from core.data import cue_conflict, imagenet16  # noqa: E402
from core.data.embedded import TEXTURED_ID  # noqa: E402
from core.demo import DEMO_BUDGET  # noqa: E402
from core.precision import resolve_precision  # noqa: E402
from core.shape_bias import shape_bias  # noqa: E402
from core.train.loop import train  # noqa: E402
from core.train.recipe import Recipe  # noqa: E402

NOTES = ROOT / "benchmarks" / "shape_bias_notes.md"  # the reading of these figures, appended to the doc
MODELS = ARENA_MODELS
SANITY = {"shapes-texture-only": {"limit": 2000, "epochs": 6}, "shapes-silhouettes": {"limit": None, "epochs": 10}}


def arena_section(args, lines: list[str]) -> None:
    spec, out = trained_arena(args.models, TEXTURED_ID, args.budget, args.seeds)
    held = out["held_equal"]
    lines += ["## The demo's and the arena's models, trained on `shapes-textured`", "",
              f"Trained with `{arena_cmd(spec)}`, then each run scored with `python -m core shape-bias --model RUN` "
              "(its run ids below). `shapes-textured` is `shapes` with each class's silhouette filled with that "
              "class's own texture, so in training both cues predict the class; which one a model learned to use is "
              "what the 900 cue-conflict images (every ordered pair of two different classes, 10 images each) ask.",
              "",
              "Held equal: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in held.items() if k != "own") + ". "
              f"Each model's own: {held['own']}. Same images in the same order for every model, checked from each "
              f"run's data digest: **{'yes' if out['same_data'] else 'NO'}** (digest {out['data_digest']}).", ""]
    rows, per_class, runs_lines = [], [], []
    for r in out["results"]:
        scores = [shape_bias(run_id, precision=args.precision) for run_id in r["run_ids"]]
        rows.append([r["model"], r["family"], ci(r["top1_runs"]), ci([s["shape_bias"] for s in scores]),
                     ci([s["coverage"] for s in scores]), ci([s["controls"]["shape-only"] for s in scores]),
                     ci([s["controls"]["texture-only"] for s in scores]),
                     " / ".join(pct(s["shape_bias"]) for s in scores)])
        per_class.append([r["model"]] + [ci([s["per_class"][c]["shape_bias"] for s in scores])
                                         for c in range(len(cue_conflict.CLASSES))])
        runs_lines.append(f"- {r['model']}: " + ", ".join(f"`{i}`" for i in r["run_ids"]))
    lines += table(["model", "family", "val top-1 (textured)", "shape bias", "coverage", "shape-only top-1",
                    "texture-only top-1", "shape bias per seed"], rows)
    lines += [f"Mean ± 95% interval over {args.seeds} seeds (Student's t); each seed changes the initial weights, "
              f"the data order and the augmentation. Scored at {resolve_precision(args.precision, 'cpu')}. "
              "Val top-1 is on 500 `shapes-textured` validation images, where the two cues agree.", "",
              "Per class (shape bias of the images whose shape is that class, mean ± 95% interval; `-`: the model "
              "never decided those images by either cue):", ""]
    lines += table(["model", *cue_conflict.CLASSES], per_class)
    lines += ["Runs:", "", *runs_lines, ""]


def sanity_section(args, lines: list[str]) -> None:
    lines += ["## Sanity: one cue only", "",
              "ResNet-20 with its own recipe at 32 px, seed 0, trained where only one cue exists: it must decide by "
              "that cue on the conflict images. These are the slow tests `pytest -m slow tests/test_shape_bias.py` "
              "(thresholds: texture-trained shape bias < 0.2 with coverage > 0.5; silhouette-trained > 0.8 with "
              "coverage > 0.2).", ""]
    rows = []
    for dataset, size in SANITY.items():
        recipe = Recipe(model="resnet20", dataset=dataset, image_size=32, val_limit=200, augment="none", **size,
                        **model_recipe("resnet20"))
        s = shape_bias(train(recipe).model_id, dataset, precision=args.precision)
        own = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in model_recipe("resnet20").items())
        cmd = (f"python -m core train --model resnet20 --dataset {dataset} --image-size 32 --val-limit 200 "
               f"--augment none --epochs {size['epochs']}" + (f" --limit {size['limit']}" if size["limit"] else "")
               + f" {own}")
        rows.append([dataset, pct(s["shape_bias"]), pct(s["coverage"]), pct(s["controls"]["shape-only"]),
                     pct(s["controls"]["texture-only"]), f"`{cmd}`"])
    lines += table(["trained on", "shape bias", "coverage", "shape-only top-1", "texture-only top-1", "command"], rows)


def reference_section(lines: list[str]) -> None:
    lines += ["## Published figures (ImageNet models and people, on the published stimuli)", "",
              "Not the same images or classes as above: the 1,280 style-transfer stimuli of Geirhos et al. 2019 "
              "(1,200 with shape != texture), 16 ImageNet categories. Score an ImageNet model on them with "
              "`python -m core shape-bias --model MODEL --dataset PATH/TO/cue-conflict` (the folder as "
              "texture-vs-shape and model-vs-human distribute it). Sources and how each figure was recomputed: "
              "docs/cue-conflict-sources.md.", ""]
    lines += table(["who", "shape bias", "source"], [[r["label"], pct(r["shape_bias"]),
                                                      r["source"].split(".csv")[0] + ".csv"]
                                                     for r in imagenet16.reference_figures()])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--models", type=lambda s: s.split(","), default=list(MODELS))
    p.add_argument("--budget", default=DEMO_BUDGET)
    p.add_argument("--precision", default="auto")
    p.add_argument("--no-sanity", action="store_true")
    p.add_argument("--out", default=str(ROOT / "docs" / "shape-bias.md"))
    args = p.parse_args()
    os.environ.setdefault("CNNVIT_CACHE_DIR", str(ROOT / "cache"))
    t0 = time.perf_counter()
    lines: list[str] = []
    arena_section(args, lines)
    if not args.no_sanity:
        sanity_section(args, lines)
    reference_section(lines)
    cpu = cpu_description()
    head = ["# Shape or texture? Shape bias of the lab's models", "",
            f"Written by `benchmarks/shape_bias.py` on {time.strftime('%Y-%m-%d')}: {cpu['name']}, {cores()} cores"
            f"{', AVX-512 bf16' if cpu['avx512_bf16'] else ''}, torch {torch.__version__}; the script took "
            f"{(time.perf_counter() - t0) / 60:.0f} minutes (cached runs are read back, not retrained).", "",
            "Shape bias = shape ÷ (shape + texture) decisions on cue-conflict images; coverage = (shape + texture) ÷ "
            "all images (Geirhos et al. 2019, scored as the model-vs-human toolbox scores it; core/shape_bias.py). "
            "The Shape vs texture page draws the same figures for any trained run.", ""]
    write_doc(Path(args.out), head + lines, NOTES if args.models == list(MODELS) else None)


if __name__ == "__main__":
    main()
