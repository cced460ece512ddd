"""Generated benchmark inputs: JPEG folders shaped like ImageNet's (500x375) or Tiny ImageNet's (64x64), and
randomly initialised Hugging Face models saved in `save_pretrained` form. Nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.models.imagenet import imagenet1k

IMAGENET_SIZE = (500, 375)  # (width, height): the most common ImageNet val size
TINY_SIZE = (64, 64)


def jpeg_folder(root: Path | str, n: int, size: tuple[int, int] = IMAGENET_SIZE, classes: int = 10,
                quality: int = 90, seed: int = 0) -> Path:
    """An ImageNet-style folder, `val/<wnid>/*.jpg`, of `n` JPEGs in the first `classes` ImageNet-1k classes,
    made once (kept when already complete); an ImageNet-1k model is scored on it as on ImageNet val.

    Pictures are smooth colour fields with shapes and mild noise, so they compress like photographs
    (ImageNet val averages about 110 KB at 500x375) rather than like white noise.
    """
    root = Path(root)
    done = root / ".complete"
    if done.exists() and done.read_text() == f"{n} {size} {classes} {quality} {seed}":
        return root

    wnids = imagenet1k().wnids[:classes]
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        c = i % classes
        d = root / "val" / wnids[c]
        d.mkdir(parents=True, exist_ok=True)
        a, b = rng.uniform(0, 2 * np.pi, 2)
        base = np.stack([
            127 + 100 * np.sin(xx / w * (2 + c) + a),
            127 + 100 * np.cos(yy / h * (3 + c) + b),
            127 + 100 * np.sin((xx + yy) / (w + h) * 4 + a + b),
        ], axis=-1)
        base += rng.normal(0, 12, base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = rng.integers(0, w - 4), rng.integers(0, h - 4)
            x1, y1 = x0 + rng.integers(4, max(5, w // 2)), y0 + rng.integers(4, max(5, h // 2))
            draw.ellipse((x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        img.save(d / f"img{i:05d}.jpg", quality=quality)
    done.write_text(f"{n} {size} {classes} {quality} {seed}")
    return root


def random_hf_model(root: Path | str, arch: str, num_labels: int = 1000) -> Path:
    """A randomly initialised transformers image classifier saved with its image processor, made once.

    arch: "vit-b16" (google/vit-base-patch16-224's config and processor) or "resnet-18" / "resnet-50"
    (microsoft/resnet-*'s)."""
    # lazy: transformers loads only when this benchmark's Hub-format model is written
    import transformers as tf

    root = Path(root)
    if (root / "config.json").exists():
        return root
    torch.manual_seed(0)
    labels = {"num_labels": num_labels}  # placeholder LABEL_i names: read as ImageNet-1k's 1000 classes
    imagenet = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    if arch == "vit-b16":
        model = tf.ViTForImageClassification(tf.ViTConfig(**labels))
        processor = tf.ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    elif arch in ("resnet-18", "resnet-50"):
        cfg = (dict(layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512])
               if arch == "resnet-18" else dict(layer_type="bottleneck", depths=[3, 4, 6, 3]))
        model = tf.ResNetForImageClassification(tf.ResNetConfig(embedding_size=64, **cfg, **labels))
        processor = tf.ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875, resample=3, **imagenet)
    else:
        raise ValueError(f"unknown benchmark architecture {arch!r}")
    model.eval()
    model.save_pretrained(root, safe_serialization=True)
    processor.save_pretrained(root)
    return root
