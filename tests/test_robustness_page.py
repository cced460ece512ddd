"""The Robustness page through AppTest on a real store: a really trained (tiny) run measured under two corruptions;
the link reopens it with its figures (lines, mCE table, reliability diagrams, calibration), a clicked point's images
with each model's top-5, Measure runs the missing evaluations as a job, a bad dataset is a message."""
import time

import pytest
from app_test import chart_data, open_page, store_with_run

from core.data.corruptions import CORRUPTIONS
from core.data.shapes import CLASSES
from core.evaluate import load_evaluation
from core.jobs import Jobs
from core.results import run_labels
from core.robustness import corruption_errors, robustness
from core.store import Store

NAMES, SEVERITIES, LIMIT = ("gaussian_noise", "contrast"), (1, 3), 40


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A store with a cnn-2layer trained briefly on shapes, it and the untrained linear model measured at fp32."""
    root = tmp_path_factory.mktemp("robustness-store")
    store, run_id = store_with_run(root, "shapes")
    kw = dict(names=NAMES, severities=SEVERITIES, limit=LIMIT, store=store, precision="fp32")
    return root, run_id, robustness(run_id, "shapes", **kw), robustness("linear", "shapes", **kw)


@pytest.fixture
def store_env(measured, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(measured[0]))
    return measured


def _link(models: list[str], **extra) -> dict:
    return {"dataset": "shapes", "model": models, "precision": "fp32", "corruption_set": list(NAMES),
            "severities": [str(s) for s in SEVERITIES], "limit": str(LIMIT), **extra}


def _page(link: dict):
    return open_page("app_pages/robustness.py", link, timeout=180)


def test_a_link_reopens_the_measured_models_with_their_figures(store_env):
    _, run_id, r, lin = store_env
    at = _page(_link([run_id, "linear"], baseline="linear"))
    assert [w.value for w in at.multiselect if w.label == "Models"] == [[run_id, "linear"]]
    lines, reliability = at.get("vega_lite_chart")
    points = next(f for f in chart_data(lines) if "severity" in f.columns)
    name = run_labels()[run_id]  # the run as pickers name it ("2-layer CNN · shapes · ...% val · seed 0")
    mine = points[points["model"] == name]
    got = {(c, s): t for c, s, t in zip(mine["corruption"], mine["severity"], mine["top1"])}
    assert got == pytest.approx({**{(x["corruption"], x["severity"]): x["top1"] for x in r["results"]},
                                 **{(c, 0): r["clean_top1"] for c in NAMES}})  # severity 0: clean, in every panel
    bins = next(f for f in chart_data(reliability) if "accuracy" in f.columns)
    assert bins[bins["model"] == name]["n"].sum() == LIMIT  # every image in one bin
    errors, calib = (d.value for d in at.dataframe)
    ce = corruption_errors(r, lin)
    row = errors.iloc[0]
    assert row["mCE"] == pytest.approx(ce["mce"]) and row["relative mCE"] == pytest.approx(ce["relative_mce"])
    assert row["contrast"] == pytest.approx(ce["per_corruption_errors"][1]["ce"])
    assert errors.iloc[1]["mCE"] == pytest.approx(1.0)  # the baseline against itself
    assert calib.iloc[0]["ECE"] == pytest.approx(r["ece"], abs=1e-4)
    assert calib.iloc[0]["temperature"] == pytest.approx(r["temperature"], abs=1e-4)
    assert calib.iloc[0]["ECE scaled"] == pytest.approx(r["ece_scaled"], abs=1e-4)
    assert at.get("download_button")
    assert not [s for s in at.subheader if "severity" in s.value]  # no point picked: no images


def test_a_picked_point_shows_its_corrupted_images_with_each_models_top5(store_env):
    _, run_id, r, _ = store_env
    at = _page(_link([run_id], corruption="contrast", severity="3"))
    assert [s.value for s in at.subheader if "severity" in s.value] == [
        "contrast, severity 3: the images and each model's top-5"]
    images = at.get("image")
    assert len(images) == 16  # 8 images, clean and corrupted
    key = next(x["key"] for x in r["results"] if (x["corruption"], x["severity"]) == ("contrast", 3))
    p = load_evaluation(key).predictions
    captions = [c.value for c in at.caption if c.value.startswith("#")]
    assert len(captions) == 8
    rows = {int(i): (y, top) for i, y, top in zip(p.index, p.y_true, p.top_idx)}
    for c in captions:  # the true class, and the stored corrupted evaluation's top-5 (the first in bold)
        head, line = c.split("  \n")
        y, top = rows[int(head[1:].split(",")[0])]
        assert head.endswith(f"true class *{CLASSES[y]}*")
        name, ranked = line.split(": ", 1)
        assert name == run_labels()[run_id] and ranked.startswith(f"**{CLASSES[top[0]]}** ")
        assert [part.rsplit(" ", 1)[0].strip("*") for part in ranked.split(", ")] == [CLASSES[t] for t in top]


def test_measure_runs_the_missing_evaluations_and_their_result_shows(store_env):
    root, *_ = store_env
    link = _link(["cnn-2layer"]) | {"corruption_set": ["pixelate"], "severities": ["2"], "limit": "20"}
    at = _page(link)
    assert any("Not measured yet" in i.value and "cnn-2layer" in i.value for i in at.info)
    [button] = [b for b in at.button if b.label == "Measure"]
    button.click()
    at.run()
    assert not at.exception
    jobs = Jobs(Store(root))
    [job] = [j for j in jobs.list() if j.kind == "robustness"]
    assert job.spec["corruptions"] == ["pixelate"] and job.spec["limit"] == 20
    if jobs.claim(job.id) is not None:  # unless the spawned worker got there first
        jobs.run(jobs.get(job.id))
    for _ in range(900):
        if jobs.get(job.id).state not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert jobs.get(job.id).state == "done", jobs.get(job.id).error
    at = _page(link)
    assert len(at.get("vega_lite_chart")) == 2 and not [i for i in at.info if "Not measured" in i.value]
    assert any("None of these models is trained" in i.value for i in at.info)  # cnn-2layer: a scratch architecture
    # another precision is another measurement: not this job's, nothing stored
    at = _page(link | {"precision": "bf16"})
    assert any("Not measured yet at bf16" in i.value for i in at.info) and not at.get("vega_lite_chart")


def test_a_run_not_measured_is_named_as_pickers_name_it(store_env):
    _, run_id, *_ = store_env
    at = _page(_link([run_id]) | {"precision": "bf16"})  # measured at fp32 only
    [said] = [i.value for i in at.info if "Not measured yet" in i.value]
    assert run_labels()[run_id] in said and run_id not in said  # "2-layer CNN · shapes · ...", not "run-3f0c..."


def test_a_partly_measured_model_says_how_much_and_an_unmeasured_number_reads_a_dash(store_env):
    """The caption said "Partial (still being measured, or measured for fewer corruptions)" with no job running
    and nothing to say how much; the tables drew a number not measured as "None" (a reviewer's findings), now
    "-", as the CLI and the report print it."""
    _, run_id, *_ = store_env
    at = _page(_link([run_id], corruption_set=[*NAMES, "pixelate"]))  # pixelate: not measured
    assert not at.exception
    [said] = [c.value for c in at.caption if c.value.startswith("Partly measured")]
    assert "press **Measure** for the rest" in said and "(4 of 6 corrupted sets)" in said
    at = _page(_link([run_id], severities=["1"]))  # measured at 1 and 3: complete, and no severity 3 asked
    assert not [c for c in at.caption if c.value.startswith("Partly measured")]
    calib = at.dataframe[1]
    assert calib.value["ECE at severity 3"].isna().all() and calib.proto.placeholder == "-"  # drawn "-", as the CLI


def test_the_models_it_starts_at_can_be_scored_on_its_dataset(tmp_path, monkeypatch):
    """A store whose only run learned digits: the page opened on shapes with that run picked, an error box
    ("the model's classes ... are not shapes's") before anything was clicked (a reviewer's finding). It opens on
    the dataset the newest runs learned, with them; on another dataset, on its runs or the scratch architectures."""
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    _, run_id = store_with_run(tmp_path, "digits")
    at = open_page("app_pages/robustness.py", timeout=180)
    assert at.selectbox(key="rb-dataset").value == "digits" and at.multiselect(key="rb-models").value == [run_id]
    assert not at.error, [e.value for e in at.error]
    at = open_page("app_pages/robustness.py", {"dataset": "shapes"}, timeout=180)
    assert at.multiselect(key="rb-models").value == ["cnn-2layer", "vit-small"] and not at.error


def test_every_corruption_is_offered_and_a_bad_dataset_is_a_message(store_env):
    at = _page({"dataset": "no/such/folder", "model": "linear"})
    assert at.error and not at.get("vega_lite_chart")
    at = _page({"dataset": "shapes", "model": "linear"})
    [picker] = [w for w in at.multiselect if w.label == "Corruptions"]
    assert picker.value == list(CORRUPTIONS)
