"""Is `shapes` hard enough? Train a linear model and small CNNs briefly on it and print val top-1.

    .venv/bin/python benchmarks/shapes_difficulty.py [--epochs 3] [--models linear cnn-2layer resnet20]

A plain Adam loop (the full trainer is core/train.py's job); same data, same epochs for every model.
"""
from __future__ import annotations

import argparse
import atexit
import shutil
import time

import torch
import torch.nn.functional as F


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["linear", "cnn-2layer", "resnet20"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args()

    from core.data import load_dataset
    from core.evaluate import evaluate
    from core.models.registry import create_model
    from core.store import Store
    import tempfile

    ds = load_dataset("shapes")
    train = ds.split("train")
    x_all = torch.from_numpy(train.images).permute(0, 3, 1, 2)
    y_all = torch.from_numpy(train.labels)
    store = Store(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, store.root, ignore_errors=True)
    print(f"shapes: {len(train)} train images, {args.epochs} epochs, Adam lr {args.lr}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")
    for model_id in args.models:
        torch.manual_seed(0)
        m = create_model(model_id, ds)
        opt = torch.optim.Adam(m.module.parameters(), lr=args.lr)
        t = time.perf_counter()
        for epoch in range(args.epochs):
            m.module.train()
            perm = torch.randperm(len(y_all))
            for s in range(0, len(perm), args.batch_size):
                idx = perm[s:s + args.batch_size]
                logits = m.logits(m.preprocess.normalize(x_all[idx]))
                loss = F.cross_entropy(logits, y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        m.module.eval()
        m._digest = None  # weights changed
        ev = evaluate(m, ds, "val", store=store)
        print(f"  {model_id:<12} val top-1 {100 * ev.meta['top1']:5.1f}%  top-5 {100 * ev.meta['top5']:5.1f}%  "
              f"({time.perf_counter() - t:.0f} s to train)")


if __name__ == "__main__":
    main()
