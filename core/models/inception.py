"""GoogLeNet / Inception v1 (Szegedy et al. 2015), sized from the input shape, optionally with SE blocks.

One implementation serves both scratch variants in `core.models.scratch`:

* `googlenet-reduced` — half the widths of Table 1 and a true 5×5 in the third path (the Tiny ImageNet study);
* `se-googlenet` — full widths, torchvision's layout, a squeeze-and-excitation block on every path (the ImageNet
  study).

With `width=1`, `k5=3` and no SE the module is torchvision's `googlenet(aux_logits=True)` layer for layer: same
attribute names, same parameter shapes (13,004,888 parameters at 3×224×224 and 1000 classes), so its state dict
loads into this class unchanged.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.googlenet import BasicConv2d  # conv (no bias) + BatchNorm(eps=1e-3) + ReLU

from core.models.dropout import Dropout
from core.models.spec import InputShape

# Szegedy et al. 2015, Table 1: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj) of the nine modules.
TABLE1: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)
POOL_AFTER = {"3b": "maxpool3", "4e": "maxpool4"}  # the stride-2 max-pools between the module groups
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}  # the paper's two auxiliary classifiers (the study's "level 3 and 6")
SMALL_STEM_MAX = 64  # images up to this side get the small-image stem (see `GoogLeNet`)


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet returns in training mode; a trainer adds the aux losses (weight 0.3 in the paper)."""

    logits: Tensor
    aux1: Tensor
    aux2: Tensor


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): global average pool → FC C→C/r → ReLU → FC C/r→C → sigmoid →
    rescale the channels."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class Inception(nn.Module):
    """The four parallel paths (1×1 | 1×1→3×3 | 1×1→k5×k5 | 3×3 max-pool→1×1), concatenated on channels.

    `k5` is the kernel of the third path: 5 in the paper; torchvision uses 3 (pytorch/vision#906), which the
    13,004,888 figure counts. With `se_reduction`, each path ends in its own `SqueezeExcite` (in `self.se`).
    """

    def __init__(self, cin: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, *, k5: int = 5, se_reduction: int | None = None):
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=k5, padding=k5 // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, pool_proj, kernel_size=1))
        widths = (ch1x1, ch3x3, ch5x5, pool_proj)
        self.out_channels = sum(widths)
        self.se = nn.ModuleList(SqueezeExcite(c, se_reduction) for c in widths) if se_reduction else None

    def forward(self, x: Tensor) -> Tensor:
        paths = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        if self.se is not None:
            paths = [se(p) for se, p in zip(self.se, paths)]
        return torch.cat(paths, 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4×4 adaptive average pool → 1×1 conv → FC → ReLU → dropout 0.7 → FC."""

    def __init__(self, cin: int, num_classes: int, *, width: int = 128, hidden: int = 1024):
        super().__init__()
        self.conv = BasicConv2d(cin, width, kernel_size=1)
        self.fc1 = nn.Linear(width * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = Dropout(0.7)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.conv(F.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """GoogLeNet sized from `shape`, every width scaled by `width`.

    Stem: torchvision's (7×7/2 conv, 3×3/2 max-pool, 1×1 conv, 3×3 conv, 3×3/2 max-pool; ÷32 overall) above
    64 px.
    At ≤64 px the 7×7/2 conv becomes a 3×3/1 conv and the first max-pool is dropped (÷8 overall), so a 64-px
    image reaches Inception 5b at 8×8 (224 px: 7×7) and an 8-px one at 1×1; the max-pools use ceil mode.
    Training mode returns `GoogLeNetOutputs(logits, aux1, aux2)`; eval mode returns the logits only.
    """

    def __init__(self, shape: InputShape, *, width: float = 1.0, k5: int = 5, se_reduction: int | None = None,
                 aux_logits: bool = True, dropout: float = 0.2):
        super().__init__()

        def w(c: int) -> int:
            return max(1, round(c * width))

        if shape.size <= SMALL_STEM_MAX:
            self.conv1 = BasicConv2d(shape.channels, w(64), kernel_size=3, padding=1)
            self.maxpool1 = nn.Identity()
        else:
            self.conv1 = BasicConv2d(shape.channels, w(64), kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(w(64), w(64), kernel_size=1)
        self.conv3 = BasicConv2d(w(64), w(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.stages = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2"]

        cin, tapped = w(192), {}
        for name, widths in TABLE1:
            module = Inception(cin, *(w(c) for c in widths), k5=k5, se_reduction=se_reduction)
            setattr(self, f"inception{name}", module)
            self.stages.append(f"inception{name}")
            cin = module.out_channels
            if name in AUX_AFTER:
                tapped[name] = cin
            if name in POOL_AFTER:
                kernel = 3 if name == "3b" else 2
                setattr(self, POOL_AFTER[name], nn.MaxPool2d(kernel, stride=2, ceil_mode=True))
                self.stages.append(POOL_AFTER[name])

        self.aux_logits = aux_logits
        self.taps = {f"inception{name}": head for name, head in AUX_AFTER.items()} if aux_logits else {}
        if aux_logits:
            for name, head in AUX_AFTER.items():
                setattr(self, head, InceptionAux(tapped[name], shape.num_classes, width=w(128), hidden=w(1024)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = Dropout(dropout)
        self.fc = nn.Linear(cin, shape.num_classes)
        # the layers that produce class scores (core.models.heads): the final head and the aux heads' last FCs
        self.head_names = ("fc", *(f"{head}.fc2" for head in AUX_AFTER.values())) if aux_logits else ("fc",)

        for m in self.modules():  # torchvision's GoogLeNet initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        aux = []
        for name in self.stages:
            x = getattr(self, name)(x)
            if self.training and name in self.taps:
                aux.append(getattr(self, self.taps[name])(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return GoogLeNetOutputs(x, *aux) if aux else x


def build_googlenet(shape: InputShape, se_reduction: int | None = 16) -> GoogLeNet:
    """torchvision's GoogLeNet layout (3×3 in the "5×5" path, aux heads); SE blocks unless `se_reduction=None`."""
    return GoogLeNet(shape, width=1.0, k5=3, se_reduction=se_reduction)
