"""Preprocessing that travels with a model: geometry per image (uint8), normalisation per batch."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

# "nearest" is torchvision's legacy nearest (timm, torchvision presets); "nearest-exact" samples pixel centres, as
# PIL's NEAREST and transformers' image processors do
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic")
# where a centre crop starts when the margin is odd: torchvision's CenterCrop rounds half to even, transformers'
# image processors floor
CROP_ANCHORS = ("round", "floor")


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input.

    size: the (H, W) the model sees. resize, before a centre crop to `size`:
      None    resize straight to `size` (ViT's processor);
      int     shorter side to this length, keeping the aspect ratio (torchvision, BiT, ConvNeXt);
      (h, w)  to exactly this size (DeiT's processor: 256x256, then crop 224).
    channels: what the first layer takes.
    crop_anchor: "round" (torchvision, timm) or "floor" (transformers): the first row / column a centre crop keeps
      when the margin is odd, e.g. 343 -> 224 starts at 60 (round(59.5)) or 59.
    """

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | tuple[int, int] | None = None
    interpolation: str = "bilinear"
    channels: int = 3
    crop_anchor: str = "round"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}")
        if self.crop_anchor not in CROP_ANCHORS:
            raise ValueError(f"crop_anchor must be one of {CROP_ANCHORS}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std need one value per channel")

    def key(self) -> dict:
        """What the store fingerprints: every field changes the result. The default crop anchor is left out, so
        records made before the field existed keep their fingerprints."""
        key = asdict(self)
        if key["crop_anchor"] == "round":
            del key["crop_anchor"]
        return key

    @classmethod
    def from_key(cls, key: dict) -> "Preprocess":
        """The Preprocess whose `key()` this is (JSON turned its tuples into lists)."""
        resize = key.get("resize")
        return cls(**{**key, "size": tuple(key["size"]), "mean": tuple(key["mean"]), "std": tuple(key["std"]),
                      "resize": tuple(resize) if isinstance(resize, list) else resize})

    def passthrough(self, height: int, width: int, channels: int) -> bool:
        """Whether an image of this shape needs no resizing, cropping or channel change at all."""
        if (height, width) != tuple(self.size) or channels != self.channels:
            return False
        if self.resize is None:
            return True
        if isinstance(self.resize, int):
            return self.resize == min(self.size)
        return tuple(self.resize) == tuple(self.size)

    def geometry(self, image: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, C) -> uint8 (channels, *size), resized and cropped the model's way."""
        x = torch.from_numpy(np.ascontiguousarray(image))
        x = x.unsqueeze(-1) if x.ndim == 2 else x
        return self._geometry(x.permute(2, 0, 1))

    def geometry_batch(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, C) of one size -> uint8 (N, channels, *size), in one call per step instead of one per
        image; the same pixels as `geometry` on each image."""
        x = torch.from_numpy(np.ascontiguousarray(images))
        x = x.unsqueeze(-1) if x.ndim == 3 else x
        return self._geometry(x.permute(0, 3, 1, 2))

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) uint8 -> (..., channels, *size)."""
        x = _match_channels(x, self.channels)
        h, w = x.shape[-2:]
        size = list(self.size)
        mode = getattr(F.InterpolationMode, self.interpolation.upper().replace("-", "_"))
        if self.resize is None:
            return x.contiguous() if [h, w] == size else F.resize(x, size, interpolation=mode, antialias=True)
        if isinstance(self.resize, int):
            if min(h, w) != self.resize:
                x = F.resize(x, self.resize, interpolation=mode, antialias=True)
        elif [h, w] != list(self.resize):
            x = F.resize(x, list(self.resize), interpolation=mode, antialias=True)
        if list(x.shape[-2:]) == size:
            return x.contiguous()
        return F.center_crop(x, size) if self.crop_anchor == "round" else _center_crop_floor(x, size)

    def normalize(self, batch: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 (N, C, H, W) on any device -> float32 normalised, channels-last if asked: one conversion pass
        into the layout the model runs in, then subtract and divide in place (the same arithmetic either way)."""
        mean, std = (t.to(batch.device) for t in self._scale)
        layout = torch.channels_last if channels_last and batch.ndim == 4 else torch.contiguous_format
        x = torch.empty(batch.shape, dtype=torch.float32, device=batch.device, memory_format=layout)
        return x.copy_(batch).sub_(mean).div_(std)

    def normalize_into(self, out: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """One uint8 (C, H, W) image normalised into `out` (a row of a preallocated float batch, in any layout):
        the same arithmetic as `normalize`, element for element."""
        mean, std = self._scale
        return out.copy_(image).sub_(mean).div_(std)

    @cached_property
    def _scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std on the uint8 scale, shaped (C, 1, 1): made once, not for every image of a hot loop."""
        return (torch.tensor(self.mean).view(-1, 1, 1) * 255.0, torch.tensor(self.std).view(-1, 1, 1) * 255.0)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """One image to a normalised float (1, C, H, W) batch."""
        return self.normalize(self.geometry(image).unsqueeze(0))


def _center_crop_floor(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    """transformers' centre crop: zero-pad a side shorter than the crop (as torchvision does), then start at
    floor(margin / 2)."""
    (ch, cw), (h, w) = size, x.shape[-2:]
    if ch > h or cw > w:
        dh, dw = max(ch - h, 0), max(cw - w, 0)
        x = F.pad(x, [dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2], fill=0)
        h, w = x.shape[-2:]
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw].contiguous()


def _match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(..., C, H, W) to `channels` channels: grey repeated to RGB, alpha dropped, RGB to luma."""
    c = x.shape[-3]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(*x.shape[:-3], 3, -1, -1)
    if c == 4:
        x = x[..., :3, :, :]
        c = 3
    if c == 3 and channels == 1:
        # ITU-R 601 luma, as PIL's convert("L") does
        w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (x.float() * w).sum(-3, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return x[..., :channels, :, :]
