"""Our preprocessing equals each model's own transformers image processor on real image files."""
import numpy as np
import pytest
from PIL import Image

from core.data.decode import decode_image
from core.data.shapes import generate_split
from core.models.preprocess import Preprocess
from core.models.pretrained import preprocess_from_processor


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """JPEG files of three geometries: landscape and portrait (ImageNet-like) and exactly the crop size."""
    d = tmp_path_factory.mktemp("jpegs")
    imgs, _ = generate_split("val", n=3)
    files = []
    for i, (w, h) in enumerate([(500, 375), (375, 500), (224, 224)]):
        path = d / f"{i}.jpg"
        Image.fromarray(imgs[i]).resize((w, h), Image.BICUBIC).save(path, quality=90)
        files.append(path)
    return files


def _processors():
    from transformers import BitImageProcessor, ConvNextImageProcessor, DeiTImageProcessor, ViTImageProcessor

    return {  # the settings of the default list's models (ViT-B/16, DeiT, ConvNeXt, BiT)
        "vit": ViTImageProcessor(size={"height": 224, "width": 224}),
        "deit": DeiTImageProcessor(size={"height": 256, "width": 256}, crop_size={"height": 224, "width": 224}, resample=3),
        "convnext": ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875, resample=3),
        "bit": BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, resample=3),
    }


@pytest.mark.parametrize("name", ["vit", "deit", "convnext", "bit"])
def test_matches_the_models_own_processor(tmp_path, jpegs, name):
    from transformers import AutoImageProcessor

    _processors()[name].save_pretrained(tmp_path)
    exact = AutoImageProcessor.from_pretrained(tmp_path)  # what from_pretrained gives the model: torchvision backend
    pil = AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    ours = preprocess_from_processor(exact)
    assert ours.size == (224, 224)
    for f in jpegs:
        x = ours(decode_image(f))[0].numpy()
        ref = exact(images=Image.open(f).convert("RGB"), return_tensors="pt")["pixel_values"][0].numpy()
        np.testing.assert_allclose(x, ref, atol=1e-5, err_msg=f"{name} {f.name}")
        ref_pil = pil(images=Image.open(f).convert("RGB"), return_tensors="pt")["pixel_values"][0].numpy()
        assert np.abs(x - ref_pil).max() < 3 / 255 / min(ours.std), f"{name} {f.name}"  # PIL: within 2 grey levels


def test_crop_size_image_is_still_resized_when_the_recipe_says_so():
    """A 224x224 image under "resize 256, crop 224" is zoomed, not passed through."""
    pre = Preprocess(size=(224, 224), mean=(0.5,) * 3, std=(0.5,) * 3, resize=256)
    assert not pre.passthrough(224, 224, 3)
    img = np.zeros((224, 224, 3), np.uint8)
    img[:8] = 255  # a white band of 8 rows: zoomed by 256/224 to 9.1 rows, then the crop removes 16
    out = pre.geometry(img)
    assert out.shape == (3, 224, 224) and out.max() < 10
    scratch = Preprocess(size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3, resize=64)
    assert scratch.passthrough(64, 64, 3) and not scratch.passthrough(64, 64, 1)


def test_grayscale_to_rgb_and_rgb_to_gray():
    rgb = Preprocess(size=(8, 8), mean=(0.5,) * 3, std=(0.5,) * 3)
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    out = rgb.geometry(gray)
    assert out.shape == (3, 8, 8) and (out[0] == out[2]).all()
    one = Preprocess(size=(8, 8), mean=(0.5,), std=(0.5,), channels=1)
    px = np.zeros((8, 8, 3), np.uint8)
    px[..., 1] = 100  # pure green 100 -> luma 0.587 * 100 = 58.7 -> 59
    assert one.geometry(px).unique().tolist() == [59]


def test_decoder_refuses_extreme_aspect_ratios(tmp_path):
    from core.errors import ImageDecodeError

    Image.fromarray(np.zeros((1, 5000, 3), np.uint8)).save(tmp_path / "strip.png")
    with pytest.raises(ImageDecodeError, match="aspect ratio"):
        decode_image(tmp_path / "strip.png")
    Image.fromarray(np.zeros((10, 900, 3), np.uint8)).save(tmp_path / "banner.png")
    assert decode_image(tmp_path / "banner.png").shape == (10, 900, 3)  # 90:1 is still an image
