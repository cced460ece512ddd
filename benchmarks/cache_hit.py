"""Print how long a first evaluation and a repeated (cached) one take, in one run.

    .venv/bin/python benchmarks/cache_hit.py [--model resnet20] [--dataset shapes] [--split val]

Uses a fresh temporary store so the first run really computes.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", default="shapes")
    p.add_argument("--split", default="val")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    from core.data import load_dataset
    from core.evaluate import evaluate
    from core.store import Store

    store = Store(tempfile.mkdtemp(prefix="cnnvit-bench-"))
    atexit.register(shutil.rmtree, store.root, ignore_errors=True)
    load_dataset(args.dataset).split(args.split)  # data generation/loading is not what we time

    t = time.perf_counter()
    first = evaluate(args.model, args.dataset, args.split, store=store)
    first_s = time.perf_counter() - t
    hits = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        again = evaluate(args.model, args.dataset, args.split, store=store)
        hits.append(time.perf_counter() - t)
        assert again.cached and again.meta["top1"] == first.meta["top1"]
    hits.sort()
    median = hits[len(hits) // 2]
    print(f"{args.model} on {args.dataset}/{args.split}: {first.meta['n']} images, threads={os.cpu_count()} cores")
    print(f"  first run (computes):  {first_s:8.3f} s")
    print(f"  cache hit (median of {args.repeats}): {median:8.3f} s  (min {hits[0]:.3f}, max {hits[-1]:.3f})")
    print(f"  ratio hit/first:       {median / first_s:8.4f}")


if __name__ == "__main__":
    main()
