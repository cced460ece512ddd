"""`bench`: the DESIGN.md keys, sane values and the identities between them (no timing assertions),
stored for the Compare page; precision chosen from the CPU's features."""
import json

import numpy as np
import pytest
from test_cli import assert_user_error, cli

from core.bench import bench, ideal_rate, latest_bench
from core.results import compare_rows
from core.store import Store


def test_bench_reports_the_contract_and_is_stored(tmp_path):
    store = Store(tmp_path)
    r = bench("linear", dataset="digits", batch_size=16, repeats=2, precision="fp32", store=store)
    assert set(r) >= {"model", "device", "dtype", "batch_size", "forward_images_per_second",
                      "end_to_end_images_per_second", "latency_ms_p50", "gflops_per_image"}
    assert r["device"] == "cpu" and r["batch_size"] == 16 and r["dtype"] == "fp32"
    assert r["forward_images_per_second"] > 0 and r["end_to_end_images_per_second"] > 0
    assert r["forward_spread"][0] <= r["forward_images_per_second"] <= r["forward_spread"][1]
    assert 0 < r["latency_ms_p50"] <= r["latency_ms_p90"]
    assert r["gflops_per_image"] == 2 * 64 * 10 / 1e9  # linear on 8x8 digits: 64 inputs x 10 outputs, MAC = 2
    assert latest_bench("linear", store)["latency_ms_p50"] == r["latency_ms_p50"]
    # the derived figures are what their definitions say
    assert r["utilisation"] == pytest.approx(r["gflops_per_image"] * r["forward_images_per_second"]
                                             / r["matmul_gflops_per_second"])
    assert r["ideal_images_per_second"] == pytest.approx(
        ideal_rate(r["decode_images_per_second_per_core"], r["forward_images_per_second"], r["cores"]))
    assert r["pipeline_efficiency"] == pytest.approx(r["end_to_end_images_per_second"] / r["ideal_images_per_second"])
    from core.data.registry import load_dataset

    assert r["end_to_end_images"] == len(load_dataset("digits").split("val"))  # all of it: fewer than 512
    # nothing but the bench record is left in the store: end-to-end runs write to a scratch store
    assert [rec.kind for rec in store.records()] == ["bench"]


def test_ideal_rate_by_hand():
    # 2 cores decoding 100 images/s each take 1/200 s per image; a 200 images/s forward another 1/200 s
    assert ideal_rate(100, 200, 2) == pytest.approx(100)
    assert ideal_rate(1e12, 50, 2) == pytest.approx(50)  # free decoding: the forward alone


def _fast_bf16() -> bool:
    """Read independently of core/precision.py: the CPU has bf16 dot products (AMX or AVX-512 BF16)."""
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def test_auto_precision_is_bf16_exactly_on_cpus_with_bf16_hardware(monkeypatch):
    from core.errors import UserError
    from core.precision import resolve_precision

    monkeypatch.delenv("CNNVIT_PRECISION", raising=False)
    assert resolve_precision(None, "cpu") == ("bf16" if _fast_bf16() else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setenv("CNNVIT_PRECISION", "fp32")
    assert resolve_precision(None, "cpu") == "fp32"
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(UserError, match="must be one of"):
        resolve_precision("int8", "cpu")


def test_the_matmul_peak_of_emulated_bf16_is_taken_small():
    """A CPU without bf16 arithmetic emulates it 10 to 600 times slower than fp32: at the CPU's usual 2048
    the bf16 peak alone took minutes (the GPU script's smoke test ran past its 600 s there). bf16 where the CPU has
    it, and fp32 everywhere, keep 2048."""
    from core.bench import matmul_flops

    bf16 = matmul_flops("cpu", "bf16", repeats=1)
    assert bf16["n"] == (2048 if _fast_bf16() else 512) and bf16["median"] > 0
    assert matmul_flops("cpu", "fp32", repeats=1)["n"] == 2048
    assert matmul_flops("cpu", "bf16", n=64, repeats=1)["n"] == 64  # asked for, kept


def test_bf16_evaluation_is_stored_beside_fp32_and_agrees(tmp_path):
    """Precision is part of the key: both results are kept, each says what it ran at, and bf16 picks the
    same top-1 class as fp32 for nearly every image (a real network; its logits differ by rounding)."""
    from core.evaluate import evaluate

    store = Store(tmp_path)
    a = evaluate("cnn-2layer", "digits", "val", precision="fp32", store=store)
    b = evaluate("cnn-2layer", "digits", "val", precision="bf16", store=store)
    assert a.key != b.key and not b.cached
    assert (a.meta["precision"], b.meta["precision"]) == ("fp32", "bf16")
    assert evaluate("cnn-2layer", "digits", "val", precision="fp32", store=store).cached
    same = np.mean(a.predictions.top_idx[:, 0] == b.predictions.top_idx[:, 0])
    assert same >= 0.95, same
    assert np.abs(a.predictions.top_prob - b.predictions.top_prob).max() < 0.05


def test_compare_rows_carry_the_newest_bench(tmp_path):
    from core.evaluate import evaluate

    store = Store(tmp_path)
    ev = evaluate("linear", "digits", "val", store=store)
    assert compare_rows([ev.key], store)[0]["latency_ms_p50"] is None
    r = bench("linear", dataset="digits", batch_size=8, repeats=1, store=store)
    assert compare_rows([ev.key], store)[0]["latency_ms_p50"] == r["latency_ms_p50"]


def test_bench_cli_json_and_errors():
    out = json.loads(cli("bench", "--model", "linear", "--dataset", "digits", "--repeats", "1", "--json").stdout)
    assert out["model"] == "linear" and out["forward_images_per_second"] > 0
    assert out["dtype"] == ("bf16" if _fast_bf16() else "fp32")
    text = cli("bench", "--model", "linear", "--dataset", "digits", "--repeats", "1", "--precision", "fp32").stdout
    assert "fp32" in text and "pipeline efficiency" in text and "utilisation" in text
    out = json.loads(cli("bench", "--model", "linear", "--dataset", "digits", "--repeats", "1", "--no-end-to-end",
                         "--json").stdout)
    assert out["end_to_end_images_per_second"] is None and out["forward_images_per_second"] > 0
    assert_user_error(cli("bench", "--model", "linear", "--batch-size", "0", ok=False), "--batch-size")
