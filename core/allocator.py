"""Keep freed memory in the process on Linux (glibc), so large CPU tensors stop costing page faults.

glibc's malloc serves every block above its mmap threshold (at most 32 MB, adjusted as the process
runs) with a fresh `mmap` and gives it back with `munmap` on free, and trims the heap top back to
the OS above its trim threshold. A CPU forward pass allocates and frees activations of tens of MB
per layer per batch (ResNet-18 at batch 64: 103 MB after the stem in bf16), so each batch pays for
zeroing new pages again. Raising both thresholds keeps those pages in the process for the next
batch: on 2 cores ResNet-18's bf16 forward went from 159 to 236 images/s and evaluation from JPEGs
from 135 to 185 images/s, for 9% more peak memory (docs/benchmarks.md). This is what jemalloc or
tcmalloc, which Intel's and PyTorch's CPU performance guides recommend preloading, do by design.

Process-wide and not undone; `CNNVIT_KEEP_FREED_MEMORY=0` turns it off.
"""
from __future__ import annotations

import ctypes
import functools
import sys

from core.settings import get_settings

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap and stay there when freed


@functools.lru_cache(maxsize=1)
def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's; musl has none (and no mmap threshold to tune)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process (unless the setting is off); True when they are."""
    return get_settings().keep_freed_memory and _apply()
