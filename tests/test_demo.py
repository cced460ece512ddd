"""The demo's flow (train, then evaluate, each a cache hit the second time), with small recipes; the real
demo's recipes are validated and timed by hand (see the README)."""
from core.arena.spec import ArenaSpec
from core.demo import DEMO_MODELS, DEMO_RECIPES, demo_arena, run_demo
from core.models.scratch import build_scratch, scratch_specs
from core.models.spec import InputShape
from core.results import evaluation_table
from core.store import Store


def test_demo_trains_then_evaluates_and_a_second_run_is_all_cache_hits(tmp_path):
    store = Store(tmp_path)
    spec = ArenaSpec(models=("cnn-2layer", "vit-small"), dataset="digits", budget="epochs:1", seeds=1, limit=128,
                     batch_size=32, image_size=None)
    messages = []
    first = run_demo(store=store, spec=spec, progress=lambda p: messages.append(p))
    assert [r["model"] for r in first["runs"]] == ["cnn-2layer", "vit-small"]
    assert not any(r["cached"] for r in first["runs"]) and not any(e["cached"] for e in first["evaluations"])
    assert all(e["split"] == "val" and e["n"] == 359 for e in first["evaluations"])  # digits val, all of it
    assert max(p["step"] for p in messages) <= len(spec.models) + 1  # the runs, then the evaluations
    # its last word is that it is done (a finished demo job's stored progress read "2/3, evaluating vit-small")
    assert (messages[-1].step, messages[-1].steps, messages[-1].fraction()) == (3, 3, 1.0)
    assert messages[-1].message.strip().startswith("evaluated 2 models on digits/val")
    assert first["same_data"] is True and "the same training images" in first["held_equal"]["data"]
    assert " (these runs: " in first["held_equal"]["precision"]  # as they ran, not only as asked
    table = evaluation_table(store)
    assert {r["model"] for r in table} == {r["run_id"] for r in first["runs"]}
    second = run_demo(store=store, spec=spec)
    assert all(r["cached"] for r in second["runs"]) and all(e["cached"] for e in second["evaluations"])


def test_the_demo_recipes_cover_a_cnn_resnet20_and_a_plain_vit_on_shapes():
    models = [r.model for r in DEMO_RECIPES]
    assert {"resnet20", "vit-lite-2"} <= set(models) and all(r.dataset == "shapes" for r in DEMO_RECIPES)
    families = {s.id: s.family for s in scratch_specs()}
    assert [families[m] for m in models].count("cnn") >= 2
    assert [families[m] for m in models].count("hybrid") >= 1  # a data-efficient ViT beside the plain one
    assert [families[m] for m in models].count("vit") >= 1


def test_no_demo_model_has_twice_the_parameters_of_another():
    """The demo's fight is between models of one size (at 32 px, 10 classes: ViT-Lite-2 214,666, ResNet-20 269,722,
    CCT-2 283,723, the multi-layer CNN 391,946), so neither family wins by being larger; `vit-small` (2,693,578)
    would be ten times ResNet-20."""
    params = {m: build_scratch(m, InputShape(3, 32, 10)).params for m in DEMO_MODELS}
    assert max(params.values()) < 2 * min(params.values()), params


def test_the_demo_gives_every_model_the_same_images_and_budget(tmp_path):
    from core.arena.run import plan

    spec = demo_arena()
    # the recipes the Train page offers are the runs the demo trains (its arena's plan, which turns any budget into
    # each model's length), so the page opens them as cached runs
    assert [r.run_id for r in DEMO_RECIPES] == [c.recipe.run_id for c in plan(spec, Store(tmp_path))]
    shared = {"dataset", "limit", "val_limit", "image_size", "batch_size", "augment", "seed", "epochs", "max_steps"}
    assert len({tuple(getattr(r, f) for f in sorted(shared)) for r in DEMO_RECIPES}) == 1
    assert spec.seeds == 1 and spec.budget.startswith(("epochs:", "steps:", "flops:"))


def test_a_model_that_diverges_is_said_and_the_others_are_evaluated(tmp_path, monkeypatch):
    from dataclasses import replace

    from test_arena import DIVERGES

    from core.models.scratch import SCRATCH

    monkeypatch.setitem(SCRATCH, "linear", replace(SCRATCH["linear"], recipe=DIVERGES))
    spec = ArenaSpec(models=("cnn-2layer", "linear"), dataset="digits", budget="steps:2", seeds=1, limit=128,
                     batch_size=32, image_size=None)
    out = run_demo(store=Store(tmp_path), spec=spec)
    cnn, linear = out["runs"]
    assert cnn["val_top1"] is not None and "diverged" not in cnn
    assert linear["val_top1"] is None and linear["diverged"].startswith("the loss became ")
    assert [e["model"] for e in out["evaluations"]] == ["cnn-2layer"]
    assert [d["model"] for d in out["diverged"]] == ["linear"]


def test_the_overview_says_which_demo_model_diverged(tmp_path, monkeypatch):
    """The demo job end to end (a small arena in place of the demo's): its result carries the diverged run, and the
    Overview page says it beside the demo's fight."""
    from dataclasses import replace

    from app_test import open_page
    from test_arena import DIVERGES

    import core.demo
    from core.jobs import DemoJob, Jobs
    from core.models.scratch import SCRATCH

    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(SCRATCH, "linear", replace(SCRATCH["linear"], recipe=DIVERGES))
    monkeypatch.setattr(core.demo, "demo_arena", lambda: ArenaSpec(
        models=("cnn-2layer", "linear"), dataset="digits", budget="steps:2", seeds=1, limit=128, batch_size=32,
        image_size=None))
    jobs = Jobs(Store(tmp_path))
    job = jobs.submit(DemoJob(), start_worker=False)
    job = jobs.run(jobs.claim(job.id))
    assert job.state == "done", job.error
    assert [(d["model"], d["seed"]) for d in job.result["diverged"]] == [("linear", 0)]
    at = open_page()
    assert any(c.value.startswith("**The demo's fight** (cnn-2layer, linear)") for c in at.caption)
    [warning] = at.warning
    assert warning.value.startswith("1 run diverged (the loss became NaN or infinite) and has no accuracy (linear "
                                    "seed 0 at 128 images: the loss became ")
    # trained to the end since (elsewhere, say): the Overview no longer says it diverged
    store = Store(tmp_path)
    store.put(job.result["diverged"][0]["run_id"], "run", store.get(job.result["runs"][0]["run_id"]).meta)
    assert not open_page().warning


def test_the_demo_evaluates_a_seed_that_finished(tmp_path):
    from core.arena.run import diverged_key, plan, run_arena, trained_where

    store = Store(tmp_path)
    spec = ArenaSpec(models=("cnn-2layer",), dataset="digits", budget="steps:2", seeds=2, limit=128, batch_size=32,
                     image_size=None)
    seed0, seed1 = run_arena(spec, store=store)["results"][0]["run_ids"]
    # as if seed 0 had diverged on this machine: its run gone, the arena's record of it in its place
    assert store.delete(seed0)
    store.put(diverged_key(seed0), "diverged", {"run_id": seed0, "model": "cnn-2layer", "size": 128, "seed": 0,
                                                "message": "the loss became nan at epoch 1, step 2",
                                                **trained_where(plan(spec, store)[0].recipe)})
    out = run_demo(store=store, spec=spec)
    assert [(r["run_id"], r["cached"]) for r in out["runs"]] == [(seed1, True)]
    assert [e["model_id"] for e in out["evaluations"]] == [seed1]
    assert [d["seed"] for d in out["diverged"]] == [0]
