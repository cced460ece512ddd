"""`python -m core ...`: the CLI contract of DESIGN.md. User errors: exit 2, one `error:` line."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any

from core import distributed
from core.data.registry import list_datasets
from core.errors import UserError
from core.progress import Progress
from core.settings import PRECISIONS
from core.store import Store, json_safe
from core.train.recipe import Recipe, recipe_fields

PRECISION_HELP = ("auto (default): bf16 on CPUs with AMX or AVX-512 BF16 and on GPUs, fp32 elsewhere; "
                  "CNNVIT_PRECISION sets the default")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints usage; the contract is one line
        raise UserError(message)


def _print_json(obj: Any) -> None:
    print(json.dumps(json_safe(obj), indent=2))  # JSON has no NaN: undefined scores become null


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:.2f}%" if pct else (f"{x:.4f}" if isinstance(x, float) else str(x))


def cmd_datasets(args) -> int:
    rows = [{"id": e.id, "name": e.name, "num_classes": e.num_classes, "splits": list(e.splits), "source": e.source}
            for e in list_datasets()]
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['id']:<15} {r['num_classes']:>4} classes  {'/'.join(r['splits']):<16} {r['source']:<9} {r['name']}")
        print("or a folder: Tiny ImageNet, ImageNet val (Kaggle or class folders), image folder, CSV-labelled folder")
    return 0


def cmd_models(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.models.listing import model_rows

    rows = model_rows()
    if args.json:
        _print_json(rows)
        return 0
    for source, title in (("scratch", "scratch architectures, sized here for 3x64x64 and 10 classes (each is sized "
                                      "from the dataset it runs on)"),
                          ("hf", "Hugging Face defaults (any other id works too; sizes counted offline from the "
                                 "architecture)"),
                          ("torchvision", "torchvision ImageNet weights"),
                          ("trained", "trained runs in the store (python -m core train ...)")):
        group = [r for r in rows if r["source"] == source]
        if not group:
            continue
        print(f"{title}:")
        print(f"  {'id':<40} {'family':<6} {'parameters':>12}  {'GFLOPs/image':>12}  input")
        for r in group:
            print(f"  {r['id']:<40} {r['family']:<6} {r['params']:>12,}  {r['gflops_per_image']:>12.4f}  "
                  f"{r['input_size'][0]}x{r['input_size'][1]}")
    print("GFLOPs: torch.utils.flop_counter, one forward pass of one image, a multiply-add counts as 2 FLOPs")
    print("also: timm:NAME for any timm model, or a path to a local model folder")
    return 0


def _progress(enabled: bool):
    if not enabled:
        return None

    def report(done: int, total: int) -> None:
        print(f"\r{done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return report


def cmd_evaluate(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.evaluate import evaluate

    w = distributed.world()
    try:
        ev = evaluate(args.model, args.dataset, args.split, limit=args.limit, batch_size=args.batch_size,
                      device=args.device, precision=args.precision,
                      progress=_progress(w.main and not args.json and sys.stderr.isatty()))
    finally:
        distributed.teardown()
    if not w.main:
        return 0  # rank 0 prints for every process
    s = ev.summary() | {"world_size": w.size}
    if args.json:
        _print_json(s)
    else:
        m = ev.meta
        print(f"{m.model} on {m.dataset}/{m.split}: {m.n} images"
              + (f" ({m.skipped} unreadable, skipped)" if m.skipped else "") + (" [cached]" if ev.cached else ""))
        scored = [(m.scoring, dict(m))] + ([(f"the dataset's {m.num_classes} classes only", m.restricted)]
                                          if m.restricted else [])
        for i, (label, scores) in enumerate(scored):
            if label != "native":
                print(f"  scored over {label}:"
                      + (f" ({m.outside} top-1 predictions outside the dataset)" if i == 0 else ""))
            for k in ("top1", "top5", "balanced_accuracy"):
                print(f"  {k:<18} {_fmt(scores[k], pct=True)}")
            for k in ("f1_macro", "cohen_kappa"):
                print(f"  {k:<18} {_fmt(scores[k])}")
        if m.calibration:
            c = m.calibration
            print(f"  {'ece':<18} {_fmt(c['ece'])} (15 bins; adaptive {_fmt(c['adaptive_ece'])})  "
                  f"nll {_fmt(c['nll'])}  brier {_fmt(c['brier'])}")
        print(f"  {'seconds':<18} {m.seconds:.3f} end-to-end, {m.model_seconds:.3f} in the model "
              f"({m.images_per_second:.1f} images/s on {m.device}, {m.precision}, batch {m.batch_size})"
              + (" - timings of the run that computed it" if ev.cached else ""))
    return 0


def cmd_predict(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.predict import predict_files

    results = predict_files(args.model, args.images, top_k=args.top_k, dataset=args.dataset, precision=args.precision)
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(r["image"])
            if "error" in r:
                print(f"  error: {r['error']}")
            for t in r["top"]:
                print(f"  {100 * t['probability']:6.2f}%  {t['label']}  (class {t['index']}"
                      + (f", {t['wnid']})" if t["wnid"] else ")"))
        if results:
            print(f"({results[0]['precision']})")
    failed = [r for r in results if "error" in r]
    if failed:  # the readable ones were still printed; the contract's one line says what failed
        print(f"error: {len(failed)} of {len(results)} images could not be read; first: {failed[0]['error']}",
              file=sys.stderr)
        return 2
    return 0


def _recipe(args):
    if getattr(args, "recipe_json", None):  # a multi-process job passes its recipe whole (core/jobs.py)
        return Recipe.from_dict(json.loads(args.recipe_json))
    # lazy: the registry and the arena import torch; `datasets` and `--help` answer without it
    from core.arena.run import model_recipe
    from core.models.scratch import is_scratch

    given = {f.name: getattr(args, f.name) for f in recipe_fields() if getattr(args, f.name) is not None}
    # unset: a scratch architecture's own recipe (as the arena and the Train page train it), else the Recipe's default
    own = model_recipe(args.model) if is_scratch(args.model) else {}
    return Recipe(**(own | given))


def _train_line(p: Progress) -> str:
    row = p.row
    if row is None:
        return (f"epoch {p.epoch + 1}/{p.epochs}  step {p.step}/{p.steps}"
                + (f"  ETA {p.eta_seconds:.0f} s" if p.eta_seconds is not None else ""))
    val = _fmt(row.get("val_top1"), pct=True)
    return (f"epoch {row['epoch']}/{p.epochs}  train loss {row['train_loss']:.4f}  val loss "
            f"{_fmt(row.get('val_loss'))}  val top-1 {val}  lr {row['lr']:.3g}  {row['seconds']:.1f} s "
            f"({row['images_per_second']:.0f} images/s)")


def _run_job_here(jobs, job, quiet: bool):
    """Run `job` in this process (the CLI is its worker), waiting while the concurrency limit is full."""
    waited = False
    while job.state == "queued":
        claimed = jobs.claim(job.id)
        if claimed is not None:
            job = claimed
            break
        if not waited and not quiet:
            print(f"job {job.id} is queued behind running jobs (limit CNNVIT_MAX_JOBS); waiting", flush=True)
            waited = True
        time.sleep(2)
        job = jobs.get(job.id)
    if job.state == "running" and job.pid == os.getpid():
        tty = sys.stdout.isatty()

        def show(p: Progress) -> None:  # on stdout: stderr holds only the one `error:` line a failure prints
            if quiet:
                return
            if p.row is not None:
                print(("\r" if tty else "") + _train_line(p) + " " * 10, flush=True)
            elif tty and p.epoch is not None:
                print("\r" + _train_line(p), end="", flush=True)

        job = jobs.run(job, on_progress=show)
    elif job.state == "running":  # another worker has it: follow its progress
        while job.state == "running":
            time.sleep(2)
            job = jobs.get(job.id)
    return job


def cmd_train(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.jobs import Jobs, TrainJob

    if distributed.launched():
        return _train_under_torchrun(args)
    recipe = _recipe(args)
    jobs = Jobs()
    title = recipe.title
    job = jobs.submit(TrainJob(recipe, device=args.device), start_worker=args.detach)
    already_done = job.state == "done"
    if args.detach:
        print(json.dumps({"job": job.id, "state": job.state, "run_id": recipe.run_id}) if args.json
              else f"job {job.id} {job.state}: {title} (run {recipe.run_id}); follow it with `python -m core jobs`")
        return 0
    if not args.json:
        print(f"run {recipe.run_id}: {title}", flush=True)
    job = _run_job_here(jobs, job, quiet=args.json)
    if job.state != "done":
        raise UserError(f"job {job.id} {job.state}: {job.error or ''}".rstrip(": "))

    meta = Store().get(recipe.run_id).meta
    out = _train_json(recipe, meta, already_done or bool(job.result and job.result.get("cached")))
    if args.json:
        _print_json(out)
    else:
        if out["cached"]:
            for h in meta["history"]:
                print(_train_line(Progress(row=h, epochs=recipe.epochs)))
        print(f"done: model id {meta['model_id']} (use it as --model), val top-1 {_fmt(meta['val_top1'], pct=True)} "
              f"on {meta['val_split']}" + (" [cached]" if out["cached"] else ""))
    return 0


def _train_json(recipe: Recipe, meta: dict, cached: bool) -> dict:
    """The `train --json` object (shared/DESIGN.md) of a finished run."""
    history = [{k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "val_top1", "val_top5", "val_f1_macro",
                                      "val_cohen_kappa", "lr", "seconds", "images_per_second", "grad_norm")}
               for h in meta["history"]]
    return {"run_id": recipe.run_id, "model": recipe.model, "dataset": meta["dataset"], "epochs": recipe.epochs,
            "history": history, "model_id": meta["model_id"], "world_size": recipe.world_size, "cached": cached}


def _train_under_torchrun(args) -> int:
    """`torchrun --nproc-per-node N -m core train ...`: every rank trains its share (core/train/loop.py); rank 0
    alone prints. The recipe's world size is torchrun's unless --world-size says otherwise (then it must agree)."""
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.train.loop import train

    w = distributed.world()
    recipe = _recipe(args)
    if args.world_size is None:
        recipe = dataclasses.replace(recipe, world_size=w.size)
    if args.detach:
        raise UserError("--detach queues a job for a background worker; under torchrun every process trains here")
    show = None
    if w.main and not args.json:
        print(f"run {recipe.run_id}: {recipe.title} on {w.size} processes", flush=True)

        def show(p: Progress) -> None:
            if p.row is not None:
                print(_train_line(p), flush=True)
    try:
        res = train(recipe, device=args.device, progress=show)
    finally:
        distributed.teardown()
    if not w.main:
        return 0
    meta = res.meta
    out = _train_json(recipe, meta, res.cached)
    if args.json:
        _print_json(out)
    else:
        print(f"done: model id {meta['model_id']} (use it as --model), val top-1 {_fmt(meta['val_top1'], pct=True)} "
              f"on {meta['val_split']}" + (" [cached]" if res.cached else ""))
    return 0


def cmd_jobs(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.jobs import Jobs

    jobs = Jobs()
    if args.action == "cancel":
        job = jobs.cancel(_job_id(args))
        print(f"job {job.id}: {job.state}" + (" (stops at its next step)" if job.cancel else ""))
        return 0
    if args.action == "resume":
        job = jobs.resume(_job_id(args))
        print(f"job {job.id}: {job.state}")
        return 0
    rows = [j.summary() for j in jobs.list()]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no jobs")
    for r in rows:
        p = Progress.from_json(r["progress"])
        print(f"{r['id']:>4}  {r['state']:<11} {p.where():<14} {r['title']}"
              + (f"\n      {p.message}" if r["kind"] == "train" and r["state"] == "running" and p.message else "")
              + (f"\n      {r['error']}" if r["error"] and r["state"] != "done" else ""))
    return 0


def _job_id(args) -> int:
    if args.job_id is None:
        raise UserError(f"jobs {args.action} needs a job id (see `python -m core jobs`)")
    return args.job_id


def cmd_worker(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.jobs import Jobs

    if args.nice:
        os.nice(args.nice)
    Jobs().work()
    return 0


def cmd_demo(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.demo import run_demo

    t0 = time.perf_counter()
    result = run_demo(progress=lambda p: print(p.message, flush=True) if p.message and not args.json else None)
    print(json.dumps(result, indent=2) if args.json else
          f"demo done in {time.perf_counter() - t0:.0f} s: " + ", ".join(
              [f"{r['model']} {_fmt(r['top1'], pct=True)}" for r in result["evaluations"]]
              + [f"{r['model']} diverged ({r['diverged']})" for r in result["runs"] if "diverged" in r]))
    return 0


def cmd_report(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.report import build_report, choose_evaluations, write_report

    compared = choose_evaluations(args.models.split(","), args.dataset, args.split)
    result = write_report(build_report(compared, images=args.images, method=args.method), args.out)
    if args.json:
        _print_json(result)
    else:
        print(f"wrote {result['path']} ({result['bytes'] / 1e6:.2f} MB): {', '.join(result['sections'])}")
    return 0


def cmd_shape_bias(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.shape_bias import shape_bias

    r = shape_bias(args.model, args.dataset, precision=args.precision, device=args.device)
    if args.json:
        _print_json(r)
        return 0

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    print(f"{r['model']} on {r['dataset']} ({r['n']} cue-conflict images, {r['precision']})"
          + (" (cached)" if r["cached"] else ""))
    print(f"  shape bias {pct(r['shape_bias'])}  coverage {pct(r['coverage'])}  "
          f"({r['shape_decisions']} shape, {r['texture_decisions']} texture decisions)")
    if r["controls"]:
        print(f"  controls: shape only {pct(r['controls']['shape-only'])} top-1, "
              f"texture only {pct(r['controls']['texture-only'])} top-1")
    for ref in r.get("reference", []):
        print(f"  published: {ref['label']} {pct(ref['shape_bias'])}")
    for c in r["per_class"]:
        print(f"  {c['class']:<10} shape bias {pct(c['shape_bias']):>6}  coverage {pct(c['coverage']):>6}")
    return 0


def cmd_robustness(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.data.corruptions import TABLE_NAMES
    from core.jobs import Jobs, RobustnessJob
    from core.robustness import parse_corruptions, parse_severities, robustness

    names, severities = parse_corruptions(args.corruptions), parse_severities(args.severities)
    if args.detach:
        if args.baseline:
            raise UserError("--detach measures one model; detach the baseline as a job of its own, then compare "
                            "with --baseline (without --detach: stored evaluations are read back)")
        job = Jobs().submit(RobustnessJob(args.model, args.dataset, args.split, names, severities, args.limit,
                                          args.device, args.precision))
        _print_json(job.summary()) if args.json else print(f"job {job.id} {job.state}: {job.title}")
        return 0
    r = robustness(args.model, args.dataset, args.split, names=names, severities=severities, limit=args.limit,
                   baseline=args.baseline, precision=args.precision, device=args.device,
                   progress=_progress(not args.json and sys.stderr.isatty()))
    if args.json:
        _print_json(r)
        return 0
    print(f"{r['model']} on {r['dataset']}/{r['split']} ({r['n']} images, {r['precision']}, "
          f"{TABLE_NAMES.get(r['parameters'], r['parameters'])} corruption parameters)"
          + (" (cached)" if r["cached"] else ""))
    print(f"  clean top-1 {_fmt(r['clean_top1'], pct=True)}  ECE {_fmt(r['ece'])}  NLL {_fmt(r['nll'])}  "
          f"Brier {_fmt(r['brier'])}")
    ts = r["temperature_scaling"]
    if ts["temperature"]:
        print(f"  temperature {ts['temperature']:.3f} ({ts['split']}): ECE {_fmt(ts['before']['ece'])} -> "
              f"{_fmt(ts['after']['ece'])}, NLL {_fmt(ts['before']['nll'])} -> {_fmt(ts['after']['nll'])}")
    else:
        print(f"  {ts['why']}")
    ce = {c["corruption"]: c for c in r.get("per_corruption_errors", [])}
    for c in r["per_corruption"]:
        row = [x for x in r["results"] if x["corruption"] == c["corruption"]]
        cells = "  ".join(f"s{x['severity']} {_fmt(x['top1'], pct=True):>7}" for x in row)
        extra = (f"  CE {_fmt(ce[c['corruption']]['ce'])}" if c["corruption"] in ce else "")
        print(f"  {c['corruption']:<18} mean {_fmt(c['mean_top1'], pct=True):>7}  {cells}{extra}")
    print(f"  mean over corruptions {_fmt(r['mean_corruption_top1'], pct=True)}")
    if args.baseline:
        print(f"  against {args.baseline}: mCE {_fmt(r.get('mce'))}  relative mCE {_fmt(r.get('relative_mce'))}")
    return 0


def cmd_arena(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.arena.run import summarize
    from core.arena.spec import ArenaSpec, diverged_text, how_sure
    from core.jobs import ArenaJob, Jobs

    spec = ArenaSpec(models=tuple(args.models.split(",")), dataset=args.dataset, budget=args.budget, seeds=args.seeds,
                     sizes=tuple(_sizes(args.sizes)), limit=args.limit, val_limit=args.val_limit,
                     image_size=args.image_size or None, batch_size=args.batch_size, augment=args.augment,
                     amp=args.amp, lr=args.lr)
    jobs = Jobs()
    job = jobs.submit(ArenaJob(spec, device=args.device), start_worker=args.detach)
    if args.detach:
        print(json.dumps({"job": job.id, "state": job.state, "key": spec.key}) if args.json
              else f"job {job.id} {job.state}: {spec.title}; follow it with `python -m core jobs`")
        return 0
    if not args.json:
        print(spec.title, flush=True)
    job = _run_job_here(jobs, job, quiet=True)
    if job.state != "done":
        raise UserError(f"job {job.id} {job.state}: {job.error or ''}".rstrip(": "))
    out = summarize(spec, jobs.store)
    if args.json:
        _print_json({k: v for k, v in out.items() if k != "curves"})
        return 0
    for k, v in out["held_equal"].items():
        print(f"  held equal - {k}: {v}" if k != "own" else f"  each model's own: {v}")
    print(f"  same images in the same order for every model: {'yes' if out['same_data'] else 'NO'} "
          f"(data digest {out['data_digest']})")
    print(f"{'model':<16} {'size':>7} {'val top-1':>17} {'seeds':>5} {'train PFLOPs':>12} {'seconds':>8} {'params':>10}")
    for r in out["results"]:
        # a mean over seeds to one decimal, as its interval and the report (two read as more certain than it is);
        # FLOPs to 3 significant figures, so a small arena's PFLOPs is not 0.000
        top1, ci, flops, seconds, params = (("-" if v is None or not math.isfinite(v) else format(v, f)) for v, f in (
            (r["top1_mean"], ".1%"), (r["top1_ci95"], ".1%"), (r["train_flops"] and r["train_flops"] / 1e15, ".3g"),
            (r["seconds"], ".0f"), (r["params"], ",")))
        top1 += f" ± {ci}" * (ci != "-")
        print(f"{r['model']:<16} {r['size']:>7,} {top1:>17} {r['runs_done']:>5} {flops:>12} {seconds:>8} {params:>10}")
    for line in how_sure(out["results"], out["dataset"]):
        print("  " + line)
    for c in out["crossovers"]:
        print("  " + c["text"])
    if out["diverged"]:
        print("  " + diverged_text(out["diverged"]))
    return 0


def _sizes(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes takes training-set sizes separated by commas (500,2000,5000), not {text!r}") from None


def cmd_explain(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.explain import explain_to_png

    if args.score:
        return _explain_score(args)
    if not args.image or not args.out:
        raise UserError("explain needs --image and --out (or --score, to score heat maps)")
    opts = {k: getattr(args, k) for k in ("head_fusion", "discard_ratio") if getattr(args, k) is not None}
    expl = explain_to_png(args.model, args.image, args.method, args.out, layer=args.layer,
                          class_index=args.class_index, dataset=args.dataset, precision=args.precision, **opts)
    top = f"; top-1 {expl.top5[0][0]} {100 * expl.top5[0][1]:.1f}% ({expl.precision})" if expl.top5 else ""
    cls = f" for class {expl.class_index} ({expl.class_label})" if expl.class_index is not None else ""
    print(f"{args.out}: {args.method} of {args.model}" + (f" at {expl.layer}" if expl.layer else "") + cls + top)
    if expl.note:
        print(f"  {expl.note}")
    return 0


def _explain_score(args) -> int:
    """`explain --score`: deletion, insertion and ROAD of one image's map (--image), or of N images of a
    dataset's split (no --image), against the random and centre-prior maps."""
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.data.decode import decode_image
    from core.explain.scores import DEFAULT_IMAGES, explain_score, faithfulness_rows, parse_methods
    from core.jobs import FaithfulnessJob, Jobs
    from core.predict import load_for_prediction

    methods = parse_methods(args.method)
    opts = {k: getattr(args, k) for k in ("head_fusion", "discard_ratio") if getattr(args, k) is not None}
    if args.image:
        if len(methods) > 1:
            raise UserError("--score with --image scores one --method; give several without --image (a dataset)")
        model = load_for_prediction(args.model, args.dataset)
        r = explain_score(model, decode_image(args.image), methods[0], args.class_index, layer=args.layer, **opts)
        if args.json:
            _print_json(r)
            return 0
        print(f"{r['method']} of {r['model']} for class {r['class_index']} ({r['class_label']}): deletion AUC "
              f"{r['deletion_auc']:.3f} (lower is better), insertion AUC {r['insertion_auc']:.3f} (higher)")
        for b, v in r["baselines"].items():
            print(f"  {b} map: deletion {v['deletion_auc']:.3f}, insertion {v['insertion_auc']:.3f}")
        return 0
    if not args.dataset:
        raise UserError("--score needs --image, or --dataset to score N images of its split")
    limit = args.limit or DEFAULT_IMAGES
    if args.detach:
        job = Jobs().submit(FaithfulnessJob(args.model, args.dataset, methods, args.split, limit, args.layer))
        _print_json(job.summary()) if args.json else print(f"job {job.id} {job.state}: {job.title}")
        return 0
    rows = faithfulness_rows(args.model, args.dataset, methods, args.split, limit=limit, layer=args.layer,
                             progress=_progress(not args.json and sys.stderr.isatty()))
    if args.json:
        _print_json({"model": args.model, "dataset": args.dataset, "split": args.split, "limit": limit,
                     "rows": rows})
        return 0
    for r in rows:
        if "error" in r:
            print(f"  {r['method']:<10} {r['error']}")
            continue
        print(f"  {r['method']:<10} deletion {_fmt(r['deletion_auc'])} ± {_fmt(r['deletion_auc_ci95'])}  "
              f"insertion {_fmt(r['insertion_auc'])} ± {_fmt(r['insertion_auc_ci95'])}  ROAD MoRF "
              f"{_fmt(r['road_morf'])} LeRF {_fmt(r['road_lerf'])}  ({r['n']} images"
              + (", cached)" if r["cached"] else ")"))
    return 0


def cmd_bench(args) -> int:
    # lazy: each command imports only what it runs, so `datasets` or `--help` answer without torch
    from core.bench import bench

    r = bench(args.model, dataset=None if args.no_end_to_end else args.dataset, split=args.split,
              batch_size=args.batch_size, device=args.device, precision=args.precision, repeats=args.repeats,
              end_to_end_images=args.images, compile=args.compile, label_dataset=args.dataset)
    if args.json:
        _print_json(r)
        return 0
    print(f"{r['model']} on {r['device']} ({r['machine']}), {r['dtype']}, batch {r['batch_size']}")
    if r["compile_seconds"] is not None:
        print(f"  torch.compile       {r['compile_seconds']:10.1f} s to compile")
    print(f"  forward only        {r['forward_images_per_second']:10.1f} images/s  "
          f"(spread {r['forward_spread'][0]:.1f}-{r['forward_spread'][1]:.1f})")
    if r["end_to_end_images_per_second"] is not None:
        lo, hi = r["end_to_end_spread"]
        print(f"  end to end          {r['end_to_end_images_per_second']:10.1f} images/s  (spread {lo:.1f}-{hi:.1f}; "
              f"{r['end_to_end_images']} images of {r['end_to_end_dataset']} to stored predictions)")
        print(f"  decode + resize     {r['decode_images_per_second_per_core']:10.1f} images/s per core")
        if r["ideal_images_per_second"]:
            print(f"  pipeline efficiency {r['pipeline_efficiency']:10.2f}  (end to end / {r['ideal_images_per_second']:.1f}"
                  f" images/s, the ideal the decode and forward rates allow on {r['cores']} cores)")
    print(f"  batch-1 latency     {r['latency_ms_p50']:10.2f} ms p50, {r['latency_ms_p90']:.2f} ms p90")
    print(f"  GFLOPs per image    {r['gflops_per_image']:10.4f}  (multiply-add = 2)")
    if r["utilisation"] is not None:
        print(f"  utilisation         {100 * r['utilisation']:9.1f}%  of a measured {r['dtype']} matrix multiply "
              f"({r['matmul_gflops_per_second']:.0f} GFLOP/s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m core", description="CNN vs ViT Lab: compare CNNs and vision transformers")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("datasets", help="list datasets")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_datasets)

    s = sub.add_parser("models", help="list models")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_models)

    s = sub.add_parser("evaluate", help="score a model on a dataset split (cached)")
    s.add_argument("--model", required=True, help="model id, Hugging Face id, or local model folder")
    s.add_argument("--dataset", required=True, help="dataset id or folder")
    s.add_argument("--split", default=None, help="default: val (or test/train when there is no val)")
    s.add_argument("--limit", type=int, default=None, help="score a fixed subset of N images")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.add_argument("--precision", choices=PRECISIONS, default=None, help=PRECISION_HELP)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_evaluate)

    s = sub.add_parser("predict", help="top-k classes for image files")
    s.add_argument("--model", required=True)
    s.add_argument("images", nargs="+", metavar="IMAGE")
    s.add_argument("--top-k", type=int, default=5)
    s.add_argument("--dataset", default=None, help="label space for a scratch model (default: shapes)")
    s.add_argument("--precision", choices=PRECISIONS, default=None, help=PRECISION_HELP)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_predict)

    s = sub.add_parser("train", help="train a model (a job; runs here, or in the background with --detach)",
                       description="Train a model. A flag left out takes a scratch architecture's own recipe (its "
                       "optimizer, learning rate, weight decay, warm-up and label smoothing, as the arena and the "
                       "Train page train it), and otherwise the default shown.")

    for f in recipe_fields():  # every flag left out is None, which leaves the Recipe's default
        text = f.help.replace("%", "%%")  # argparse formats help with %
        if f.type is bool and f.default:  # on unless turned off: --no-amp
            s.add_argument("--no-" + f.flag[2:], dest=f.name, action="store_false", default=None,
                           help="turn off " + text)
        elif f.type is bool:
            s.add_argument(f.flag, action="store_true", default=None, help=text)
        else:
            shown = "" if f.required or f.optional else f" (default {f.default})"
            s.add_argument(f.flag, type=f.type, required=f.required, choices=None if f.combine else f.choices or None,
                           help=text + shown)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="where to train: auto (CUDA when there is one; CNNVIT_DEVICE sets the default), cpu or cuda")
    s.add_argument("--detach", action="store_true", help="queue it for a background worker and return")
    s.add_argument("--recipe-json", default=None, help="the whole recipe as JSON, instead of its flags (how a "
                   "training job with several processes hands it to torchrun)")
    s.add_argument("--json", action="store_true", help="print the run id, history and model id as JSON")
    s.set_defaults(run=cmd_train)

    s = sub.add_parser("bench", help="forward, end-to-end and batch-1 speed of a model (stored)")
    s.add_argument("--model", required=True)
    s.add_argument("--dataset", default="shapes", help="images for the end-to-end figure (and a scratch model's labels)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--split", default=None)
    s.add_argument("--images", type=int, default=512, help="images for the end-to-end figure")
    s.add_argument("--no-end-to-end", action="store_true", help="forward and latency only")
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.add_argument("--precision", choices=PRECISIONS, default=None, help=PRECISION_HELP)
    s.add_argument("--compile", action="store_true", help="torch.compile the model first (reports compile time; "
                   "forward and latency only)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_bench)

    s = sub.add_parser("jobs", help="list jobs; cancel or resume one")
    s.add_argument("action", nargs="?", choices=["list", "cancel", "resume"], default="list")
    s.add_argument("job_id", nargs="?", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_jobs)

    s = sub.add_parser("worker", help="run queued jobs until none is left (started for you)")
    s.add_argument("--nice", type=int, default=0, help="raise this process's niceness by N first (the app starts "
                   "its workers at 10: jobs yield the CPU to pages)")
    s.set_defaults(run=cmd_worker)

    s = sub.add_parser("explain", help="filters, feature maps, attention, rollout or a CAM of one image as a PNG; "
                       "with --score, how faithful a heat map is (deletion, insertion, ROAD)")
    s.add_argument("--model", required=True)
    s.add_argument("--image", default=None, help="image file (with --score and no --image: N images of --dataset)")
    s.add_argument("--method", required=True, help="filters, feature-maps, attention, rollout, gradcam, gradcam++, "
                   "scorecam or eigencam; with --score over a dataset, several separated by commas")
    s.add_argument("--out", default=None, help="PNG file to write")
    s.add_argument("--score", action="store_true", help="deletion and insertion AUC and ROAD of the heat map, "
                   "with the random and centre-prior maps as baselines")
    s.add_argument("--split", default=None, help="--score over a dataset: its split (default: its default)")
    s.add_argument("--limit", type=int, default=None, help="--score over a dataset: this many images (default 200)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--detach", action="store_true", help="--score over a dataset: run in the background (a job)")
    s.add_argument("--layer", default=None, help="layer name (attention: layer number); default per method")
    s.add_argument("--class-index", type=int, default=None, help="class to explain (default: the predicted one)")
    s.add_argument("--dataset", default=None, help="label space for a scratch model (default: shapes)")
    s.add_argument("--head-fusion", choices=["mean", "max", "min"], default=None, help="rollout: fuse heads by")
    s.add_argument("--discard-ratio", type=float, default=None, help="rollout: drop this fraction of weakest links")
    s.add_argument("--precision", choices=PRECISIONS, default=None, help=PRECISION_HELP + "; the prediction and "
                   "default class come from a forward at this precision (the maps themselves are fp32)")
    s.set_defaults(run=cmd_explain)

    s = sub.add_parser("shape-bias", help="shape vs texture: the share of cue-conflict decisions a model makes by "
                                          "shape (Geirhos et al. 2019), on generated shapes-textured or "
                                          "the published stimuli")
    s.add_argument("--model", required=True, help="on shapes-textured: a model whose classes are shapes' (scratch id "
                                                  "or trained run); on the stimuli: an ImageNet-1k model")
    s.add_argument("--dataset", default="shapes-textured",
                   help="shapes-textured (generated; the default) or a folder of the published cue-conflict stimuli "
                        "(16 category folders, airplane/airplane1-bicycle2.png)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.add_argument("--precision", choices=PRECISIONS, default=None, help=PRECISION_HELP)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_shape_bias)

    s = sub.add_parser("robustness", help="top-1 and calibration under the ImageNet-C corruptions (Hendrycks & "
                                          "Dietterich 2019) at severities 1-5; mCE against a baseline model")
    s.add_argument("--model", required=True)
    s.add_argument("--dataset", required=True, help="dataset id or folder")
    s.add_argument("--split", default=None, help="default: val (temperature is fitted here, reported on test)")
    s.add_argument("--corruptions", default=None, help="names separated by commas (default: all), e.g. "
                   "gaussian_noise,defocus_blur,contrast,jpeg_compression")
    s.add_argument("--severities", default=None, help="e.g. 1,3,5 (default 1,2,3,4,5)")
    s.add_argument("--baseline", default=None, help="a model to measure corruption errors (mCE) against")
    s.add_argument("--limit", type=int, default=None, help="a fixed subset of N images of each split")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.add_argument("--precision", choices=PRECISIONS, default=None, help=PRECISION_HELP)
    s.add_argument("--detach", action="store_true", help="run in the background (a job)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_robustness)

    s = sub.add_parser("arena", help="train models on the same images with the same budget over several seeds; "
                                     "mean and 95%% interval of val top-1 per model (and per training-set size)")
    s.add_argument("--models", required=True, help="scratch architecture ids separated by commas")
    s.add_argument("--dataset", default="shapes", help="dataset id or folder (default shapes; a size in --sizes "
                   "above 5,000 trains on shapes generated to that size, shapes-N)")
    s.add_argument("--budget", default="epochs:8", help="epochs:N, steps:N, seconds:S or flops:F, the same for "
                   "every model (default epochs:8)")
    s.add_argument("--seeds", type=int, default=3, help="seeds per model (default 3)")
    s.add_argument("--sizes", default=None, help="training-set sizes, e.g. 500,2000,5000,20000 (each model at each)")
    s.add_argument("--limit", type=int, default=None, help="train on N images (without --sizes)")
    s.add_argument("--val-limit", type=int, default=500, help="validation images (default 500)")
    s.add_argument("--image-size", type=int, default=32, help="image side in pixels (default 32; 0: the dataset's)")
    s.add_argument("--batch-size", type=int, default=64, help="batch size, the same for every model (default 64)")
    s.add_argument("--augment", default="none", help="augmentation, the same for every model (default none)")
    s.add_argument("--no-amp", dest="amp", action="store_false", help="train in fp32 (default: bf16 autocast "
                   "where the hardware has it)")
    s.add_argument("--lr", type=float, default=None, help="one peak learning rate for every model instead of each "
                   "one's own (for a learning-rate sweep that treats every model alike)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.add_argument("--detach", action="store_true", help="run in the background (a job)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_arena)

    s = sub.add_parser("report", help="one self-contained HTML file (or a PDF) comparing models from their stored "
                                      "evaluations: leaderboard, time, classes, confusions, curves, explanations")
    s.add_argument("--models", required=True, help="model ids separated by commas, each evaluated on --dataset")
    s.add_argument("--dataset", required=True, help="dataset id or folder")
    s.add_argument("--split", default=None, help="default: the split most of the models were evaluated on")
    s.add_argument("--out", required=True, help="report.html, or report.pdf (printed by headless Chromium)")
    s.add_argument("--images", type=int, default=3, help="images for the explanations side by side (0: none)")
    s.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++", "scorecam", "eigencam"],
                   help="the explanations' method (default gradcam)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_report)

    s = sub.add_parser("demo", help="fill an empty store: train and evaluate small models on shapes")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
