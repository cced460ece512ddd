"""Hosted mode (CNNVIT_HOSTED=1): core refuses paths, unlisted ids, oversized uploads and training above the
limits, for pages, CLI and job workers alike; the pages show no free-form path input. Real folders, real
models, real jobs, real AppTest runs; the messages are asserted word for word."""
import io
import tomllib

import numpy as np
import pytest
from app_test import open_page
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.cli import main as cli
from core.data.registry import load_dataset
from core.errors import DatasetError, ImageDecodeError, ModelError, UserError
from core.hosted import check_upload
from core.jobs import Jobs
from core.models.registry import create_model
from core.settings import REPO_ROOT
from core.train.recipe import Recipe

HUB_DEFAULTS = ("google/vit-base-patch16-224, google/bit-50, facebook/deit-tiny-patch16-224, "
                "facebook/deit-small-patch16-224, microsoft/resnet-50, microsoft/resnet-18, "
                "facebook/convnext-tiny-224, microsoft/swin-tiny-patch4-window7-224")


@pytest.fixture
def hosted(monkeypatch):
    for var in ("CNNVIT_HOSTED_DATASETS", "CNNVIT_HOSTED_MODELS", "CNNVIT_MAX_UPLOAD_MB", "CNNVIT_HOSTED_MAX_EPOCHS",
                "CNNVIT_HOSTED_MAX_TRAIN_IMAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    return monkeypatch


@pytest.fixture
def image_folder(tmp_path):
    """A real class-subfolder dataset: 2 classes x 3 PNGs."""
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "data" / cls / f"{i}.png")
    return tmp_path / "data"


@pytest.fixture
def model_folder(tmp_path):
    """A real save_pretrained folder: a tiny random ViT."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, num_labels=2, id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1})
    ViTForImageClassification(cfg).save_pretrained(tmp_path / "model")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


# --- core: datasets and models ---------------------------------------------------------------------------------

def test_a_real_dataset_folder_loads_locally_and_is_refused_hosted(image_folder, monkeypatch, hosted):
    monkeypatch.setenv("CNNVIT_HOSTED", "0")
    assert load_dataset(str(image_folder)).classes == ["cat", "dog"]  # the folder is a valid dataset
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    with pytest.raises(DatasetError) as e:
        load_dataset(str(image_folder))
    assert str(e.value) == f"this deployment does not read dataset folders ({image_folder}); choose one of: shapes, digits"
    with pytest.raises(DatasetError) as e:
        load_dataset("cifar10")  # registered, but not on the allow-list (a download)
    assert str(e.value) == "dataset 'cifar10' is not offered on this deployment; choose one of: shapes, digits"
    assert load_dataset("digits").num_classes == 10


def test_the_dataset_allow_list_is_an_env_var(hosted):
    hosted.setenv("CNNVIT_HOSTED_DATASETS", "digits")
    with pytest.raises(DatasetError, match=r"^dataset 'shapes' is not offered on this deployment; choose one of: "
                                           r"digits$"):
        load_dataset("shapes")


def test_a_real_model_folder_loads_locally_and_is_refused_hosted(model_folder, monkeypatch, hosted):
    monkeypatch.setenv("CNNVIT_HOSTED", "0")
    assert create_model(str(model_folder)).source == "local"
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    with pytest.raises(ModelError) as e:
        create_model(str(model_folder))
    assert str(e.value) == f"this deployment does not load model folders ({model_folder}); choose a listed model"
    with pytest.raises(ModelError, match=r"does not load model folders \(timm:local-dir:/srv/m\)"):
        create_model("timm:local-dir:/srv/m")  # a folder behind a prefix
    assert create_model("linear").source == "scratch"  # scratch architectures stay


def test_hub_ids_off_the_allow_list_are_refused(hosted):
    with pytest.raises(ModelError) as e:
        create_model("someone/any-model")
    assert str(e.value) == ("model 'someone/any-model' is not on this deployment's allow-list; it offers the scratch "
                            f"architectures, trained runs and these pretrained ids: {HUB_DEFAULTS}")
    hosted.setenv("CNNVIT_HOSTED_MODELS", "facebook/deit-tiny-patch16-224")
    with pytest.raises(ModelError, match=r"^model 'google/vit-base-patch16-224' is not on this deployment's allow-list; "
                                         r"it offers .*ids: facebook/deit-tiny-patch16-224$"):
        create_model("google/vit-base-patch16-224")
    with pytest.raises(ModelError, match="is not on this deployment's allow-list"):
        create_model("torchvision:resnet18")


def test_the_cli_obeys_hosted_mode(image_folder, hosted, capsys):
    assert cli(["evaluate", "--model", "linear", "--dataset", str(image_folder)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: this deployment does not read dataset folders ({image_folder}); choose one of: shapes, digits\n"


# --- core: training limits, where a job is submitted and where a worker starts it ----------------------------

def _submit(store, **recipe):
    r = Recipe(model="linear", dataset="digits", **recipe)
    return Jobs(store).submit("train", {"recipe": r.to_dict()}, r.title, start_worker=False)


def test_training_above_the_limits_is_refused_at_submission(store, hosted):
    with pytest.raises(UserError) as e:
        _submit(store, epochs=11, limit=100)
    assert str(e.value) == "this deployment trains at most 10 epochs (asked for: 11)"
    with pytest.raises(UserError) as e:
        _submit(store, epochs=2)  # no limit: every image of the dataset
    assert str(e.value) == ("this deployment trains on at most 5,000 images (asked for: no limit); set the number of "
                            "training images (--limit) to 5,000 or fewer")
    hosted.setenv("CNNVIT_HOSTED_MAX_TRAIN_IMAGES", "500")
    with pytest.raises(UserError, match=r"at most 500 images \(asked for: 600\)"):
        _submit(store, epochs=2, limit=600)
    assert Jobs(store).list() == []  # nothing was queued
    assert _submit(store, epochs=2, limit=500).state == "queued"  # within the limits
    with pytest.raises(UserError, match=r"one process \(asked for: 2\)"):
        _submit(store, epochs=2, limit=500, batch_size=64, world_size=2)


def test_scoring_heat_maps_on_too_many_images_is_refused_at_submission(store, hosted):
    from core.jobs import FaithfulnessJob

    with pytest.raises(UserError, match=r"at most 500 images \(asked for: 501\)"):
        Jobs(store).submit(FaithfulnessJob("linear", "shapes", ("gradcam",), limit=501), start_worker=False)
    with pytest.raises(UserError, match=r"asked for: every image"):
        Jobs(store).submit(FaithfulnessJob("linear", "shapes", ("gradcam",)), start_worker=False)
    assert Jobs(store).list() == []
    assert Jobs(store).submit(FaithfulnessJob("linear", "shapes", ("gradcam",), limit=500),
                              start_worker=False).state == "queued"


def test_training_off_refuses_recipes_and_the_demo(store, hosted):
    hosted.setenv("CNNVIT_HOSTED_MAX_EPOCHS", "0")
    with pytest.raises(UserError) as e:
        _submit(store, epochs=1, limit=10)
    assert str(e.value) == "training is off on this deployment (CNNVIT_HOSTED_MAX_EPOCHS=0)"
    with pytest.raises(UserError, match=r"^the demo trains models, and training is off on this deployment"):
        Jobs(store).submit("demo", {}, "demo", start_worker=False)


def test_a_worker_refuses_a_job_queued_before_the_limits(store, monkeypatch, hosted):
    monkeypatch.setenv("CNNVIT_HOSTED", "0")
    job = _submit(store, epochs=20, limit=50)  # accepted: not hosted yet
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    jobs = Jobs(store)
    done = jobs.run(jobs.claim(job.id))
    assert done.state == "failed" and done.error == "this deployment trains at most 10 epochs (asked for: 20)"


def test_a_limit_that_does_not_parse_stops_every_command_instead_of_lifting_the_limit(hosted, capsys):
    hosted.setenv("CNNVIT_HOSTED_MAX_EPOCHS", "ten")
    assert cli(["jobs"]) == 2
    assert capsys.readouterr().err == "error: CNNVIT_HOSTED_MAX_EPOCHS='ten' is not a number\n"


# --- uploads ------------------------------------------------------------------------------------------------

def test_upload_limit_refuses_one_byte_over(hosted):
    check_upload("ok.png", 5 * 2**20)  # exactly 5 MB: accepted
    with pytest.raises(ImageDecodeError) as e:
        check_upload("big.png", 5 * 2**20 + 1)
    assert str(e.value) == "big.png is 5.0 MB; uploads are limited to 5 MB per file here"
    hosted.setenv("CNNVIT_HOSTED", "0")
    check_upload("big.png", 100 * 2**20)  # not hosted: Streamlit's server.maxUploadSize is the only limit
    hosted.setenv("CNNVIT_MAX_UPLOAD_MB", "1")
    with pytest.raises(ImageDecodeError, match="limited to 1 MB"):
        check_upload("big.png", 2**20 + 1)  # set explicitly, it applies anywhere


def test_xsrf_protection_is_not_turned_off():
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"].get("enableXsrfProtection", True) is True
    assert config["server"].get("enableCORS", True) is True


# --- pages ----------------------------------------------------------------------------------------------------

def _page(page: str) -> AppTest:
    return open_page(page)


def _png(side: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


FREE_TEXT_OK = {"Search class names",  # confusion matrix: filters class names
                # "Pin this view": a story's and a view's title and note, shown as text, never read as a path
                # (core/stories.py bounds their length; tests/test_stories.py)
                "New story's title", "View title", "Note",
                "Layer (empty = the first conv / patch embedding for filters, the last conv or block for maps)"}


@pytest.mark.parametrize("page", ["app_pages/overview.py", "app_pages/evaluate.py", "app_pages/train.py",
                                  "app_pages/predict.py", "app_pages/filters.py", "app_pages/attention.py",
                                  "app_pages/shape_bias.py"])
def test_hosted_pages_offer_no_free_form_paths(hosted, page):
    at = _page(page)
    typed = [w.label for w in [*at.selectbox, *at.multiselect] if w.proto.accept_new_options]
    assert typed == []
    sidebar = [c.value for c in at.sidebar.caption]
    assert sidebar[0].startswith("**Device:**") and not [c for c in sidebar if "Store:" in c]  # no server path
    assert {w.label for w in [*at.text_input, *at.text_area]} <= FREE_TEXT_OK
    for w in [*at.selectbox, *at.multiselect]:
        if w.label in ("Dataset", "Datasets"):
            assert list(w.options) in (["shapes", "digits"], [
                "shapes - Shapes (generated, 64x64) (10 classes, embedded)",
                "digits - Digits (scikit-learn, 8x8) (10 classes, embedded)"])


def test_hosted_train_form_shows_and_bounds_the_limits(hosted):
    at = _page("app_pages/train.py")
    assert any("at most 10 epochs on at most 5,000 images" in c.value for c in at.caption)
    epochs = next(w for w in at.number_input if w.label == "Epochs")
    images = next(w for w in at.number_input if w.label == "Train images (at most 5,000)")
    assert (epochs.max, images.min, images.max, images.value) == (10, 1, 5000, 5000)
    hosted.setenv("CNNVIT_HOSTED_MAX_EPOCHS", "0")
    at = _page("app_pages/train.py")
    assert "Training is off on this deployment" in at.info[0].value
    assert next(b for b in at.button if b.label == "Start training").disabled


def test_hosted_predict_refuses_an_oversized_upload_before_decoding(hosted):
    hosted.setenv("CNNVIT_MAX_UPLOAD_MB", "1")
    at = _page("app_pages/predict.py")
    uploader = at.file_uploader[0]
    assert uploader.proto.max_upload_size_mb == 1  # the browser refuses bigger files before sending them
    big, small = _png(700), _png(32)  # noise does not compress: 700 x 700 x 3 is about 1.4 MB
    assert len(big) > 2**20 > len(small)
    uploader.set_value([("big.png", big, "image/png"), ("small.png", small, "image/png")])
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"big.png is {len(big) / 2**20:.1f} MB; uploads are limited to 1 MB per "
                                           "file here"]
    assert [s.value for s in at.subheader] == ["small.png"]  # the other upload is predicted as usual
    assert len(at.dataframe) >= 1


def test_hosted_predict_falls_back_on_an_allowed_dataset(hosted):
    hosted.setenv("CNNVIT_HOSTED_DATASETS", "digits")  # `shapes` refused: examples and labels come from digits
    at = _page("app_pages/predict.py")
    examples = next(w for w in at.selectbox if w.label == "or a bundled example").options
    assert len(examples) == 10 and all("(digits val #" in e for e in examples)
    assert len(at.dataframe) >= 1  # the default models predicted the first example


def test_results_on_server_folders_are_not_shown_hosted(image_folder, tmp_path, monkeypatch, hosted):
    """A store filled on a workstation (a folder dataset's evaluation beside an embedded one's) and then deployed:
    the folder's results are neither listed nor opened, and the result pages draw without an exception."""
    from core.evaluate import evaluate
    from core.results import evaluation_table
    from core.store import Store

    store_dir = tmp_path / "copied-store"
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(store_dir))
    monkeypatch.delenv("CNNVIT_HOSTED")
    evaluate("linear", str(image_folder), store=Store(store_dir))
    evaluate("linear", "digits", "val", store=Store(store_dir))
    assert {r["dataset"] for r in evaluation_table(Store(store_dir))} == {str(image_folder), "digits"}
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    assert [r["dataset"] for r in evaluation_table(Store(store_dir))] == ["digits"]
    for page in ("app_pages/overview.py", "app_pages/compare.py", "app_pages/confusion.py", "app_pages/drilldown.py"):
        _page(page)  # asserts no exception
