"""The long fuzzing run: every target of tests/test_fuzz.py with many more cases, each in its own child process.

    .venv/bin/python benchmarks/fuzz.py [--examples 50000] [--seed 1] [--targets decode csv-folder ...]
                                        [--timeout-s 3600] [--json results.json] [--worst | --worst-only]

Per target it prints the cases run, the failures (a property broken: Hypothesis' shrunk input and traceback follow
the table), the cases that hit a known unfixed bug (tests/fuzz_regressions/, stepped over as in CI), the seconds
and the child's peak RSS growth. A child past --timeout-s is a hang. --seed picks Hypothesis' seed (a run with the
same seed and count replays the same cases); without it the run is the CI one's derandomized sequence, longer.
--worst also decodes the most memory-hungry files the decoder accepts (6324x6324 = 39,992,976 pixels, just under
its 40 M cap: 8-bit RGB, RGBA, 16-bit gray PNG, 32-bit float and integer TIFF), each in a fresh process, and prints
their peak RSS growth against the same bound: mutations alone rarely build one.
Exits 1 when a property failed, a child hung or one grew past the memory bound.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


WORST = """
import io, json, sys
import numpy as np
from PIL import Image
from core.data.decode import MAX_PIXELS, decode_image

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

kind, side = sys.argv[1], 6324
assert side * side <= MAX_PIXELS
img, fmt, kw = {
    "png-rgb": (lambda: Image.new("RGB", (side, side), (1, 2, 3)), "PNG", {}),
    "png-rgba": (lambda: Image.new("RGBA", (side, side), (1, 2, 3, 128)), "PNG", {}),
    "png-16bit": (lambda: Image.fromarray(np.full((side, side), 300, np.uint16)), "PNG", {}),
    "tiff-float32": (lambda: Image.fromarray(np.ones((side, side), np.float32)), "TIFF",
                     {"compression": "tiff_adobe_deflate"}),
    "tiff-int32": (lambda: Image.fromarray(np.full((side, side), 70000, np.int32)), "TIFF",
                   {"compression": "tiff_adobe_deflate"}),
}[kind]
buf = io.BytesIO()
img().save(buf, fmt, **kw)
data = buf.getvalue()
del buf
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = peak_mb()
pixels = decode_image(data, name=kind)
print(json.dumps({"kind": kind, "file_kb": len(data) // 1024, "shape": list(pixels.shape),
                  "peak_growth_mb": round(peak_mb() - before, 1)}))
"""
WORST_KINDS = ["png-rgb", "png-rgba", "png-16bit", "tiff-float32", "tiff-int32"]


def worst(bound_mb: float, timeout_s: float) -> bool:
    """Decode each at-the-cap file in a fresh process; False when one grows past bound_mb."""
    print("\n| accepted file at the pixel cap | file size (KB) | peak RSS growth while decoding (MB) |")
    print("| --- | --- | --- |")
    ok = True
    for kind in WORST_KINDS:
        proc = subprocess.run([sys.executable, "-c", WORST, kind], cwd=Path(__file__).resolve().parents[1],
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            print(f"| {kind} | - | failed: {proc.stderr.strip().splitlines()[-1]} |")
            ok = False
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        ok &= r["peak_growth_mb"] < bound_mb
        print(f"| {kind} 6324x6324 | {r['file_kb']} | {r['peak_growth_mb']} |", flush=True)
    return ok


def main() -> int:
    import test_fuzz

    p = argparse.ArgumentParser()
    p.add_argument("--examples", type=int, default=50_000, help="cases per target")
    p.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: derandomized, as in CI)")
    p.add_argument("--targets", nargs="+", default=list(test_fuzz.TARGETS), choices=list(test_fuzz.TARGETS))
    p.add_argument("--timeout-s", type=float, default=3600, help="a target's child past this is a hang")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--worst", action="store_true", help="also measure the most memory-hungry accepted files")
    p.add_argument("--worst-only", action="store_true", help="only measure those (no fuzzing)")
    args = p.parse_args()
    if args.worst_only:
        return 0 if worst(test_fuzz.MEMORY_BOUND_MB, args.timeout_s) else 1

    results = []
    for target in args.targets:
        start = time.perf_counter()
        try:
            (r,) = test_fuzz.run_child([target], args.examples, args.timeout_s, args.seed)
        except subprocess.TimeoutExpired:
            r = {"target": target, "cases": None, "seconds": round(time.perf_counter() - start, 1),
                 "peak_growth_mb": None, "failure": f"hang: killed after {args.timeout_s} s", "known_bug_hits": {}}
        results.append(r)
        print(f"{target}: {r['cases']} cases, {'FAILED' if r['failure'] else 'ok'}, {r['seconds']} s, "
              f"peak RSS +{r['peak_growth_mb']} MB", flush=True)

    print(f"\n{args.examples} cases asked per target, seed {args.seed if args.seed is not None else 'derandomized'}, "
          f"memory bound +{test_fuzz.MEMORY_BOUND_MB} MB per child, {test_fuzz.DEADLINE_S} s per case\n")
    print("| target | cases run | failures | known-bug hits | seconds | peak RSS growth (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    bad = False
    for r in results:
        over = r["peak_growth_mb"] is None or r["peak_growth_mb"] >= test_fuzz.MEMORY_BOUND_MB
        bad |= bool(r["failure"]) or over
        hits = ", ".join(f"{k} x{n}" for k, n in sorted(r["known_bug_hits"].items())) or "0"
        print(f"| {r['target']} | {r['cases']} | {1 if r['failure'] else 0} | {hits} | {r['seconds']} | "
              f"{r['peak_growth_mb']} |")
    for r in results:
        if r["failure"]:
            print(f"\n--- {r['target']} ---\n{r['failure']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.worst:
        bad |= not worst(test_fuzz.MEMORY_BOUND_MB, args.timeout_s)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
