"""The default pretrained list, and its sizes counted offline.

Each entry names the transformers class and config of the published checkpoint. Offline, the
architecture is built on PyTorch's `meta` device (shapes, no storage, no weights) so the app can
report parameters and FLOPs for every default model without its weights; with the weights (Hub or a
local folder) the model is loaded for real through `create_model`. Config overrides are only what
differs from the config class's defaults, which for ViT, ResNet-50, ConvNeXt-T and Swin-T are those
very checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class HubModel:
    id: str
    name: str
    family: str
    model_class: str
    config_class: str
    config: dict = field(default_factory=dict)
    input_size: tuple[int, int] = (224, 224)

    def architecture(self, device: str = "meta") -> nn.Module:
        """The checkpoint's architecture with no weights (on `meta`: free to build, for counting)."""
        # lazy: transformers builds these architectures only when their sizes are counted (python -m core models)
        import transformers

        cfg = getattr(transformers, self.config_class)(num_labels=1000, **self.config)
        with torch.device(device):
            return getattr(transformers, self.model_class)(cfg).eval()


_VIT = ("ViTForImageClassification", "ViTConfig")
HF_DEFAULTS: tuple[HubModel, ...] = (
    HubModel("google/vit-base-patch16-224", "ViT-B/16", "vit", *_VIT),
    HubModel("google/bit-50", "BiT-M R50x1", "cnn", "BitForImageClassification", "BitConfig",
             {"global_padding": "SAME", "layer_type": "preactivation"}),
    HubModel("facebook/deit-tiny-patch16-224", "DeiT-Tiny", "vit", *_VIT,
             {"hidden_size": 192, "num_attention_heads": 3, "intermediate_size": 768}),
    HubModel("facebook/deit-small-patch16-224", "DeiT-Small", "vit", *_VIT,
             {"hidden_size": 384, "num_attention_heads": 6, "intermediate_size": 1536}),
    HubModel("microsoft/resnet-50", "ResNet-50", "cnn", "ResNetForImageClassification", "ResNetConfig"),
    HubModel("microsoft/resnet-18", "ResNet-18", "cnn", "ResNetForImageClassification", "ResNetConfig",
             {"layer_type": "basic", "depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512]}),
    HubModel("facebook/convnext-tiny-224", "ConvNeXt-T", "cnn", "ConvNextForImageClassification", "ConvNextConfig"),
    HubModel("microsoft/swin-tiny-patch4-window7-224", "Swin-T", "vit", "SwinForImageClassification", "SwinConfig"),
)


def count(module: nn.Module, input_size: tuple[int, int], channels: int = 3) -> tuple[int, int]:
    """(parameters, FLOPs of one image) of a module, on whatever device it lives (meta included)."""
    device = next(module.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, channels, *input_size, device=device))
    return sum(p.numel() for p in module.parameters()), int(counter.get_total_flops())
