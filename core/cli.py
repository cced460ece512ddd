"""`python -m core ...`: the CLI contract of DESIGN.md. User errors: exit 2, one `error:` line."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from core.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints usage; the contract is one line
        raise UserError(message)


def _clean(obj: Any) -> Any:
    """JSON has no NaN: undefined scores become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _print_json(obj: Any) -> None:
    print(json.dumps(_clean(obj), indent=2))


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:.2f}%" if pct else (f"{x:.4f}" if isinstance(x, float) else str(x))


def cmd_datasets(args) -> int:
    from core.data.registry import list_datasets

    rows = [{"id": e.id, "name": e.name, "num_classes": e.num_classes, "splits": list(e.splits), "source": e.source}
            for e in list_datasets()]
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['id']:<10} {r['num_classes']:>4} classes  {'/'.join(r['splits']):<16} {r['source']:<9} {r['name']}")
        print("or a folder: Tiny ImageNet, ImageNet val (Kaggle or class folders), image folder, CSV-labelled folder")
    return 0


def cmd_models(args) -> int:
    from core.models.listing import model_rows

    rows = model_rows()
    if args.json:
        _print_json(rows)
        return 0
    for source, title in (("scratch", "scratch architectures, sized here for 3x64x64 and 10 classes (each is sized "
                                      "from the dataset it runs on)"),
                          ("hf", "Hugging Face defaults (any other id works too; sizes counted offline from the "
                                 "architecture)"),
                          ("torchvision", "torchvision ImageNet weights")):
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
    from core.evaluate import evaluate

    ev = evaluate(args.model, args.dataset, args.split, limit=args.limit, batch_size=args.batch_size,
                  device=args.device, progress=_progress(not args.json and sys.stderr.isatty()))
    s = ev.summary()
    if args.json:
        _print_json(s)
    else:
        m = ev.meta
        print(f"{m['model']} on {m['dataset']}/{m['split']}: {m['n']} images"
              + (f" ({m['skipped']} unreadable, skipped)" if m.get("skipped") else "")
              + (" [cached]" if ev.cached else ""))
        scored = [(m.get("scoring", "native"), m)] + ([(f"the dataset's {m['num_classes']} classes only",
                                                        m["restricted"])] if m.get("restricted") else [])
        for label, scores in scored:
            if label != "native":
                print(f"  scored over {label}:"
                      + (f" ({m['outside']} top-1 predictions outside the dataset)" if scores is m else ""))
            for k in ("top1", "top5", "balanced_accuracy"):
                print(f"  {k:<18} {_fmt(scores[k], pct=True)}")
            for k in ("f1_macro", "cohen_kappa"):
                print(f"  {k:<18} {_fmt(scores[k])}")
        print(f"  {'seconds':<18} {m['seconds']:.3f} end-to-end, {m['model_seconds']:.3f} in the model "
              f"({m['images_per_second']:.1f} images/s on {m['device']}, batch {m['batch_size']})"
              + (" - timings of the run that computed it" if ev.cached else ""))
    return 0


def cmd_predict(args) -> int:
    from core.predict import predict_files

    results = predict_files(args.model, args.images, top_k=args.top_k, dataset=args.dataset)
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(r["image"])
            if "error" in r:
                print(f"  error: {r['error']}")
            for t in r["top"]:
                print(f"  {100 * t['probability']:6.2f}%  {t['label']}")
    failed = [r for r in results if "error" in r]
    if failed:  # the readable ones were still printed; the contract's one line says what failed
        print(f"error: {len(failed)} of {len(results)} images could not be read; first: {failed[0]['error']}",
              file=sys.stderr)
        return 2
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
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_evaluate)

    s = sub.add_parser("predict", help="top-k classes for image files")
    s.add_argument("--model", required=True)
    s.add_argument("images", nargs="+", metavar="IMAGE")
    s.add_argument("--top-k", type=int, default=5)
    s.add_argument("--dataset", default=None, help="label space for a scratch model (default: shapes)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_predict)
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
