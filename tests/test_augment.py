import pytest
import torch
import torch.nn.functional as F

from core.errors import UserError
from core.train.augment import Augmenter, adjust_contrast, ten_crops
from core.train.presets import PRESETS, parse_preset


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ramp(n: int = 1, c: int = 1, h: int = 8, w: int = 8) -> torch.Tensor:
    """Pixel value row * w + col (scaled to [0, 1)): asymmetric, and bilinear resampling of it is exact."""
    img = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w) / (h * w)
    return img.expand(n, c, h, w).clone()


def test_parse_preset():
    assert parse_preset("none") == []
    assert parse_preset("cutmix + Slides") == ["slides", "cutmix"]
    assert parse_preset("flip+flip") == ["flip"]
    with pytest.raises(UserError, match="unknown augmentation 'rotate'"):
        parse_preset("flip+rotate")
    with pytest.raises(UserError):
        Augmenter("sharpen", 10)
    assert {"none", "flip", "slides", "ten-crop", "cutmix", "mixup"} <= set(PRESETS)


def test_none_returns_the_batch_untouched():
    x, y = ramp(4), torch.arange(4)
    xa, t = Augmenter("none", 4)(x, y, gen())
    assert torch.equal(xa, x) and t is y


def test_flip_is_either_the_image_or_its_mirror():
    x, y = ramp(64, 3), torch.zeros(64, dtype=torch.long)
    xa, t = Augmenter("flip", 10)(x, y, gen())
    flipped = torch.tensor([torch.equal(a, x[0].flip(-1)) for a in xa])
    same = torch.tensor([torch.equal(a, x[0]) for a in xa])
    assert (flipped | same).all() and 10 < flipped.sum() < 54
    assert torch.equal(xa[flipped], torch.flip(x[flipped], dims=[3]))
    assert torch.equal(t, y)


@pytest.mark.parametrize("preset", ["flip", "slides", "ten-crop", "cutmix", "mixup", "slides+mixup+cutmix"])
def test_same_seed_same_output_different_seed_different(preset):
    x, y = torch.rand(16, 3, 32, 32, generator=gen(9)), torch.arange(16) % 5
    aug = Augmenter(preset, 5)
    a, ta = aug(x, y, gen(1))
    b, tb = aug(x, y, gen(1))
    c, _ = aug(x, y, gen(2))
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, c)


def test_contrast_blends_with_the_mean_grey_by_hand():
    x = torch.tensor([0.0, 0.2, 0.4, 0.6]).view(1, 1, 2, 2)  # mean 0.3
    # 1.3 * v - 0.3 * 0.3 = 1.3 v - 0.09, clamped to [0, 1]
    expected = torch.tensor([0.0, 0.17, 0.43, 0.69]).view(1, 1, 2, 2)
    torch.testing.assert_close(adjust_contrast(x, 1.3), expected)
    # RGB: grey = 0.2989 R + 0.587 G + 0.114 B; a pure red image at 0.5 has mean grey 0.14945
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 0.5
    out = adjust_contrast(red, 0.7)
    assert out[0, 0, 0, 0].item() == pytest.approx(0.7 * 0.5 + 0.3 * 0.14945, abs=1e-6)
    assert out[0, 1, 0, 0].item() == pytest.approx(0.3 * 0.14945, abs=1e-6)


def test_contrast_agrees_with_torchvision():
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(3, 3, 16, 16, generator=gen(3))
    factors = torch.tensor([0.7, 1.0, 1.3])
    ours = adjust_contrast(x, factors)
    for i, f in enumerate(factors.tolist()):
        torch.testing.assert_close(ours[i], TF.adjust_contrast(x[i], f), atol=1e-5, rtol=0)


def test_ten_crops_by_hand():
    x = ramp(2, 1, 16, 16)  # value (16 * row + col) / 256; crop side 14 at 7/8
    crops = ten_crops(x)
    assert crops.shape == (10, 2, 1, 16, 16)
    # top-left crop (rows/cols 0..13) resized 14 -> 16: output pixel i samples (i + 0.5) * 14/16 - 0.5
    src = (torch.arange(16) + 0.5) * 14 / 16 - 0.5
    src = src.clamp(0, 13)  # interpolate clamps at the crop's own edges
    expected = (16 * src.view(-1, 1) + src.view(1, -1)) / 256
    torch.testing.assert_close(crops[0, 0, 0], expected)
    assert crops[0, 0, 0, 0, 0] == x[0, 0, 0, 0]
    assert crops[3, 0, 0, 0, 0] == x[0, 0, 2, 2]  # bottom-right crop starts at row 2, col 2
    assert crops[4, 0, 0, 0, 0] == x[0, 0, 1, 1]  # centre crop starts at (16 - 14) / 2 = 1
    for k in range(5):
        assert torch.equal(crops[k + 5], crops[k].flip(-1))


def test_ten_crop_training_picks_one_of_the_ten_per_image():
    x = torch.rand(40, 3, 24, 24, generator=gen(5))
    xa, _ = Augmenter("ten-crop", 10)(x, torch.zeros(40, dtype=torch.long), gen())
    crops = ten_crops(x)
    which = [next(k for k in range(10) if torch.allclose(xa[i], crops[k, i])) for i in range(40)]
    assert len(set(which)) >= 6  # random per image, not one choice for the batch


def test_cutmix_target_matches_the_pasted_area():
    n = 12
    x = ((torch.arange(n, dtype=torch.float32) + 1) / (n + 1)).view(n, 1, 1, 1).expand(n, 3, 20, 20).clone()
    y = torch.arange(n)
    for seed in range(5):
        xa, t = Augmenter("cutmix", n)(x, y, gen(seed))
        assert t.shape == (n, n) and t.dtype == torch.float32
        torch.testing.assert_close(t.sum(1), torch.ones(n))
        for i in range(n):
            pasted = (xa[i] != x[i]).float().mean().item()  # every image is a distinct constant
            assert t[i, i].item() == pytest.approx(1 - pasted)
            if pasted:
                j = int(round(xa[i][xa[i] != x[i]][0].item() * (n + 1) - 1))
                assert t[i, j].item() == pytest.approx(pasted)
        # the pasted area is a single box, the same one in every image
        masks = xa != x
        moved = masks[(masks.flatten(1).any(1))]
        assert all(torch.equal(m, moved[0]) for m in moved)


def test_mixup_x_is_the_blend_the_target_says():
    n = 10
    x, y = torch.rand(n, 3, 8, 8, generator=gen(4)), torch.arange(n)
    xa, t = Augmenter("mixup", n, mix_alpha=0.4)(x, y, gen(7))
    torch.testing.assert_close(t.sum(1), torch.ones(n))
    lams = set()
    for i in range(n):
        row = t[i].clone()
        if row[i] == 1:  # mixed with itself
            torch.testing.assert_close(xa[i], x[i])
            continue
        lam = row[i].item()
        row[i] = 0
        j = int(row.argmax())
        torch.testing.assert_close(xa[i], lam * x[i] + (1 - lam) * x[j])
        lams.add(round(lam, 6))
    assert len(lams) == 1  # one lam per batch


def test_mixed_target_works_with_cross_entropy():
    x, y = torch.rand(6, 1, 8, 8, generator=gen()), torch.tensor([0, 1, 2, 0, 1, 2])
    _, t = Augmenter("mixup", 3)(x, y, gen())
    logits = torch.randn(6, 3, generator=gen())
    loss = F.cross_entropy(logits, t, label_smoothing=0.1)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (5, 3, 64, 64), (3, 3, 48, 64)])
@pytest.mark.parametrize("preset", list(PRESETS) + ["slides+cutmix", "ten-crop+mixup"])
def test_shapes_dtype_and_range_are_kept(shape, preset):
    x = torch.rand(shape, generator=gen())
    xa, t = Augmenter(preset, 4)(x, torch.arange(shape[0]) % 4, gen())
    assert xa.shape == x.shape and xa.dtype == x.dtype
    assert xa.min() >= 0 and xa.max() <= 1
    assert t.shape in {(shape[0],), (shape[0], 4)}


def test_slides_with_no_rotation_translation_or_contrast_is_only_a_flip():
    x = torch.rand(8, 3, 16, 16, generator=gen())
    aug = Augmenter("slides", 2, rotate_degrees=0, translate=0, contrast=(1.0, 1.0))
    xa, _ = aug(x, torch.zeros(8, dtype=torch.long), gen())
    for a, b in zip(xa, x):
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a, b.flip(-1), atol=1e-5)


def test_rotation_by_90_degrees_moves_pixels_like_rot90():
    x = torch.rand(1, 1, 8, 8, generator=gen()).expand(2, 1, 8, 8)  # the same image twice
    out = Augmenter._affine(x, torch.tensor([90.0, -90.0]), torch.zeros(2, 2))
    # rotations by +-90 degrees about the centre map pixel centres onto pixel centres
    assert torch.allclose(out[0], torch.rot90(x[0], 1, dims=(1, 2)), atol=1e-5) or \
        torch.allclose(out[0], torch.rot90(x[0], -1, dims=(1, 2)), atol=1e-5)
    assert torch.allclose(out[0], torch.rot90(out[1], 2, dims=(1, 2)), atol=1e-5)


def test_rotation_and_translation_respect_a_non_square_aspect():
    x = torch.zeros(1, 1, 8, 16)
    x[..., 3:5, 4:12] = 1  # a 2 x 8 horizontal bar, centred
    shifted = Augmenter._affine(x, torch.zeros(1), torch.tensor([[0.25, 0.0]]))  # a quarter of 16 = 4 px
    assert torch.allclose(shifted, x.roll(-4, dims=3), atol=1e-6)  # the bar now spans columns 0-7
    turned = Augmenter._affine(x, torch.tensor([90.0]), torch.zeros(1, 2)) > 0.5
    assert turned[..., 7:9].all() and turned.sum() == 16  # an upright bar 8 px tall (clipped), 2 px wide


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_draws_the_same_numbers_as_cpu():
    x, y = torch.rand(8, 3, 32, 32, generator=gen()), torch.arange(8) % 4
    aug = Augmenter("ten-crop+slides+cutmix", 4)
    a, ta = aug(x, y, gen(3))
    b, tb = aug(x.cuda(), y.cuda(), gen(3))
    torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=0)
    torch.testing.assert_close(tb.cpu(), ta)
