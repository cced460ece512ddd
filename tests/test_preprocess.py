"""Our preprocessing equals each model's own transformers image processor on real image files."""
import numpy as np
import pytest
import torch
from PIL import Image

from core.data.decode import decode_image
from core.data.shapes import generate_split
from core.data.transforms import Preprocess
from core.models.pretrained import preprocess_from_processor


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """JPEG files of four geometries: landscape and portrait (ImageNet-like), exactly the crop size, and one whose
    crop margin is odd (503 -> 343 after a shorter-side resize to 256: 119 px to share, where transformers' crop
    starts at 59 and torchvision's at round(59.5) = 60)."""
    d = tmp_path_factory.mktemp("jpegs")
    imgs, _ = generate_split("val", n=4)
    files = []
    for i, (w, h) in enumerate([(500, 375), (375, 500), (224, 224), (503, 375)]):
        path = d / f"{i}.jpg"
        Image.fromarray(imgs[i]).resize((w, h), Image.BICUBIC).save(path, quality=90)
        files.append(path)
    return files


def _processors():
    import transformers as t

    crop224 = {"height": 224, "width": 224}
    return {  # name: (processor, what it translates to by hand: size, resize, interpolation, mean[0], std[0])
        # the settings of the default list's models (ViT-B/16, DeiT, ConvNeXt, BiT)
        "vit": (t.ViTImageProcessor(size=crop224), ((224, 224), None, "bilinear", 0.5, 0.5)),
        "deit": (t.DeiTImageProcessor(size={"height": 256, "width": 256}, crop_size=crop224, resample=3),
                 ((224, 224), (256, 256), "bicubic", 0.5, 0.5)),
        "convnext": (t.ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875, resample=3),
                     ((224, 224), 256, "bicubic", 0.5, 0.5)),  # 224 / 0.875
        "bit": (t.BitImageProcessor(size={"shortest_edge": 256}, crop_size=crop224, resample=3),
                ((224, 224), 256, "bicubic", 0.48145466, 0.26862954)),
        # resample 0 is PIL's NEAREST (transformers resizes with nearest-exact), not "unset"
        "vit-nearest": (t.ViTImageProcessor(size=crop224, resample=0), ((224, 224), None, "nearest-exact", 0.5, 0.5)),
        "bit-nearest": (t.BitImageProcessor(size={"shortest_edge": 256}, crop_size=crop224, resample=0),
                        ((224, 224), 256, "nearest-exact", 0.48145466, 0.26862954)),
        # no normalisation: pixels / 255, i.e. mean 0, std 1; no rescale either: mean / 255 and std / 255
        "vit-no-normalize": (t.ViTImageProcessor(size=crop224, do_normalize=False),
                             ((224, 224), None, "bilinear", 0.0, 1.0)),
        "vit-no-rescale": (t.ViTImageProcessor(size=crop224, do_rescale=False),
                           ((224, 224), None, "bilinear", 0.5 / 255, 0.5 / 255)),
        # processors with their own steps, reproduced exactly
        "levit": (t.LevitImageProcessor(), ((224, 224), 256, "bicubic", 0.485, 0.229)),  # int(256 / 224 * 224)
        "poolformer": (t.PoolFormerImageProcessor(), ((224, 224), 248, "bicubic", 0.485, 0.229)),  # int(224 / 0.9)
        "poolformer-square": (t.PoolFormerImageProcessor(size=crop224), ((224, 224), 248, "bicubic", 0.485, 0.229)),
        # include_top divides by the std a second time: std 0.5 * 0.5
        "efficientnet": (t.EfficientNetImageProcessor(), ((346, 346), None, "bicubic", 0.5, 0.25)),
        # rescale_offset: x / 127.5 - 1, then (. - 0.5) / 0.5 / 0.5 = (x - 191.25) / 31.875
        #                                                             = (x - 255 * 0.75) / (255 * 0.125)
        "efficientnet-offset": (t.EfficientNetImageProcessor(rescale_offset=True, rescale_factor=1 / 127.5,
                                                             do_center_crop=True, size={"height": 320, "width": 320}),
                                ((289, 289), (320, 320), "bicubic", 0.75, 0.125)),
        # without the channel flip MobileViT only rescales; its 256 crop of a 224 resize zero-pads
        "mobilevit-rgb": (t.MobileViTImageProcessor(do_flip_channel_order=False),
                          ((256, 256), 224, "bicubic", 0.0, 1.0)),
    }


@pytest.mark.parametrize("name", list(_processors()))
def test_matches_the_models_own_processor(tmp_path, jpegs, name):
    from transformers import AutoImageProcessor

    processor, (size, resize, interpolation, mean, std) = _processors()[name]
    processor.save_pretrained(tmp_path)
    exact = AutoImageProcessor.from_pretrained(tmp_path)  # what from_pretrained gives the model: torchvision backend
    pil = AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    ours = preprocess_from_processor(exact)
    assert (ours.size, ours.resize, ours.interpolation) == (size, resize, interpolation)
    assert ours.mean[0] == pytest.approx(mean) and ours.std[0] == pytest.approx(std)
    for f in jpegs:
        x = ours(decode_image(f))[0].numpy()
        ref = exact(images=Image.open(f).convert("RGB"), return_tensors="pt")["pixel_values"][0].numpy()
        np.testing.assert_allclose(x, ref, atol=1e-5, err_msg=f"{name} {f.name}")
        ref_pil = pil(images=Image.open(f).convert("RGB"), return_tensors="pt")["pixel_values"][0].numpy()
        assert np.abs(x - ref_pil).max() < 3 / 255 / min(ours.std), f"{name} {f.name}"  # PIL: within 2 grey levels


def test_no_resize_step_passes_model_sized_images_untouched(tmp_path, jpegs):
    """do_resize=False: an image already at the model's input size goes in exactly as the processor gives it; one of
    another size is resized to it (the processor would hand a fixed-size model a wrong-sized image)."""
    from transformers import AutoImageProcessor, ViTImageProcessor

    ViTImageProcessor(size={"height": 224, "width": 224}, do_resize=False).save_pretrained(tmp_path)
    exact = AutoImageProcessor.from_pretrained(tmp_path)
    ours = preprocess_from_processor(exact)
    assert (ours.size, ours.resize) == ((224, 224), None) and ours.passthrough(224, 224, 3)
    square = jpegs[2]  # 224 x 224
    ref = exact(images=Image.open(square).convert("RGB"), return_tensors="pt")["pixel_values"][0].numpy()
    np.testing.assert_allclose(ours(decode_image(square))[0].numpy(), ref, atol=1e-6)
    theirs = exact(images=Image.open(jpegs[0]).convert("RGB"), return_tensors="pt")["pixel_values"]
    assert theirs.shape[-2:] == (375, 500)  # the processor leaves a 500 x 375 image as it is
    assert ours(decode_image(jpegs[0])).shape == (1, 3, 224, 224)


def _refused():
    import transformers as t

    crop224 = {"height": 224, "width": 224}
    return {  # name: (processor, words the refusal must contain)
        "mobilevit": (t.MobileViTImageProcessor(), "RGB to BGR"),  # the default: channels flipped, no normalisation
        "perceiver": (t.PerceiverImageProcessor(), "own _preprocess"),  # crops by a ratio first, then resizes
        "lanczos": (t.ViTImageProcessor(size=crop224, resample=1), "LANCZOS"),
        "pad": (t.ViTImageProcessor(size=crop224, do_pad=True, pad_size=crop224), "do_pad"),
        "longest-edge": (t.ViTImageProcessor(size={"longest_edge": 224}), "longest_edge"),
        "shorter-side-no-crop": (t.BitImageProcessor(do_center_crop=False), "without a crop"),
        "crop-without-resize": (t.DeiTImageProcessor(do_resize=False), "without resizing"),
        "convnext-two-crops": (t.ConvNextImageProcessor(size={"shortest_edge": 224}, do_center_crop=True,
                                                        crop_size=crop224), "centre-crops twice"),
    }


@pytest.mark.parametrize("name", list(_refused()))
def test_untranslatable_processors_are_refused(tmp_path, name):
    """Preprocessing with no exact Preprocess form is refused, naming the processor and the model, instead of
    silently scoring the model on differently prepared images."""
    from transformers import AutoImageProcessor

    from core.errors import ModelError

    processor, words = _refused()[name]
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    with pytest.raises(ModelError) as e:
        preprocess_from_processor(loaded, model="someone/some-model")
    msg = str(e.value)
    assert type(loaded).__name__ in msg and "someone/some-model" in msg and words in msg, msg


def test_model_folder_with_an_untranslatable_processor_is_refused(tmp_path):
    """Through the real loader: a tiny ViT saved with MobileViT's (channel-flipping) processor is not loaded."""
    from transformers import MobileViTImageProcessor, ViTConfig, ViTForImageClassification

    from core.errors import ModelError
    from core.models.registry import create_model

    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, num_labels=3)
    ViTForImageClassification(cfg).save_pretrained(tmp_path / "m")
    MobileViTImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "m")
    with pytest.raises(ModelError, match=r"MobileViTImageProcessor.*do_flip_channel_order") as e:
        create_model(str(tmp_path / "m"))
    assert str(tmp_path / "m") in str(e.value)


def test_transformers_crop_anchor_floors_an_odd_margin():
    """A 5-px-wide image cropped to 2 px keeps columns 1-2 (floor(3 / 2) = 1) under transformers' rule, 2-3 under
    torchvision's (round(1.5) = 2); the store key only names a non-default anchor."""
    img = np.tile(np.arange(5, dtype=np.uint8) * 50, (2, 1))[..., None]  # one row: 0 50 100 150 200
    tv = Preprocess(size=(2, 2), mean=(0.5,), std=(0.5,), resize=2, channels=1)
    hf = Preprocess(size=(2, 2), mean=(0.5,), std=(0.5,), resize=2, channels=1, crop_anchor="floor")
    assert tv.geometry(img)[0, 0].tolist() == [100, 150]
    assert hf.geometry(img)[0, 0].tolist() == [50, 100]
    assert "crop_anchor" not in tv.key() and hf.key()["crop_anchor"] == "floor"


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


@pytest.mark.parametrize("pre", [
    Preprocess((32, 32), (0.5,) * 3, (0.5,) * 3),  # straight resize
    Preprocess((24, 24), (0.5,) * 3, (0.5,) * 3, resize=28, interpolation="bicubic", crop_anchor="floor"),
    Preprocess((20, 20), (0.5,), (0.5,), resize=(25, 25), channels=1),  # RGB to luma, then resize and crop
    Preprocess((16, 16), (0.5,) * 3, (0.5,) * 3, resize=16, interpolation="nearest-exact"),
])
def test_batched_geometry_gives_the_same_pixels_as_one_image_at_a_time(pre):
    """The loader and the trainer resize whole in-memory batches at once; every pixel must equal the per-image
    path's (and so the stored evaluations made before)."""
    rng = np.random.default_rng(0)
    for images in (rng.integers(0, 256, (7, 37, 53, 3), dtype=np.uint8),  # RGB
                   rng.integers(0, 256, (5, 30, 30), dtype=np.uint8)):  # grey, no channel axis
        if images.ndim == 3 and pre.channels == 1:
            continue
        one_by_one = torch.stack([pre.geometry(img) for img in images])
        batched = pre.geometry_batch(images)
        assert batched.dtype == torch.uint8 and batched.shape == (len(images), pre.channels, *pre.size)
        assert torch.equal(batched, one_by_one)
