"""Scored explanations: deletion and insertion worked by hand on a 2x2 image, a planted-square model whose true map
must beat a random one, Grad-CAM++ / Score-CAM / EigenCAM and ROAD's imputation against pytorch-grad-cam (the
field's library) on the same model, layer, image and class, stored batch scores, the job and the CLI's JSON."""
import json
import os

import numpy as np
import pytest
import torch
from core_process import run_core
from PIL import Image
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction
from test_explain import planted_square
from torch import nn

from core.data import load_dataset
from core.explain import CAMS, ExplainError, explain
from core.explain.base import model_input, prefix_tokens, token_grid
from core.explain.faithfulness import (
    auc,
    baseline_map,
    blurred,
    class_probability,
    counts,
    deletion_insertion,
    impute,
    score_map,
)
from core.explain.scores import explain_score, faithfulness, faithfulness_rows, parse_methods
from core.jobs import FaithfulnessJob, Jobs, job_spec
from core.models.scratch import build_scratch
from core.models.spec import InputShape
from core.settings import REPO_ROOT


class HandModel(nn.Module):
    """Two classes; P(class 0) = 0.4 a + 0.3 b + 0.2 c + 0.1 d for the 2x2 pixels [[a, b], [c, d]] (logits are the
    log probabilities, so softmax gives them back exactly)."""

    def forward(self, x):
        s = (x[:, 0] * torch.tensor([[0.4, 0.3], [0.2, 0.1]])).sum((1, 2)).clamp(1e-9, 1 - 1e-9)
        return torch.stack([s.log(), (1 - s).log()], 1)


def test_deletion_and_insertion_worked_by_hand_on_a_2x2_image():
    x = torch.ones(1, 1, 2, 2)
    heat = np.array([[0.9, 0.1], [0.5, 0.3]])  # order: (0,0) 0.4, (1,0) 0.2, (1,1) 0.1, (0,1) 0.3
    assert counts(4, 32) == [0, 1, 2, 3, 4]  # no more steps than pixels
    prob = class_probability(HandModel(), 0)
    d, i = deletion_insertion(prob, x, heat, insert_onto=torch.zeros_like(x))
    np.testing.assert_allclose(d, [1.0, 0.6, 0.4, 0.3, 0.0], atol=1e-6)
    np.testing.assert_allclose(i, [0.0, 0.4, 0.6, 0.7, 1.0], atol=1e-6)
    # trapezoids over x = 0, 1/4, ..., 1: (1 + 0)/2 + 0.6 + 0.4 + 0.3 = 1.8, / 4
    assert auc(d) == pytest.approx(0.45) and auc(i) == pytest.approx(0.55)
    worst = np.array([[0.1, 0.9], [0.3, 0.5]])  # the least useful pixel first: deletion curve 1, .7, .6, .4, 0
    dw, _ = deletion_insertion(prob, x, worst, insert_onto=torch.zeros_like(x))
    assert auc(dw) == pytest.approx((0.5 + 0.7 + 0.6 + 0.4) / 4) and auc(dw) > auc(d)


def test_blur_keeps_a_constant_image_and_flattens_a_checkerboard():
    flat = torch.full((1, 3, 32, 32), 0.7)
    torch.testing.assert_close(blurred(flat), flat)
    board = torch.from_numpy(np.indices((32, 32)).sum(0) % 2 * 2.0 - 1).float()[None, None].repeat(1, 3, 1, 1)
    assert blurred(board).std() < 0.05 * board.std()
    assert blurred(torch.ones(1, 3, 2, 2)).shape == (1, 3, 2, 2)  # the kernel shrinks to fit a tiny image


def test_imputation_matches_the_road_reference_and_keeps_known_pixels():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 9, 11)).astype(np.float32)
    removed = rng.random((9, 11)) < 0.4
    removed[0] = True  # a whole edge row: neighbours outside the image drop out of the weights
    ours = impute(img, removed, noise=0)
    ref = NoisyLinearImputer(noise=0)(torch.tensor(img), torch.tensor((~removed).astype(np.float32))).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_array_equal(ours[:, ~removed], img[:, ~removed])
    # one hole in a constant image is filled with the constant (the weighted mean of equal neighbours)
    hole = np.zeros((5, 5), bool)
    hole[2, 2] = True
    assert impute(np.full((1, 5, 5), 3.0), hole, noise=0)[0, 2, 2] == pytest.approx(3.0)


def _square_model():
    """tests/test_explain.py's planted-square model with class 1 near 0.79 with the square and 0.27 without: the
    square is the evidence and the dark background counts for nothing."""
    model, image = planted_square(gain=40.0, bias=-1.0)
    truth = np.zeros((32, 32), np.float32)
    truth[18:26, 5:13] = 1.0
    return model, image, truth


def test_the_true_map_of_a_planted_square_outscores_the_baselines_and_so_does_gradcam():
    model, image, truth = _square_model()
    x, _ = model_input(model, image)
    prob = class_probability(model.logits, 1)
    true = score_map(prob, x, truth).summary()
    for name in ("random", "centre"):
        base = score_map(prob, x, baseline_map(name, (32, 32), seed=3)).summary()
        assert true["deletion_auc"] < base["deletion_auc"] - 0.05, (name, true, base)
        assert true["insertion_auc"] > base["insertion_auc"] + 0.05, (name, true, base)
        assert true["road_morf"] < base["road_morf"] and true["road_lerf"] > base["road_lerf"], (name, true, base)
    for method in ("gradcam", "gradcam++", "scorecam"):  # real methods on a model whose answer is known
        r = explain_score(model, image, method)
        assert r["class_index"] == 1
        assert r["deletion_auc"] < r["baselines"]["random"]["deletion_auc"], (method, r)
        assert r["insertion_auc"] > r["baselines"]["random"]["insertion_auc"], (method, r)
    drawn = explain(model, image, "gradcam")  # the page scores the map it drew: the same numbers
    again = explain_score(model, image, "gradcam", drawn.class_index, heatmap=drawn.heatmap)
    assert again["deletion_auc"] == explain_score(model, image, "gradcam")["deletion_auc"]


def _library_cam(model, method: str, layer: str, image: np.ndarray, idx: int) -> np.ndarray:
    """pytorch-grad-cam's map for the same model, layer, image and class, at the model's input size."""
    module = dict(model.module.named_modules())[layer]
    x, _ = model_input(model, image)
    prefix, hw = prefix_tokens(model.module), tuple(x.shape[-2:])

    def tokens_to_grid(t):
        if t.ndim != 3:
            return t
        p, gh, gw = token_grid(t.shape[1], prefix, hw)
        return t[:, p:].reshape(t.shape[0], gh, gw, t.shape[2]).permute(0, 3, 1, 2)

    class SignedEigenCAM(EigenCAM):  # EigenCAM with Seg-Eigen-CAM's sign correction, which the library also has
        def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
            return get_2d_projection_with_sign_correction(activations)

    cls = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM, "eigencam": SignedEigenCAM}[method]
    with cls(model=model.module, target_layers=[module], reshape_transform=tokens_to_grid) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(idx)])[0]


@pytest.mark.parametrize("arch", ["resnet20", "vit-small"])
def test_every_cam_matches_pytorch_grad_cam(arch):
    torch.manual_seed(0)
    model = build_scratch(arch, InputShape(3, 32, 10))
    image = load_dataset("shapes").split("val").load(0)
    for method in CAMS:
        ours = explain(model, image, method, precision="fp32")
        ref = _library_cam(model, method, ours.layer, image, ours.class_index)
        assert ours.heatmap.std() > 0 and ref.std() > 0, method  # a real map, not an empty one
        r = np.corrcoef(ours.heatmap.reshape(-1), ref.reshape(-1))[0, 1]
        assert r >= 0.99, (arch, method, ours.layer, r)


def test_batch_scores_are_stored_and_paired_with_the_random_map(store):
    rows = faithfulness_rows("cnn-2layer", "shapes", ("gradcam", "rollout"), limit=6, store=store)
    by = {r["method"]: r for r in rows}
    assert list(by) == ["random", "centre", "gradcam", "rollout"]
    assert "not a vision transformer" in by["rollout"]["error"]  # a CNN has no attention: said, not raised
    g, rnd = by["gradcam"], by["random"]
    assert g["n"] == 6 and not g["cached"] and g["baseline"] is False and rnd["baseline"] is True
    one = faithfulness("cnn-2layer", "shapes", "gradcam", limit=6, store=store)
    base = faithfulness("cnn-2layer", "shapes", "random", limit=6, store=store)
    assert one.cached and one.key == g["key"]
    per = one.per_image("deletion_auc")
    assert g["deletion_auc"] == pytest.approx(per.mean())
    diff = per - base.per_image("deletion_auc")
    assert g["deletion_auc_vs_random"] == pytest.approx(diff.mean())
    # the interval is Student's t over the 6 images: 2.571 x s / sqrt(6)
    assert g["deletion_auc_ci95"] == pytest.approx(2.5706 * per.std(ddof=1) / np.sqrt(6), rel=1e-3)
    again = faithfulness_rows("cnn-2layer", "shapes", ("gradcam",), limit=6, store=store, stored_only=True)
    assert all(r["cached"] for r in again) and len(again) == 3
    assert faithfulness("cnn-2layer", "shapes", "eigencam", limit=6, store=store, stored_only=True) is None
    with pytest.raises(ExplainError, match="cannot be scored"):
        parse_methods("gradcam,filters")


def test_a_faithfulness_job_scores_in_the_background(store):
    job = FaithfulnessJob("cnn-2layer", "shapes", ("eigencam",), limit=4)
    assert job_spec(job.kind, json.loads(json.dumps(job.to_json()))) == job
    jobs = Jobs(store)
    row = jobs.submit(job, start_worker=False)
    assert jobs.work(max_jobs=1) == 1
    done = jobs.get(row.id)
    assert done.state == "done", done.error
    assert [r["method"] for r in done.result["rows"]] == ["random", "centre", "eigencam"]
    assert faithfulness("cnn-2layer", "shapes", "eigencam", limit=4, store=store, stored_only=True) is not None


def test_cli_explain_score_json(tmp_path):
    env = os.environ | {"CNNVIT_CACHE_DIR": str(tmp_path / "store"), "CNNVIT_DEVICE": "cpu"}
    path = tmp_path / "img.png"
    Image.fromarray(load_dataset("shapes").split("val").load(1)).save(path)
    proc = run_core("explain", "--model", "cnn-2layer", "--image", str(path), "--method", "gradcam++", "--score",
                    "--json", cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert {"model", "method", "class_index", "deletion_auc", "insertion_auc", "baselines"} <= set(r)  # DESIGN.md
    assert set(r["baselines"]) == {"random", "centre"} and r["method"] == "gradcam++"
    assert len(r["curves"]["deletion"]) == 33 and 0 <= r["deletion_auc"] <= 1
    batch = run_core("explain", "--model", "cnn-2layer", "--dataset", "shapes", "--limit", "3", "--method",
                     "gradcam,eigencam", "--score", "--json", cwd=REPO_ROOT, env=env)
    assert batch.returncode == 0, batch.stderr
    assert [x["method"] for x in json.loads(batch.stdout)["rows"]] == ["random", "centre", "gradcam", "eigencam"]
    for args, says in ((["--image", str(path), "--method", "filters"], "cannot be scored"),
                       (["--method", "gradcam"], "--dataset"),
                       (["--image", str(path), "--method", "gradcam,eigencam"], "one --method")):
        bad = run_core("explain", "--model", "cnn-2layer", "--score", *args, cwd=REPO_ROOT, env=env)
        assert bad.returncode == 2 and bad.stderr.startswith("error:") and says in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
