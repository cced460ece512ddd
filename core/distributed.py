"""Several processes, one job: PyTorch's own distributed engine under `torchrun`.

`torchrun --nproc-per-node N -m core train|evaluate ...` starts N copies of the CLI with RANK, WORLD_SIZE,
LOCAL_RANK and a rendezvous in the environment. `setup()` joins them into one process group (NCCL on CUDA, gloo on
the CPU), each process on its own GPU. A plain process has world size 1 and everything here is a no-op. As in
torchvision's references, one process under torchrun is distributed too (a group of one): that is how a machine
with one GPU runs the NCCL, DistributedDataParallel and SyncBatchNorm path (tests/test_cuda.py).

Shards never repeat an image: `batch_shard` deals whole batches round-robin (evaluation: every image scored once,
in the batches a single process would form, so the numbers are the same bit for bit), and `step_shard` splits each
global training batch into equal contiguous parts, one per rank.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np

from core.errors import UserError

TIMEOUT = datetime.timedelta(minutes=30)  # a rank that stops answering fails the others after this long


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """This process's place, from torchrun's environment (or the process group once joined)."""
    try:
        import torch.distributed as dist  # lazy: torch takes ~2 s to import; a plain process never needs it

        if dist.is_available() and dist.is_initialized():
            return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    except ImportError:
        pass
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def launched() -> bool:
    """True under torchrun, one process included (torchrun sets TORCHELASTIC_RUN_ID), or with more than one
    process under any launcher that sets the env:// rendezvous. A lone process whose environment merely carries
    RANK and WORLD_SIZE=1 (a cluster pod's, say) stays a plain process."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", 1)) > 1


def joined() -> bool:
    """True once this process is in a process group (after `setup()` under a launcher)."""
    try:
        import torch.distributed as dist  # lazy: see world()
    except ImportError:
        return False
    return dist.is_available() and dist.is_initialized()


def setup(device: str) -> str:
    """Join the process group when launched with several processes; the device this rank computes on (cuda:LOCAL_RANK
    on CUDA). A plain process gets `device` back unchanged."""
    if not launched():
        return device
    import torch  # lazy: see world()
    import torch.distributed as dist  # lazy: see world()

    w = world()
    if device.startswith("cuda"):
        if torch.cuda.device_count() <= w.local_rank:
            raise UserError(f"rank {w.rank} wants GPU {w.local_rank}, and this machine has "
                            f"{torch.cuda.device_count()}: start as many processes per node as GPUs")
        torch.cuda.set_device(w.local_rank)
        device = f"cuda:{w.local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=TIMEOUT,
                                **({"device_id": torch.device(device)} if device.startswith("cuda") else {}))
    return device


def teardown() -> None:
    import torch.distributed as dist  # lazy: see world()

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if joined():
        import torch.distributed as dist  # lazy: see world()

        dist.barrier()


def broadcast(obj, src: int = 0):
    """`obj` from rank `src` on every rank (pickled: small things only)."""
    if not joined():
        return obj
    import torch.distributed as dist  # lazy: see world()

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather(obj) -> list | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere); [obj] in a plain process."""
    w = world()
    if not joined():
        return [obj]
    import torch.distributed as dist  # lazy: see world()

    out = [None] * w.size if w.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank (pickled: small things only)."""
    w = world()
    if not joined():
        return [obj]
    import torch.distributed as dist  # lazy: see world()

    out = [None] * w.size
    dist.all_gather_object(out, obj)
    return out


def all_sum(values: list[float]) -> list[float]:
    """The sum over ranks of each number, on every rank, in float64."""
    if not joined():
        return list(values)
    import torch  # lazy: see world()
    import torch.distributed as dist  # lazy: see world()

    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def broadcast_buffers(module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, as DDP does before each forward."""
    if not joined():
        return
    import torch.distributed as dist  # lazy: see world()

    for b in module.buffers():
        dist.broadcast(b.data, src=0)


def batch_shard(n: int, batch_size: int, rank: int, size: int) -> np.ndarray:
    """Positions 0..n-1 of the batches rank `rank` of `size` scores: batch b (images b*B .. b*B+B-1) goes to rank
    b mod size. Every image exactly once, in the same batches as one process with batch size B."""
    starts = np.arange(rank * batch_size, n, size * batch_size)
    return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts]) if len(starts) else \
        np.zeros(0, np.int64)


def step_shard(order: np.ndarray, batch_size: int, rank: int, size: int) -> np.ndarray:
    """This rank's images of one epoch, in order: each global batch of `batch_size` images of `order` cut into `size`
    equal contiguous parts, part `rank` for this rank. `batch_size` must divide by `size`. The last global batch is
    padded from the epoch's start to a multiple of `size` when it does not divide (torch's DistributedSampler
    repeats images the same way), so every rank takes every step."""
    if batch_size % size:
        raise UserError(f"the batch size ({batch_size}) must divide by the number of processes ({size}): each "
                        "process takes an equal share of every batch")
    full = len(order) // batch_size * batch_size
    last = order[full:]
    if len(last) % size:
        last = np.concatenate([last, order[:size - len(last) % size]])
    per = batch_size // size
    head = order[:full].reshape(-1, size, per)[:, rank].reshape(-1)
    return np.concatenate([head, last.reshape(size, -1)[rank]])
