"""Read-side helpers for pages: stored results as plain rows, and the choices a form offers."""
from __future__ import annotations

from dataclasses import dataclass

from core.store import Store

EVALUATION_COLUMNS = ("model", "family", "dataset", "split", "n", "scoring", "top1", "top5", "top1_restricted",
                      "top5_restricted", "f1_macro", "cohen_kappa", "params", "seconds", "images_per_second", "device")


def evaluation_table(store: Store | None = None) -> list[dict]:
    """One row per stored evaluation, newest first, with the columns a leaderboard shows.
    `scoring` names what top1/top5 are over; *_restricted are over the dataset's classes only."""
    store = store or Store()
    rows = []
    for r in store.records("evaluation"):
        restricted = r.meta.get("restricted") or {}
        flat = r.meta | {"top1_restricted": restricted.get("top1"), "top5_restricted": restricted.get("top5"),
                         "scoring": r.meta.get("scoring", "native")}
        rows.append({c: flat.get(c) for c in EVALUATION_COLUMNS})
    return rows


@dataclass(frozen=True)
class Choices:
    models: list[str]
    default_models: list[str]
    datasets: list[str]


def quick_choices() -> Choices:
    from core.data.registry import list_datasets
    from core.models.registry import scratch_specs

    models = [s.id for s in scratch_specs()]
    return Choices(models=models, default_models=[m for m in ("cnn-2layer", "vit-small") if m in models],
                   datasets=[e.id for e in list_datasets() if e.source == "embedded"])
