"""Speed of one model on one device, measured so the figures can be trusted and compared:

- forward-only images/s on preloaded tensors, and batch-1 latency p50 / p90;
- decode + preprocess images/s per core (one thread, the dataset's own images);
- end-to-end images/s: `evaluate` from the dataset's files to stored predictions, in a scratch store;
- pipeline efficiency = end-to-end / the ideal the isolated rates allow on the same cores, where the
  cores decode and compute in turn: 1 / (1 / (cores x decode per core) + 1 / forward);
- compute utilisation = FLOPs per image x forward images/s / the device's measured matrix-multiply
  FLOP/s in the same dtype.

Every figure is the median of several repetitions after warm-up, with its spread. Stored as a `bench`
record so pages can show latency next to accuracy. Tests never assert on these numbers.
"""
from __future__ import annotations

import platform
import statistics
import tempfile
import time

import numpy as np
import torch

from core.data.registry import load_dataset
from core.errors import UserError
from core.evaluate import evaluate
from core.models.wrapper import LoadedModel
from core.precision import cpu_flags, cpu_has_amx, cpu_has_fast_bf16, inference_fn, resolve_precision
from core.predict import load_for_prediction
from core.settings import cpu_cores as cores
from core.settings import resolve_device
from core.store import Store, fingerprint

BENCH_CODE_VERSION = 2
MATMUL_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(dev: str) -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev: str = "cpu", repeats: int = 5, warmup: int = 1) -> list[float]:
    """Seconds per call of `fn`, `repeats` times after `warmup` untimed calls (device synchronised)."""
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


def rate(count: int, seconds: list[float]) -> dict:
    """Items/s as median and spread (slowest, fastest repetition)."""
    return {"median": count / statistics.median(seconds), "min": count / max(seconds), "max": count / min(seconds),
            "repeats": len(seconds)}


def matmul_flops(dev: str, precision: str, n: int | None = None, repeats: int = 5) -> dict:
    """Measured FLOP/s of an n x n matrix multiply (2 n^3 FLOPs) in `precision`'s dtype: the device's
    practical peak that compute utilisation is a fraction of; `n` (default 8192 on CUDA, 2048 on the CPU) is in
    the result.

    A CPU without bf16 arithmetic (`cpu_has_fast_bf16`) emulates bf16 at a small fraction of its fp32 rate
    (measured on an AVX2-only AMD EPYC, torch 2.14: 0.3 GFLOP/s at 2048, 1.3 at 512, against 182 and 54 in fp32;
    a 3x3 convolution under bf16 autocast ran 10x slower than in fp32), so there the bf16 rate is taken at n = 512:
    seconds, where 2048 takes minutes. The utilisation of a model run in emulated bf16 is a fraction of that
    emulated rate."""
    emulated = precision == "bf16" and dev == "cpu" and not cpu_has_fast_bf16()
    n = n or (8192 if dev == "cuda" else 512 if emulated else 2048)
    dtype = MATMUL_DTYPES[precision]
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    return rate(2 * n ** 3, timed(lambda: a @ b, dev, repeats, warmup=2)) | {"n": n}


def forward_rate(run, x: torch.Tensor, dev: str, repeats: int, warmup: int) -> dict:
    with torch.inference_mode():
        return rate(len(x), timed(lambda: run(x), dev, repeats, warmup))


def latency_ms(run, one: torch.Tensor, dev: str, repeats: int, warmup: int) -> dict:
    with torch.inference_mode():
        ms = sorted(1000 * t for t in timed(lambda: run(one), dev, max(20, repeats), warmup))
    return {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90))}


def decode_rate_per_core(data, pre, images: int = 128, repeats: int = 3, channels_last: bool = False) -> dict:
    """Images/s of the per-image preprocessing on one thread: decode (the safe decoder), resize/crop to the
    model's geometry and normalise into the model's layout; in-memory images through the batched resize and
    normalisation the loader uses."""
    n = min(images, len(data))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if data.images is not None:
            chunk = data.images[:n]
            return rate(n, timed(lambda: pre.normalize(pre.geometry_batch(chunk), channels_last), "cpu", repeats, 1))
        buf = torch.empty((1, pre.channels, *pre.size), memory_format=layout)
        return rate(n, timed(lambda: [pre.normalize_into(buf[0], pre.geometry(data.load(i))) for i in range(n)],
                             "cpu", repeats, 1))
    finally:
        torch.set_num_threads(threads)


def end_to_end_rate(m: LoadedModel, ds, split: str, images: int, batch_size: int, dev: str, precision: str,
                    repeats: int) -> dict:
    """`evaluate` from the dataset's images to stored predictions (a scratch store, `force` so each
    repetition computes), after a one-batch warm-up."""
    with tempfile.TemporaryDirectory(prefix="cnnvit-bench-") as tmp:
        store = Store(tmp)

        def run(limit: int | None) -> None:
            evaluate(m, ds, split, limit=limit, batch_size=batch_size, device=dev, precision=precision,
                     store=store, force=True)

        run(batch_size)  # warm-up: kernels chosen, workers' imports cached
        n = min(images, len(ds.split(split)))
        return rate(n, timed(lambda: run(n), dev, repeats, warmup=0))


def ideal_rate(decode_per_core: float, forward: float, n_cores: int) -> float:
    """Images/s if the cores decoded and computed in turn with no overhead at all."""
    return 1.0 / (1.0 / (decode_per_core * n_cores) + 1.0 / forward)


def bench(model: str | LoadedModel, *, dataset: str | None = "shapes", split: str | None = None,
          batch_size: int = 64, device: str | None = None, precision: str | None = None, repeats: int = 5,
          warmup: int = 2, end_to_end_images: int = 512, compile: bool = False, label_dataset: str | None = None,
          store: Store | None = None) -> dict:
    """DESIGN.md's `bench` object (model, device, dtype, batch_size, forward_images_per_second,
    end_to_end_images_per_second, latency_ms_p50, gflops_per_image) plus spreads, the decode rate,
    pipeline efficiency, compute utilisation and the machine. `dataset=None` skips the end-to-end figures;
    `label_dataset` then names the classes a scratch model is built for."""
    if batch_size <= 0 or repeats <= 0 or warmup < 0:
        raise UserError("--batch-size and --repeats must be positive")
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    m = model if isinstance(model, LoadedModel) else load_for_prediction(model, dataset or label_dataset)
    pre = m.preprocess
    gflops = m.flops_per_image() / 1e9  # counted in fp32 on the CPU, before the model moves
    run = inference_fn(m, dev, prec)
    compile_seconds = None
    if compile:
        compiled = torch.compile(m.module)
        eager = m.module
        m.module = compiled
        t = time.perf_counter()
        with torch.inference_mode():
            run(torch.randn(batch_size, pre.channels, *pre.size, device=dev))
        _sync(dev)
        compile_seconds = time.perf_counter() - t
    try:
        x = torch.randn(batch_size, pre.channels, *pre.size, device=dev)
        if run.channels_last:  # preloaded in the layout the model runs in, as the pipeline hands it over
            x = x.contiguous(memory_format=torch.channels_last)
        fwd = forward_rate(run, x, dev, repeats, warmup)
        lat = latency_ms(run, x[:1], dev, repeats, warmup)
    finally:
        if compile:
            m.module = eager
    peak = matmul_flops(dev, prec)
    result = {
        "model": m.id, "name": m.name, "family": m.family, "device": dev, "dtype": prec, "batch_size": batch_size,
        "forward_images_per_second": fwd["median"], "forward_spread": [fwd["min"], fwd["max"]],
        "latency_ms_p50": lat["p50"], "latency_ms_p90": lat["p90"],
        "gflops_per_image": gflops, "params": m.params,
        "matmul_gflops_per_second": peak["median"] / 1e9,
        "utilisation": gflops * fwd["median"] / (peak["median"] / 1e9) if gflops else None,
        "compiled": compile, "compile_seconds": compile_seconds,
        "end_to_end_images_per_second": None, "end_to_end_dataset": dataset, "end_to_end_spread": None,
        "decode_images_per_second_per_core": None, "pipeline_efficiency": None,
        "threads": torch.get_num_threads(), "cores": cores(), "machine": machine(dev), "cpu": cpu_description(),
        "repeats": repeats, "input_size": list(pre.size), "torch": torch.__version__,
    }
    if dataset is not None and not compile:
        ds = load_dataset(dataset)
        split = split or ds.default_split()
        data = ds.split(split).limited(end_to_end_images)
        dec = decode_rate_per_core(data, pre, channels_last=run.channels_last)
        e2e = end_to_end_rate(m, ds, split, end_to_end_images, batch_size, dev, prec, max(1, repeats // 2))
        ideal = ideal_rate(dec["median"], fwd["median"], cores()) if dev == "cpu" else None
        result |= {"end_to_end_images_per_second": e2e["median"], "end_to_end_spread": [e2e["min"], e2e["max"]],
                   "end_to_end_images": len(data), "decode_images_per_second_per_core": dec["median"],
                   "ideal_images_per_second": ideal,
                   "pipeline_efficiency": e2e["median"] / ideal if ideal else e2e["median"] / fwd["median"]}
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


def cpu_description() -> dict:
    """The CPU model, its core count and whether it has the bf16 paths that make bf16 fast."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = cpu_flags()
    return {"name": name, "cores": cores(), "amx_bf16": cpu_has_amx(), "avx512_bf16": "avx512_bf16" in flags,
            "capability": torch.backends.cpu.get_cpu_capability()}


def machine(dev: str) -> str:
    if dev == "cuda":
        return torch.cuda.get_device_name(0)
    cpu = cpu_description()
    extra = ", AMX bf16" if cpu["amx_bf16"] else (", AVX-512 bf16" if cpu["avx512_bf16"] else "")
    return f"{cpu['name']}, {cpu['cores']} cores{extra}, {torch.get_num_threads()} threads"
