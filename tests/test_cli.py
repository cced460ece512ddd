"""The CLI end to end, in its own processes, as tools outside the project call it (DESIGN.md contract). Each call
is a new process forked from one that imported torch once (tests/core_process.py); `real=True` starts
`python -m core` itself, as the first test does."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from core_process import run_core
from PIL import Image

from core.settings import REPO_ROOT


def cli(*args: str, ok: bool = True, real: bool = False) -> subprocess.CompletedProcess:
    env = os.environ | {"CNNVIT_DEVICE": "cpu"}
    if real:
        proc = subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              env=env, timeout=300)
    else:
        proc = run_core(*args, cwd=REPO_ROOT, env=env)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_datasets_json_keys():
    rows = json.loads(cli("datasets", "--json", real=True).stdout)  # `python -m core` itself
    assert {r["id"] for r in rows} >= {"digits", "shapes", "cifar10", "cifar100"}
    for r in rows:
        assert set(r) == {"id", "name", "num_classes", "splits", "source"}
    digits = next(r for r in rows if r["id"] == "digits")
    assert digits["num_classes"] == 10 and digits["splits"] == ["train", "val", "test"]


def test_models_json_keys_and_families():
    rows = json.loads(cli("models", "--json").stdout)
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        assert set(r) >= {"id", "name", "family", "source", "params", "input_size"}  # DESIGN.md keys (more may be added)
        assert r["gflops_per_image"] > 0
        assert r["family"] in ("cnn", "vit", "hybrid", "other") and r["params"] > 0  # DESIGN.md's families
        assert r["source"] in ("scratch", "hf", "torchvision", "timm", "local", "trained")
    assert by_id["vit-small"]["family"] == "vit" and by_id["resnet20"]["family"] == "cnn"
    assert by_id["resnet20"]["params"] == 269_722  # He et al.'s CIFAR ResNet-20 (option A shortcuts), 10 classes
    # the default Hub models, counted offline; torchvision documents the same architectures' num_params
    assert by_id["google/vit-base-patch16-224"]["params"] == 86_567_656  # ViT_B_16_Weights num_params
    assert by_id["microsoft/resnet-50"]["params"] == 25_557_032  # ResNet50_Weights num_params
    assert by_id["microsoft/resnet-18"]["params"] == 11_689_512  # ResNet18_Weights num_params
    assert by_id["google/vit-base-patch16-224"]["family"] == "vit" and by_id["google/bit-50"]["family"] == "cnn"
    # FLOPs: torchvision's _ops is GMACs (17.564 for ViT-B/16); a multiply-add is 2 FLOPs here
    assert by_id["google/vit-base-patch16-224"]["gflops_per_image"] == pytest.approx(2 * 17.564, rel=1e-3)


def test_evaluate_json_then_cache_hit():
    args = ("evaluate", "--model", "linear", "--dataset", "digits", "--split", "test", "--json")
    first = json.loads(cli(*args).stdout)
    assert set(first) >= {"model", "dataset", "split", "n", "top1", "top5", "f1_macro", "cohen_kappa",
                          "seconds", "images_per_second", "cached"}  # DESIGN.md's keys; added ones say more
    assert first["scoring"] == "native" and "top1_restricted" not in first
    assert first["n"] == 360 and first["split"] == "test" and 0 <= first["top1"] <= first["top5"] <= 1
    second = json.loads(cli(*args).stdout)
    assert second["cached"] is True and second["top1"] == first["top1"]


def test_evaluate_human_output():
    out = cli("evaluate", "--model", "linear", "--dataset", "digits", "--limit", "20").stdout
    assert "linear on digits/val: 20 images" in out and "top1" in out


def test_predict_json(tmp_path):
    img = tmp_path / "blob.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(img)
    rows = json.loads(cli("predict", "--model", "cnn-2layer", str(img), "--top-k", "3", "--json").stdout)
    assert rows[0]["image"] == str(img) and len(rows[0]["top"]) == 3
    probs = [t["probability"] for t in rows[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert all(t["label"] in ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "heart",
                              "arrow", "crescent") for t in rows[0]["top"])


@pytest.mark.parametrize("args, needles", [
    (("evaluate", "--model", "no-such-model", "--dataset", "digits"), ["no-such-model", "resnet20", "vit-small"]),
    (("evaluate", "--model", "linear", "--dataset", "no-such-data"), ["no-such-data", "shapes", "digits"]),
    (("evaluate", "--model", "linear", "--dataset", "/no/such/folder"), ["/no/such/folder", "does not exist"]),
    (("evaluate", "--model", "linear", "--dataset", "digits", "--split", "holdout"), ["holdout", "train, val, test"]),
    (("evaluate", "--model", "linear"), ["--dataset"]),
    (("evaluate", "--model", "cnnvit-test-org/no-such-model", "--dataset", "digits"), ["cnnvit-test-org/no-such-model", "save_pretrained"]),
    (("predict", "--model", "linear", "x.png", "--top-k", "0"), ["--top-k"]),
    (("frobnicate",), ["invalid choice"]),
])
def test_user_errors_are_one_line_exit_2(args, needles):
    assert_user_error(cli(*args, ok=False), *needles)


def test_predict_unreadable_image_is_reported_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
    proc = cli("predict", "--model", "linear", str(good), str(bad), str(tmp_path), "--json", ok=False)
    assert_user_error(proc, "2 of 3 images could not be read", "bad.png")
    rows = json.loads(proc.stdout)  # the readable image still gets its answer
    assert len(rows[0]["top"]) == 5 and "bad.png" in rows[1]["error"] and "is a directory" in rows[2]["error"]


def test_model_given_as_a_file_or_a_broken_folder(tmp_path):
    assert_user_error(cli("evaluate", "--model", str(REPO_ROOT / "README.md"), "--dataset", "digits", ok=False),
                      "README.md is a file")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert_user_error(cli("evaluate", "--model", str(tmp_path / "m"), "--dataset", "digits", ok=False),
                      "not a loadable model folder")


@pytest.mark.parametrize("args, needles", [
    (("evaluate", "--model", "linear", "--dataset", "digits", "--batch-size", "0"), ["--batch-size"]),
    (("evaluate", "--model", "linear", "--dataset", "digits", "--limit", "-1"), ["--limit"]),
    (("evaluate", "--model", "linear", "--dataset", str(REPO_ROOT / "README.md")), ["is a file"]),
])
def test_bad_arguments(args, needles):
    assert_user_error(cli(*args, ok=False), *needles)


def test_a_store_or_datasets_folder_that_cannot_be_used_is_a_one_line_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    args = ("evaluate", "--model", "linear", "--dataset", "shapes", "--limit", "4", "--json")
    env = os.environ | {"CNNVIT_DEVICE": "cpu"}
    store = run_core(*args, cwd=REPO_ROOT, env=env | {"CNNVIT_CACHE_DIR": str(tmp_path / "a-file")})
    assert_user_error(store, str(tmp_path / "a-file"), "CNNVIT_CACHE_DIR")
    data = run_core(*args, cwd=REPO_ROOT, env=env | {"CNNVIT_CACHE_DIR": str(tmp_path / "store"),
                                                     "CNNVIT_DATASETS_DIR": str(tmp_path / "a-file" / "datasets")})
    assert_user_error(data, "CNNVIT_DATASETS_DIR")
    assert (tmp_path / "a-file").read_text() == "not a folder"  # nothing lost


def test_a_cuda_device_this_machine_lacks_names_what_asked_for_it():
    """The flag and the setting each get a message naming themselves: a user who never typed --device is told
    which environment variable to change."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    args = ("evaluate", "--model", "linear", "--dataset", "digits", "--limit", "10")
    assert_user_error(run_core(*args, cwd=REPO_ROOT, env=os.environ | {"CNNVIT_DEVICE": "cuda"}), "CNNVIT_DEVICE=cuda asks for a CUDA device", "set CNNVIT_DEVICE to auto or cpu")
    assert_user_error(cli(*args, "--device", "cuda", ok=False), "--device cuda was asked for")
