"""Pages through Streamlit's AppTest on real stores: no exception, key elements, widgets drive what is shown."""
import json
import re
import time

import pytest
from app_test import chart_data, open_page
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from core.demo import DEMO_RECIPES
from core.jobs import Jobs
from core.settings import REPO_ROOT
from core.store import Store
from core.train.recipe import Recipe


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    return Store(tmp_path)


def _app(page: str | None = None) -> AppTest:
    return open_page(page)


def _by_label(widgets, label: str):
    [w] = [w for w in widgets if w.label == label]
    return w


def _wait_inactive(jobs: Jobs, job_id: int, timeout: float = 120) -> str:
    t0 = time.monotonic()
    while (state := jobs.get(job_id).state) in ("queued", "running") and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
    return state


def test_empty_store_offers_the_demo_as_a_job(fresh_store):
    at = _app()
    assert "store is empty" in at.info[0].value
    _by_label(at.button, "Run the demo").click()
    at.run()
    jobs = Jobs(fresh_store)
    [job] = jobs.list()
    assert job.kind == "demo" and job.state in ("queued", "running")
    jobs.cancel(job.id)  # a real worker was started; stop it rather than train for minutes
    assert _wait_inactive(jobs, job.id) == "cancelled"
    assert not [b for b in _app().button if b.label == "Run the demo"]  # the store has a job: no more offer


def test_quick_evaluate_submits_jobs_and_the_leaderboard_shows_them(fresh_store):
    at = _app()
    _by_label(at.multiselect, "Models").set_value(["linear"])
    _by_label(at.selectbox, "Dataset").set_value("digits")
    _by_label(at.button, "Evaluate").click()
    at.run()
    jobs = Jobs(fresh_store)
    [job] = jobs.list()
    assert job.kind == "evaluate" and job.spec["model"] == "linear"
    if jobs.claim(job.id) is not None:  # unless the spawned worker got there first, run it here
        jobs.run(jobs.get(job.id))
    assert _wait_inactive(jobs, job.id) == "done"
    at = _app()
    table = at.dataframe[0].value
    assert list(table["model"]) == ["linear"] and table["n"].iloc[0] == 359  # digits val, all of it


def _forms(node) -> dict:
    """{form id: its settings} of the forms under an AppTest tree node."""
    if not isinstance(node, Block):
        return {}
    found = {node.proto.form.form_id: node.proto.form} if node.type == "form" else {}
    for child in node.children.values():
        found |= _forms(child)
    return found


def test_train_form_submits_a_job_and_draws_its_curves(fresh_store):
    at = _app("app_pages/train.py")
    assert "No training runs yet" in at.info[0].value
    # only the button starts training: Enter in Epochs or Batch size queued a job (a reviewer's finding)
    assert _forms(at._tree)["recipe"].enter_to_submit is False
    _by_label(at.selectbox, "Architecture").set_value("linear")
    _by_label(at.selectbox, "Dataset").set_value("digits")
    at.run()  # as in a browser: a new architecture redraws the form at its own recipe, then the user edits it
    _by_label(at.number_input, "Epochs").set_value(2)
    _by_label(at.number_input, "Image side (0 = dataset's)").set_value(0)
    _by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception
    jobs = Jobs(fresh_store)
    [job] = jobs.list()
    assert job.kind == "train" and job.spec["recipe"]["model"] == "linear" and job.spec["recipe"]["epochs"] == 2
    if jobs.claim(job.id) is not None:
        jobs.run(jobs.get(job.id))
    assert _wait_inactive(jobs, job.id) == "done"
    at.run()
    assert not at.exception
    run = _by_label(at.selectbox, "Run")
    assert run.value.startswith("run-") and "Linear" in run.format_func(run.value)
    assert len(at.get("vega_lite_chart")) == 4  # loss, accuracy, learning rate, gradient norms
    states = at.dataframe[0].value["state"].tolist()
    assert states == ["done"]


def test_the_recipe_starts_at_the_chosen_architectures_own(fresh_store, monkeypatch):
    """Choosing an architecture sets the form to its own recipe (the one the Arena and the demo train it with): the
    form kept ResNet-20's Adam for every model, so the page trained the ViT without DeiT's weight decay, warm-up
    and label smoothing (a reviewer's finding). Unchanged, a demo model's form is the demo's run."""
    at = _app("app_pages/train.py")
    _by_label(at.selectbox, "Architecture").set_value("vit-small")
    at.run()
    assert (_by_label(at.selectbox, "Optimizer").value, _by_label(at.number_input, "Weight decay").value,
            _by_label(at.number_input, "Label smoothing").value) == ("adamw", 0.05, 0.1)  # DeiT's
    _by_label(at.selectbox, "Architecture").set_value("vit-lite-2")  # the demo's ViT
    at.run()
    assert (_by_label(at.selectbox, "Optimizer").value, _by_label(at.number_input, "Weight decay").value,
            _by_label(at.number_input, "Label smoothing").value) == ("adamw", 0.06, 0.1)  # CCT's
    monkeypatch.setattr(Jobs, "ensure_worker", lambda self: None)  # queued, not trained for minutes by a worker
    _by_label(at.button, "Start training").click()
    at.run()
    [job] = Jobs(fresh_store).list()
    vit = next(r for r in DEMO_RECIPES if r.model == "vit-lite-2")
    assert Recipe.from_dict(job.spec["recipe"]).run_id == vit.run_id  # the demo's run: a cache hit after the demo
    _by_label(at.selectbox, "Architecture").set_value("resnet20")
    at.run()
    assert (_by_label(at.selectbox, "Optimizer").value, _by_label(at.number_input, "Weight decay").value) == (
        "adam", 0.0)


def test_the_train_page_keeps_its_choices_after_a_visit_to_another_page(fresh_store, monkeypatch):
    """The pickers and the submitted recipe are kept for the session (persist_state): a user who checked the
    Overview between two runs came back to ResNet-20 on shapes and the form's defaults."""
    monkeypatch.setattr(Jobs, "ensure_worker", lambda self: None)  # queued, not trained by a worker
    at = _app("app_pages/train.py")
    _by_label(at.selectbox, "Architecture").set_value("vit-small")
    _by_label(at.selectbox, "Dataset").set_value("digits")
    at.run()
    _by_label(at.number_input, "Epochs").set_value(3)
    _by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception and len(Jobs(fresh_store).list()) == 1
    at.switch_page("app_pages/overview.py")
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception
    assert (_by_label(at.selectbox, "Architecture").value, _by_label(at.selectbox, "Dataset").value,
            _by_label(at.number_input, "Epochs").value, _by_label(at.selectbox, "Optimizer").value) == (
        "vit-small", "digits", 3, "adamw")
    _by_label(at.selectbox, "Architecture").set_value("resnet20")  # another architecture: its own recipe
    at.run()
    assert (_by_label(at.number_input, "Epochs").value, _by_label(at.selectbox, "Optimizer").value) == (8, "adam")


def test_a_new_submission_selects_its_own_job(fresh_store):
    at = _app("app_pages/train.py")
    _by_label(at.selectbox, "Architecture").set_value("linear")
    _by_label(at.selectbox, "Dataset").set_value("digits")
    at.run()  # the form, redrawn for the architecture
    ids = []
    for epochs in (2, 3):  # two recipes: two jobs, both left queued
        _by_label(at.number_input, "Epochs").set_value(epochs)
        _by_label(at.button, "Start training").click()
        at.run()
        assert not at.exception
        ids.append(next(j.id for j in Jobs(fresh_store).list() if j.id not in ids))
        assert _by_label(at.selectbox, "Job").value == ids[-1]  # Cancel acts on the job just started


def test_the_recipe_form_keeps_its_picks_when_a_finished_run_joins_the_model_list(fresh_store):
    at = _app("app_pages/train.py")
    _by_label(at.selectbox, "Architecture").set_value("linear")
    _by_label(at.selectbox, "Dataset").set_value("digits")
    at.run()  # the form, redrawn for the architecture
    _by_label(at.number_input, "Epochs").set_value(1)
    _by_label(at.button, "Start training").click()
    at.run()
    jobs = Jobs(fresh_store)
    [job] = jobs.list()
    queued = _by_label(at.selectbox, "Job").options
    if jobs.claim(job.id) is not None:
        jobs.run(jobs.get(job.id))
    assert _wait_inactive(jobs, job.id) == "done"
    at.run()  # the run is now one of the Architecture options
    assert _by_label(at.selectbox, "Job").options == queued  # labels the browser shows do not go stale
    arch = _by_label(at.selectbox, "Architecture")
    assert any(o.startswith("Linear (softmax regression) · digits") for o in arch.options)  # the finished run
    assert arch.value == "linear" and _by_label(at.selectbox, "Dataset").value == "digits"


def test_bad_recipe_shows_a_message_not_a_traceback(fresh_store):
    at = _app("app_pages/train.py")
    _by_label(at.selectbox, "Architecture").set_value("linear")
    at.run()  # the form, redrawn for the architecture
    _by_label(at.selectbox, "Transfer learning").set_value("frozen")
    _by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception
    assert "transfer learning (frozen) needs a pretrained model" in at.error[0].value
    assert Jobs(fresh_store).list() == []  # nothing was submitted


def test_confusion_page_draws_the_matrix_and_filters_classes(fresh_store):
    from core.evaluate import evaluate

    assert "No evaluations" in _app("app_pages/confusion.py").info[0].value
    ev = evaluate("linear", "digits", "val", store=fresh_store)
    at = _app("app_pages/confusion.py")
    assert len(at.get("vega_lite_chart")) == 1
    assert at.query_params["eval"] == [ev.key] or at.query_params["eval"] == ev.key  # the view is in the URL
    _by_label(at.radio, "Classes").set_value("search")
    at.run()
    _by_label(at.text_input, "Search class names").set_value("zebra")
    at.run()
    assert not at.exception and "No class matches" in at.info[0].value


def test_predict_page_shows_each_models_top5_for_a_bundled_example(fresh_store):
    at = _app("app_pages/predict.py")
    _by_label(at.multiselect, "Models").set_value(["linear", "vit-small"])
    at.run()
    assert not at.exception
    tables = at.dataframe
    assert len(tables) == 2 and all(len(t.value) == 5 for t in tables)  # a top-5 per model
    assert all(abs(sum(t.value["probability"])) <= 1.0 + 1e-6 for t in tables)
    assert "circle" in at.subheader[0].value  # the first bundled example
    assert all("median of 5 after a warm-up" in c.value for c in at.caption if "forward pass" in c.value)
    # the linear model's forward pass takes hundredths of a millisecond: said, not "0.0 ms" (a reviewer's finding)
    times = [float(re.search(r"one image: ([\d.,]+) ms", c.value).group(1).replace(",", "")) for c in at.caption
             if "forward pass" in c.value]
    assert len(times) == 2 and all(t > 0 for t in times), times
    _by_label(at.radio, "Precision").set_value("bf16")
    at.run()
    assert not at.exception and at.query_params["precision"] == "bf16"
    shown = [c.value for c in at.caption if "forward pass" in c.value]
    assert len(shown) == 2 and all(c.startswith("bf16 on CPU") for c in shown)
    # bf16 on a CPU without bf16 arithmetic runs emulated, tens of times slower than fp32: the page says so
    flags = open("/proc/cpuinfo").read().split()
    emulated = "amx_bf16" not in flags and "avx512_bf16" not in flags
    assert any("runs emulated" in c.value for c in at.caption) == emulated
    _by_label(at.radio, "Precision").set_value("fp32")
    at.run()
    assert not at.exception and not any("runs emulated" in c.value for c in at.caption)


def test_model_pickers_name_runs_as_people_do(fresh_store):
    from core.train.loop import train
    from core.train.recipe import Recipe

    recipes = [Recipe(model="linear", dataset="digits", epochs=1, seed=0),
               Recipe(model="linear", dataset="digits", epochs=1, seed=1),
               Recipe(model="linear", dataset="digits", epochs=1, seed=0, lr=0.01)]  # the first's twin but for lr
    runs = [train(r, store=fresh_store) for r in recipes]
    at = _app()
    shown = list(_by_label(at.multiselect, "Models").proto.options)
    assert not any(o.startswith("run-") for o in shown)  # never a bare run id
    bases = [f"Linear (softmax regression) · digits · {res.history[-1]['val_top1']:.1%} val · seed {r.seed}"
             for r, res in zip(recipes, runs)]
    for base, res in zip(bases, runs):  # architecture, data, validation top-1, seed; the id's start only for twins
        expected = base if bases.count(base) == 1 else f"{base} · {res.model_id[:8]}"
        assert expected in shown, (expected, shown)


def test_run_labels_tell_twins_apart_by_their_ids(store):
    from core.results import run_labels

    meta = {"name": "ResNet-20 trained on Shapes (generated, 64x64) at 32 px", "dataset": "shapes", "val_top1": 0.845,
            "recipe": {"seed": 0}}
    for key in ("run-aaaaaaaa1111", "run-bbbbbbbb2222"):
        store.put(key, "run", meta)
    store.put("run-cccccccc3333", "run", {**meta, "recipe": {"seed": 1}})
    store.put("run-dddddddd4444", "run", {"model": "vit-small", "dataset": "digits"})  # older record: no name or val
    assert run_labels(store) == {
        "run-aaaaaaaa1111": "ResNet-20 · shapes · 84.5% val · seed 0 · run-aaaa",
        "run-bbbbbbbb2222": "ResNet-20 · shapes · 84.5% val · seed 0 · run-bbbb",
        "run-cccccccc3333": "ResNet-20 · shapes · 84.5% val · seed 1",
        "run-dddddddd4444": "vit-small · digits"}


def test_overlaid_curves_draw_each_run_once_and_tell_twins_apart(store):
    from core.results import overlay_histories

    meta = {"name": "ResNet-20 trained on Shapes (generated, 64x64) at 32 px", "dataset": "shapes", "val_top1": 0.5,
            "recipe": {"seed": 0}, "history": [{"epoch": 1, "val_top1": 0.4}, {"epoch": 2, "val_top1": 0.5}]}
    for run in ("run-aaaaaaaa1111", "run-bbbbbbbb2222"):  # twins: the same name, recipe and seed
        store.put(run, "run", meta)
        for split in ("val", "test"):  # the same run picked twice, by two evaluations
            store.put(f"eval-{run}-{split}", "evaluation", {"model": run, "dataset": "shapes", "split": split})
    keys = [f"eval-{run}-{split}" for run in ("run-aaaaaaaa1111", "run-bbbbbbbb2222") for split in ("val", "test")]
    a, b = "ResNet-20 · shapes · 50.0% val · seed 0 · run-aaaa", "ResNet-20 · shapes · 50.0% val · seed 0 · run-bbbb"
    assert [(r["label"], r["epoch"]) for r in overlay_histories(keys, store)] == [(a, 1), (a, 2), (b, 1), (b, 2)]


def test_compare_page_tables_bars_curves_and_csv(fresh_store):
    from core.evaluate import evaluate
    from core.train.loop import train
    from core.train.recipe import Recipe

    res = train(Recipe(model="linear", dataset="digits", epochs=2), store=fresh_store)
    evaluate(res.model_id, "digits", "val", store=fresh_store, precision="fp32")  # as the trainer validates
    evaluate("cnn-2layer", "digits", "val", store=fresh_store)
    at = _app("app_pages/compare.py")
    table = at.dataframe[0].value
    assert len(table) == 2 and set(table["model"]) == {res.model_id, "cnn-2layer"}
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # accuracy bars, time bars, the trained run's curves
    for bars in charts[:2]:  # a band per row: a fixed total height drew the 2 rows' bars a few pixels high
        assert json.loads(bars.proto.spec)["height"] == {"step": 36}
    assert table.loc[table["model"] == res.model_id, "top1"].iloc[0] == pytest.approx(res.history[-1]["val_top1"])
    assert [b.proto.label for b in at.get("download_button")] == ["Download the table as CSV", "Download report"]
    # an evaluation of other images beside them: no report (it compares models on the same images), and why
    other = evaluate("cnn-2layer", "digits", "test", store=fresh_store).key
    at.run()  # the picker offers it from the next run on
    _by_label(at.multiselect, "Evaluations").set_value([*at.query_params["eval"], other])
    at.run()
    assert not at.exception and len(at.dataframe[0].value) == 3
    assert [b.proto.label for b in at.get("download_button")] == ["Download the table as CSV"]
    assert any("a report compares models on the same images" in c.value for c in at.caption)


def test_drilldown_page_per_class_metrics_for_each_model(fresh_store):
    from core.evaluate import evaluate

    evaluate("linear", "digits", "val", store=fresh_store)
    evaluate("cnn-2layer", "digits", "val", store=fresh_store)
    at = _app("app_pages/drilldown.py")
    _by_label(at.selectbox, "Class").set_value(3)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 2 and (table["support"] == 36).all()  # digits val holds 36 images of "3"
    assert at.query_params["class"] in ("3", ["3"])


def test_evaluate_page_submits_one_job_per_pair_and_shows_failures_in_place(fresh_store):
    at = _app("app_pages/evaluate.py")
    _by_label(at.multiselect, "Models").set_value(["linear", "no-such-model"])
    _by_label(at.multiselect, "Datasets").set_value(["digits"])
    _by_label(at.button, "Evaluate").click()
    at.run()
    jobs = Jobs(fresh_store)
    submitted = jobs.list()
    assert sorted(j.spec["model"] for j in submitted) == ["linear", "no-such-model"]
    for j in submitted:
        if jobs.claim(j.id) is not None:
            jobs.run(jobs.get(j.id))
        _wait_inactive(jobs, j.id)
    at.run()
    assert not at.exception
    assert any("unknown model 'no-such-model'" in e.value for e in at.error)  # in place, page still usable
    assert any("linear on digits/val: done" in s.value for s in at.success)


@pytest.mark.parametrize("page, method", [("app_pages/filters.py", "feature-maps"), ("app_pages/attention.py", "rollout")])
def test_explain_pages_draw_a_cnn_a_vit_and_a_hybrid_side_by_side(fresh_store, page, method):
    at = _app(page)
    _by_label(at.multiselect, "Models").set_value(["cnn-2layer", "vit-small", "cct-2"])
    at.run()
    assert not at.exception
    assert len(at.get("image")) == 3  # one picture per model
    radio = _by_label(at.radio, "Show" if "filters" in page else "Method")
    radio.set_value(method)
    at.run()
    assert not at.exception
    if method == "rollout":  # a CNN has no attention: a message in its column, the ViT still draws
        assert any("cnn-2layer" in w.value or "attention" in w.value.lower() for w in at.warning)
        captions = [i.proto.imgs[0].caption for i in at.get("image")]  # rollout has no layer: "heart", not "heart · "
        assert captions and all(c and c.strip(" ·") == c for c in captions), captions
        curves, distance = at.get("vega_lite_chart")  # the image's deletion curves; attention distance vs field
        [df] = chart_data(curves)
        assert set(df["model"]) == {"ViT (small, for small images)"}  # the CNN, which drew no rollout, has no curve either
        assert set(df["map"]) == {"method", "random map"} and set(df["kind"]) == {"deletion", "insertion"}
        [reach] = chart_data(distance)  # how far each layer sees: the hybrid shows its convolutions, then attention
        assert set(zip(reach["family"], reach["what"])) == {
            ("cnn", "receptive field"), ("vit", "attention distance"), ("hybrid", "receptive field"),
            ("hybrid", "attention distance")}
        hybrid = reach[reach["family"] == "hybrid"].sort_values("depth")
        assert list(hybrid["what"]) == ["receptive field"] * 2 + ["attention distance"] * 4  # CCT-2: 2 convs, 2x2 heads


def test_confusion_view_reopens_from_its_url(fresh_store):
    from core.evaluate import evaluate

    ev = evaluate("linear", "digits", "val", store=fresh_store)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"eval": ev.key, "classes": "search", "q": "7", "rows": "share", "n": "5"})
    at.run()
    at.switch_page("app_pages/confusion.py")
    at.run()
    assert not at.exception
    assert _by_label(at.radio, "Classes").value == "search" and _by_label(at.text_input, "Search class names").value == "7"
    assert _by_label(at.toggle, "Row shares").value is True and _by_label(at.number_input, "How many").value == 5


def test_confusion_page_groups_100_plus_wordnet_classes_by_superclass(fresh_store, tmp_path):
    import numpy as np
    from PIL import Image

    from core.evaluate import evaluate
    from core.models.imagenet import imagenet1k

    root = tmp_path / "tiny"  # a Tiny-ImageNet tree with 120 real ImageNet classes, one val image each
    wnids = imagenet1k().wnids[:120]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in zip(wnids, imagenet1k().names)))
    lines = []
    for i, w in enumerate(wnids):
        (root / "train" / w / "images").mkdir(parents=True)
        Image.fromarray(np.full((64, 64, 3), i, np.uint8)).save(root / "train" / w / "images" / f"{w}_0.png")
        Image.fromarray(np.full((64, 64, 3), i, np.uint8)).save(root / "val" / "images" / f"v{i}.png")
        lines.append(f"v{i}.png\t{w}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    evaluate("linear", str(root), "val", store=fresh_store)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.query_params["classes"] = "superclass"
    at.run()
    at.switch_page("app_pages/confusion.py")
    at.run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1  # the superclass matrix; classes open on a click
    assert any("120 classes in" in c.value and "WordNet superclasses" in c.value for c in at.caption)


@pytest.mark.parametrize("hosted", [False, True])
def test_a_store_folder_that_cannot_be_used_is_one_message_not_a_traceback(tmp_path, monkeypatch, hosted):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path / "a-file"))
    monkeypatch.setenv("CNNVIT_HOSTED", "1" if hosted else "0")
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [error] = at.error
    if hosted:  # a public deployment names no server path
        assert error.value == "The lab's store cannot be used; the server's log says why."
    else:
        assert str(tmp_path / "a-file") in error.value and "CNNVIT_CACHE_DIR" in error.value
    assert (tmp_path / "a-file").read_text() == "not a folder"  # nothing lost


@pytest.mark.parametrize("hosted", [False, True])
def test_a_device_setting_this_machine_lacks_is_one_message_not_a_traceback(fresh_store, monkeypatch, hosted):
    """CNNVIT_DEVICE=cuda on a machine without CUDA ended Evaluate, Predict and Attention in a traceback (and, for
    a while, every page, from the sidebar's device line); now every page shows one message naming the setting."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    monkeypatch.setenv("CNNVIT_DEVICE", "cuda")
    monkeypatch.setenv("CNNVIT_HOSTED", "1" if hosted else "0")
    for page in (None, "app_pages/evaluate.py", "app_pages/predict.py", "app_pages/attention.py"):
        at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60)
        if page:
            at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        [error] = at.error
        assert error.value == ("The lab's device setting cannot be used on this server; the server's log says why."
                               if hosted else "CNNVIT_DEVICE=cuda asks for a CUDA device, but this machine has none; "
                                              "set CNNVIT_DEVICE to auto or cpu"), page



def test_the_sidebar_names_the_precision_auto_runs_at_on_this_machine(fresh_store):
    """Without bf16 hardware `auto` is fp32, which changes every speed on the pages: the sidebar says which."""
    import torch
    from test_bench import _fast_bf16  # /proc/cpuinfo read by the test itself, not by core/precision.py

    [device] = [c.value for c in _app().sidebar.caption if c.value.startswith("**Device:**")]
    if device.startswith("**Device:** GPU"):
        assert device.endswith(("auto precision bf16", "auto precision fp16")), device
    elif _fast_bf16():  # AMX or AVX-512 BF16
        assert device == f"**Device:** CPU ({torch.get_num_threads()} threads), auto precision bf16"
    else:
        assert device == f"**Device:** CPU ({torch.get_num_threads()} threads), auto precision fp32 (no bf16 hardware)"


# "²" passes str.isdigit() but int() refuses it: a number in a link is read only if int() can read it
@pytest.mark.parametrize("page, link", [
    ("app_pages/arena.py", {"model": "linear", "dataset": "digits", "budget": "steps:1", "size": ["²", "200"]}),
    ("app_pages/confusion.py", {"n": "²"}),
    ("app_pages/robustness.py", {"limit": "²", "severities": ["²", "3"]}),
    ("app_pages/attention.py", {"faith_images": "²"}),
    ("app_pages/predict.py", {"image_dataset": "digits", "image_split": "val", "image_index": "²"})])
def test_a_superscript_digit_in_a_link_is_not_a_traceback(fresh_store, page, link):
    from core.evaluate import evaluate

    if page == "app_pages/confusion.py":
        evaluate("linear", "digits", "val", store=fresh_store)  # an evaluation for it to open
    at = open_page(page, link)  # asserts no exception
    if page == "app_pages/predict.py":
        assert any("is not an image number" in e.value for e in at.error)


# a number outside the widget's bounds is brought within them (Streamlit raises on a value below min_value)
@pytest.mark.parametrize("page, link, label, value", [("app_pages/confusion.py", {"n": "1"}, "How many", 2),
                                                      ("app_pages/attention.py", {"faith_images": "0"}, "Images", 1)])
def test_a_number_out_of_bounds_in_a_link_is_brought_within_them(fresh_store, page, link, label, value):
    from core.evaluate import evaluate

    if page == "app_pages/confusion.py":
        evaluate("linear", "digits", "val", store=fresh_store)
    at = open_page(page, link)  # asserts no exception
    assert _by_label(at.number_input, label).value == value


def test_two_changes_in_a_row_to_a_linked_setting_both_hold(fresh_store):
    """A widget whose default is read from the link became a new widget once the page wrote its value there
    (Streamlit identifies a widget without a key by its default), and the next change to it was lost: Seeds 2 -> 3
    -> 4 showed 3, seen in Chromium on the Arena page. Each page's linked widgets now have keys."""
    from core.evaluate import evaluate

    evs = [evaluate(m, "digits", "val", store=fresh_store).key for m in ("linear", "cnn-2layer", "cnn-multilayer")]

    def twice(at: AppTest, widgets: str, label: str, values: list) -> AppTest:
        for v in values:
            _by_label(getattr(at, widgets), label).set_value(v)
            at.run()
            assert not at.exception
        return at

    at = twice(open_page("app_pages/arena.py", {"model": "linear", "dataset": "digits", "budget": "steps:2"}),
               "number_input", "Seeds", [3, 4])
    assert _by_label(at.number_input, "Seeds").value == 4 and at.query_params["seeds"] in ("4", ["4"])
    at = twice(at, "text_input", "Amount", ["5", "6"])
    assert at.query_params["budget"] in ("steps:6", ["steps:6"])
    at = twice(open_page("app_pages/confusion.py", {"eval": evs[0]}), "number_input", "How many", [5, 6])
    assert _by_label(at.number_input, "How many").value == 6 and at.query_params["n"] in ("6", ["6"])
    at = twice(at, "selectbox", "Evaluation", [evs[1], evs[2]])
    assert at.query_params["eval"] in (evs[2], [evs[2]])
    at = twice(open_page("app_pages/compare.py", {"eval": evs[0]}), "multiselect", "Evaluations",
               [evs[:2], evs])
    assert _by_label(at.multiselect, "Evaluations").value == evs
    at = twice(open_page("app_pages/drilldown.py"), "selectbox", "Class", [1, 2])
    assert at.query_params["class"] in ("2", ["2"])  # digits' classes are named 0..9
    from core.stories import new_story

    ids = [new_story(f"story {i}", fresh_store).id for i in range(3)]
    at = open_page("app_pages/stories.py", {"story": ids[0]})
    for story in ids[1:]:  # the page's picker, not the sidebar's "Pin this view" one, also labelled Story
        _by_label(at.main.selectbox, "Story").set_value(story)
        at.run()
    assert at.query_params["story"] in (ids[2], [ids[2]])
