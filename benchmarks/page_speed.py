"""How long the Overview and Confusion-matrix pages take to run after the first load, on a 200-class
dataset with 10,000 predictions (a generated Tiny-ImageNet-layout tree, scored by a real model).

    .venv/bin/python benchmarks/page_speed.py [--classes 200] [--per-class 50] [--repeats 5]

Times Streamlit's AppTest script runs (the server-side work a browser waits for), in one process.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def tiny_imagenet(root: Path, classes: int, per_class: int) -> None:
    """A Tiny ImageNet tree (val only is scored) with 8x8 images upscaled to 64x64."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    wnids = [f"n{10000000 + i:08d}" for i in range(classes)]
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\tclass {i}\n" for i, w in enumerate(wnids)))
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for i in range(classes * per_class):
        w = wnids[i % classes]
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((64, 64)).save(
            root / "val" / "images" / f"val_{i}.png")
        lines.append(f"val_{i}.png\t{w}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    for w in wnids:  # a train split is not needed for scoring; one image per class keeps the layout valid
        (root / "train" / w / "images").mkdir(parents=True)
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "train" / w / "images" / f"{w}_0.png")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnnvit-pages-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    os.environ["CNNVIT_CACHE_DIR"] = str(work / "store")
    t = time.perf_counter()
    tiny_imagenet(work / "tiny", args.classes, args.per_class)
    print(f"generated {args.classes * args.per_class} images in {time.perf_counter() - t:.1f} s")

    from streamlit.testing.v1 import AppTest

    from core.evaluate import evaluate

    t = time.perf_counter()
    ev = evaluate("linear", str(work / "tiny"), "val")
    print(f"scored {ev.meta['n']} images over {ev.meta['num_classes']} classes in {time.perf_counter() - t:.1f} s")
    root = Path(__file__).resolve().parent.parent
    for page, setup in (("app_pages/overview.py", None), ("app_pages/confusion.py", None),
                        ("app_pages/confusion.py", "all")):
        at = AppTest.from_file(str(root / "app.py"), default_timeout=300)
        at.run()
        at.switch_page(page)
        t = time.perf_counter()
        at.run()
        first = time.perf_counter() - t
        if setup == "all":  # every class: a 200 x 200 matrix of cells
            [n] = [w for w in at.number_input if w.label == "How many"]
            n.set_value(args.classes)
            at.run()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
        assert not at.exception, [e.value for e in at.exception]
        what = page.split("/")[-1] + (f" ({args.classes} x {args.classes} cells)" if setup else "")
        print(f"{what:<40} first load {first:.2f} s, then median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}) over {args.repeats} reruns")


if __name__ == "__main__":
    main()
