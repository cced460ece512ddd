"""benchmarks/gpu.py, the one prepared script for the first session that is lent a GPU (issues 15 and 19), runs
every section end to end on the CPU at toy sizes (`--smoke`): the minutes a GPU is lent for must not go to a
script that broke here. Its first smoke run found a real bug (a timm folder named by its path crashed)."""
import json
import os
import subprocess
import sys

from core.settings import REPO_ROOT


def test_the_gpu_script_runs_every_section_on_the_cpu_and_renders_its_page(tmp_path):
    env = os.environ | {"CNNVIT_CACHE_DIR": str(tmp_path / "store")}
    p = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke", "--out", str(tmp_path / "out")],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert out["errors"] == {}, out["errors"]
    assert list(out["seconds"]) == ["env", "tests", "matmul", "big", "evaluate", "arena"]
    # the CUDA tests were collected and skipped here, not broken
    assert out["tests"]["exit"] == 0 and "skipped" in out["tests"]["summary"], out["tests"]
    assert "test_cuda.py" in (tmp_path / "out" / "pytest.txt").read_text()
    assert out["matmul"]["fp32"] > 0 and out["matmul"]["bf16"] > 0
    big = out["big"]["rows"]
    assert [(r["arch"], r["precision"]) for r in big] == [("test_resnet", "fp32"), ("test_resnet", "bf16")]
    assert all(r["images_per_second"] > 0 and r["pure_step"] > 0 and len(r["per_epoch"]) == 2 for r in big)
    ev = out["evaluate"]["rows"]
    assert [r["precision"] for r in ev] == ["fp32", "bf16"]
    assert all(r["end_to_end"] > 0 and r["forward"] > 0 for r in ev)
    [arena] = out["arena"]["rows"]
    assert arena["model"] == "resnet20" and arena["fp32"] > 0 and arena["bf16"] > 0
    page = (tmp_path / "out" / "gpu.md").read_text()
    for heading in ("# On a GPU", "## The CUDA paths (tests)", "## ResNet-50 and ViT-B/16: training images/s",
                    "## Evaluation end to end", "## The arena's models: training speed"):
        assert heading in page
    assert "failed" not in page
    # --render writes the same page from the JSON (what a session does with the file the GPU machine sent back)
    assert subprocess.run([sys.executable, "benchmarks/gpu.py", "--render", str(tmp_path / "out" / "gpu.json"),
                           "--docs", str(tmp_path / "gpu.md")], cwd=REPO_ROOT, env=env).returncode == 0
    assert (tmp_path / "gpu.md").read_text() == page
