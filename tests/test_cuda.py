"""The CUDA paths, where a GPU is (skipped elsewhere; benchmarks/gpu.py runs this file on a GPU machine).

- fp32 on CUDA is IEEE fp32: cuDNN's convolutions would otherwise run in TF32 (core/settings.py).
- Evaluation and training on CUDA agree with the CPU at fp32, within float rounding; bf16 training runs there.
- One rank under torchrun runs the distributed path on CUDA (NCCL, DistributedDataParallel on cuda:0, the
  SyncBatchNorm conversion, the sharded evaluation's gathers) and ends where a plain CUDA process ends. In a world
  of one, SyncBatchNorm computes its statistics locally (torch skips the all-gather): the synchronised statistics
  need two GPUs, where two ranks with per-rank batch B/2 must end where one process with batch B ends.
"""
import json

import numpy as np
import pytest
import torch
from test_distributed import SGD, torchrun, weights

from core.evaluate import evaluate
from core.precision import resolve_precision
from core.settings import resolve_device
from core.store import Store

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TRAIN = ("train", "--dataset", "shapes", "--epochs", "1", "--limit", "128", "--val-limit", "64",
         "--batch-size", "32", *SGD, "--json")  # with --no-amp: fp32


def test_fp32_on_cuda_is_not_tf32():
    assert resolve_precision("fp32", resolve_device("cuda")) == "fp32"  # what every computing path does first
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 256, 16, 16, generator=gen), torch.randn(256, 256, 3, 3, generator=gen)
    ref = torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    got = torch.nn.functional.conv2d(x.cuda(), w.cuda(), padding=1).cpu().double()
    # fp32 over 2,304 products: ~1e-6 of the output's scale; TF32 (10-bit mantissa): ~1e-3
    err = float((got - ref).abs().max() / ref.abs().max())
    assert err < 1e-5, f"relative error {err:.2e}: TF32, not fp32"


def test_evaluation_on_cuda_equals_the_cpu_at_fp32(tmp_path):
    cpu, gpu = (evaluate("resnet20", "shapes", "val", limit=200, batch_size=50, device=d, precision="fp32",
                         store=Store(tmp_path / d)) for d in ("cpu", "cuda"))
    assert gpu.meta.device.startswith("cuda") and gpu.meta.precision == "fp32"
    same = float(np.mean(cpu.predictions.top_idx[:, 0] == gpu.predictions.top_idx[:, 0]))
    assert same >= 0.99, f"top-1 agrees on {same:.1%} of 200 images"
    np.testing.assert_allclose(gpu.predictions.top_prob[:, 0], cpu.predictions.top_prob[:, 0], atol=1e-4)


def test_training_on_cuda_matches_the_cpu_at_fp32_and_runs_bf16(tmp_path):
    args = ("train", "--model", "linear", "--dataset", "shapes", "--epochs", "2", "--limit", "96", "--val-limit",
            "40", "--batch-size", "16", "--augment", "flip", "--no-amp", *SGD, "--json")
    runs = {d: torchrun(1, *args, store=tmp_path / d, plain=True, device=d) for d in ("cpu", "cuda")}
    for d, p in runs.items():
        assert p.returncode == 0, (d, p.stderr[-2000:])
    rid = json.loads(runs["cpu"].stdout)["run_id"]
    w_cpu, w_gpu = weights(tmp_path / "cpu", rid), weights(tmp_path / "cuda", rid)
    for k in w_cpu:  # the same images, order and flips (drawn on the CPU); the sums in another order
        torch.testing.assert_close(w_gpu[k], w_cpu[k], rtol=0, atol=1e-5, msg=k)
    bf16 = torchrun(1, "train", "--model", "resnet20", *TRAIN[1:], store=tmp_path / "bf16", plain=True,
                    device="cuda")
    assert bf16.returncode == 0, bf16.stderr[-2000:]
    [row] = Store(tmp_path / "bf16").get(json.loads(bf16.stdout)["run_id"]).meta["history"]
    assert row["precision"] == "bf16" and np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])


def _ddp_against_plain(tmp_path, n: int):
    plain = torchrun(1, "train", "--model", "resnet20", *TRAIN[1:], "--no-amp", store=tmp_path / "plain", plain=True,
                     device="cuda")
    group = torchrun(n, "train", "--model", "resnet20", *TRAIN[1:], "--no-amp", store=tmp_path / "group", plain=False,
                     device="cuda")
    assert plain.returncode == 0 and group.returncode == 0, (plain.stderr[-2000:], group.stderr[-3000:])
    r1, r2 = json.loads(plain.stdout), json.loads(group.stdout)
    assert r2["world_size"] == n
    [row] = Store(tmp_path / "group").get(r2["run_id"]).meta["history"]
    batchnorms = 19  # ResNet-20: the stem's and two in each of its 9 blocks
    assert (row["backend"], row["sync_batchnorm"]) == ("nccl", batchnorms)
    w1, w2 = weights(tmp_path / "plain", r1["run_id"]), weights(tmp_path / "group", r2["run_id"])
    worst = max(float((w2[k].double() - w1[k].double()).abs().max()) for k in w1)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5, msg=f"{k} (largest difference {worst:.2e})")
    return r1, r2


def test_one_rank_under_torchrun_runs_nccl_ddp_with_syncbatchnorm_and_ends_as_a_plain_cuda_run(tmp_path):
    _ddp_against_plain(tmp_path, 1)
    args = ("evaluate", "--model", "resnet20", "--dataset", "shapes", "--split", "val", "--limit", "101",
            "--batch-size", "16", "--precision", "fp32", "--json")
    one, group = (torchrun(1, *args, store=tmp_path / f"e{p}", plain=p, device="cuda") for p in (True, False))
    assert one.returncode == 0 and group.returncode == 0, (one.stderr[-2000:], group.stderr[-2000:])
    e1, e2 = json.loads(one.stdout), json.loads(group.stdout)
    for k in ("n", "top1", "top5", "nll"):
        assert e1[k] == e2[k], k


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_ranks_on_two_gpus_end_as_one_process_with_the_whole_batch(tmp_path):
    _ddp_against_plain(tmp_path, 2)
