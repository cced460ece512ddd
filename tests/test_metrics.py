import math

import numpy as np
import pytest

from core.metrics import compute_metrics, top_k_accuracy

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
