"""Write docs/scaling.md: training and evaluation throughput with 1 and 2 processes under torchrun on this machine,
the gradient bytes DDP all-reduces per step (counted by a communication hook), and what that volume means for
several GPUs or machines (a model, not a measurement).

    .venv/bin/python benchmarks/scaling.py [--images 2048] [--models resnet20,vit-small]

Each figure comes from a real `torchrun --standalone --nproc-per-node N -m core train|evaluate` in a fresh store
(N = 1 runs plain `python -m core`). torchrun gives each of N processes 1 thread (OMP_NUM_THREADS=1), so on a
2-core machine 1 process with 2 threads and 2 processes with 1 thread each use the same cores: the ratio says what
splitting the work costs (gradient all-reduce, per-process overheads), not what a second machine would add.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import timm  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from doc_tables import core_json, table, write_doc  # noqa: E402  (benchmarks/, the script's own folder)

from core.bench import cores, cpu_description  # noqa: E402

NOTES = ROOT / "benchmarks" / "scaling_notes.md"
# links a gradient all-reduce might cross, with rough unidirectional bandwidths (GB/s) from their specifications
LINKS = {"NVLink 4 (H100 SXM, per GPU)": 450.0, "PCIe 4.0 x16": 25.0, "InfiniBand HDR 200 Gb/s": 25.0,
         "25 Gb Ethernet": 3.1}
ARCHITECTURES = {"ResNet-50 (torchvision)": lambda: torchvision.models.resnet50(),
                 "ViT-B/16 (timm vit_base_patch16_224)": lambda: timm.create_model("vit_base_patch16_224")}


def core_cmd(n: int, args: list[str], store: Path) -> dict:
    t = time.perf_counter()
    return core_json(args, store, processes=n, env={"CNNVIT_DEVICE": "cpu"}) | {"wall": time.perf_counter() - t}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--models", type=lambda s: s.split(","), default=["resnet20", "vit-small"])
    p.add_argument("--out", default=str(ROOT / "docs" / "scaling.md"))
    args = p.parse_args()
    t0 = time.perf_counter()
    train_rows, eval_rows, volume = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            measured = {}
            for n in (1, 2):
                r = core_cmd(n, ["train", "--model", model, "--dataset", "shapes", "--epochs", "2", "--limit",
                                 str(args.images), "--val-limit", "200", "--batch-size", "64", "--no-amp"],
                             Path(tmp) / f"{model}-train-{n}")
                store_history = json.loads((Path(tmp) / f"{model}-train-{n}" / "runs" / r["run_id"] /
                                            "history.json").read_text())
                last = store_history[-1]  # the second epoch: the first pays for warm-up
                measured[n] = last
                if n == 2:
                    volume[model] = last["allreduce_bytes_per_step"]
            base = measured[1]["images_per_second"]
            for n, h in measured.items():
                threads = "2 threads" if n == 1 else "1 thread each"
                train_rows.append([model, n, threads, f"{h['images_per_second']:.0f}",
                                   f"{h['images_per_second'] / base:.2f}", f"{h['val_top1']:.3f}",
                                   f"{h['allreduce_bytes_per_step'] / 1e6:.2f}"])
            ev = {}
            for n in (1, 2):
                ev[n] = core_cmd(n, ["evaluate", "--model", model, "--dataset", "shapes", "--split", "val",
                                     "--batch-size", "64", "--precision", "fp32"], Path(tmp) / f"{model}-eval-{n}")
            for n, r in ev.items():
                eval_rows.append([model, n, r["n"], f"{r['images_per_second']:.0f}",
                                  f"{r['images_per_second'] / ev[1]['images_per_second']:.2f}",
                                  "yes" if r["top1"] == ev[1]["top1"] and r["nll"] == ev[1]["nll"] else "NO"])
    # the pretrained models' architectures, built without weights (offline): their parameters are what DDP reduces
    big = {name: 4 * sum(q.numel() for q in build().parameters() if q.requires_grad)
           for name, build in ARCHITECTURES.items()}
    grads = volume | big
    model_rows = []
    for m, b in grads.items():
        for link, gbs in LINKS.items():
            # ring all-reduce: each rank sends and receives 2 (N - 1) / N of the gradient bytes per step
            model_rows.append([m, f"{b / 1e6:.1f}", link, *(f"{1000 * 2 * (n - 1) / n * b / (gbs * 1e9):.2f}"
                                                             for n in (2, 8, 16))])
    cpu = cpu_description()
    lines = [
        "# Scaling: several processes under torchrun", "",
        f"Written by `benchmarks/scaling.py` on {time.strftime('%Y-%m-%d')}: {cpu['name']}, {cores()} cores, torch "
        f"{torch.__version__}, no GPU; the script took {(time.perf_counter() - t0) / 60:.0f} minutes.", "",
        "**This machine has 2 cores: it cannot show a speed-up.** One process uses both cores (2 threads); two "
        "processes get 1 thread each (torchrun sets OMP_NUM_THREADS=1). The ratios say what splitting costs, not what "
        "another GPU or machine would add.", "",
        "## Training", "",
        f"`torchrun --standalone --nproc-per-node N -m core train --model M --dataset shapes --epochs 2 --limit "
        f"{args.images} --batch-size 64 --no-amp` (N = 1: plain `python -m core train`); images/s of the second epoch "
        "(every rank's images together), fp32, global batch 64 (32 per rank with 2).", ""]
    lines += table(["model", "processes", "threads", "images/s", "vs 1 process", "val top-1", "all-reduce MB / step"],
                   train_rows)
    lines += ["## Evaluation", "",
              "`torchrun --standalone --nproc-per-node N -m core evaluate --model M --dataset shapes --split val "
              "--batch-size 64 --precision fp32` on the 1,000 val images (untrained scratch weights: the speed is "
              "the point). Each rank scores whole batches, every image once; *same numbers*: top-1 and NLL equal to "
              "one process's (tests/test_distributed.py checks every prediction bit for bit).", ""]
    lines += table(["model", "processes", "images", "images/s end to end", "vs 1 process", "same numbers"],
                   eval_rows)
    lines += ["## Gradient volume, and what it means across GPUs and machines (a model)", "",
              "DDP all-reduces every trainable parameter's fp32 gradient once per step. The lab's models' bytes are "
              "counted by a communication hook around DDP's own all-reduce (`allreduce_bytes_per_step` in each history "
              "row); ResNet-50's and ViT-B/16's are 4 bytes x their trainable parameters, which is what the hook "
              "counts (checked on the lab's models). A ring all-reduce moves 2 (N - 1) / N of those bytes through each "
              "rank's link per step. The milliseconds below are that volume over each link's nominal bandwidth: a "
              "lower bound on communication per step, before DDP overlaps it with the backward pass. **This is a "
              "model, not a measurement**: no multi-GPU or multi-node machine was available.", ""]
    lines += table(["model", "gradient MB / step", "link (GB/s nominal)", "ms / step, 2 ranks", "8 ranks",
                    "16 ranks"], model_rows)
    lines += ["## On a GPU", "",
              "No GPU has been lent to this project's sessions yet, so there are no GPU figures here. Everything that "
              "needs one is prepared as one script, `benchmarks/gpu.py` (its docstring lists the sections; about 7 "
              "minutes on one GPU, estimated): the CUDA tests (`tests/test_cuda.py`: NCCL, DistributedDataParallel and "
              "the SyncBatchNorm conversion on cuda:0 through `torchrun --nproc-per-node 1`, which runs the "
              "distributed path as a group of one (the synchronised batch statistics need two GPUs); CUDA against "
              "the CPU at fp32, TF32 off; two ranks against one process where the machine "
              "has two GPUs), ResNet-50 and ViT-B/16 training images/s with bf16 autocast against fp32, their "
              "evaluation end to end on 2,000 JPEGs, and the arena's models. It writes `docs/gpu.md`:", "",
              "```bash",
              "PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out DIR   # on the GPU machine",
              "python benchmarks/gpu.py --render DIR/gpu.json           # here: writes docs/gpu.md",
              "```", "",
              "On ImageNet itself, the single-GPU training and evaluation numbers come from (bf16 autocast is the "
              "default where the GPU has it):", "",
              "```bash",
              "python -m core train --model torchvision:resnet50 --dataset path/to/imagenet --epochs 1 "
              "--limit 20000 --batch-size 256 --json   # images_per_second per epoch",
              "python -m core train --model google/vit-base-patch16-224 --dataset path/to/imagenet "
              "--epochs 1 --limit 20000 --batch-size 256 --json",
              "python -m core evaluate --model torchvision:resnet50 --dataset path/to/imagenet --split val --json",
              "torchrun --standalone --nproc-per-node 8 -m core train ... --batch-size 2048   # 8 GPUs, 256 each",
              "```", ""]
    write_doc(Path(args.out), lines, NOTES)


if __name__ == "__main__":
    main()
