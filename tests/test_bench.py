"""`bench`: the DESIGN.md keys, sane values (no timing assertions), stored for the Compare page."""
import json

from core.bench import bench, latest_bench
from core.results import compare_rows
from core.store import Store
from test_cli import assert_user_error, cli


def test_bench_reports_the_contract_and_is_stored(tmp_path):
    store = Store(tmp_path)
    r = bench("linear", dataset="digits", batch_size=16, repeats=2, store=store)
    assert set(r) >= {"model", "device", "dtype", "batch_size", "forward_images_per_second",
                      "end_to_end_images_per_second", "latency_ms_p50", "gflops_per_image"}
    assert r["device"] == "cpu" and r["batch_size"] == 16 and r["dtype"] == "fp32"
    assert r["forward_images_per_second"] > 0 and r["end_to_end_images_per_second"] > 0
    assert 0 < r["latency_ms_p50"] <= r["latency_ms_p90"]
    assert r["gflops_per_image"] == 2 * 64 * 10 / 1e9  # linear on 8x8 digits: 64 inputs x 10 outputs, MAC = 2
    assert latest_bench("linear", store)["latency_ms_p50"] == r["latency_ms_p50"]


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
    assert_user_error(cli("bench", "--model", "linear", "--batch-size", "0", ok=False), "--batch-size")
