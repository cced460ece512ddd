"""Snapshot of what the CLI prints on the embedded datasets, for diffing two versions of the code.

    python scripts/cli_snapshot.py OUT.json [--repo DIR]

Runs a fixed list of `python -m core ...` commands in DIR (default: this checkout) against a fresh
store, and writes each command's exit code, stdout and stderr to OUT.json. Values that depend on the
clock (seconds, images per second, timestamps) are replaced by "<time>", so two snapshots of the same
behaviour are equal and `diff` shows only real changes:

    git worktree add /tmp/before HEAD~5
    python scripts/cli_snapshot.py /tmp/before.json --repo /tmp/before
    python scripts/cli_snapshot.py /tmp/after.json
    diff /tmp/before.json /tmp/after.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TIMED = re.compile(r"(seconds|per_second|^created$|^started$|^finished$|^latency|spread|eta|utilisation|"
                   r"efficiency|^compile|gflops_per_second|^machine$|^cores$)")
TIMED_TEXT = re.compile(r"\d+(\.\d+)?( ?(s|ms|images/s)\b| end-to-end| in the model)")


def _scrub(obj, key: str = ""):
    if isinstance(obj, dict):
        return {k: _scrub(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, key) for v in obj]
    if TIMED.search(key) and isinstance(obj, (int, float, list)) and not isinstance(obj, bool):
        return "<time>"
    return obj


def _commands(image: str, out_png: str) -> list[list[str]]:
    run = "@RUN"  # replaced by the run id the train command printed
    return [
        ["datasets"], ["datasets", "--json"], ["models", "--json"],
        ["evaluate", "--model", "resnet20", "--dataset", "shapes", "--limit", "200", "--json"],
        ["evaluate", "--model", "resnet20", "--dataset", "shapes", "--limit", "200", "--json"],
        ["evaluate", "--model", "cnn-2layer", "--dataset", "digits", "--json"],
        ["evaluate", "--model", "vit-small", "--dataset", "shapes", "--split", "test", "--limit", "64"],
        ["train", "--model", "cnn-2layer", "--dataset", "digits", "--epochs", "2", "--limit", "300",
         "--optimizer", "adam", "--lr", "0.003", "--json"],
        ["train", "--model", "cnn-2layer", "--dataset", "digits", "--epochs", "2", "--limit", "300",
         "--optimizer", "adam", "--lr", "0.003", "--json"],
        ["evaluate", "--model", run, "--dataset", "digits", "--json"],
        ["predict", "--model", "cnn-2layer", image, "--json"],
        ["predict", "--model", run, image, "--top-k", "3", "--json"],
        ["explain", "--model", "resnet20", "--image", image, "--method", "gradcam", "--out", out_png],
        ["explain", "--model", "vit-small", "--image", image, "--method", "rollout", "--out", out_png],
        ["bench", "--model", "cnn-2layer", "--no-end-to-end", "--repeats", "1", "--json"],
        ["jobs", "--json"],
        # errors a user can cause: exit 2 and one line
        ["evaluate", "--model", "no-such-model", "--dataset", "shapes"],
        ["evaluate", "--model", "resnet20", "--dataset", "no-such-dataset"],
        ["evaluate", "--model", "/no/such/folder", "--dataset", "shapes"],
        ["train", "--model", "resnet20", "--dataset", "shapes", "--transfer", "frozen"],
        ["train", "--model", "resnet20", "--dataset", "shapes", "--optimizer", "rmsprop"],
        ["predict", "--model", "cnn-2layer", "/no/such.png"],
        ["jobs", "cancel"],
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    args = p.parse_args()
    from PIL import Image

    tmp = Path(tempfile.mkdtemp(prefix="cli-snapshot-"))
    image, out_png = tmp / "square.png", tmp / "out.png"
    Image.new("RGB", (48, 40), (200, 40, 40)).save(image)
    env = os.environ | {"CNNVIT_CACHE_DIR": str(tmp / "store"), "CNNVIT_PRECISION": "fp32"}
    results, run_id = [], None
    for cmd in _commands(str(image), str(out_png)):
        cmd = [run_id if c == "@RUN" else c for c in cmd]
        proc = subprocess.run([sys.executable, "-m", "core", *cmd], cwd=args.repo, env=env, capture_output=True,
                              text=True, timeout=900)
        try:
            stdout = _scrub(json.loads(proc.stdout))
        except ValueError:
            stdout = TIMED_TEXT.sub("<time>", proc.stdout)
        if cmd[0] == "train" and isinstance(stdout, dict):
            run_id = stdout["run_id"]
        results.append({"command": " ".join(cmd).replace(str(tmp), "TMP"), "exit": proc.returncode,
                        "stdout": stdout, "stderr": proc.stderr.strip().replace(str(tmp), "TMP")})
        print(f"{proc.returncode}  {' '.join(cmd)}", file=sys.stderr)
    text = json.dumps(results, indent=1, sort_keys=True).replace(str(tmp), "TMP")
    Path(args.out).write_text(re.sub(r"/tmp/cli-snapshot-\w+", "TMP", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
