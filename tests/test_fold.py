"""Batch-norm folding for inference: the folded copy computes what the original does, pairs are read off
the real data flow, a fold that would change the output is refused, and the model itself is untouched."""
import pytest
import torch
import torchvision
from torch import nn

from core.models.fold import conv_bn_pairs, fold_batchnorm
from core.models.scratch import build_scratch
from core.models.spec import InputShape
from core.precision import inference_fn


def _random_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norms with running statistics and affine parameters far from the identity, as after training
    (a freshly initialised norm is almost the identity, so a wrong fold would go unnoticed)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g))
                m.running_var.copy_(torch.rand(n, generator=g) * 3 + 0.2)
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g))
    return module.eval()


def test_a_one_pixel_fold_by_hand():
    # conv: y = 2x; norm: (y - 1) / sqrt(3 + 1) * 4 + 5  ->  folded: 4x + 3
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1, eps=1.0)).eval()
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        model[1].running_mean.fill_(1.0), model[1].running_var.fill_(3.0)
        model[1].weight.fill_(4.0), model[1].bias.fill_(5.0)
    folded = fold_batchnorm(model, torch.randn(2, 1, 3, 3))
    assert isinstance(folded[1], nn.Identity)
    assert folded[0].weight.item() == pytest.approx(4.0) and folded[0].bias.item() == pytest.approx(3.0)
    assert folded(torch.full((1, 1, 1, 1), 10.0)).item() == pytest.approx(43.0)


def test_torchvision_resnet18_folds_every_norm_and_keeps_its_logits():
    model = _random_statistics(torchvision.models.resnet18(num_classes=10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 64, 64)
    folded = fold_batchnorm(model, x)
    assert folded is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert len(conv_bn_pairs(model, x)) == 20  # 17 convolutions of the trunk + 3 downsampling shortcuts
    probe = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        want, got = model(probe), folded(probe)
    assert (want - got).abs().max() <= 1e-4 * want.abs().max()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 20


class PreActBlock(nn.Module):
    """norm -> relu -> conv -> norm -> relu -> conv, plus the input: only the second norm follows a conv."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        return x + self.conv2(torch.relu(self.bn2(out)))


def test_pairs_follow_the_data_not_the_module_order():
    # registration order says conv1 -> bn2 and also bn1 first; the data says only conv1 feeds a norm (bn2)
    model = _random_statistics(PreActBlock())
    x = torch.randn(2, 4, 8, 8)
    assert conv_bn_pairs(model, x) == [("conv1", "bn2")]
    folded = fold_batchnorm(model, x)
    assert isinstance(folded.bn1, nn.BatchNorm2d) and isinstance(folded.bn2, nn.Identity)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5, rtol=1e-4)


class SharedOutput(nn.Module):
    """The conv's output feeds its norm and, unseen by hooks, an addition: folding would change the sum."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return (y + self.bn(y)).flatten(1)


def test_a_fold_that_changes_the_output_is_refused():
    model = _random_statistics(SharedOutput())
    x = torch.randn(2, 3, 4, 4)
    assert conv_bn_pairs(model, x) == [("conv", "bn")]  # it looks foldable to the hooks...
    assert fold_batchnorm(model, x) is None  # ...but the check against the original refuses it


def test_a_model_in_training_mode_or_without_norms_is_not_folded():
    x = torch.randn(2, 3, 8, 8)
    assert fold_batchnorm(torchvision.models.resnet18(num_classes=3).train(), torch.randn(2, 3, 32, 32)) is None
    assert fold_batchnorm(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten()).eval(), x) is None


def test_inference_runs_the_folded_copy_and_leaves_the_model_alone():
    m = build_scratch("resnet20", InputShape(3, 32, 10))
    _random_statistics(m.module)
    digest = m.weights_digest()
    run = inference_fn(m, "cpu", "fp32")
    assert run.folded and not run.channels_last
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        want = m.logits(x)
    assert (run(x) - want).abs().max() <= 1e-4 * want.abs().max()
    m._digest = None
    assert m.weights_digest() == digest  # the model's own weights and norms are unchanged
    assert any(isinstance(mod, nn.BatchNorm2d) for mod in m.module.modules())
    bf16 = inference_fn(m, "cpu", "bf16")
    assert bf16.folded and bf16.channels_last
    first_conv = next(mod for mod in m.module.modules() if isinstance(mod, nn.Conv2d))
    assert first_conv.weight.is_contiguous()  # channels-last went to the copy, not to the model
    assert (bf16(x).argmax(1) == want.argmax(1)).float().mean() >= 0.75
    vit = build_scratch("vit-small", InputShape(3, 32, 10))
    assert not inference_fn(vit, "cpu", "bf16").folded  # layer norms, no batch norms
