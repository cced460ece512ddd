"""A trained run on disk, as the model side reads it: its folder, its config and its weights.

The training side (core/train/runs.py) writes a run folder: `config.json` (a `RunConfig`), the final
`weights.safetensors`, `history.json` and the last checkpoint. The factory (core/models/registry.py)
builds the run's architecture from the config and loads the weights; this module only says where a
run lives and what its config holds, so nothing here imports the training code.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.data.transforms import Preprocess
from core.errors import ModelError
from core.store import Store, atomic_write

RUN_ID = re.compile(r"^run-[0-9a-f]{12}$")
CONFIG_VERSION = 1
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"


def is_run_id(text: str) -> bool:
    return bool(RUN_ID.match(text))


def run_folder(store: Store, run_id: str) -> Path:
    return store.root / "runs" / run_id


def is_run_folder(path: Path) -> bool:
    try:
        return "run_id" in json.loads((Path(path) / CONFIG).read_text())
    except (OSError, ValueError, TypeError):
        return False


def list_runs(store: Store | None = None) -> list[dict]:
    """Finished runs, newest first (the `run` records' meta)."""
    return [r.meta for r in (store or Store()).records("run")]


def is_complete(folder: Path) -> bool:
    return (folder / WEIGHTS).is_file() and (folder / CONFIG).is_file()


@dataclass(frozen=True)
class RunConfig:
    """`config.json` of a run: what the model is (base architecture, head, classes, preprocessing), and the recipe
    and dataset it was trained with, for people reading the folder."""

    run_id: str
    name: str
    family: str
    base_kind: str  # "scratch" (built from the recipe's seed) or "pretrained" (a loaded model with a new head)
    base_model: str
    head_hidden: int | None
    classes: list[str]
    wnids: list[str] | None
    preprocess: Preprocess
    recipe: dict
    dataset: str
    dataset_name: str

    def to_json(self) -> dict:
        return {
            "version": CONFIG_VERSION, "run_id": self.run_id, "recipe": self.recipe,
            "base": {"kind": self.base_kind, "model": self.base_model, "new_head": self.base_kind != "scratch",
                     "head_hidden": self.head_hidden},
            "name": self.name, "family": self.family, "classes": list(self.classes), "wnids": self.wnids,
            "dataset": self.dataset, "dataset_name": self.dataset_name, "channels": self.preprocess.channels,
            "preprocess": self.preprocess.key(),
        }

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        base = d["base"]
        return cls(run_id=d["run_id"], name=d["name"], family=d["family"], base_kind=base["kind"],
                   base_model=base["model"], head_hidden=base.get("head_hidden"), classes=d["classes"],
                   wnids=d.get("wnids"), preprocess=Preprocess.from_key(d["preprocess"]), recipe=d.get("recipe", {}),
                   dataset=d.get("dataset", ""), dataset_name=d.get("dataset_name", ""))

    def write(self, folder: Path) -> None:
        data = json.dumps(self.to_json(), indent=2).encode()
        atomic_write(folder / CONFIG, lambda f: f.write(data))


def read_run(folder: Path, ref: str) -> RunConfig:
    """The config of the finished run in `folder` (`ref`: what the user named it by, for messages)."""
    config_file, weights_file = folder / CONFIG, folder / WEIGHTS
    if not config_file.is_file():
        raise ModelError(f"no trained run {ref!r} in the store" if is_run_id(ref) else f"{folder} is not a run folder")
    if not weights_file.is_file():
        raise ModelError(f"run {ref} has not finished training (no weights yet); resume it with "
                         f"`python -m core jobs resume` or wait for it")
    try:
        return RunConfig.from_json(json.loads(config_file.read_text()))
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ModelError(f"run {ref} cannot be loaded: {str(e).splitlines()[0][:200]}") from None
