"""Speed of one model on one device: forward-only throughput on preloaded tensors, batch-1 latency,
and end-to-end throughput from a dataset's images (decode, resize, normalise, forward). Stored, so
pages can show latency next to accuracy.

Measured with warm-up and repetitions (median and spread); tests never assert on these numbers.
"""
from __future__ import annotations

import platform
import statistics
import time

import numpy as np
import torch

from core.errors import UserError
from core.models.wrapper import LoadedModel
from core.settings import resolve_device
from core.store import Store, fingerprint

BENCH_CODE_VERSION = 1


def _sync(dev: str) -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def _timed(fn, dev: str, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(dev)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(dev)
        out.append(time.perf_counter() - t)
    return out


def bench(model: str | LoadedModel, *, dataset: str | None = "shapes", split: str | None = None,
          batch_size: int = 64, device: str | None = None, repeats: int = 5, warmup: int = 2,
          end_to_end_images: int = 512, store: Store | None = None) -> dict:
    """DESIGN.md's `bench` object (model, device, dtype, batch_size, forward_images_per_second,
    end_to_end_images_per_second, latency_ms_p50, gflops_per_image) plus spreads and the machine."""
    from core.data.loader import iter_batches
    from core.data.registry import load_dataset
    from core.predict import load_for_prediction

    if batch_size <= 0 or repeats <= 0 or warmup < 0:
        raise UserError("--batch-size and --repeats must be positive")
    dev = resolve_device(device)
    m = model if isinstance(model, LoadedModel) else load_for_prediction(model, dataset)
    m.to(dev)
    pre = m.preprocess
    x = torch.randn(batch_size, pre.channels, *pre.size, device=dev)
    one = x[:1]
    with torch.inference_mode():
        fwd = _timed(lambda: m.logits(x), dev, repeats, warmup)
        lat = _timed(lambda: m.logits(one), dev, max(20, repeats), warmup)
        e2e = None
        if dataset is not None:
            ds = load_dataset(dataset)
            data = ds.split(split or ds.default_split()).limited(end_to_end_images)

            def run_all() -> None:
                for batch, _pos, _bad in iter_batches(data, pre, batch_size, dev, None):
                    if len(batch):
                        m.logits(pre.normalize(batch.to(dev))).float().argmax(1).cpu()

            e2e_times = _timed(run_all, dev, max(1, repeats // 2), 1)
            e2e = len(data) / statistics.median(e2e_times)
    lat_ms = sorted(1000 * t for t in lat)
    result = {
        "model": m.id, "name": m.name, "family": m.family, "device": dev, "dtype": "fp32", "batch_size": batch_size,
        "forward_images_per_second": batch_size / statistics.median(fwd),
        "forward_spread": [batch_size / max(fwd), batch_size / min(fwd)],
        "end_to_end_images_per_second": e2e, "end_to_end_dataset": dataset,
        "latency_ms_p50": float(np.percentile(lat_ms, 50)), "latency_ms_p90": float(np.percentile(lat_ms, 90)),
        "gflops_per_image": m.flops_per_image() / 1e9, "params": m.params, "threads": torch.get_num_threads(),
        "machine": _machine(dev), "repeats": repeats, "input_size": list(pre.size),
    }
    store = store or Store()
    key = fingerprint({"kind": "bench", "code": BENCH_CODE_VERSION, "model": m.id, "weights": m.weights_digest(),
                       "device": dev, "batch": batch_size, "threads": result["threads"], "time": time.time()})
    store.put(key, "bench", result)  # every measurement is kept: timings are not a cache hit
    return result


def latest_bench(model_id: str, store: Store | None = None) -> dict | None:
    """The newest stored measurement of `model_id` (any device), or None."""
    for r in (store or Store()).records("bench"):
        if r.meta.get("model") == model_id:
            return r.meta
    return None


def _machine(dev: str) -> str:
    if dev == "cuda":
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"
