"""Batch augmentation for training, on whatever device the batch is on.

Works on float images in [0, 1], shape (N, C, H, W), before normalisation, any C and size.
Every random number is drawn on the CPU from the caller's torch.Generator and then moved
to the batch's device, so a run (or a resumed run) draws the same numbers on CPU and CUDA.

Presets, combinable with "+" ("slides+cutmix"); parts run in a fixed order whatever the text:
ten-crop, contrast, flip, translation + rotation, then CutMix or MixUp (one of the two per
batch, by a coin flip, when both are asked for).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import UserError
from core.train.presets import parse_preset


def adjust_contrast(x: Tensor, factor: Tensor | float) -> Tensor:
    """torchvision's adjust_contrast on a batch: blend each image with its mean grey, clamp to [0, 1].

    The grey of an RGB image is 0.2989 R + 0.587 G + 0.114 B; of any other C, the channel mean.
    `factor` is a number or one per image (N,).
    """
    if x.shape[1] == 3:
        weights = torch.tensor([0.2989, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        grey = (x * weights).sum(dim=1, keepdim=True)
    else:
        grey = x.mean(dim=1, keepdim=True)
    mean = grey.mean(dim=(1, 2, 3), keepdim=True)
    factor = torch.as_tensor(factor, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    return (factor * x + (1 - factor) * mean).clamp(0, 1)


def _crop_boxes(h: int, w: int, crop_fraction: float) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of the five crops, in torchvision's five_crop order:
    top-left, top-right, bottom-left, bottom-right, centre."""
    ch, cw = max(1, round(h * crop_fraction)), max(1, round(w * crop_fraction))
    ct, cl = round((h - ch) / 2), round((w - cw) / 2)
    return [(0, 0, ch, cw), (0, w - cw, ch, cw), (h - ch, 0, ch, cw), (h - ch, w - cw, ch, cw), (ct, cl, ch, cw)]


def _crop_resized(x: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    top, left, ch, cw = box
    crop = x[..., top:top + ch, left:left + cw]
    return F.interpolate(crop, size=x.shape[-2:], mode="bilinear", align_corners=False)


def ten_crops(x: Tensor, crop_fraction: float = 0.875) -> Tensor:
    """(10, N, C, H, W): the five crops resized back to (H, W), then the same five flipped.

    Crop k + 5 is the horizontal flip of crop k (the study flips the crops; torchvision's
    ten_crop holds the same ten images in another order). For test-time averaging.
    """
    five = [_crop_resized(x, box) for box in _crop_boxes(*x.shape[-2:], crop_fraction)]
    return torch.stack(five + [c.flip(-1) for c in five])


class Augmenter:
    """Apply a preset to a training batch: `x_aug, target = augmenter(x, y, generator)`."""

    def __init__(self, preset: str, num_classes: int, *, mix_alpha: float = 1.0, rotate_degrees: float = 15.0,
                 translate: float = 0.1, contrast: tuple[float, float] = (0.7, 1.3)):
        self.parts = parse_preset(preset)
        if not mix_alpha > 0:
            raise UserError(f"mix alpha must be > 0, got {mix_alpha}")
        if not (0 <= rotate_degrees <= 180 and 0 <= translate < 1):
            raise UserError(f"rotation must be 0-180 degrees and translation 0-1 of the side, "
                            f"got {rotate_degrees}, {translate}")
        if not 0 <= contrast[0] <= contrast[1]:
            raise UserError(f"contrast range must be 0 <= low <= high, got {contrast}")
        if ({"cutmix", "mixup"} & set(self.parts)) and num_classes < 1:
            raise UserError("CutMix / MixUp need the number of classes")
        self.num_classes = num_classes
        self.mix_alpha = mix_alpha
        self.rotate_degrees = rotate_degrees
        self.translate = translate
        self.contrast = contrast

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator,
                 share: tuple[int, int] = (0, 1)) -> tuple[Tensor, Tensor]:
        """(x_aug, target): target is y (N,) when labels are untouched, or (N, num_classes) float
        probabilities after CutMix / MixUp, so F.cross_entropy(logits, target) takes either.

        `share` = (part, parts): x is part `part` of a batch cut into `parts` equal pieces (one per process under
        torchrun). Per-image random numbers are drawn for the whole batch and each piece takes its own, so the
        pieces together are augmented exactly as the whole batch in one process. CutMix and MixUp mix within the
        piece (as timm's distributed training does): with them, several processes are not one."""
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError(f"expected float images (N, C, H, W), got {tuple(x.shape)} {x.dtype}")
        n, dev = x.shape[0], x.device
        part, parts = share
        mine = slice(part * n, (part + 1) * n)

        def rand(*shape: int) -> Tensor:  # uniform [0, 1) drawn on the CPU for the whole batch, then moved
            return torch.rand((shape[0] * parts, *shape[1:]), generator=generator)[mine].to(dev, x.dtype)

        if "ten-crop" in self.parts:
            x = self._ten_crop(x, torch.randint(0, 10, (n * parts,), generator=generator)[mine].to(dev))
        if "slides" in self.parts:
            lo, hi = self.contrast
            x = adjust_contrast(x, lo + (hi - lo) * rand(n))
        if "flip" in self.parts or "slides" in self.parts:
            x = torch.where((rand(n) < 0.5).view(n, 1, 1, 1), x.flip(-1), x)
        if "slides" in self.parts:
            x = self._affine(x, (2 * rand(n) - 1) * self.rotate_degrees, (2 * rand(n, 2) - 1) * self.translate)
        mixes = [p for p in ("cutmix", "mixup") if p in self.parts]
        if not mixes:
            return x, y
        coin = torch.rand((), generator=generator).item()  # drawn always, so the stream does not depend on it
        mix = mixes[0] if len(mixes) == 1 or coin < 0.5 else mixes[1]
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        lam = float(np.random.default_rng(seed).beta(self.mix_alpha, self.mix_alpha))  # torch's Beta takes no generator
        perm = torch.randperm(n, generator=generator).to(dev)
        if mix == "cutmix":
            x, lam = self._cutmix(x, perm, lam, generator)
        else:
            x = lam * x + (1 - lam) * x[perm]
        one_hot = F.one_hot(y, self.num_classes).to(x.dtype)
        return x, lam * one_hot + (1 - lam) * one_hot[perm]

    @staticmethod
    def _ten_crop(x: Tensor, which: Tensor) -> Tensor:
        """Crop `which[i]` of ten_crops for image i; ten batched ops, not one per image."""
        out = torch.empty_like(x)
        for k, box in enumerate(_crop_boxes(*x.shape[-2:], 0.875)):
            for flipped in (False, True):
                idx = (which == k + 5 * flipped).nonzero().flatten()
                if len(idx):
                    crops = _crop_resized(x[idx], box)
                    out[idx] = crops.flip(-1) if flipped else crops
        return out

    @staticmethod
    def _affine(x: Tensor, degrees: Tensor, shift: Tensor) -> Tensor:
        """Rotate each image about its centre by `degrees` and shift it by `shift` (N, 2)
        fractions of its width and height; bilinear, black outside the image."""
        n, _, h, w = x.shape
        a = torch.deg2rad(degrees)
        cos, sin = torch.cos(a), torch.sin(a)
        # rotation in pixel units, expressed in affine_grid's [-1, 1] coordinates (which stretch x by w, y by h)
        theta = torch.stack([
            torch.stack([cos, -sin * h / w, 2 * shift[:, 0]], dim=1),
            torch.stack([sin * w / h, cos, 2 * shift[:, 1]], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def _cutmix(x: Tensor, perm: Tensor, lam: float, generator: torch.Generator) -> tuple[Tensor, float]:
        """Paste one box (area about 1 - lam, clipped at the edges) from x[perm] into every image;
        returns the images and the share of each image left unpasted."""
        _, _, h, w = x.shape
        ratio = (1 - lam) ** 0.5
        bh, bw = int(h * ratio), int(w * ratio)
        cy = int(torch.randint(0, h, (), generator=generator))
        cx = int(torch.randint(0, w, (), generator=generator))
        top, bottom = max(cy - bh // 2, 0), min(cy + bh - bh // 2, h)
        left, right = max(cx - bw // 2, 0), min(cx + bw - bw // 2, w)
        x = x.clone()
        x[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
        return x, 1 - (bottom - top) * (right - left) / (h * w)
