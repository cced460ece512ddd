"""The Attention & Grad-CAM page's "How faithful?" section through AppTest on a real store: the image's deletion and
insertion curves, Measure scores each model as a job, the stored figures come back as bars, a table and a CSV, and
the link reopens the same choices."""
import time

from app_test import chart_data, open_page

from core.explain.scores import faithfulness
from core.jobs import Jobs
from core.store import Store

LINK = {"model": ["cnn-2layer", "vit-small"], "method": "gradcam", "faith_dataset": "shapes", "faith_images": "4",
        "faith_method": ["gradcam", "eigencam"]}
VIT = "ViT (small, for small images)"  # what the page calls vit-small


def test_measure_scores_each_model_and_the_link_reopens_the_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    at = open_page("app_pages/attention.py", LINK, timeout=180)
    assert [m for m in at.multiselect if m.label == "Methods"][0].value == ["gradcam", "eigencam"]
    [curves, _distance] = at.get("vega_lite_chart")  # nothing scored yet: only the image's curves and the distances
    [df] = chart_data(curves)
    assert set(df["model"]) == {"2-layer CNN", VIT} and df["probability"].between(0, 1).all()
    assert any("Not scored yet" in i.value and "cnn-2layer" in i.value for i in at.info)
    [button] = [b for b in at.button if b.label == "Measure"]
    button.click()
    at.run()
    assert not at.exception
    jobs = Jobs(Store(tmp_path))
    mine = [j for j in jobs.list() if j.kind == "faithfulness"]
    assert sorted(j.spec["model"] for j in mine) == ["cnn-2layer", "vit-small"]
    assert all(j.spec["methods"] == ["gradcam", "eigencam"] and j.spec["limit"] == 4 for j in mine)
    for job in mine:
        if jobs.claim(job.id) is not None:  # unless the spawned worker got there first
            jobs.run(jobs.get(job.id))
    for job in mine:
        for _ in range(900):
            if jobs.get(job.id).state not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert jobs.get(job.id).state == "done", jobs.get(job.id).error
    at = open_page("app_pages/attention.py", LINK, timeout=180)
    assert not [i for i in at.info if "Not scored" in i.value]
    _curves, bars, _distance = at.get("vega_lite_chart")
    [df] = chart_data(bars)
    stored = faithfulness("vit-small", "shapes", "eigencam", limit=4, store=Store(tmp_path), stored_only=True)
    got = df[(df["model"] == VIT) & (df["method"] == "EigenCAM") & df["metric"].str.startswith("deletion")]
    assert got["value"].item() == stored.meta["deletion_auc"]  # the bar is the stored mean
    assert set(df["method"]) == {"random map", "centre prior", "Grad-CAM", "EigenCAM"}
    table = at.dataframe[0].value
    assert len(table) == 8 and set(table["images"]) == {4}  # 2 models x (2 methods + 2 baselines)
    assert at.get("download_button")  # the table as CSV
    assert at.query_params["faith_images"] == "4" and at.query_params["method"] == "gradcam"


def test_the_dataset_to_score_on_starts_at_the_one_the_runs_learned(tmp_path, monkeypatch):
    """Runs that learned digits were scored on shapes by default, images of classes they never saw (a reviewer's
    finding); a link's dataset still wins, and runs of different datasets, or scratch architectures alone, keep
    shapes."""
    from app_test import store_with_run

    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    _, run_id = store_with_run(tmp_path, "digits")
    at = open_page("app_pages/attention.py", {"model": [run_id]}, timeout=180)
    assert _scored_on(at) == "digits"
    at = open_page("app_pages/attention.py", {"model": [run_id], "faith_dataset": "shapes"}, timeout=180)
    assert _scored_on(at) == "shapes"
    at = open_page("app_pages/attention.py", {"model": [run_id, "vit-small"]}, timeout=180)
    assert _scored_on(at) == "digits"  # a scratch architecture learned nothing yet


def test_the_dataset_to_score_on_follows_a_new_pick_of_models(tmp_path, monkeypatch):
    """The dataset followed the models on a page's first load only: the URL writes the choice back each run, so
    picking runs of shapes after runs of digits left them to be scored on digits, classes they never saw."""
    from app_test import store_with_run

    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    _, on_digits = store_with_run(tmp_path, "digits")
    _, on_shapes = store_with_run(tmp_path, "shapes")
    at = open_page("app_pages/attention.py", {"model": [on_digits], "faith_dataset": "digits"}, timeout=180)
    at.multiselect(key="attention-models").set_value([on_shapes])
    at.run()
    assert not at.exception and _scored_on(at) == "shapes" and at.query_params["faith_dataset"] == "shapes"
    _dataset_box(at).set_value("digits")  # the user's own choice stays while the picked runs' dataset does not change
    at.run()
    at.multiselect(key="attention-models").set_value([on_shapes, "vit-small"])
    at.run()
    assert _scored_on(at) == "digits"


def _dataset_box(at):
    [box] = [w for w in at.selectbox if w.label == "Dataset to score on"]
    return box


def _scored_on(at) -> str:
    return _dataset_box(at).value
