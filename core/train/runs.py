"""Trained runs in the store: a folder per run (config.json, history.json, weights.safetensors,
the last checkpoint) and a `run` record. A finished run is a model like any other: its run id
(or its folder) works as `--model` everywhere, with source "trained".
"""
from __future__ import annotations

import json
from pathlib import Path

from core.data.base import Dataset
from core.data.registry import load_dataset
from core.errors import UserError
from core.models.heads import with_new_head
from core.models.reference import ModelKind, resolve
from core.models.registry import create_model
from core.models.scratch import is_scratch
from core.models.trained import WEIGHTS, RunConfig, run_folder
from core.models.weights import read_meta, save_tensors
from core.models.wrapper import LoadedModel
from core.store import Store, atomic_write, fingerprint
from core.train.recipe import Recipe


def build_for_recipe(recipe: Recipe) -> tuple[Dataset, LoadedModel]:
    """The dataset and the freshly initialised (or pretrained, re-headed) model a recipe starts from."""
    ds = load_dataset(recipe.dataset)
    if "train" not in ds.splits:
        raise UserError(f"{ds.id} has no train split; its splits: {', '.join(ds.splits)}")
    ref = resolve(recipe.model)  # (Recipe checked transfer and image size)
    model = create_model(ref, ds, seed=recipe.seed, size=recipe.image_size)
    if recipe.transfer != "none" or ref.kind is not ModelKind.SCRATCH and _needs_head(model, ds):
        model = with_new_head(model, ds.classes, wnids=ds.wnids, hidden=recipe.head_hidden,
                              freeze_backbone=recipe.transfer in ("frozen", "layerwise"), seed=recipe.seed)
    return ds, model


def _needs_head(model: LoadedModel, ds: Dataset) -> bool:
    return [n.strip().lower() for n in model.labels.names] != [c.strip().lower() for c in ds.classes]


def run_name(recipe: Recipe, ds: Dataset, model: LoadedModel) -> str:
    """What pages call a trained run: architecture, dataset, and the resolution when it differs."""
    return (f"{model.name.split(' + new ')[0]} trained on {ds.name}"
            + (f" at {recipe.image_size} px" if recipe.image_size else ""))


def write_config(folder: Path, recipe: Recipe, ds: Dataset, model: LoadedModel) -> None:
    scratch = is_scratch(recipe.model)
    RunConfig(run_id=recipe.run_id, name=run_name(recipe, ds, model), family=model.family,
              base_kind="scratch" if scratch else "pretrained", base_model=recipe.model,
              head_hidden=recipe.head_hidden, classes=list(ds.classes), wnids=ds.wnids,
              preprocess=model.preprocess, recipe=recipe.to_dict(), dataset=ds.id,
              dataset_name=ds.name).write(folder)


def finish(store: Store, folder: Path, recipe: Recipe, ds: Dataset, model: LoadedModel, history: list[dict],
           dev: str, *, val_split: str, precision: str = "fp32", val_images: int | None = None) -> dict:
    """Write the final weights and history, then the store record (last, so a record means a complete run)."""
    save_tensors(folder / WEIGHTS, model.module.state_dict(), {"run_id": recipe.run_id})
    data = json.dumps(history, indent=2).encode()
    atomic_write(folder / "history.json", lambda f: f.write(data))
    last = history[-1] if history else {}
    meta = {"run_id": recipe.run_id, "model_id": recipe.run_id, "model": recipe.model, "dataset": ds.id,
            "dataset_name": ds.name, "dataset_fingerprint": ds.split_fingerprint("train"),
            "epochs": recipe.epochs, "recipe": recipe.to_dict(), "history": history, "val_split": val_split,
            "val_images": val_images,
            "val_top1": last.get("val_top1"), "seconds": sum(h["seconds"] for h in history), "device": dev,
            "family": model.family, "params": model.params, "flops_per_image": model.flops_per_image(),
            "input_size": list(model.preprocess.size), "name": run_name(recipe, ds, model),
            "precision": precision, "steps": sum(h.get("steps", 0) for h in history),
            "train_images": sum(h.get("images", 0) for h in history),
            "train_flops_per_image": model.train_flops_per_image()}
    # training FLOPs, counted: forward + backward per image (torch's flop counter) x the images trained on
    meta["train_flops"] = meta["train_flops_per_image"] * meta["train_images"]
    # the images trained on, in order, over the whole run (each history row has its epoch's digest)
    meta["data_digest"] = fingerprint({"epochs": [h.get("data_digest") for h in history]})[:16]
    store.put(recipe.run_id, "run", meta)
    return meta


def run_history(run_id: str, store: Store | None = None) -> list[dict]:
    """Per-epoch history of a run: the finished record's, or, while it trains (or after it stopped),
    the last checkpoint's - read from the safetensors header only, not the weights."""
    store = store or Store()
    if (record := store.get(run_id)) is not None:
        return record.meta["history"]
    try:
        return read_meta(run_folder(store, run_id) / "checkpoint.safetensors").get("history", [])
    except (OSError, ValueError):  # no checkpoint yet, or one being replaced this instant
        return []

