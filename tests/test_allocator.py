"""CPU inference keeps freed memory in the process: after the first batches, a forward pass stops
faulting in fresh pages for its activations (core/allocator.py). Counted in a subprocess, where the
setting is read before the allocator is touched; page faults are counted, not time."""
import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource, torch
from core.models.scratch import build_scratch
from core.models.spec import InputShape
from core.precision import inference_fn
torch.set_num_threads(1)
m = build_scratch("cnn-2layer", InputShape(3, 128, 10))
run = inference_fn(m, "cpu", "fp32")  # its first conv's output: 32 x 32 x 128 x 128 fp32 = 64 MB
x = torch.randn(32, 3, 128, 128)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with torch.inference_mode():
    for _ in range(3):
        run(x)
    before = faults()
    for _ in range(3):
        run(x)
print(json.dumps({"faults_per_batch": (faults() - before) / 3}))
"""


def _faults(keep: str) -> float:
    env = dict(os.environ, CNNVIT_KEEP_FREED_MEMORY=keep)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["faults_per_batch"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc thresholds")
def test_a_warm_forward_pass_stops_faulting_in_pages():
    off, on = _faults("0"), _faults("1")
    assert off > 1000, off  # without it: every batch maps and zeroes its large activations again
    assert on < off / 20, (on, off)
