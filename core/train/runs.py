"""Trained runs in the store: a folder per run (config.json, history.json, weights.safetensors,
the last checkpoint) and a `run` record. A finished run is a model like any other: its run id
(or its folder) works as `--model` everywhere, with source "trained".
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from core.data.base import Dataset
from core.errors import ModelError, UserError
from core.models.preprocess import Preprocess
from core.models.wrapper import LabelSpace, LoadedModel
from core.store import Store, atomic_write
from core.train.checkpoint import load_tensors, read_meta, save_tensors
from core.train.recipe import Recipe

RUN_ID = re.compile(r"^run-[0-9a-f]{12}$")
CONFIG_VERSION = 1


def run_folder(store: Store, run_id: str) -> Path:
    return store.root / "runs" / run_id


def is_run_id(model_id: str) -> bool:
    return bool(RUN_ID.match(model_id))


def is_run_folder(path: Path) -> bool:
    try:
        return "run_id" in json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def is_complete(store: Store, run_id: str) -> bool:
    folder = run_folder(store, run_id)
    return (folder / "weights.safetensors").is_file() and (folder / "config.json").is_file()


def build_for_recipe(recipe: Recipe) -> tuple[Dataset, LoadedModel]:
    """The dataset and the freshly initialised (or pretrained, re-headed) model a recipe starts from."""
    from core.data.registry import load_dataset
    from core.models.registry import create_model, scratch_specs

    ds = load_dataset(recipe.dataset)
    if "train" not in ds.splits:
        raise UserError(f"{ds.id} has no train split; its splits: {', '.join(ds.splits)}")
    scratch = recipe.model in {s.id for s in scratch_specs()}  # (Recipe checked transfer and image size)
    model = create_model(recipe.model, ds, seed=recipe.seed, size=recipe.image_size)
    if recipe.transfer != "none" or not scratch and _needs_head(model, ds):
        from core.models.heads import with_new_head

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
    from core.models.registry import scratch_specs

    scratch = recipe.model in {s.id for s in scratch_specs()}
    config = {
        "version": CONFIG_VERSION, "run_id": recipe.run_id, "recipe": recipe.to_dict(),
        "base": {"kind": "scratch" if scratch else "pretrained", "model": recipe.model,
                 "new_head": not scratch, "head_hidden": recipe.head_hidden},
        "name": run_name(recipe, ds, model),
        "family": model.family, "classes": list(ds.classes), "wnids": ds.wnids,
        "dataset": ds.id, "dataset_name": ds.name, "channels": model.preprocess.channels,
        "preprocess": model.preprocess.key(),
    }
    data = json.dumps(config, indent=2).encode()
    atomic_write(folder / "config.json", lambda f: f.write(data))


def finish(store: Store, folder: Path, recipe: Recipe, ds: Dataset, model: LoadedModel, history: list[dict],
           dev: str, *, val_split: str) -> dict:
    """Write the final weights and history, then the store record (last, so a record means a complete run)."""
    save_tensors(folder / "weights.safetensors", model.module.state_dict(), {"run_id": recipe.run_id})
    data = json.dumps(history, indent=2).encode()
    atomic_write(folder / "history.json", lambda f: f.write(data))
    last = history[-1] if history else {}
    meta = {"run_id": recipe.run_id, "model_id": recipe.run_id, "model": recipe.model, "dataset": ds.id,
            "dataset_name": ds.name, "dataset_fingerprint": ds.split_fingerprint("train"),
            "epochs": recipe.epochs, "recipe": recipe.to_dict(), "history": history, "val_split": val_split,
            "val_top1": last.get("val_top1"), "seconds": sum(h["seconds"] for h in history), "device": dev,
            "family": model.family, "params": model.params, "flops_per_image": model.flops_per_image(),
            "input_size": list(model.preprocess.size), "name": run_name(recipe, ds, model)}
    store.put(recipe.run_id, "run", meta)
    return meta


def load_trained(ref: str, store: Store | None = None) -> LoadedModel:
    """A trained run as a LoadedModel, by run id or run folder."""
    from core.hosted import is_hosted
    from core.models.registry import InputShape, build_scratch, create_model

    path = Path(ref).expanduser()
    if is_run_id(ref) and (is_hosted() or not path.exists()):  # hosted: the store's run, never a folder
        path = run_folder(store or Store(), ref)
    config_file, weights_file = path / "config.json", path / "weights.safetensors"
    if not config_file.is_file():
        raise ModelError(f"no trained run {ref!r} in the store" if is_run_id(ref) else f"{path} is not a run folder")
    if not weights_file.is_file():
        raise ModelError(f"run {ref} has not finished training (no weights yet); resume it with "
                         f"`python -m core jobs resume` or wait for it")
    try:
        config = json.loads(config_file.read_text())
        pre = Preprocess(**{**config["preprocess"], "size": tuple(config["preprocess"]["size"]),
                            "mean": tuple(config["preprocess"]["mean"]), "std": tuple(config["preprocess"]["std"]),
                            "resize": _tuple_or(config["preprocess"]["resize"])})
        base = config["base"]
        classes, wnids = config["classes"], config.get("wnids")
        if base["kind"] == "scratch":
            shape = InputShape(channels=pre.channels, size=pre.size[0], num_classes=len(classes))
            model = build_scratch(base["model"], shape, class_names=classes, wnids=wnids)
        else:
            from core.models.heads import with_new_head

            model = with_new_head(create_model(base["model"]), classes, wnids=wnids, hidden=base.get("head_hidden"))
        tensors, _ = load_tensors(weights_file)
        model.module.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:
        raise ModelError(f"run {ref} cannot be loaded: {str(e).splitlines()[0][:200]}") from None
    model.module.eval()
    for p in model.module.parameters():
        p.requires_grad_(False)
    return dataclasses.replace(model, id=config["run_id"], name=config["name"], source="trained",
                               preprocess=pre, labels=LabelSpace(classes, wnids), _digest=None, _flops=None)


def _tuple_or(v):
    return tuple(v) if isinstance(v, list) else v


def list_runs(store: Store | None = None) -> list[dict]:
    """Finished runs, newest first (the `run` records' meta)."""
    return [r.meta for r in (store or Store()).records("run")]


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

