import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.metrics import compute_metrics, proportion_ci95, top_k_accuracy
from core.settings import REPO_ROOT

# Six images, three classes. Worked by hand:
#   confusion rows (true) x cols (pred): [[1,1,0],[0,2,0],[1,0,1]]
#   precision 1/2, 2/3, 1   recall 1/2, 1, 1/2   F1 1/2, 4/5, 2/3
#   kappa: p_o = 4/6, p_e = 1/3*(2/6+3/6+1/6) = 1/3 -> (2/3-1/3)/(2/3) = 1/2
Y = np.array([0, 0, 1, 1, 2, 2])
TOP = np.array([[0, 1], [1, 0], [1, 0], [1, 2], [2, 1], [0, 1]])


def test_metrics_match_hand_computation():
    m = compute_metrics(Y, TOP, 3, ranked_over=10)  # as if ranked over 10 classes, two ranks stored
    assert m.top1 == pytest.approx(4 / 6)
    assert m.top5 == pytest.approx(5 / 6)  # only the last image misses in its top 2
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_allclose(m.precision, [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(m.recall, [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(m.f1, [1 / 2, 4 / 5, 2 / 3])
    np.testing.assert_array_equal(m.support, [2, 2, 2])
    assert m.f1_macro == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert m.cohen_kappa == pytest.approx(0.5)
    assert m.balanced_accuracy == pytest.approx(2 / 3)


def test_unseen_classes_keep_their_rows_but_not_the_macro_average():
    m = compute_metrics(Y, TOP, 5)  # classes 3 and 4 never occur
    assert m.confusion.shape == (5, 5) and len(m.f1) == 5
    assert m.f1_macro == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)


def test_top_k_is_membership_in_the_first_k_columns():
    top = np.array([[3, 1, 2], [0, 2, 1]])
    assert top_k_accuracy(np.array([1, 1]), top, 1) == 0.0
    assert top_k_accuracy(np.array([1, 1]), top, 2) == 0.5
    assert top_k_accuracy(np.array([1, 1]), top, 5) == 1.0


def test_kappa_undefined_for_one_class():
    m = compute_metrics(np.array([2, 2]), np.array([[2], [2]]), 3)
    assert m.top1 == 1.0 and math.isnan(m.cohen_kappa)


@pytest.mark.parametrize("classes, defined", [(3, False), (5, False), (6, True), (10, True)])
def test_top5_undefined_when_five_or_fewer_classes_are_ranked(classes, defined):
    y = np.arange(classes) % classes
    top = np.stack([np.roll(np.arange(classes), -i)[:5] for i in range(classes)])[:, ::-1]  # truth ranked last
    m = compute_metrics(y, top, classes)
    if defined:
        assert m.top5 == 1.0 and m.top1 == 0.0  # the true class is 5th of 5 stored ranks
    else:
        assert math.isnan(m.top5)  # with <= 5 classes every class is in the top 5
    assert compute_metrics(y, top, classes, ranked_over=1000).top5 == 1.0  # an ImageNet model's own ranks


@settings(max_examples=300, deadline=None)
@given(classes=st.integers(1, 12), data=st.data())
def test_every_score_is_scikit_learns(classes, data):
    """compute_metrics is numpy; scikit-learn is the reference it is checked against, including predictions outside
    the dataset's classes (-1), classes missing from the sample and one-class samples."""
    from sklearn.metrics import (
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    n = data.draw(st.integers(1, 60))
    y = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    pred = np.array(data.draw(st.lists(st.integers(-1, classes - 1), min_size=n, max_size=n)))
    m = compute_metrics(y, pred[:, None], classes)
    labels = np.arange(classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns on classes missing from the sample
        p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
        balanced = balanced_accuracy_score(y, pred)
        kappa = cohen_kappa_score(y, pred)
        confusion = confusion_matrix(y, pred, labels=labels)
    np.testing.assert_array_equal(m.confusion, confusion)
    np.testing.assert_array_equal(m.support, s)
    np.testing.assert_allclose(m.precision, p)
    np.testing.assert_allclose(m.recall, r)
    np.testing.assert_allclose(m.f1, f)
    seen = np.isin(labels, y) | np.isin(labels, pred)
    assert m.f1_macro == pytest.approx(f[seen].mean())
    assert m.balanced_accuracy == pytest.approx(balanced)
    if len(np.unique(np.concatenate([y, pred]))) < 2:
        assert math.isnan(m.cohen_kappa)  # scikit-learn divides 0 by 0 here
    else:
        assert m.cohen_kappa == pytest.approx(kappa, abs=1e-12)
    np.testing.assert_array_equal(m.outside, np.bincount(y[pred < 0], minlength=classes))


def test_a_prediction_past_the_last_class_is_outside_not_the_next_row():
    # class 3 of 3 classes (0..2) does not exist: were it indexed as y * 3 + 3, it would land in the next row's class 0
    m = compute_metrics(np.array([0, 1]), np.array([[3], [1]]), 3)
    np.testing.assert_array_equal(m.confusion, [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(m.outside, [1, 0, 0])
    assert m.top1 == 0.5 and m.recall[0] == 0.0


def test_scoring_does_not_import_scikit_learn():
    """Every process that evaluates or trains scores its predictions; importing sklearn.metrics for that cost each one
    about 2 s (on 2 CPU cores, more than scoring a small evaluation)."""
    code = ("import sys, numpy as np; from core.metrics import compute_metrics\n"
            "compute_metrics(np.array([0, 1, 1]), np.array([[0], [1], [-1]]), 2)\n"
            "print('sklearn' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_the_wilson_interval_worked_by_hand():
    # 84 right of 100, z = 1.95996: centre (0.84 + z^2 / 200) / (1 + z^2 / 100) = 0.859208 / 1.038415 = 0.827422;
    # half-width z * sqrt(0.84 x 0.16 / 100 + z^2 / 40,000) / 1.038415 = 1.95996 x 0.037947 / 1.038415 = 0.07162
    lo, hi = proportion_ci95(0.84, 100)
    assert lo == pytest.approx(0.755797, abs=1e-5) and hi == pytest.approx(0.899047, abs=1e-5)
    # all right of 10: the interval reaches 1 but not below 1 - z^2 / (10 + z^2) = 0.722467
    lo, hi = proportion_ci95(1.0, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.722467, abs=1e-5)
    assert proportion_ci95(None, 100) == (None, None) and proportion_ci95(0.5, 0) == (None, None)
