"""One face for every model, whatever its source: logits, preprocessing, labels, cost."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.data.transforms import Preprocess

FAMILIES = ("cnn", "vit", "hybrid", "other")  # hybrid: convolutions and attention (CCT, a conv-stem ViT)
SOURCES = ("scratch", "hf", "torchvision", "timm", "local", "trained")


def split_outputs(out) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits, auxiliary logits) from whatever a module returns: a tensor, a transformers ModelOutput
    (an object holding them), or GoogLeNet's (logits, aux...) named tuple in training mode."""
    if isinstance(out, torch.Tensor):
        return out, []
    if hasattr(out, "logits") and not isinstance(out, tuple):
        return out.logits, []
    if isinstance(out, tuple):
        return out[0], [a for a in out[1:] if isinstance(a, torch.Tensor)]
    raise TypeError(f"cannot find logits in a {type(out).__name__}")


def logits_of(out) -> torch.Tensor:
    """The logits of a module's output (see `split_outputs`)."""
    return split_outputs(out)[0]


class _LocalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A batch norm of any input rank that computes on this process alone (what SyncBatchNorm is in a world of
    one)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        pass


def local_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with each SyncBatchNorm replaced, in place, by a local batch norm holding the same parameters and
    statistics. For work one rank does alone, such as counting a training step's FLOPs on rank 0 at the end of a
    run: a SyncBatchNorm in training mode would start collectives the other ranks never join (they wait in a
    broadcast), and the run would hang until the process group's timeout."""
    for name, child in module.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            local = _LocalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            if (ref := next(iter([*child.parameters(), *child.buffers()]), None)) is not None:
                local.to(ref.device)
            local.load_state_dict(child.state_dict())
            local.train(child.training)
            setattr(module, name, local)
        else:
            local_batchnorm(child)
    return module


@dataclass
class LabelSpace:
    """A head's class names, index for index; WordNet ids where known. `assumed` says why the names were
    inferred rather than read from the model (None: the model names its classes itself)."""

    names: list[str]
    wnids: list[str] | None = None
    assumed: str | None = None

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class LoadedModel:
    """A model ready to answer: `logits(batch)` takes the output of `preprocess.normalize`."""

    id: str
    name: str
    family: str
    source: str
    module: nn.Module
    preprocess: Preprocess
    labels: LabelSpace
    citation: str = ""
    revision: str | None = None
    _digest: str | None = field(default=None, repr=False)
    _flops: int | None = field(default=None, repr=False)
    _runner: tuple | None = field(default=None, repr=False, compare=False)  # core.precision.runner_for's

    def __post_init__(self) -> None:
        assert self.family in FAMILIES, self.family
        assert self.source in SOURCES, self.source
        self.module.eval()

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return logits_of(self.module(batch))

    def weights_digest(self) -> str:
        """sha256 over parameter and buffer names, shapes, dtypes and bytes: the weights' identity."""
        if self._digest is None:
            h = hashlib.sha256()
            for name, t in self.module.state_dict().items():
                t = t.detach().cpu().contiguous()
                h.update(f"{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
                # reshape(-1): 0-dim buffers (BatchNorm's num_batches_tracked) cannot be viewed as bytes
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            self._digest = h.hexdigest()[:20]
        return self._digest

    def flops_per_image(self) -> int:
        """FLOPs of one forward pass on one image (a multiply-add counts 2), by torch's flop counter."""
        if self._flops is None:
            x = torch.zeros(1, self.preprocess.channels, *self.preprocess.size, device=self.device)
            counter = FlopCounterMode(display=False)
            # nn.MultiheadAttention's fused inference fast path is invisible to the counter
            fastpath = torch.backends.mha.get_fastpath_enabled()
            torch.backends.mha.set_fastpath_enabled(False)
            try:
                with counter, torch.no_grad():
                    self.logits(x)
            finally:
                torch.backends.mha.set_fastpath_enabled(fastpath)
            self._flops = int(counter.get_total_flops())
        return self._flops

    def train_flops_per_image(self) -> int:
        """FLOPs of one training step per image: forward and backward (a multiply-add counts 2), counted by
        torch's flop counter on a copy of the module in training mode (2 images, for BatchNorm), so the
        model's own weights, gradients and statistics are untouched. Matmuls and convolutions only, as the
        counter counts them; roughly 3x the forward pass. A trained DDP module's SyncBatchNorm layers count as
        local ones (local_batchnorm: the count runs on one rank)."""
        module = local_batchnorm(copy.deepcopy(self.module)).train()
        x = torch.zeros(2, self.preprocess.channels, *self.preprocess.size, device=self.device)
        counter = FlopCounterMode(display=False)
        with torch.random.fork_rng(devices=[]), counter:
            logits, aux = split_outputs(module(x))
            sum(o.float().sum() for o in [logits, *aux]).backward()
        return int(counter.get_total_flops()) // 2

    def conv_layers(self) -> list[tuple[str, nn.Conv2d]]:
        return [(n, m) for n, m in self.module.named_modules() if isinstance(m, nn.Conv2d)]

    def to(self, device: str | torch.device) -> LoadedModel:
        self.module.to(device)
        return self
