"""Every check and timing that needs a GPU, in one run: the prepared script for a session that is lent one.

On the GPU machine (its python3 has torch, torchvision, timm, transformers, pytest; streamlit is not needed):

    PYTHONUNBUFFERED=1 timeout 560 python3 benchmarks/gpu.py --out $OUT

It writes, as it goes (a section that fails is recorded and the next one runs):
- `gpu.json`: every figure, with the machine and the command behind it;
- `pytest.txt`: `pytest tests/test_cuda.py` and the augmentation's CUDA test (issue 19: NCCL, DDP and the
  SyncBatchNorm conversion on cuda:0 through torchrun, CUDA against the CPU at fp32, no TF32, bf16 training; the
  synchronised batch statistics themselves need two GPUs);
- `gpu.md`: the figures as the page `docs/gpu.md` shows them.

Back here, `python benchmarks/gpu.py --render PATH/gpu.json` writes docs/gpu.md from that file.

Sections, in order of importance (a run cut short keeps the finished ones): about 7 minutes on one H100, an estimate
from the CPU smoke run and the sizes (it has never run on a GPU); the 15 minutes a task is lent leave no full rerun:
1. tests: the CUDA tests above;
2. matmul: the device's measured fp32 and bf16 matrix-multiply rate (the utilisation figures' denominator);
3. big: ResNet-50 and ViT-B/16 (timm's architectures for ImageNet-1k, random weights saved as local model
   folders: the machine reaches no hub) training images/s at 224 px, batch 128, fp32 against bf16 autocast
   (issue 19's single-GPU figure);
4. evaluate: the same two models end to end on 2,000 JPEGs in an image folder (decoding on the CPU cores
   included) against the forward alone (`python -m core bench`);
5. arena: the arena's scratch models (issue 15), the training loop end to end at 32 px, batch 64, fp32 against
   bf16 autocast, as `docs/arena.md` measures them on the CPU.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from doc_tables import core_json  # noqa: E402  (benchmarks/, the script's own folder)

ARENA_MODELS = ("cnn-multilayer", "resnet20", "vit-small", "vit-convstem", "cct-2")
BIG = {"ResNet-50": "resnet50", "ViT-B/16": "vit_base_patch16_224"}  # timm architectures
BIG_BATCH, BIG_IMAGES, BIG_EPOCHS = 128, 1280, 2  # 10 steps an epoch; the last epoch's rate (the first warms up)
JPEGS, EVAL_BATCH, EVAL_REPEATS = 2000, 256, 5
ARENA_EPOCHS, ARENA_IMAGES = 3, 2000
DEVICE = "cuda"


def smoke() -> None:
    """`--smoke`: every section on the CPU at toy sizes, to check the script's plumbing where there is no GPU (the
    CUDA tests skip; the figures mean nothing)."""
    global ARENA_MODELS, BIG, BIG_BATCH, BIG_IMAGES, JPEGS, EVAL_BATCH, EVAL_REPEATS, ARENA_EPOCHS, ARENA_IMAGES
    global DEVICE
    ARENA_MODELS, BIG_BATCH, BIG_IMAGES, ARENA_EPOCHS, ARENA_IMAGES = ("resnet20",), 8, 16, 2, 128
    BIG = {"timm test_resnet (smoke)": "test_resnet"}  # timm's toy ResNet: the ViT takes the same road
    JPEGS, EVAL_BATCH, EVAL_REPEATS = 16, 8, 1
    DEVICE = os.environ["CNNVIT_DEVICE"] = "cpu"


def sec_env(out: dict) -> None:
    import torch

    from core.precision import ieee_fp32_on_cuda

    gpu = torch.cuda.is_available()
    if gpu:
        ieee_fp32_on_cuda()  # the in-process sections' fp32 is IEEE fp32, as the CLI's is
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True) if gpu else None
    out["env"] = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                  "cudnn": torch.backends.cudnn.version(),
                  "gpu": torch.cuda.get_device_name(0) if gpu else "none (a smoke run on the CPU)",
                  "gpus": torch.cuda.device_count(), "nvidia_smi": smi.stdout.strip() if smi else None,
                  "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                  "tf32": {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}}


def sec_tests(out: dict, dest: Path) -> None:
    # the project's addopts ask for pytest-xdist (3.8 or later) and pytest-timeout, which the GPU machine's python3
    # may lack or have older: cleared, so these tests run in one process on whatever pytest is there
    timeout = ["--timeout", "240"] if importlib.util.find_spec("pytest_timeout") else []
    cmd = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *timeout, "-rs",
           "tests/test_cuda.py", "tests/test_augment.py::test_cuda_draws_the_same_numbers_as_cpu"]
    log = dest / "pytest.txt"
    with log.open("w") as f:  # written as it runs: a run cut short still sends back what it printed
        p = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, text=True, timeout=420)
    out["tests"] = {"command": "python -m pytest tests/test_cuda.py "
                               "tests/test_augment.py::test_cuda_draws_the_same_numbers_as_cpu",
                    "exit": p.returncode, "summary": (log.read_text().strip().splitlines() or [""])[-1]}


def sec_matmul(out: dict) -> None:
    from core.bench import matmul_flops

    out["matmul"] = {p: matmul_flops(DEVICE, p)["median"] for p in ("fp32", "bf16")}


def sec_arena(out: dict, work: Path) -> None:
    from train_speed import end_to_end_rate, recipe_for

    from core.arena.run import arena_recipe
    from core.arena.spec import ArenaSpec
    from core.train.runs import build_for_recipe

    rows = []
    for model in ARENA_MODELS:
        r32, r16 = (end_to_end_rate(recipe_for(model, epochs=ARENA_EPOCHS, limit=ARENA_IMAGES, amp=amp),
                                    Path(tempfile.mkdtemp(prefix=f"arena-{model}-", dir=work)))
                    for amp in (False, True))
        _, m = build_for_recipe(arena_recipe(ArenaSpec(models=(model,), budget="epochs:1", seeds=1), model))
        rows.append({"model": model, "fp32": r32, "bf16": r16, "train_flops_per_image": m.train_flops_per_image()})
        out["arena"] = {"command": f"benchmarks/train_speed.py's end_to_end_rate ({ARENA_IMAGES:,} shapes images, 32 "
                                   f"px, batch 64, Adam, flips; median of {ARENA_EPOCHS} epochs), --no-amp against "
                                   "bf16 autocast",
                        "rows": rows}


def _timm_folder(arch: str, dest: Path) -> Path:
    import timm
    from timm.models import save_for_hf

    folder = dest / arch
    if not (folder / "config.json").exists():
        save_for_hf(timm.create_model(arch, pretrained=False), str(folder), safe_serialization=True)
    return folder


def sec_big(out: dict, work: Path) -> None:
    from train_speed import pure_step_rate

    from core.train.recipe import Recipe

    rows = []
    for name, arch in BIG.items():
        folder = _timm_folder(arch, work / "models")
        for amp in (False, True):
            args = ["train", "--model", str(folder), "--dataset", "shapes", "--epochs", str(BIG_EPOCHS), "--limit",
                    str(BIG_IMAGES), "--val-limit", str(2 * BIG_BATCH), "--batch-size", str(BIG_BATCH),
                    "--optimizer", "adamw",
                    "--lr", "1e-4", *([] if amp else ["--no-amp"])]
            r = core_json(args, work / f"big-{arch}-{amp}", timeout=600)
            # the same steps on preloaded tensors: what the loop's data path and bookkeeping cost on this device
            pure = pure_step_rate(Recipe(model=str(folder), dataset="shapes", limit=BIG_IMAGES, batch_size=BIG_BATCH,
                                         optimizer="adamw", lr=1e-4, amp=amp), epochs=3, device=DEVICE)
            rows.append({"model": name, "arch": arch, "precision": "bf16" if amp else "fp32",
                         "images_per_second": r["history"][-1]["images_per_second"], "pure_step": pure,
                         "per_epoch": [h["images_per_second"] for h in r["history"]],
                         "command": "python -m core " + " ".join(a if a != str(folder) else f"TIMM_{arch}_FOLDER"
                                                                  for a in args)})
            out["big"] = {"batch": BIG_BATCH, "images": BIG_IMAGES, "rows": rows}


def sec_evaluate(out: dict, work: Path) -> None:
    from core.bench_data import jpeg_folder

    folder = jpeg_folder(work / "jpegs", JPEGS)  # ImageNet-shaped (500x375), as docs/benchmarks.md's
    rows = []
    for name, arch in BIG.items():
        model = _timm_folder(arch, work / "models")
        for precision in ("fp32", "bf16"):
            b = core_json(["bench", "--model", str(model), "--dataset", str(folder), "--split", "val", "--batch-size",
                           str(EVAL_BATCH), "--images", str(JPEGS), "--repeats", str(EVAL_REPEATS), "--precision",
                           precision, "--device", DEVICE], work / f"bench-{arch}-{precision}")
            rows.append({"model": name, "precision": precision, "forward": b["forward_images_per_second"],
                         "end_to_end": b["end_to_end_images_per_second"], "latency_ms": b.get("latency_ms_p50")})
            out["evaluate"] = {"jpegs": JPEGS, "cpus": os.cpu_count(), "batch": EVAL_BATCH, "rows": rows,
                               "command": f"python -m core bench --model FOLDER --dataset JPEGS --split val "
                                          f"--batch-size {EVAL_BATCH} --images {JPEGS} --precision P --device cuda"}


def render(out: dict) -> str:
    env = out.get("env", {})
    lines = ["# On a GPU", "",
             f"Written by `benchmarks/gpu.py` on {env.get('date', '?')}: {env.get('gpu', '?')} ({env.get('gpus', '?')} "
             f"GPU), torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, cuDNN {env.get('cudnn', '?')}, "
             f"{env.get('cpus', '?')} CPU cores. Every ratio compares figures from this one run. fp32 is IEEE fp32 "
             "(TF32 off: core/settings.py); bf16 is autocast.", "",
             "Reproduce, on the GPU machine: `PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out DIR`; then "
             "`python benchmarks/gpu.py --render DIR/gpu.json` writes this page.", ""]
    for name, err in out.get("errors", {}).items():
        lines += [f"**Section `{name}` failed:** `{err.strip().splitlines()[-1]}`", ""]
    if t := out.get("tests"):
        lines += ["## The CUDA paths (tests)", "", f"`{t['command']}`: exit {t['exit']}, {t['summary']}", ""]
    peak = out.get("matmul", {})
    if peak:
        lines += [f"Matmul rate measured in this run (8192 x 8192): fp32 {peak['fp32'] / 1e12:,.1f} TFLOP/s, bf16 "
                  f"{peak['bf16'] / 1e12:,.1f} TFLOP/s.", ""]
    if a := out.get("arena"):
        lines += ["## The arena's models: training speed (issue 15)", "", a["command"] + ".", "",
                  "| model | fp32 img/s | bf16 img/s | speed-up | fp32 util. | bf16 util. |",
                  "|---|---|---|---|---|---|"]
        for r in a["rows"]:
            util = [f"{r['train_flops_per_image'] * r[p] / peak[p]:.1%}" if p in peak else "?"
                    for p in ("fp32", "bf16")]
            lines.append(f"| {r['model']} | {r['fp32']:,.0f} | {r['bf16']:,.0f} | **{r['bf16'] / r['fp32']:.2f}x** | "
                         f"{util[0]} | {util[1]} |")
        lines.append("")
    if b := out.get("big"):
        lines += ["## ResNet-50 and ViT-B/16: training images/s (issue 19)", "",
                  f"The training loop end to end (`python -m core train`), {b['images']:,} `shapes` images resized to "
                  f"224 px once, batch {b['batch']}, AdamW; the last epoch's rate (the first warms up). Random "
                  "weights from timm's architectures, saved as local model folders (the machine reaches no hub).", "",
                  "The pure step: forward, backward and AdamW on the same images preloaded on the GPU "
                  "(`benchmarks/train_speed.py`'s `pure_step_rate`, median of 3 passes); the loop's share is the "
                  "loop's rate over it (what batching, copies, augmentation and per-step bookkeeping cost).", "",
                  "| model | precision | img/s | per epoch | pure step img/s | loop / pure step |",
                  "|---|---|---|---|---|---|"]
        for r in b["rows"]:
            lines.append(f"| {r['model']} | {r['precision']} | {r['images_per_second']:,.0f} | "
                         f"{' / '.join(f'{v:,.0f}' for v in r['per_epoch'])} | {r['pure_step']:,.0f} | "
                         f"{r['images_per_second'] / r['pure_step']:.2f} |")
        by = {(r["model"], r["precision"]): r["images_per_second"] for r in b["rows"]}
        for m in dict.fromkeys(r["model"] for r in b["rows"]):
            if (m, "fp32") in by and (m, "bf16") in by:
                lines.append(f"\n{m}: bf16 {by[(m, 'bf16')] / by[(m, 'fp32')]:.2f}x fp32.")
        lines += ["", "Command: `" + b["rows"][0]["command"] + "` (and the others alike)", ""]
    if e := out.get("evaluate"):
        lines += ["## Evaluation end to end", "",
                  f"{e['jpegs']:,} JPEGs of ImageNet's usual size (500 x 375, `core.bench_data.jpeg_folder`) in an "
                  f"ImageNet-style folder, decoded and resized on the {e['cpus']} CPU cores "
                  f"while the GPU runs the model, batch {e['batch']}, against the forward alone on preloaded tensors. "
                  f"Command: `{e['command']}`.", "",
                  "| model | precision | end to end img/s | forward alone img/s | pipeline efficiency | latency ms |",
                  "|---|---|---|---|---|---|"]
        for r in e["rows"]:
            lines.append(f"| {r['model']} | {r['precision']} | {r['end_to_end']:,.0f} | {r['forward']:,.0f} | "
                         f"{r['end_to_end'] / r['forward']:.2f} | {r['latency_ms'] or 0:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="folder for gpu.json, pytest.txt and gpu.md")
    p.add_argument("--only", help="comma-separated sections: tests,matmul,arena,big,evaluate")
    p.add_argument("--render", type=Path, help="write docs/gpu.md from this gpu.json and stop")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "gpu.md", help="the page --render writes")
    p.add_argument("--smoke", action="store_true", help=smoke.__doc__.split("`--smoke`: ")[1])
    args = p.parse_args()
    if args.render:
        args.docs.write_text(render(json.loads(args.render.read_text())) + "\n")
        return
    import torch

    if args.smoke:
        smoke()
    elif not torch.cuda.is_available():
        sys.exit("no CUDA device: this script is for a GPU machine (--smoke checks it on the CPU)")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    os.environ["CNNVIT_CACHE_DIR"] = str(work / "store")  # the in-process sections' store
    out: dict = {"errors": {}, "seconds": {}}
    sections = {"env": lambda: sec_env(out), "tests": lambda: sec_tests(out, args.out),
                "matmul": lambda: sec_matmul(out), "big": lambda: sec_big(out, work),
                "evaluate": lambda: sec_evaluate(out, work), "arena": lambda: sec_arena(out, work)}
    wanted = set(args.only.split(",")) | {"env"} if args.only else set(sections)
    for name, fn in sections.items():
        if name not in wanted:
            continue
        t = time.perf_counter()
        try:
            fn()
        except Exception:  # record it and go on: one broken section must not cost the others' figures
            out["errors"][name] = traceback.format_exc()
        out["seconds"][name] = round(time.perf_counter() - t, 1)
        print(f"{name}: {out['seconds'][name]} s" + (" FAILED" if name in out["errors"] else ""), flush=True)
        (args.out / "gpu.json").write_text(json.dumps(out, indent=1))
        (args.out / "gpu.md").write_text(render(out) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(render(out))


if __name__ == "__main__":
    main()
