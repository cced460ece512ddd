"""Training images/s of the training loop of the code in TREE (a checkout of this repository at any commit that
has `core.train.loop.train`), for `benchmarks/arena.py`'s baseline: the loop as it was when issue 15 was filed
against today's, each in a process of its own.

    python benchmarks/loop_rate.py TREE MODEL fp32|auto [torch-dropout]

Prints one JSON object: {"tree", "model", "precision", "dropout", "images_per_second"} (the median of 3 epochs of
2,000 `shapes` images at 32 px, batch 64, Adam, flips: benchmarks/train_speed.py's recipe, written here with the
Recipe fields both trees have). CNNVIT_CACHE_DIR should be a folder of the tree's own.

`torch-dropout` trains with `torch.nn.Dropout`'s forward in place of the lab's fast-mask dropout
(`core/models/dropout.py`, one of issue 15's speed-ups): the loop as it was before that change, for a model that
did not exist when the issue was filed (vit-lite-2, cct-2), whose baseline cannot be an older tree.
"""
import json
import statistics
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":
    tree, model, precision = sys.argv[1], sys.argv[2], sys.argv[3]
    if sys.argv[4:] not in ([], ["torch-dropout"]):
        sys.exit(f"loop_rate.py: unknown argument {' '.join(sys.argv[4:])!r}; the fourth may only be torch-dropout")
    torch_dropout = sys.argv[4:] == ["torch-dropout"]
    sys.path.insert(0, str(Path(tree).resolve()))
    from core.store import Store
    from core.train.loop import train
    from core.train.recipe import Recipe

    if torch_dropout:
        import torch

        from core.models.dropout import Dropout

        Dropout.forward = torch.nn.Dropout.forward  # the subclass's own forward, gone: torch's bernoulli_ mask

    recipe = Recipe(model=model, dataset="shapes", epochs=3, limit=2000, val_limit=200, image_size=32,
                    optimizer="adam", lr=1e-3, augment="flip", amp=precision != "fp32")
    with tempfile.TemporaryDirectory(prefix="loop-rate-") as store:
        result = train(recipe, store=Store(Path(store)))
    print(json.dumps({"tree": tree, "model": model, "precision": precision,
                      "dropout": "torch" if torch_dropout else "tree's",
                      "images_per_second": statistics.median(h["images_per_second"] for h in result.history)}))
