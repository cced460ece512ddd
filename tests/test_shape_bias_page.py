"""The Shape vs texture page through AppTest on a real store: a really trained (tiny) run scored on the generated
cue-conflict set; the link reopens it with its figures, examples link to Predict and Attention, Measure submits the
missing evaluations as jobs and their result shows, a bad dataset is a message."""
import json
import time

import pytest
from app_test import chart_data, open_page, store_with_run
from streamlit.testing.v1 import AppTest

from core.data.cue_conflict import CLASSES
from core.evaluate import load_evaluation
from core.jobs import Jobs
from core.shape_bias import shape_bias
from core.store import Store


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A store with a cnn-2layer trained briefly on shapes-textured and its shape bias measured at fp32."""
    root = tmp_path_factory.mktemp("shape-bias-store")
    store, run_id = store_with_run(root, "shapes-textured")
    return root, run_id, shape_bias(run_id, store=store, precision="fp32")


@pytest.fixture
def store_env(measured, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(measured[0]))
    return measured


def cached_predictions(r: dict) -> dict[int, int]:
    p = load_evaluation(r["evaluations"]["conflict"]).predictions
    return {int(i): int(t) for i, t in zip(p.index, p.top_idx[:, 0])}


def _page(link: dict) -> AppTest:
    return open_page("app_pages/shape_bias.py", link, timeout=180)


def test_a_link_reopens_a_measured_model_with_its_figures(store_env):
    _, run_id, r = store_env
    at = _page({"dataset": "shapes-textured", "model": run_id, "precision": "fp32"})
    assert [w.value for w in at.multiselect if w.label == "Models"] == [[run_id]]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # bias with coverage and the published marks; per class
    frames = chart_data(charts[0])
    bars = next(f for f in frames if "coverage" in f.columns)
    assert bars["shape_bias"].tolist() == pytest.approx([r["shape_bias"]])
    assert bars["coverage"].tolist() == pytest.approx([r["coverage"]])
    marks = next(f for f in frames if "label" in f.columns)  # the published figures, as marks
    assert marks["shape_bias"].tolist() == [0.214195, 0.305035, 0.958688]
    per_class = next(f for f in chart_data(charts[1]) if "class" in f.columns)
    expected = {c["class"]: c["shape_bias"] for c in r["per_class"] if c["shape_bias"] is not None}
    assert dict(zip(per_class["class"], per_class["shape_bias"])) == pytest.approx(expected)
    controls = at.dataframe[0].value
    assert controls["shape-only top-1"].iloc[0] == pytest.approx(r["controls"]["shape-only"])
    assert controls["texture-only top-1"].iloc[0] == pytest.approx(r["controls"]["texture-only"])
    assert at.get("download_button")
    # the examples: circle-shaped conflict images, one per other texture, each with the model's decision
    captions = [c.value for c in at.caption]
    shown = [c for c in captions if c.startswith("shape circle · texture ")]
    assert len(shown) == 8 and "texture circle" not in " ".join(shown)
    preds = cached_predictions(r)
    for c in shown:  # the decision under each image is the stored top-1 of the conflict evaluation
        index = int(c.split("conflict #")[1].split(")")[0])
        decision = CLASSES[preds[index]]
        cue = "shape" if decision == "circle" else "texture" if f"texture {decision} " in c else "neither"
        assert c.endswith(f"**{decision}** ({cue})"), c
    links = at.get("page_link")
    assert {ln.proto.page.split("/")[-1] for ln in links} >= {"predict", "attention"}
    first = json.loads(json.dumps([ln.proto.query_string for ln in links]))[0]
    assert "image_dataset=shapes-textured" in first and "image_split=conflict" in first and run_id in first
    assert at.query_params["precision"] in ("fp32", ["fp32"])


def test_measure_submits_the_missing_evaluations_and_their_result_shows(store_env):
    root, run_id, _ = store_env
    at = _page({"dataset": "shapes-textured", "model": "linear", "precision": "fp32"})
    assert any("Not measured yet" in i.value and "linear" in i.value for i in at.info)
    [button] = [b for b in at.button if b.label == "Measure"]
    button.click()
    at.run()
    assert not at.exception
    jobs = Jobs(Store(root))
    submitted = {(j.spec["dataset"], j.spec["split"]) for j in jobs.list() if j.spec.get("model") == "linear"}
    assert submitted == {("shapes-textured", s) for s in ("conflict", "shape-only", "texture-only")}
    for job in jobs.list():
        if jobs.claim(job.id) is not None:  # unless the spawned worker got there first
            jobs.run(jobs.get(job.id))
    for _ in range(900):
        if all(j.state not in ("queued", "running") for j in jobs.list()):
            break
        time.sleep(0.2)
    assert {j.state for j in jobs.list()} == {"done"}
    at = _page({"dataset": "shapes-textured", "model": "linear", "precision": "fp32"})
    expected = shape_bias("linear", store=Store(root), precision="fp32", stored_only=True)
    assert expected is not None
    assert at.dataframe[0].value["shape-only top-1"].iloc[0] == pytest.approx(expected["controls"]["shape-only"])


def test_a_dataset_without_cue_conflict_is_a_message(store_env):
    at = _page({"dataset": "shapes", "model": "linear"})
    assert any("cue-conflict images" in e.value for e in at.error)
    assert not at.get("vega_lite_chart")


def test_a_deployment_that_does_not_offer_the_set_says_so(store_env, monkeypatch):
    monkeypatch.setenv("CNNVIT_HOSTED", "1")  # the default allow-list: shapes and digits
    at = _page({"model": "linear"})
    assert [e.value for e in at.error] == ["dataset 'shapes-textured' is not offered on this deployment; choose one "
                                           "of: shapes, digits"]
    assert not at.get("vega_lite_chart") and not [b for b in at.button if b.label == "Measure"]


@pytest.mark.parametrize("index, message", [("99999", "shapes/val has no image #99999 (it has 1000)"),
                                            ("abc", "image_index='abc' is not an image number")])
def test_a_bad_linked_image_is_a_message(index, message):
    at = open_page("app_pages/predict.py", {"image_dataset": "shapes", "image_split": "val", "image_index": index,
                                            "model": "linear"})
    assert [e.value for e in at.error] == [f"The linked image does not load: {message}"]
