"""The shared drawing helpers in ui/: result columns' labels and formats, and the model and dataset pickers
(what they offer, whether they take typed ids) in and outside hosted mode, driven through AppTest."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from core.evaluate import evaluate
from core.results import model_choices, quick_choices
from core.settings import REPO_ROOT
from core.store import Store
from ui.tables import column_config, leaderboard_frame

PICKERS = """
from ui.pickers import dataset_select, model_select

model_select("Model", default="resnet20")
model_select("Models", multi=True, default=["cnn-2layer"])
model_select("Models with pretrained", multi=True, pretrained=True, help_typed="typed", help_hosted="listed")
dataset_select("Dataset")
"""


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    for var in ("CNNVIT_HOSTED", "CNNVIT_HOSTED_DATASETS", "CNNVIT_HOSTED_MODELS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _run(script: str) -> AppTest:
    at = AppTest.from_string(script, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _widget(at: AppTest, label: str):
    [w] = [w for w in [*at.selectbox, *at.multiselect] if w.label == label]
    return w


def _page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(page)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# --- result columns ----------------------------------------------------------------------------------------

def test_leaderboard_columns_are_labelled_and_formatted():
    config = column_config(["model", "top1", "top5", "params", "scoring"])
    assert set(config) == {"top1", "top5", "params", "scoring"}  # `model` keeps its own name
    assert config["top1"]["label"] == "top-1" and config["top1"]["type_config"]["format"] == "percent"
    assert config["top5"]["help"] == "empty with 5 or fewer classes"
    assert config["params"]["label"] == "parameters" and config["params"]["type_config"]["format"] == "localized"
    assert config["scoring"]["label"] == "scored over" and config["scoring"]["type_config"]["type"] == "text"


def test_times_are_given_to_three_significant_figures_without_an_exponent():
    from ui.tables import significant

    # a linear model's forward pass in ms read "0.0" at one decimal; a slow one would read "1.23e+03" with "g"
    assert [significant(x) for x in (0.04213, 0.5, 12.34, 1234.1, 0.0)] == ["0.0421", "0.500", "12.3", "1,234", "0"]


def test_a_table_can_rename_a_column_for_itself():
    assert column_config(["images_per_second"])["images_per_second"]["label"] == "images/s"
    renamed = column_config(["images_per_second"], labels={"images_per_second": "images/s (evaluation)"})
    assert renamed["images_per_second"]["label"] == "images/s (evaluation)"
    assert renamed["images_per_second"]["type_config"]["format"] == "%.0f"


def test_leaderboard_frame_drops_the_key_and_leaves_missing_numbers_empty():
    table = leaderboard_frame([{"key": "abc", "model": "linear", "top1": 0.5, "top5": None, "outside": None},
                               {"key": "def", "model": "vit-small", "top1": 0.25, "top5": None, "outside": None}])
    assert list(table.columns) == ["model", "top1", "top5", "outside"]
    assert table["top5"].dtype == float and table["top5"].isna().all()  # an empty cell, not "None"
    assert list(table["model"]) == ["linear", "vit-small"]


def test_overview_and_compare_draw_the_shared_columns_with_their_own_labels(own_store, tmp_path):
    evaluate("linear", "digits", "val", store=Store(tmp_path))
    overview_table = _page("app_pages/overview.py").dataframe[0]
    compare_table = _page("app_pages/compare.py").dataframe[0]
    overview, compare = json.loads(overview_table.proto.columns), json.loads(compare_table.proto.columns)
    assert overview["top1"] == compare["top1"] == {"label": "top-1", "type_config": {"type": "number",
                                                                                   "format": "percent"}}
    assert overview["images_per_second"]["label"] == "images/s"
    assert compare["images_per_second"]["label"] == "images/s (evaluation)"
    assert "gflops" in compare and "gflops" not in overview  # only the columns a table has
    assert "key" not in overview_table.value.columns and "key" not in compare_table.value.columns
    assert overview_table.proto.placeholder == compare_table.proto.placeholder == "-"  # not measured: "-", not None


# --- pickers -----------------------------------------------------------------------------------------------

def test_pickers_offer_scratch_and_runs_and_take_typed_ids_outside_hosted_mode(own_store):
    at = _run(PICKERS)
    model, models = _widget(at, "Model"), _widget(at, "Models")
    assert list(model.options) == list(models.options) == quick_choices().models
    assert "resnet20" in model.options and not any("/" in m for m in model.options)  # no pretrained Hub id
    assert model.value == "resnet20" and models.value == ["cnn-2layer"]
    assert model.proto.accept_new_options and models.proto.accept_new_options
    pretrained = _widget(at, "Models with pretrained")
    assert list(pretrained.options) == model_choices() and "google/vit-base-patch16-224" in pretrained.options
    assert pretrained.proto.help == "typed"
    dataset = _widget(at, "Dataset")
    assert list(dataset.options) == ["shapes", "digits", "shapes-textured", "shapes-silhouettes",
                                     "shapes-texture-only"] and dataset.proto.accept_new_options  # the embedded ones


def test_pickers_offer_the_allow_lists_and_refuse_typing_in_hosted_mode(own_store):
    own_store.setenv("CNNVIT_HOSTED", "1")
    own_store.setenv("CNNVIT_HOSTED_MODELS", "microsoft/resnet-18")
    own_store.setenv("CNNVIT_HOSTED_DATASETS", "digits")
    at = _run(PICKERS)
    for label in ("Model", "Models", "Models with pretrained"):
        w = _widget(at, label)
        assert list(w.options) == model_choices() and w.options[-1] == "microsoft/resnet-18", label
        assert not w.proto.accept_new_options, label
    assert _widget(at, "Models with pretrained").proto.help == "listed"
    dataset = _widget(at, "Dataset")
    assert list(dataset.options) == ["digits"] and not dataset.proto.accept_new_options


@pytest.mark.parametrize("page, label", [("app_pages/overview.py", "Models"), ("app_pages/train.py", "Architecture")])
def test_pages_offer_what_the_picker_decides(own_store, page, label):
    assert list(_widget(_page(page), label).options) == quick_choices().models
    own_store.setenv("CNNVIT_HOSTED", "1")
    w = _widget(_page(page), label)
    assert list(w.options) == model_choices() and not w.proto.accept_new_options


def test_evaluate_page_offers_the_default_pretrained_ids_in_both_modes(own_store):
    w = _widget(_page("app_pages/evaluate.py"), "Models")
    assert list(w.options) == model_choices() and w.proto.accept_new_options and w.value == []
    own_store.setenv("CNNVIT_HOSTED", "1")
    own_store.setenv("CNNVIT_HOSTED_DATASETS", "digits")  # `shapes`, the page's default dataset, is not offered
    at = _page("app_pages/evaluate.py")
    assert list(_widget(at, "Models").options) == model_choices()
    datasets = _widget(at, "Datasets")
    assert datasets.value == [] and not datasets.proto.accept_new_options


def test_a_typed_model_in_the_url_is_kept_outside_hosted_mode_and_dropped_in_it(own_store):
    at = _page("app_pages/predict.py", {"model": ["linear", "/no/such/model-folder"]})
    assert _widget(at, "Models").value == ["linear", "/no/such/model-folder"]
    own_store.setenv("CNNVIT_HOSTED", "1")
    at = _page("app_pages/predict.py", {"model": ["linear", "/no/such/model-folder"]})
    assert _widget(at, "Models").value == ["linear"]


def test_a_typed_model_that_cannot_load_is_said_under_its_picker_at_once(own_store):
    """A picker's search box keeps what was typed when Enter comes before a click, so a typed label became a model
    id silently: the Train page's form started at ResNet-20's recipe for it, and only Start training said why.
    (AppTest's selectbox takes listed options only: typing into the Train page's box is tests/test_browser.py's.)"""
    typed = ["vit small", "/no/such/model-folder", "google/vit-base-patch16-224", "linear"]  # the last two load
    at = _page("app_pages/predict.py", {"model": typed})
    assert _widget(at, "Models").value == typed
    # under the picker, and only there: the page does not load what the picker has flagged, so it is not said again
    # beside the image; the Hub id has the form of one, and only loading it (offline here) says it fails
    said = [e.value for e in at.error]
    assert said[:2] == ["“vit small” is not in the list: did you mean “vit-small”? Pick it from the list.",
                        "Model folder /no/such/model-folder does not exist"]
    assert len(said) == 3 and said[2].startswith("google/vit-base-patch16-224: ")
    assert [c.value for c in at.markdown if c.value.startswith("**")] == [
        "**Linear (softmax regression)**  \n`linear` · other"]  # the one model that loads, beside the one example


def test_a_typed_label_names_the_option_it_most_likely_meant():
    from core.results import typed_model_problem

    shown = {"vit-small": "vit-small", "run-a": "ViT (small, for small images) · shapes · 12.6% val · seed 0",
             "run-b": "ResNet-20 · shapes · 76.8% val · seed 0", "run-c": "ResNet-20 · shapes · 46.4% val · seed 1"}
    said = typed_model_problem("vit (small", shown)  # the one label that starts with it, whatever the case
    assert said == ("“vit (small” is not in the list: did you mean “ViT (small, for small images) · shapes · 12.6% "
                    "val · seed 0”? Pick it from the list.")
    assert typed_model_problem("ResNet-20 · shapes", shown) == (
        "“ResNet-20 · shapes” is not in the list, and 2 listed models start with it: pick one from the list.")
    assert "did you mean “ResNet-20 · shapes · 76.8% val · seed 0”" in typed_model_problem(
        "ResNet-2O · shapes · 76.8% val · seed 0", shown)  # a slip of one character: the closest
    assert typed_model_problem("nonsense", shown).startswith("Unknown model 'nonsense'; scratch models: ")
    assert [typed_model_problem(t, shown) for t in ("resnet20", "timm:resnet50", "torchvision:resnet18",
                                                    "google/vit-base-patch16-224")] == [None] * 4


def test_the_bundled_examples_are_of_the_dataset_the_picked_runs_learned(own_store, tmp_path):
    """A run that learned digits was explained, filtered and predicted on the shapes examples, images of classes it
    never saw; a scratch architecture (which learned nothing yet) keeps the embedded default."""
    from app_test import store_with_run

    _, run_id = store_with_run(tmp_path, "digits")
    for page in ("app_pages/predict.py", "app_pages/attention.py", "app_pages/filters.py"):
        examples = _widget(_page(page, {"model": [run_id]}), "or a bundled example").options
        assert len(examples) == 10 and all("(digits val #" in e for e in examples), page
    examples = _widget(_page("app_pages/predict.py", {"model": ["vit-small"]}), "or a bundled example").options
    assert len(examples) == 10 and all("(shapes val #" in e for e in examples)


def test_evaluation_labels_tell_every_evaluation_apart():
    from core.results import evaluation_labels

    row = {"model": "run-1", "model_name": "2-layer CNN", "dataset": "digits", "split": "val", "n": 359}
    rows = [row | {"key": "aaaaaa11", "precision": "fp32"}, row | {"key": "bbbbbb22", "precision": "bf16"},
            row | {"key": "cccccc33", "precision": "bf16"}, row | {"key": "dddddd44", "split": "test", "n": 360,
                                                                   "precision": "fp32"}]
    labels = evaluation_labels(rows)
    assert labels["aaaaaa11"] == "2-layer CNN on digits/val (359 images, fp32)"
    assert labels["dddddd44"] == "2-layer CNN on digits/test (360 images, fp32)"
    # the same model, data and precision twice (other weights under one name, say): the key's start says which
    assert labels["bbbbbb22"] == "2-layer CNN on digits/val (359 images, bf16) · bbbbbb"
    assert len(set(labels.values())) == 4
    assert len(set(evaluation_labels(rows, short=True).values())) == 4


def test_compare_bars_name_each_evaluation_short_enough_to_tell_them_apart(own_store, tmp_path):
    """Two runs of one architecture on one dataset: the full labels differ only after "2-layer CNN trained on
    Digits (scikit-l...", where the chart's axis cut them, so two bars read the same (a reviewer's finding). The
    bars are named as pickers name runs, with the images only where one run is evaluated twice."""
    from core.figures import compare_bars
    from core.results import compare_rows, run_labels
    from core.train.loop import train
    from core.train.recipe import Recipe

    store = Store(tmp_path)
    runs = [train(Recipe(model="linear", dataset="digits", epochs=1, limit=100, val_limit=40, seed=s), store=store)
            for s in (0, 1)]
    keys = [evaluate(runs[0].model_id, "digits", "val", limit=40, store=store).key,
            evaluate(runs[0].model_id, "digits", "val", limit=60, store=store).key,
            evaluate(runs[1].model_id, "digits", "val", limit=40, store=store).key]
    rows = compare_rows(keys, store)
    named = run_labels(store)
    assert [r["bar"] for r in rows] == [f"{named[runs[0].model_id]} (40 images)",  # what differs between the two
                                        f"{named[runs[0].model_id]} (60 images)", named[runs[1].model_id]]
    test = evaluate(runs[1].model_id, "digits", "test", limit=40, store=store).key  # another split, as many images
    assert compare_rows([keys[2], test], store)[1]["bar"] == f"{named[runs[1].model_id]} (digits/test)"
    assert named[runs[1].model_id].endswith("seed 1") and len(named[runs[1].model_id]) <= 60
    acc, _ = compare_bars(rows)
    assert acc.to_dict()["layer"][0]["encoding"]["y"]["field"] == "bar"


def test_pages_open_on_the_best_evaluation_that_still_has_errors():
    from core.results import most_informative

    rows = [{"key": "new-weak", "top1": 0.12}, {"key": "perfect", "top1": 1.0}, {"key": "good", "top1": 0.84},
            {"key": "good-older", "top1": 0.84}, {"key": "unscored", "top1": None}]  # newest first
    assert most_informative(rows) == "good"  # not the newest, not the one with nothing confused; newer of a tie
    assert most_informative([{"key": "perfect", "top1": 1.0}]) == "perfect"  # nothing else: still something
    assert most_informative([]) is None


def test_confusion_page_opens_on_the_most_informative_evaluation_unless_the_link_names_one(own_store):
    from core.evaluate import evaluate

    evs = {m: evaluate(m, "digits", "val", limit=60) for m in ("linear", "cnn-2layer")}
    assert evs["linear"].meta.top1 != evs["cnn-2layer"].meta.top1  # two different scores, or this says nothing
    weak, best = sorted(evs, key=lambda m: evs[m].meta.top1)
    evaluate(weak, "digits", "val", limit=60, force=True)  # the weaker one is now the newest evaluation
    at = _page("app_pages/confusion.py", {})
    assert _widget(at, "Evaluation").value == evs[best].key  # the old default opened the newest, the weaker
    at = _page("app_pages/confusion.py", {"eval": evs[weak].key})
    assert _widget(at, "Evaluation").value == evs[weak].key  # a link's choice wins


def test_two_models_on_the_confusion_page_say_which_images_they_are_compared_on(own_store):
    """A scored 60 images, B 40 of them: the disagreements are over the 40 both scored, which the page did not
    say, and its y axis counted images in steps of 0.2 (a reviewer's findings)."""
    a, b = evaluate("linear", "digits", "val", limit=60), evaluate("cnn-2layer", "digits", "val", limit=40)
    at = _page("app_pages/confusion.py", {"eval": a.key})
    assert _widget(at, "Model B").value == b.key
    [said] = [c.value for c in at.caption if c.value.startswith("A = ")]
    assert "Over the 40 images both scored (A scored 60, B 40)." in said
    [bars] = [c for c in at.get("vega_lite_chart") if '"XOffset"' in c.proto.spec or '"xOffset"' in c.proto.spec]
    assert json.loads(bars.proto.spec)["encoding"]["y"]["axis"] == {"format": "d", "tickMinStep": 1}


def test_the_overview_starts_at_runs_and_the_dataset_they_learned(own_store, tmp_path):
    """A store whose runs learned digits: the Overview picked them with shapes, so its first Evaluate queued jobs
    that failed (a reviewer's finding). It starts at the newest runs of one offered dataset, and that dataset."""
    from core.train.loop import train
    from core.train.recipe import Recipe

    run = train(Recipe(model="linear", dataset="digits", epochs=1, limit=100, val_limit=40), store=Store(tmp_path))
    at = _page("app_pages/overview.py")
    assert at.multiselect(key="ov_models").value == [run.model_id]
    assert at.selectbox(key="ov_dataset").value == "digits"
    assert quick_choices().default_dataset == "digits"


def test_the_overview_moves_to_the_first_runs_in_the_session_that_made_them(own_store, tmp_path):
    """The session that pressed Run the demo kept the scratch pair its Evaluate form opened with (a widget keeps its
    value across reruns): once the store has runs, the same session's form starts at them, as a new session's does."""
    from core.train.loop import train
    from core.train.recipe import Recipe

    at = _page("app_pages/overview.py")
    [models] = [w for w in at.multiselect if w.label == "Models"]
    assert models.value == ["cnn-2layer", "vit-small"]  # an empty store: a scratch CNN and ViT
    run = train(Recipe(model="linear", dataset="digits", epochs=1, limit=100, val_limit=40), store=Store(tmp_path))
    at.run()  # the same session, as the page reruns when the demo's job ends
    [models] = [w for w in at.multiselect if w.label == "Models"]
    [dataset] = [w for w in at.selectbox if w.label == "Dataset"]
    assert (models.value, dataset.value) == ([run.model_id], "digits")


def test_default_picks_follow_the_dataset_a_page_scores_on(own_store, tmp_path, monkeypatch):
    """Run records as training writes them: a folder dataset is recorded by its resolved path, so a page given the
    folder as typed (relative, say) still finds its runs; runs of two datasets have no one dataset they learned."""
    from core.results import default_models, learned_dataset

    store = Store(tmp_path)
    folder = tmp_path / "flowers"
    folder.mkdir()
    for key, family, dataset, top1 in [("run-a", "cnn", "digits", 0.9), ("run-b", "vit", "digits", 0.2),
                                       ("run-c", "cnn", str(folder.resolve()), 0.7)]:
        store.put(key, "run", {"run_id": key, "model": "linear", "family": family, "dataset": dataset,
                               "val_top1": top1})
    monkeypatch.chdir(tmp_path)
    assert default_models(("cnn", "vit"), "digits", store) == ["run-a", "run-b"]
    assert default_models(("cnn", "vit"), "flowers", store) == ["run-c"]  # typed relative to the working folder
    assert default_models(("cnn", "vit"), "shapes", store) == ["cnn-2layer", "vit-small"]  # no run learned shapes
    assert learned_dataset(["run-a", "run-b", "vit-small"], store) == "digits"
    assert learned_dataset(["run-a", "run-c"], store) is None and learned_dataset(["vit-small"], store) is None


def test_a_confusion_cell_in_the_link_opens_its_images(own_store):
    """Clicking a cell showed its images, but the link did not keep it, so a shared link (or a story's slide)
    lost the cell (a reviewer's finding)."""
    from core.confusion import confusion_cells
    from core.data.registry import load_dataset

    ev = evaluate("linear", "digits", "val", limit=60)
    classes = list(load_dataset("digits").classes)
    cell = next(c for c in confusion_cells(ev, classes, list(range(len(classes)))) if not c["correct"] and c["count"])
    at = _page("app_pages/confusion.py", {"eval": ev.key, "cell": f"{cell['true']},{cell['pred']}"})
    opened = [h.value for h in at.subheader if h.value.startswith("true ")]
    plural = "image" if cell["count"] == 1 else "images"
    assert opened == [f"true {classes[cell['true']]}, predicted {classes[cell['pred']]}: {cell['count']} {plural}"]
    # the matrix draws that cell as picked (the rest faded, as after a click), not every cell as if none were
    [param] = json.loads(at.get("vega_lite_chart")[0].proto.spec)["params"]
    assert param["name"] == "cell" and param["value"] == [{"true": cell["true"], "pred": cell["pred"]}]
    at = _page("app_pages/confusion.py", {"eval": ev.key, "cell": "99,0"})  # not a cell of this matrix: ignored
    assert not [h for h in at.subheader if h.value.startswith("true ")] and "cell" not in at.query_params
    [param] = json.loads(at.get("vega_lite_chart")[0].proto.spec)["params"]
    assert "value" not in param  # nothing picked: every cell at full strength
    cells = confusion_cells(ev, classes, list(range(len(classes))))
    empty = next(c for c in cells if not c["correct"] and not c["count"])
    at = _page("app_pages/confusion.py", {"eval": ev.key, "cell": f"{empty['true']},{empty['pred']}"})
    assert [h.value for h in at.subheader if h.value.startswith("true ")][0].endswith(": 0 images")
    [param] = json.loads(at.get("vega_lite_chart")[0].proto.spec)["params"]
    assert "value" not in param  # an empty error cell is not drawn: picking it would fade every cell there is


def test_the_first_visit_tour_links_three_pages_and_stays_dismissed_for_the_visit(own_store):
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    assert any("Three things to try" in m.value for m in at.markdown)
    links = [e for e in at.get("page_link")]
    assert [lk.proto.label for lk in links][:3] == ["1. Compare", "2. Confusion matrix", "3. Attention & Grad-CAM"]
    [got_it] = [b for b in at.button if b.label == "Got it"]
    got_it.click()
    at.run()
    assert not any("Three things to try" in m.value for m in at.markdown) and not at.get("page_link")
    at.switch_page("app_pages/compare.py")
    at.run()
    at.switch_page("app_pages/overview.py")
    at.run()
    assert not any("Three things to try" in m.value for m in at.markdown)  # dismissed for the rest of the visit


PAGES = ("overview", "evaluate", "train", "compare", "arena", "shape_bias", "robustness", "predict", "confusion",
         "drilldown", "filters", "attention")
WIDGETS = ("selectbox", "multiselect", "radio", "number_input", "text_input", "slider", "toggle", "checkbox", "button",
           "select_slider", "text_area")


def test_every_widget_on_every_page_says_what_it_does(own_store):
    """A person who does not code hovers the (?) of any control and reads what it does."""
    for m in ("linear", "cnn-2layer"):  # two evaluations of the same images: every confusion control shows
        evaluate(m, "digits", "val", limit=60)
    from core.stories import View, add_view, new_story

    story = new_story("a story")
    add_view(story.id, View.make("compare", {}, "a view", "a note"))
    missing = []
    for page, link in [(p, None) for p in PAGES] + [("stories", {"story": story.id})]:
        at = _page(f"app_pages/{page}.py", link)
        for kind in WIDGETS:
            missing += [f"{page}: {kind} {w.label!r}" for w in getattr(at, kind) if not w.proto.help]
    assert not missing, missing


def test_results_of_a_model_whose_class_names_were_assumed_say_so_where_they_are_shown(own_store, tmp_path):
    from test_folders import BULLFROG, GOLDFISH, _classes
    from test_heads_and_label_spaces import _hf_folder

    hub = _hf_folder(tmp_path / "hub-vit", "vit", num_labels=1000)  # transformers' placeholders: LABEL_0 ...
    assert hub.labels.assumed
    data = _classes(tmp_path / "inet", [GOLDFISH, BULLFROG])  # wnid folders: scored by WordNet id
    assumed = evaluate(str(tmp_path / "hub-vit"), str(data), "all")
    native = evaluate("linear", "digits", "val", limit=30)
    assert assumed.meta.labels_assumed == hub.labels.assumed and native.meta.labels_assumed is None
    said = "Class names assumed"
    for page, link in (("overview", {}), ("compare", {"eval": [assumed.key, native.key]}),
                       ("confusion", {"eval": assumed.key})):
        at = _page(f"app_pages/{page}.py", link)
        assert any(said in c.value and "LABEL_0" in c.value for c in at.caption), page
    at = _page("app_pages/confusion.py", {"eval": native.key})
    assert not any(said in c.value for c in at.caption)  # a model that names its own classes: nothing to say


def test_job_fragments_poll_only_while_a_job_is_queued_or_running():
    from ui.jobs import POLL_SECONDS, poll_every

    assert poll_every([]) is None
    assert poll_every([{"state": "done"}, {"state": "failed"}, {"state": "cancelled"}]) is None
    assert poll_every([{"state": "done"}, {"state": "queued"}]) == POLL_SECONDS
    assert poll_every([{"state": "running"}]) == POLL_SECONDS


RERUN_WHEN_DONE = """
import streamlit as st
from ui.jobs import rerun_when_done

st.session_state["runs"] = st.session_state.get("runs", 0) + 1
rerun_when_done("watching", [{"state": s} for s in st.session_state.get("states", [])])
"""


def test_the_poll_that_sees_its_jobs_finish_reruns_the_page_once():
    at = AppTest.from_string(RERUN_WHEN_DONE, default_timeout=30)
    at.session_state["states"] = ["running", "done"]
    at.run()
    assert at.session_state["runs"] == 1 and at.session_state["watching"] is True
    at.session_state["states"] = ["done", "done"]  # they finished: one more run of the whole script
    at.run()
    assert at.session_state["runs"] == 3 and at.session_state["watching"] is False
    at.run()  # and no more after that
    assert at.session_state["runs"] == 4
    at.session_state["states"] = []  # nothing was ever watched: no rerun
    at.run()
    assert at.session_state["runs"] == 5
