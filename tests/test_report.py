"""The report (`python -m core report`): a self-contained HTML file whose numbers are the store's, whose figures
say what produced them (and the command that does reproduce them), opened offline in Chromium without a single
network request, and printed to a PDF with one section per page."""
import html
import json
import os
import re
import shlex
from html.parser import HTMLParser

import numpy as np
import pytest
from chromium import FLAGS, chromium
from core_process import run_core

from core.arena.run import plan, run_arena
from core.arena.spec import ArenaSpec, chance_level, chance_text, spread_text
from core.errors import UserError
from core.evaluate import evaluate, load_evaluation
from core.metrics import proportion_ci95
from core.report import build_report, choose_evaluations, compared_from_keys, write_report
from core.settings import REPO_ROOT
from core.shape_bias import shape_bias
from core.store import Store

SPEC = ArenaSpec(models=("cnn-2layer", "cct-2"), dataset="shapes", budget="epochs:1", seeds=2, limit=200,
                 val_limit=60, image_size=32)
VAL = 60


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store with a two-seed arena (cnn-2layer and CCT-2, one epoch on 200 shapes images) and the seed-0 runs
    evaluated on 60 val images and on 60 test images: (store, run ids, evaluation keys on val)."""
    root = tmp_path_factory.mktemp("report-store")
    store = Store(root)
    run_arena(SPEC, store=store)
    runs = [c.recipe.run_id for c in plan(SPEC, store) if c.seed == 0]
    keys = [evaluate(r, "shapes", "val", limit=VAL, store=store, precision="fp32").key for r in runs]
    for r in runs:
        evaluate(r, "shapes", "test", limit=VAL, store=store, precision="fp32")
    shape_bias(runs[0], store=store, precision="fp32")  # the cue-conflict set, for the first model only
    return store, runs, keys


@pytest.fixture(scope="module")
def report(lab, tmp_path_factory):
    store, runs, _ = lab
    path = tmp_path_factory.mktemp("report") / "report.html"
    out = write_report(build_report(choose_evaluations(runs, "shapes", store=store), store=store, images=2), path)
    return out, path.read_text(encoding="utf-8")


def _section(text: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', text, re.S)
    assert m, f"no section {sid}"
    return m.group(1)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset", "poster", "data", "action") and v]


def test_the_report_has_every_stored_section_and_only_those(report):
    out, text = report
    assert out["sections"] == ["summary", "leaderboard", "speed", "classes", "confusion", "curves", "explanations",
                               "arena", "shape-bias", "environment"]  # no robustness was stored: no empty section
    assert out["bytes"] == len(text.encode("utf-8"))


def test_its_numbers_are_the_stored_ones(lab, report):
    store, runs, keys = lab
    _, text = report
    board = _section(text, "leaderboard")
    classes = _section(text, "classes")
    for key in keys:
        ev = load_evaluation(key, store)
        assert ev.meta.split == "val" and ev.meta.n == VAL  # val chosen: both splits are stored for both models
        lo, hi = proportion_ci95(ev.meta.top1, VAL)
        assert f"<td>{ev.meta.top1:.1%}</td><td>{lo:.1%} to {hi:.1%}</td>" in board
        # per-class recall worked out from the predictions: the share of each class's images ranked first
        y, top1 = ev.predictions.y_true, ev.predictions.top_idx[:, 0]
        for c in range(10):
            if (y == c).any():
                assert f"{np.mean(top1[y == c] == c):.0%}" in classes


def test_every_figure_says_what_produced_it_and_its_commands_reproduce_it(lab, report):
    store, runs, keys = lab
    _, text = report
    for sid in ("leaderboard", "speed", "classes", "confusion", "curves", "explanations", "arena"):
        body = _section(text, sid)
        assert body.count("<div class=prov>") >= 1 and "reproduce:" in body, sid
        last_figure, last_prov = body.rfind("<figure>"), body.rfind("<div class=prov>")
        assert last_figure < last_prov, f"{sid}: a figure after the last provenance block"
    for key in keys:  # the evaluation digests, in the leaderboard's block and each model's confusion matrix
        assert key[:16] in _section(text, "leaderboard") and key[:16] in _section(text, "confusion")
    assert SPEC.command in _section(text, "arena").replace("&#x27;", "'")
    # the training command carries the run's recipe, exactly
    recipes = re.findall(r"python -m core train --recipe-json (.*?)</code>", _section(text, "curves"))
    from html import unescape
    parsed = [json.loads(shlex.split(unescape(r))[0]) for r in recipes]
    assert parsed == [store.get(r).meta["recipe"] for r in runs]
    # and the evaluation command, run in the same store, is the stored evaluation (a cache hit, the same top-1)
    cmd = re.search(r"(python -m core evaluate [^<]*)</code>", _section(text, "confusion")).group(1)
    args = shlex.split(cmd)[3:] + ["--json"]
    proc = run_core(*args, cwd=REPO_ROOT, env=os.environ | {"CNNVIT_CACHE_DIR": str(store.root)})
    got = json.loads(proc.stdout)
    assert got["cached"] is True and got["top1"] == load_evaluation(keys[0], store).meta.top1


def test_each_models_explanation_predicts_at_its_own_evaluations_precision(lab):
    store, runs, keys = lab
    bf16 = evaluate(runs[0], "shapes", "val", limit=VAL, store=store, precision="bf16").key
    section = _section(build_report(compared_from_keys([bf16, keys[1]], store), store=store, images=1).html(),
                       "explanations")
    says = re.findall(r"says [^<]* \((\d+)%, (fp32|bf16)\)", section)
    assert [p for _, p in says] == ["bf16", "fp32"]  # one image: the first model's cell, then the second's
    assert f"--model {runs[0]} --image IMAGE --method gradcam --dataset shapes --precision bf16" in section
    assert f"--model {runs[1]} --image IMAGE --method gradcam --dataset shapes --precision fp32" in section


def test_the_summary_says_what_was_held_equal_and_what_was_not(report):
    summary = _section(report[1], "summary")
    held, _, differs = summary.partition("Not held equal")
    assert "the same files, by fingerprint" in held and "precision: fp32" in held
    assert "training epochs: 1" in held and "training images and their order: the same" in held
    assert "training seed" not in differs  # both are seed 0 (the seed-1 runs are the arena's)


def test_the_shape_bias_section_is_the_stored_measurement(lab, report):
    store, runs, _ = lab
    section = _section(report[1], "shape-bias")
    r = shape_bias(runs[0], store=store, precision="fp32", stored_only=True)
    assert r["cached"] and f"python -m core shape-bias --model {runs[0]}" in section
    assert all(k[:16] in section for k in r["evaluations"].values()) and "<img" in section


def test_the_arena_section_has_the_interval_over_seeds(lab, report):
    from core.arena.run import summarize

    arena = _section(report[1], "arena")
    results = summarize(SPEC, lab[0])["results"]
    for r in results:
        assert f"<td>{r['top1_mean']:.1%}</td><td>± {r['top1_ci95']:.1%}</td><td>2/2</td>" in arena
    # how sure the widest interval is, as the Arena page says it (core.arena.spec.spread_text, worked by hand there)
    spread = spread_text(results)
    assert (f"<p>{html.escape(spread)}</p>" in arena) if spread else "The widest interval" not in arena
    near = chance_text(results, chance_level(SPEC.dataset))  # the models whose interval reaches chance
    assert (f"<p>{html.escape(near)}</p>" in arena) if near else "Within reach of chance" not in arena


def test_the_file_is_self_contained_and_opens_offline_without_a_request(report, tmp_path):
    from playwright.sync_api import sync_playwright

    out, text = report
    links = _Links()
    links.feed(text)
    assert links.urls and all(u.startswith(("data:image/svg+xml;base64,", "data:image/png;base64,", "#"))
                              for u in links.urls), [u[:40] for u in links.urls if not u.startswith("data:")]
    assert "@import" not in text and "url(" not in text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=FLAGS)
        page = browser.new_page()
        requested = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto("file://" + out["path"])
        page.wait_for_load_state("load")
        broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        images = page.evaluate("document.images.length")
        browser.close()
    assert [u for u in requested if not u.startswith("data:")] == ["file://" + out["path"]]
    # two bar charts, the scatter, two matrices, two curves, 2 images x (the image + 2 maps), the arena's two charts,
    # the shape-bias bars
    assert images == 2 + 1 + 2 + 2 + 2 * 3 + 2 + 1 and broken == 0


def test_the_pdf_puts_each_section_on_its_own_pages(lab, tmp_path):
    from pypdf import PdfReader

    store, runs, _ = lab
    rep = build_report(choose_evaluations(runs, "shapes", store=store), store=store, images=0)
    out = write_report(rep, tmp_path / "report.pdf")
    pages = [p.extract_text() for p in PdfReader(out["path"]).pages]
    titles = [s.title for s in rep.sections]
    starts = [next(i for i, t in enumerate(pages) if t.lstrip().startswith(title)) for title in titles]
    assert starts == sorted(starts) and len(set(starts)) == len(titles)  # in order, each on a new page
    assert len(pages) >= len(titles) + 1  # the title page, then a page (or more) per section
    assert "explanations" not in out["sections"]  # --images 0
    assert f"{load_evaluation(lab[2][0], store).meta.top1:.1%}" in pages[starts[titles.index("Leaderboard")]]


def test_a_large_label_set_shows_its_most_confused_classes(tmp_path):
    from PIL import Image

    folder = tmp_path / "many"
    for c in range(25):  # 25 classes of 2 images each, an image folder
        (folder / f"class{c:02d}").mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (c * 10, i * 100, 50)).save(folder / f"class{c:02d}" / f"{i}.png")
    store = Store(tmp_path / "store")
    ev = evaluate("linear", str(folder), store=store, precision="fp32")  # untrained: confused everywhere
    text = build_report(choose_evaluations(["linear"], str(folder), store=store), store=store, images=0).html()
    assert "the 20 most confused of 25 classes" in _section(text, "confusion")
    classes = _section(text, "classes")
    assert "20 of 25 classes" in classes and classes.count("<tr>") == 1 + 20  # the header and 20 classes
    assert ev.meta.num_classes == 25


def test_bad_requests_say_what_to_do(lab, tmp_path):
    store, runs, keys = lab
    with pytest.raises(UserError, match=r"no stored evaluation of linear on shapes/val; evaluate first: python -m "
                                        r"core evaluate --model linear --dataset shapes --split val"):
        choose_evaluations([runs[0], "linear"], "shapes", store=store)
    assert choose_evaluations(runs, "shapes", "test", store=store).split == "test"
    test_key = choose_evaluations(runs[:1], "shapes", "test", store=store).keys[0]
    with pytest.raises(UserError, match="same images"):
        compared_from_keys([keys[0], test_key], store=store)
    proc = run_core("report", "--models", "nothing-here", "--dataset", "shapes", "--out", str(tmp_path / "r.html"),
                    cwd=REPO_ROOT, env=os.environ | {"CNNVIT_CACHE_DIR": str(store.root)})
    assert proc.returncode == 2 and proc.stderr.startswith("error: no stored evaluation of nothing-here on shapes")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()
