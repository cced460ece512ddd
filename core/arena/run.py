"""Training an arena and summarising it: the plan of runs, budgets turned into steps, means with confidence
intervals, the data check, learning curves and crossovers (the package docstring says what is held equal)."""
from __future__ import annotations

import itertools
import math
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from core.arena.spec import (
    BUDGET_KINDS,
    CALIBRATION_STEPS,
    DEFAULT_RECIPE,
    HELD_EQUAL,
    ArenaSpec,
    Budget,
    by_seed,
    paired_gap,
)
from core.data.registry import load_dataset
from core.errors import UserError
from core.metrics import mean_ci95
from core.models.scratch import SCRATCH
from core.models.spec import input_shape_for
from core.precision import autocast, resolve_precision
from core.progress import Progress
from core.settings import resolve_device
from core.store import Store, fingerprint
from core.train.loop import Diverged, train
from core.train.recipe import RECIPE_VERSION, Recipe
from core.train.runs import build_for_recipe

# 2: each size of a generated dataset trains on the smallest that holds it (ArenaSpec.dataset_at); an arena planned
# before is planned again (its runs at the largest size, and every run of an arena without sizes, keep their ids)
PLAN_VERSION = 2


@dataclass(frozen=True)
class Cell:
    """One training run of the arena: a model at a training-set size with a seed."""

    model: str
    size: int  # training images
    seed: int
    recipe: Recipe


def model_recipe(model: str) -> dict:
    """The model's own recipe (its registration's), or the default for architectures without one."""
    own = SCRATCH[model].recipe or DEFAULT_RECIPE
    clash = sorted(set(own) & set(HELD_EQUAL))
    assert not clash, f"{model}'s recipe sets fields the arena holds equal: {clash}"
    return dict(own)


def arena_recipe(spec: ArenaSpec, model: str, *, seed: int = 0, dataset: str | None = None) -> Recipe:
    """What `model` trains with in this arena, before the budget sets its length (and the plan its training-set
    size): the shared fields from the arena, the rest from the model's own recipe."""
    return Recipe(model=model, dataset=dataset or spec.train_dataset(), batch_size=spec.batch_size,
                  augment=spec.augment, image_size=spec.image_size, limit=spec.limit,
                  val_limit=spec.val_limit, seed=seed, amp=spec.amp,
                  **{**model_recipe(model), **({"lr": spec.lr} if spec.lr else {})})


def plan(spec: ArenaSpec, store: Store | None = None, *, device: str | None = None) -> list[Cell]:
    """Every run the arena trains, in the order it trains them: size by size, seed by seed, model by model (so
    the first full comparison arrives early). A seconds budget measures each model's training rate first, a FLOPs
    budget counts each model's; the plan is then stored under the arena's key, and read back from there, so a
    page summarising the arena never measures anything."""
    store = store or Store()
    # the plan follows from the spec and each model's own recipe (which a new release may change)
    key = "arena-plan-" + fingerprint({"spec": spec.to_json(), "version": RECIPE_VERSION, "plan": PLAN_VERSION,
                                       "recipes": {m: model_recipe(m) for m in spec.models}})[:16]
    if (stored := store.get(key)) is not None:
        return [Cell(c["model"], c["size"], c["seed"], Recipe.from_dict(c["recipe"])) for c in stored.meta["cells"]]
    cells = _plan(spec, store, device)
    store.put(key, "arena-plan", {"spec": spec.to_json(), "cells": [
        {"model": c.model, "size": c.size, "seed": c.seed, "recipe": c.recipe.to_dict()} for c in cells]})
    return cells


def _plan(spec: ArenaSpec, store: Store, device: str | None) -> list[Cell]:
    budget = Budget.parse(spec.budget)
    sizes: list[int | None] = list(spec.sizes) or [spec.limit]
    n_train = {}  # dataset -> its training images
    for s in sorted(sizes, key=lambda s: s or 0, reverse=True):  # the largest first: smaller `shapes-N` slice it
        dataset = spec.dataset_at(s)
        if dataset not in n_train:
            n_train[dataset] = len(load_dataset(dataset).split("train"))
        if s is not None and s > n_train[dataset]:
            raise UserError(f"{dataset} has {n_train[dataset]:,} training images; a size of {s:,} needs more")
    cells = []
    steps_cache: dict[tuple[str, int], int] = {}
    for size in sizes:
        dataset = spec.dataset_at(size)
        images = min(size or n_train[dataset], n_train[dataset])
        steps_per_epoch = max(1, math.ceil(images / spec.batch_size))
        for seed in range(spec.seeds):
            for model in spec.models:
                # every training image is limit None, however it was asked for (a limit or size of all of them)
                base = replace(arena_recipe(spec, model, seed=seed, dataset=dataset),
                               limit=size if size and size < n_train[dataset] else None)
                if budget.kind == "epochs":
                    recipe = replace(base, epochs=int(budget.amount))
                else:
                    if (model, images) not in steps_cache:
                        steps_cache[(model, images)] = budget_steps(budget, base, store, device=device)
                    steps = steps_cache[(model, images)]
                    recipe = replace(base, epochs=min(1000, math.ceil(steps / steps_per_epoch)), max_steps=steps)
                cells.append(Cell(model, images, seed, recipe))
    return cells


def budget_steps(budget: Budget, recipe: Recipe, store: Store, *, device: str | None = None) -> int:
    """The optimiser steps a steps, FLOPs or seconds budget buys this recipe's model."""
    if budget.kind == "steps":
        return int(budget.amount)
    if budget.kind == "flops":
        _, model = build_for_recipe(recipe)
        per_step = model.train_flops_per_image() * recipe.batch_size
        return max(1, int(budget.amount // per_step))
    rate = training_rate(recipe, store, device=device)["images_per_second"]
    return max(1, int(budget.amount * rate // recipe.batch_size))


def trained_where(recipe: Recipe, device: str | None = None) -> dict:
    """Where a run of `recipe` trains from this process: the machine, the device and the precision `amp` resolves
    to there (bf16 where the hardware has it)."""
    dev = resolve_device(device)
    return {"machine": platform.node(), "device": dev, "precision": resolve_precision("auto" if recipe.amp else "fp32",
                                                                                       dev)}


def training_rate(recipe: Recipe, store: Store, *, device: str | None = None) -> dict:
    """This machine's training images/s for the recipe's model, batch size, image side and precision: measured
    once over a few steps on random images (one untimed), then read from the store."""
    here = trained_where(recipe, device)
    dev, precision = here["device"], here["precision"]
    ds, model = build_for_recipe(recipe)
    shape = input_shape_for(ds, recipe.image_size)
    key = "calibration-" + fingerprint({"kind": "calibration", "model": recipe.model, "shape": list(vars(shape).values()),
                                        "batch": recipe.batch_size, **here, "threads": torch.get_num_threads()})[:16]
    if (hit := store.get(key)) is not None:
        return hit.meta
    module = model.module.to(dev).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(recipe.batch_size, shape.channels, shape.size, shape.size, generator=gen).to(dev)
    y = torch.randint(0, shape.num_classes, (recipe.batch_size,), generator=gen).to(dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(precision, dev):
            out = module(x)
        F.cross_entropy((out[0] if isinstance(out, tuple) else out).float(), y).backward()
        opt.step()

    step()
    if dev == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(CALIBRATION_STEPS):
        step()
    if dev == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    meta = {"model": recipe.model, "images_per_second": CALIBRATION_STEPS * recipe.batch_size / seconds,
            "device": dev, "precision": precision, "batch_size": recipe.batch_size, "image_size": shape.size}
    store.put(key, "calibration", meta)
    return meta


def run_arena(spec: ArenaSpec, *, store: Store | None = None, device: str | None = None,
              progress: Callable[[Progress], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> dict:
    """Train every run of the arena (finished ones are cache hits), then summarise. A run whose loss becomes NaN or
    infinite is recorded as diverged (`diverged_key`) and the arena goes on with the others."""
    store = store or Store()
    cells = plan(spec, store, device=device)
    say = progress or (lambda p: None)
    for i, cell in enumerate(cells):
        where = f"[{i + 1}/{len(cells)}] {cell.model}, seed {cell.seed}, {cell.size:,} images"
        say(Progress(step=i, steps=len(cells), model=cell.model, message=f"training {where}"))

        def report(p: Progress, i: int = i, cell: Cell = cell) -> None:
            within = ((p.epoch or 0) + (p.step or 0) / max(p.steps or 1, 1) * (p.row is None)) / max(p.epochs or 1, 1)
            say(Progress(step=round(i + min(within, 1.0), 3), steps=len(cells), model=cell.model))

        here = trained_where(cell.recipe, device)
        if (store.get(cell.recipe.run_id) is None and (d := store.get(diverged_key(cell.recipe.run_id))) is not None
                and all(d.meta.get(k) == v for k, v in here.items())):
            say(Progress(step=i + 1, steps=len(cells), model=cell.model,
                         message=f"skipping {where}: it diverged here before, in {here['precision']}, and would again"))
            continue
        try:
            train(cell.recipe, store=store, device=device, progress=report, should_stop=should_stop)
        except Diverged as e:  # an outcome of this recipe and seed: said in the summary, and the arena goes on
            store.put(diverged_key(cell.recipe.run_id), "diverged", {
                "run_id": cell.recipe.run_id, "model": cell.model, "size": cell.size, "seed": cell.seed,
                "message": str(e), **here})
            say(Progress(step=i + 1, steps=len(cells), model=cell.model, message=f"{where} diverged: {e}"))
    say(Progress(step=len(cells), steps=len(cells), message="done"))
    return summarize(spec, store, cells=cells)


def diverged_key(run_id: str) -> str:
    """Where the arena records that a run's loss became NaN or infinite (core/train/loop.py's Diverged), with the
    machine, device and precision it diverged on. It is not retried there (the same recipe and seed diverge the same
    way); on another machine, device or precision it is trained again. A finished run under the same id (trained
    elsewhere since) takes precedence."""
    return f"diverged-{run_id}"


def summarize(spec: ArenaSpec, store: Store | None = None, *, cells: list[Cell] | None = None) -> dict:
    """The arena's result from the runs finished so far (DESIGN.md's `arena` JSON, plus what was held equal,
    how the data were checked, the learning curves, the crossovers and the runs that diverged: `diverged`, and
    `runs_diverged` per result, whose mean is over the seeds that finished)."""
    store = store or Store()
    cells = cells if cells is not None else plan(spec, store)
    budget = Budget.parse(spec.budget)
    metas: dict[str, dict | None] = {}  # run id -> its finished run's record (None: not finished), read once
    groups: dict[tuple[str, int], list[tuple[Cell, dict | None]]] = {}
    diverged: list[dict] = []  # runs that ended without a model: their loss became NaN or infinite
    for cell in cells:
        rec = store.get(cell.recipe.run_id)
        metas[cell.recipe.run_id] = rec.meta if rec else None
        groups.setdefault((cell.model, cell.size), []).append((cell, metas[cell.recipe.run_id]))
        if rec is None and (d := store.get(diverged_key(cell.recipe.run_id))) is not None:
            diverged.append(d.meta)
    lost = Counter((d["model"], d["size"]) for d in diverged)
    results = []
    for (model, size), runs in groups.items():
        done = [(c, m) for c, m in runs if m is not None]
        by_seed = {c.seed: m["val_top1"] for c, m in done if m.get("val_top1") is not None}
        tops = list(by_seed.values())
        mean, half = mean_ci95(tops)
        first = done[0][1] if done else {}
        results.append({
            "model": model, "family": SCRATCH[model].family, "size": size, "dataset": runs[0][0].recipe.dataset,
            "top1_mean": mean, "top1_ci95": half, "top1_runs": tops, "top1_seeds": list(by_seed),
            "train_flops": float(np.mean([m["train_flops"] for _, m in done])) if done else None,
            "seconds": float(np.mean([m["seconds"] for _, m in done])) if done else None,
            "params": first.get("params"), "run_ids": [c.recipe.run_id for c, _ in runs],
            "runs_done": len(done), "runs_diverged": lost[(model, size)], "runs": len(runs),
            "steps": runs[0][0].recipe.max_steps or None,
            "epochs": runs[0][0].recipe.epochs, "data_digests": [m.get("data_digest") for _, m in done],
            # as its runs trained: the model's own fields, with the arena's one learning rate where it set one
            "recipe": {k: v for k, v in runs[0][0].recipe.to_dict().items() if k in {*model_recipe(model), "lr"}},
        })
    same, digest = _data_check(cells, metas)
    # each epoch's precision too: a run resumed on another machine can change it part-way
    trained_in = {p for runs in groups.values() for _, m in runs if m
                  for p in [m.get("precision"), *(h.get("precision") for h in m["history"])] if p}
    # a run that ran out of memory took its batches in micro-batches from then on (core/train/loop.py)
    micro: dict[str, int] = {}
    for (model, _), runs in groups.items():
        for h in (h for _, m in runs if m for h in m["history"] if h.get("oom_halvings")):
            micro[model] = min(micro.get(model, h["micro_batch"]), h["micro_batch"])
    return {
        "dataset": spec.train_dataset(), "budget": str(budget), "seeds": spec.seeds, "data_digest": digest,
        "same_data": same, "sizes": list(spec.sizes),
        "complete": all(r["runs_done"] + r["runs_diverged"] == r["runs"] for r in results),
        "diverged": diverged,
        "held_equal": held_equal(spec, trained_in=trained_in, micro_batches=micro, val_images={
            m["val_images"] for m in metas.values() if m and m.get("val_images") is not None}),
        "precisions": sorted(trained_in), "same_precision": len(trained_in) == 1 if trained_in else None,
        "results": results, "curves": curves(cells, metas),
        "crossovers": crossovers(results) if len(spec.sizes) > 1 else [],
    }


def held_equal(spec: ArenaSpec, trained_in: set[str] | None = None,
               micro_batches: dict[str, int] | None = None, val_images: set[int] | None = None) -> dict:
    """What every model in the arena shares, in words a reviewer reads; `trained_in`: the precisions its finished
    runs recorded. `auto` resolves per machine and a cached run is reused wherever it was trained, so runs from a
    bf16 host and an fp32 one can meet in one arena: then precision was not held equal, and this says so.
    `micro_batches`: {model: the smallest micro-batch} of the runs that ran out of memory, whose optimiser steps
    were still the whole batch's (gradients accumulated) while BatchNorm normalised each micro-batch.
    `val_images`: the validation image counts its finished runs recorded (a split smaller than the limit asked
    for is validated whole)."""
    budget = Budget.parse(spec.budget)
    precision = "bf16 autocast where the hardware has it" if spec.amp else "fp32"
    if trained_in and len(trained_in) == 1 and trained_in != {precision}:
        precision += f" (these runs: {next(iter(trained_in))})"
    elif trained_in and len(trained_in) > 1:
        precision = (f"NOT held equal: the runs trained in {' and '.join(sorted(trained_in))} (runs cached from "
                     f"other machines or devices; asked for: {precision})")
    return {
        "data": f"{spec.datasets_said()}: the same training images"
                + (f" at each size ({', '.join(f'{s:,}' for s in spec.sizes)}; each a subset of the next)"
                   if spec.sizes else f" ({spec.limit:,})" if spec.limit else "") + ", in the same order per seed",
        "validation": _validation_said(spec.val_limit, val_images or set()),
        "budget": f"{budget} ({BUDGET_KINDS[budget.kind]})",
        "batch_size": spec.batch_size, "image_size": spec.image_size, "augmentation": spec.augment,
        "precision": precision,
        "seeds": f"{spec.seeds} (0..{spec.seeds - 1}): initial weights, data order and augmentation",
        **({"learning_rate": f"{spec.lr:g} for every model"} if spec.lr else {}),
        **({"micro_batches": "not held equal for BatchNorm: " + "; ".join(
            f"{m} ran out of memory and took each batch of {spec.batch_size} in micro-batches of {n}"
            for m, n in micro_batches.items()) + " (the optimiser steps are still the whole batch's; BatchNorm "
            "normalised each micro-batch)"} if micro_batches else {}),
        "own": "optimizer, " + ("" if spec.lr else "learning rate, ") + "weight decay, warm-up, schedule, label "
               "smoothing (each model's recipe)",
    }


def _validation_said(limit: int | None, counts: set[int]) -> str:
    """The validation images every run was scored on, as the runs recorded them (the limit is only what was asked:
    digits' 359 validation images under a limit of 500 are all 359); the limit alone before a run has finished."""
    if len(counts) > 1:
        return f"NOT held equal: the runs were scored on {' and '.join(f'{n:,}' for n in sorted(counts))} images"
    if not counts:
        return f"the same {limit:,} validation images" if limit else "all validation images"
    n = next(iter(counts))
    if not limit:
        return f"all {n:,} validation images"
    return f"the same {n:,} validation images" + (f" (all of them: {limit:,} were asked for)" if n < limit else "")


def _data_check(cells: list[Cell], metas: dict[str, dict | None]) -> tuple[bool | None, str | None]:
    """Whether every model of each (size, seed) trained on the same images in the same order, from the runs'
    per-epoch image counts and data digests, every pair of runs compared epoch by epoch; and one digest of it all.
    A steps, FLOPs or seconds budget ends a run part-way through its last epoch, at a different step for each
    model: such an epoch, where the counts differ, covered different prefixes of one order, so only its count
    differing is allowed (any other epoch must agree in both)."""
    by_cell: dict[tuple, list[tuple[list[tuple[int, str]], bool]]] = {}
    for cell in cells:
        if (meta := metas[cell.recipe.run_id]) is not None:
            rows = [(h.get("images"), h.get("data_digest")) for h in meta["history"]]
            by_cell.setdefault((cell.size, cell.seed), []).append((rows, cell.recipe.max_steps is not None))
    if not by_cell:
        return None, None
    same = True
    parts = []
    for key in sorted(by_cell):
        runs = by_cell[key]
        for (a, a_budget), (b, b_budget) in itertools.combinations(runs, 2):
            for e, (ours, theirs) in enumerate(zip(a, b)):
                cut = (a_budget and e == len(a) - 1) or (b_budget and e == len(b) - 1)
                if ours != theirs and not (cut and ours[0] != theirs[0]):
                    same = False
        parts.append([d for _, d in max((rows for rows, _ in runs), key=len)])
    return same, fingerprint({"cells": parts})[:16]


def curves(cells: list[Cell], metas: dict[str, dict | None]) -> list[dict]:
    """Learning curves: per run and epoch, val top-1 against images and FLOPs trained so far (`metas`: each run
    id's finished record, None where it has not finished)."""
    rows = []
    for cell in cells:
        if (meta := metas[cell.recipe.run_id]) is None:
            continue
        per_image = meta.get("train_flops_per_image", 0)
        seen = 0
        for h in meta["history"]:
            seen += h.get("images", 0)
            rows.append({"model": cell.model, "family": SCRATCH[cell.model].family, "size": cell.size,
                         "seed": cell.seed, "epoch": h["epoch"],
                         "images_seen": seen, "train_flops": per_image * seen, "val_top1": h.get("val_top1"),
                         "train_loss": h.get("train_loss"), "seconds": h.get("seconds")})
    return rows


def crossovers(results: list[dict]) -> list[dict]:
    """For each CNN and each transformer (ViT or hybrid) with results at two or more sizes: where, on a log scale
    of training-set size, the transformer's mean top-1 overtakes the CNN's or falls behind it (interpolated between
    the sizes around the sign change; every change of side is said, `size` is the first and `sizes` all), or that it
    stays behind / ahead at every size; and how sure that is.

    Every model of a seed trains on the same images in the same order, so the gap is taken per seed (paired) and
    its 95% interval is Student's t over seeds of those per-seed gaps (`paired_gap`): `gaps` has, per size, the
    gap's mean and half-width (top-1 as a fraction, as every accuracy in the JSON) and the seeds it pairs.
    `settled` is True when every gap the text rests on (the two around a crossing; every size otherwise) has an
    interval that excludes zero, False when one does not (the text then says the crossing or the lead is within
    seed noise), None when none does but one has no interval (one seed). A gap of exactly 0 is a tie (accuracies are
    counts of images, and two models at chance often score the same): between the two sides it places the change of
    side at the tie; where it ends or starts a run on one side, the text says "never behind / ahead" and names the
    level sizes instead of "at every size"; "level" when every gap is one. In an arena still running, a size where
    one model has finished seeds the other has not pairs only the seeds both finished, while each model's mean (the
    chart's line) has all of its own: the text says so at each size it rests on. A size where every seed of one of
    the two diverged has no gap: the line is read across it, and the text names it.
    """
    by_model: dict[str, dict[int, dict[int, float]]] = {}  # model -> size -> seed -> top-1
    family = {}
    lost: dict[str, list[int]] = {}  # model -> the sizes where every seed diverged (no accuracy, so no gap)
    for r in results:
        if r["top1_mean"] is not None and r["size"]:
            by_model.setdefault(r["model"], {})[r["size"]] = by_seed(r)
            family[r["model"]] = r["family"]
        elif r.get("runs_diverged") and r["runs_diverged"] == r["runs"]:
            lost.setdefault(r["model"], []).append(r["size"])
    out = []
    cnns = [m for m in by_model if family[m] == "cnn"]
    others = [m for m in by_model if family[m] in ("vit", "hybrid")]
    for t in others:
        for c in cnns:
            gaps = []
            for size in sorted(set(by_model[t]) & set(by_model[c])):
                mean, half, seeds = paired_gap(by_model[t][size], by_model[c][size])
                if seeds:
                    finished = max(len(by_model[t][size]), len(by_model[c][size]))
                    gaps.append({"size": size, "gap": mean, "gap_ci95": half, "seeds": seeds,
                                 "partial": seeds < finished})
            if len(gaps) < 2:
                continue
            out.append({"model": t, "versus": c, "gaps": gaps,
                        **_crossing([g["size"] for g in gaps], [g["gap"] for g in gaps], t, c,
                                    [g["gap_ci95"] for g in gaps],
                                    {i: g["seeds"] for i, g in enumerate(gaps) if g["partial"]})})
            for m in (t, c):  # a size left out of the line because one model has no accuracy there
                if m in lost:
                    out[-1]["text"] += (f"; no gap at {_listed(sorted(lost[m]))} images, where every seed of {m} "
                                        "diverged")
    return out


def _crossing(sizes: list[int], gap: list[float], t: str, c: str, half: list[float | None] | None = None,
              partial: dict[int, int] | None = None) -> dict:
    """Where the gap (top-1 fractions, transformer minus CNN, per size) changes sign, or that it does not; `half`:
    each gap's 95% half-width (None: one seed, no interval); `partial`: {index of a size: the seeds its gap pairs}
    where one model has finished more seeds than that."""
    points = [g * 100 for g in gap]
    half = [h * 100 if h is not None else None for h in (half or [None] * len(sizes))]
    partial = partial or {}

    def pm(i: int) -> str:
        return f" ± {half[i]:.1f}" if half[i] is not None else ""

    def said(i: int) -> str:
        return f"{points[i]:{'+' if gap[i] else ''}.1f}{pm(i)} points at {sizes[i]:,}"  # a tie: 0.0, unsigned

    def how_sure(idx: list[int]) -> tuple[bool | None, str]:
        noisy = [sizes[i] for i in idx if half[i] is not None and abs(points[i]) <= half[i]]
        single = [sizes[i] for i in idx if half[i] is None]
        clause = (f"; within seed noise at {_listed(noisy)} images: the 95% interval of the gap, paired by seed, "
                  "includes zero" if noisy else "")
        if single:
            clause += ("; one seed, so no interval says how sure this is" if len(single) == len(idx)
                       else f"; one seed at {_listed(single)} images, so no interval there")
        for n in sorted({partial[i] for i in idx if i in partial}):
            at = [sizes[i] for i in idx if partial.get(i) == n]
            clause += (f"; at {_listed(at)} images only the {n} seed{'s' if n > 1 else ''} both models have "
                       "finished are paired, while the plotted means use every finished seed")
        return (False if noisy else None if single else True), clause

    moved = [i for i, g in enumerate(gap) if g != 0]  # a gap of exactly 0 (a tie) is neither ahead nor behind
    events = []  # (size, verb, i, k): each change of side, between the sizes i and k where it was measured
    for i, k in zip(moved, moved[1:]):
        (s0, g0), (s1, g1) = (sizes[i], gap[i]), (sizes[k], gap[k])
        if (g0 < 0) != (g1 < 0):
            if k > i + 1:  # level at the sizes between: it changed side there (at their middle, on a log scale)
                at = round(math.sqrt(sizes[i + 1] * sizes[k - 1]))
            else:
                frac = g0 / (g0 - g1)
                at = round(math.exp(math.log(s0) + frac * (math.log(s1) - math.log(s0))))
            events.append((at, "overtakes" if g0 < 0 else "falls behind", i, k))
    if events:
        idx = sorted({j for _, _, i, k in events for j in (i, k)})  # the gaps each change of side rests on
        settled, noise = how_sure(idx)
        first, *then = events
        text = f"{t} {first[1]} {c} at about {first[0]:,} training images" + "".join(
            f", then {verb} it at about {at:,}" for at, verb, _, _ in then)
        shown = list(range(first[2], events[-1][3] + 1))
        gaps = [said(j) for j in shown]
        return {"size": first[0], "sizes": [e[0] for e in events], "settled": settled,
                "text": f"{text} (the gap: {', '.join(gaps[:-1])} and {gaps[-1]} images{noise})"}
    settled, noise = how_sure(list(range(len(sizes))))
    if not moved:
        return {"size": None, "settled": settled,
                "text": f"{t} is level with {c} at every size from {sizes[0]:,} images{noise}"}
    ties = [sizes[i] for i, g in enumerate(gap) if g == 0]
    if not ties:
        if gap[0] < 0:
            return {"size": None, "settled": settled,
                    "text": f"{t} stays behind {c} up to {sizes[-1]:,} training images "
                            f"({-points[-1]:.1f}{pm(-1)} points behind at the largest size{noise})"}
        return {"size": None, "settled": settled,
                "text": f"{t} is ahead of {c} at every size from {sizes[0]:,} images{noise}"}
    # on one side where they differ and level elsewhere: not "behind" or "ahead" at every size
    k = moved[-1]
    side = "behind" if gap[k] < 0 else "ahead"
    return {"size": None, "settled": settled,
            "text": f"{t} is never {'ahead of' if side == 'behind' else 'behind'} {c} from {sizes[0]:,} to "
                    f"{sizes[-1]:,} training images ({abs(points[k]):.1f}{pm(k)} points {side} at {sizes[k]:,} "
                    f"images; level at {_listed(ties)} images{noise})"}


def _listed(sizes: list[int]) -> str:
    """500 / 500 and 2,000 / 500, 2,000 and 5,000."""
    return ", ".join(f"{s:,}" for s in sizes[:-1]) + (" and " if len(sizes) > 1 else "") + f"{sizes[-1]:,}"
