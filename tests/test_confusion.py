"""Confusion-matrix data on a stored evaluation, worked by hand from its predictions."""
import numpy as np
import pytest

from core.confusion import OUTSIDE, cell_images, class_subset, confusion, confusion_cells
from core.errors import UserError
from core.evaluate import Evaluation, Predictions, evaluate, load_evaluation
from core.store import Store


def _ev(y, top1, num_classes=3, restricted=None):
    y, top1 = np.array(y), np.array(top1)
    preds = Predictions(index=np.arange(len(y)), y_true=y, top_idx=top1[:, None], top_prob=np.ones((len(y), 1)))
    return Evaluation("k", {"num_classes": num_classes, "dataset": "digits", "split": "val"}, preds, cached=True,
                      restricted=restricted)


def test_counts_rows_shares_and_the_outside_column():
    ev = _ev([0, 0, 1, 1, 2, 2], [0, -1, 1, 0, 2, 2])  # one image of class 0 predicted outside the dataset
    np.testing.assert_array_equal(confusion(ev), [[1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 2, 0]])
    cells = confusion_cells(ev, ["a", "b", "c"], [0, 1], "all")
    by = {(c["true"], c["pred"]): c for c in cells}
    assert len(cells) == 2 * 3  # rows a, b; columns a, b and the outside column
    assert by[(0, 3)]["pred_name"] == OUTSIDE and by[(0, 3)]["row_share"] == 0.5
    assert by[(1, 0)]["count"] == 1 and not by[(1, 0)]["correct"] and by[(1, 1)]["correct"]
    with pytest.raises(UserError, match="one scoring only"):
        confusion(ev, "restricted")


def test_class_subsets():
    ev = _ev([0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 0, 1, 2, 2, 3, 3], num_classes=4)
    names = ["cat", "dog", "catfish", "eel"]
    assert class_subset(ev, names, "first", 2) == [0, 1]
    assert class_subset(ev, names, "most confused", 2) == [0, 1]  # 0<->1 hold every error
    assert class_subset(ev, names, "search", 5, "CAT") == [0, 2]
    assert class_subset(ev, names, "search", 5, "") == []


def test_a_cell_opens_the_images_behind_it(tmp_path):
    store = Store(tmp_path)
    ev = evaluate("linear", "digits", "val", store=store)
    again = load_evaluation(ev.key, store)
    assert (again.predictions.top_idx == ev.predictions.top_idx).all()
    classes = [str(i) for i in range(10)]
    cm = confusion(again)
    t, p = np.unravel_index(np.argmax(cm - np.diag(np.diag(cm))), cm.shape)  # the biggest error cell
    count, images = cell_images(again, int(t), int(p), classes, limit=3)
    assert count == cm[t, p] and len(images) == min(3, count)
    for item in images:
        assert item.true == str(t) and item.top[0][0] == str(p) and item.image.shape == (8, 8, 3)
    with pytest.raises(UserError, match="no stored evaluation"):
        load_evaluation("nope", store)


def test_pareto_front_keeps_rows_no_other_beats_on_both():
    from core.results import pareto_front

    rows = [{"m": "a", "ms_per_image": 1, "top1": 0.5}, {"m": "b", "ms_per_image": 2, "top1": 0.4},
            {"m": "c", "ms_per_image": 3, "top1": 0.9}, {"m": "d", "ms_per_image": 1, "top1": 0.3},
            {"m": "e", "ms_per_image": None, "top1": 1.0}]
    assert [r["m"] for r in pareto_front(rows)] == ["a", "c"]  # b is slower and worse than a; d worse than a


def test_class_report_by_hand():
    from core.confusion import class_report

    ev = _ev([0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 0, 2])
    r = class_report(ev, 0, ["a", "b", "c"])
    assert r["support"] == 3 and r["correct"] == 1
    assert r["recall"] == pytest.approx(1 / 3) and r["precision"] == pytest.approx(1 / 2)  # predicted a: 2, 1 right
    assert r["confused_with"] == [("b", 2)]


def test_disagreements_count_each_way_by_hand():
    from core.confusion import disagreements

    a = _ev([0, 0, 1, 1], [0, 0, 1, 0])  # right on images 0, 1, 2
    b = _ev([0, 0, 1, 1], [1, 0, 1, 1])  # right on images 1, 2, 3
    rows = {(r["true"], r["which"]): r["count"] for r in disagreements(a, b)}
    assert rows[(0, "A right, B wrong")] == 1 and rows[(1, "B right, A wrong")] == 1
    assert rows[(0, "B right, A wrong")] == 0 and rows[(1, "A right, B wrong")] == 0


def test_wordnet_superclasses_cover_imagenet_once_with_real_hypernyms():
    from core.models.imagenet import imagenet1k
    from core.superclasses import wordnet_groups

    im = imagenet1k()
    groups = wordnet_groups(im.wnids)
    flat = sorted(i for idx in groups.values() for i in idx)
    assert flat == list(range(1000))  # every class in exactly one group
    assert max(len(v) for v in groups.values()) <= 125 and 20 <= len(groups) <= 80
    chihuahua, tabby = im.names.index(next(n for n in im.names if n.startswith("Chihuahua"))), 281
    group_of = {i: g for g, idx in groups.items() for i in idx}
    assert group_of[chihuahua] == "dog" and group_of[tabby] == "feline"  # WordNet: toy dog < dog; tabby < cat < feline
    assert wordnet_groups(["n99999999"]) == {"(not in WordNet's ImageNet tree)": [0]}


def test_grouped_cells_sum_the_class_matrix():
    from core.confusion import grouped_cells

    ev = _ev([0, 0, 1, 2, 3], [1, 2, 1, 3, -1], num_classes=4)  # groups {a: 0,1} {b: 2,3}
    cells = {(c["true_name"], c["pred_name"]): c["count"] for c in grouped_cells(ev, {"a": [0, 1], "b": [2, 3]})}
    assert cells[("a", "a")] == 2 and cells[("a", "b")] == 1 and cells[("b", "b")] == 1
    assert cells[("b", OUTSIDE)] == 1 and cells[("b", "a")] == 0


def test_csv_export_neutralises_formulas_but_not_numbers():
    import csv
    import io

    from core.results import csv_bytes

    rows = [{"label": "=HYPERLINK(\"http://x\")", "model": "@SUM(A1)", "note": "+1", "kappa": -0.12, "n": 3},
            {"label": "resnet20", "model": "-cmd", "note": "plain", "kappa": 0.5, "n": 4}]
    back = list(csv.DictReader(io.StringIO(csv_bytes(rows).decode())))
    assert back[0]["label"] == "'=HYPERLINK(\"http://x\")" and back[0]["model"] == "'@SUM(A1)" and back[0]["note"] == "'+1"
    assert back[0]["kappa"] == "-0.12" and back[1]["label"] == "resnet20" and back[1]["model"] == "'-cmd"


@pytest.mark.parametrize("n, side", [(2, 80), (10, 36), (200, 3)])
def test_the_matrix_has_square_cells_and_its_labels_outside_its_size(n, side):
    """Width and height are the cells' area ("pad"), so long labels cannot squeeze 2 classes to a few pixels (they
    did under Streamlit's default "fit"); a few classes still get 160 px, many at least 3 px a cell."""
    import pandas as pd

    from core.figures import confusion_matrix

    names = [f"a class with a long name {i}" for i in range(n)]
    ev = _ev(list(range(n)), list(range(n)), num_classes=n)
    spec = confusion_matrix(pd.DataFrame(confusion_cells(ev, names, list(range(n)), "all")), names,
                            value="count").to_dict()
    assert spec["width"] == spec["height"] == side * n
    assert spec["autosize"] == {"type": "pad"}
