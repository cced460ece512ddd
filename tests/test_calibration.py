"""Calibration figures worked by hand, temperature scaling on known logits, and the figures a real evaluation
stores for a model whose outputs are known (a linear model with zero weights and one bias)."""
import math

import numpy as np
import pytest
import torch
from scipy.special import softmax
from test_evaluate import constant_linear

from core import calibration
from core.data import load_dataset
from core.evaluate import evaluate, load_evaluation
from core.robustness import temperature_scaling

# five predictions: two at 0.95 (one right), two at 0.55 (both right), one at 0.25 (wrong)
CONF = [0.95, 0.95, 0.55, 0.55, 0.25]
RIGHT = [1, 0, 1, 1, 0]


def test_ece_worked_by_hand():
    # bins of 1/15: |0.5 - 0.95| x 2/5 + |1 - 0.55| x 2/5 + |0 - 0.25| x 1/5 = 0.18 + 0.18 + 0.05
    assert calibration.ece(CONF, RIGHT) == pytest.approx(0.41, abs=1e-6)
    assert calibration.ece(np.ones(4), np.ones(4)) == pytest.approx(0.0, abs=1e-6)  # sure and right (1 is capped at 1 - 6e-8)
    assert calibration.ece([], []) is None


def test_adaptive_ece_worked_by_hand():
    # 15 bins over 5 images: one image a bin, so the mean |right - confidence| = (0.05+0.95+0.45+0.45+0.25)/5
    assert calibration.adaptive_ece(CONF, RIGHT) == pytest.approx(0.43, abs=1e-6)
    # two equal-mass bins, sorted by confidence: {0.25, 0.55, 0.55} (2 of 3 right) and {0.95, 0.95} (1 of 2):
    # (|2/3 - 0.45| x 3 + |0.5 - 0.95| x 2) / 5 = (0.65 + 0.9) / 5
    assert calibration.adaptive_ece(CONF, RIGHT, bins=2) == pytest.approx(0.31, abs=1e-6)


def test_a_sure_prediction_and_bin_edges_fall_in_the_bins_the_diagram_draws():
    """Confidence 1.0 (float32 gives it for a logit margin above ~17) is in the last bin, [14/15, 1], not in a bin
    of its own; an edge such as 2/3 opens its bin. The ECE is the diagram's gaps weighted by their images."""
    conf, right = [1.0, 0.95, 2 / 3, 0.6], [0, 1, 0, 1]
    # last bin {1.0, 0.95}: |0.5 - 0.975| x 2/4; bin [10/15, 11/15) {2/3}: |0 - 2/3| x 1/4; bin [9/15, 10/15) {0.6}
    expected = 0.475 * 0.5 + (2 / 3) * 0.25 + 0.4 * 0.25
    assert calibration.ece(conf, right) == pytest.approx(expected, abs=1e-6)
    bins = calibration.reliability(conf, right)
    assert [b["n"] for b in bins if b["n"]] == [1, 1, 2] and bins[14]["n"] == 2
    from_bins = sum(abs(b["accuracy"] - b["confidence"]) * b["n"] for b in bins if b["n"]) / len(conf)
    assert from_bins == pytest.approx(expected, abs=1e-6)


def test_reliability_bins_hold_every_image_once():
    bins = calibration.reliability(CONF, RIGHT)
    assert len(bins) == 15 and sum(b["n"] for b in bins) == 5
    full = {round(b["confidence"], 6): (b["n"], b["accuracy"]) for b in bins if b["n"]}
    assert full == {0.95: (2, 0.5), 0.55: (2, 1.0), 0.25: (1, 0.0)}
    assert bins[14]["lo"] == pytest.approx(14 / 15) and bins[14]["hi"] == 1.0 and bins[14]["n"] == 2


def test_nll_and_brier_worked_by_hand():
    # image 1: logits (ln 2, 0, 0) -> p = (1/2, 1/4, 1/4), true class 0: NLL ln 2, Brier 1/4 + 1/16 + 1/16 = 0.375
    # image 2: logits (0, 0, 0) -> p = 1/3 each, true class 2: NLL ln 3, Brier 2/9 + 4/9 = 2/3
    c = calibration.from_logits(np.array([[math.log(2), 0, 0], [0, 0, 0]]), np.array([0, 2]))
    assert c.nll == pytest.approx((math.log(2) + math.log(3)) / 2)
    assert c.brier == pytest.approx((0.375 + 2 / 3) / 2)
    assert c.n == 2


def test_torchmetrics_ece_is_the_top_label_ece_of_the_full_probabilities():
    """The binary form on (top-1 confidence, correct) equals torchmetrics' multiclass form on the full vectors."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 7, generator=g) * 3
    labels = torch.randint(0, 7, (300,), generator=g)
    p = logits.softmax(1)
    conf, pred = p.max(1)
    ours = calibration.ece(conf.numpy(), (pred == labels).numpy())
    assert ours == pytest.approx(float(multiclass_calibration_error(p, labels, num_classes=7, n_bins=15)), abs=1e-6)


def test_ece_equals_torchmetrics_binary_calibration_error():
    """ece() is numpy (torchmetrics costs ~5 s to import in every evaluating process); torchmetrics' binary form on
    (top-1 confidence, correct) is the reference, with confidences spread over [0, 1], at exactly 1.0, and few
    images in many bins. Confidences exactly on an edge are left to the hand-worked test above: torch.linspace's
    float32 edges are off by one ulp from b/bins at some edges (6 of 16 at 15 bins), and ours are b/bins rounded."""
    from torchmetrics.functional.classification import binary_calibration_error

    rng = np.random.default_rng(0)
    for n, bins in ((1, 15), (7, 15), (300, 15), (1000, 10), (50, 100)):
        conf = np.concatenate([rng.random(n), np.ones(n // 7)]).astype(np.float32)
        right = rng.random(len(conf)) < conf  # calibrated in expectation, so the gaps are small and of both signs
        ref = binary_calibration_error(torch.as_tensor(np.minimum(conf, calibration._BELOW_ONE)),
                                       torch.as_tensor(right, dtype=torch.long), n_bins=bins, norm="l1")
        assert calibration.ece(conf, right, bins) == pytest.approx(float(ref), abs=1e-6), (n, bins)


def test_bin_edges_are_b_over_bins_rounded_to_float32():
    """A confidence exactly on float32(b/15) opens bin b, for every edge (torch.linspace would move some by an ulp)."""
    edges = (np.arange(1, 15) / 15).astype(np.float32)
    _, b = calibration._binned(edges, 15)
    assert b.tolist() == list(range(1, 15))
    _, below = calibration._binned(np.nextafter(edges, np.float32(0)), 15)
    assert below.tolist() == list(range(0, 14))


def _overconfident(n: int, seed: int, scale: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Ten classes; the top class is right 60% of the time but its logit margin makes it ~100% sure."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    pred = np.where(rng.random(n) < 0.6, labels, rng.integers(0, 10, n))
    logits = rng.normal(0, 0.5, (n, 10))
    logits[np.arange(n), pred] += scale
    return logits, labels


def test_temperature_scaling_fixes_an_overconfident_model_on_images_it_was_not_fitted_to():
    fit_x, fit_y = _overconfident(2000, 0)
    test_x, test_y = _overconfident(2000, 1)
    t = calibration.fit_temperature(fit_x, fit_y)
    assert t > 2  # softened
    before, after = calibration.from_logits(test_x, test_y), calibration.from_logits(test_x, test_y, t)
    assert after.nll < 0.5 * before.nll
    assert after.ece < 0.05 < 0.3 < before.ece
    # the fitted T is the minimum of the NLL: nudging it either way does worse on the fitting images
    assert calibration.nll_at(fit_x, fit_y, t) < min(calibration.nll_at(fit_x, fit_y, t * 1.05),
                                                     calibration.nll_at(fit_x, fit_y, t / 1.05))


def test_a_calibrated_model_keeps_a_temperature_of_one():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (20000, 5))
    p = softmax(logits, axis=1)
    labels = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from the model's own probabilities
    assert calibration.fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)


def test_an_evaluation_stores_the_calibration_of_a_model_known_by_hand(store):
    """Zero weights and bias 1 on class 3: every image gets p(3) = e / (e + 9), every other class 1 / (e + 9)."""
    ds = load_dataset("digits")
    ev = evaluate(constant_linear(ds, 3), ds, "val", store=store, precision="fp32")
    y = ds.split("val").labels
    hit = y == 3  # 36 of 359
    p3, po = math.e / (math.e + 9), 1 / (math.e + 9)
    nll = np.where(hit, -math.log(p3), -math.log(po))
    sq = p3 ** 2 + 9 * po ** 2
    brier = np.where(hit, sq - 2 * p3 + 1, sq - 2 * po + 1)
    c = ev.meta.calibration
    assert c["ece"] == pytest.approx(abs(hit.mean() - p3), abs=1e-6)  # one bin, all 359 images
    assert c["nll"] == pytest.approx(nll.mean(), rel=1e-5)
    assert c["brier"] == pytest.approx(brier.mean(), rel=1e-5)
    assert ev.summary()["ece"] == c["ece"]
    again = load_evaluation(ev.key, store)  # the stored arrays give the same figures
    assert again.predictions.calibration().nll == pytest.approx(c["nll"], rel=1e-6)
    np.testing.assert_allclose(np.exp(again.predictions.logp[:, 3]), p3, rtol=1e-5)


def test_temperature_scaling_of_a_deliberately_overconfident_model(store):
    """Bias 20 on class 3: ~100% sure of class 3 on every image, right on a tenth of them. Fitted on val,
    reported on test: the NLL falls from about 20 to about the entropy of the label frequencies."""
    ds = load_dataset("digits")
    m = constant_linear(ds, 3)
    with torch.no_grad():
        [p for n, p in m.module.named_parameters() if n.endswith("bias")][-1][3] = 20.0
    m._digest = None
    val = evaluate(m, ds, "val", store=store, precision="fp32")
    test = evaluate(m, ds, "test", store=store, precision="fp32")
    r = temperature_scaling(val, test)
    assert r["split"] == "fitted on val, reported on test" and r["n"] == test.meta.n
    assert r["before"]["nll"] > 15 and r["before"]["ece"] > 0.85
    assert r["after"]["nll"] < 2.5 < r["before"]["nll"]
    assert r["after"]["ece"] < 0.1
    assert r["temperature"] > 5


def test_an_evaluation_too_large_to_keep_its_log_probabilities_says_so(store, monkeypatch):
    import core.evaluate

    monkeypatch.setattr(core.evaluate, "LOGP_MAX_VALUES", 100)  # digits val: 359 images x 10 classes
    ds = load_dataset("digits")
    ev = evaluate(constant_linear(ds, 3), ds, "val", store=store, precision="fp32")
    assert ev.predictions.logp is None and ev.meta.calibration["nll"] is not None  # NLL and Brier kept all the same
    r = temperature_scaling(ev, None)
    assert r["temperature"] is None and "too large" in r["why"] and "--limit" in r["why"]
