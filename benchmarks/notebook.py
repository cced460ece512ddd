"""The reference notebook's evaluation pipeline, reproduced as the speed baseline.

As in the notebook (cells 56-63): a Dataset whose __getitem__ opens the image with PIL, converts it to RGB
and runs the Hugging Face image processor on that one image; a DataLoader with batch size 64 and no
workers; `torch.no_grad()`, the model in fp32, `outputs.logits.argmax(-1)`. The processor is the
"slow" (PIL + NumPy) class the notebook's `ViTImageProcessor.from_pretrained` gave at the time.

    .venv/bin/python benchmarks/notebook.py --model FOLDER --images LIST.json   # {"paths": [...], "labels": [...]}

benchmarks/speed.py runs it this way, in a process of its own: the notebook ran in a plain Python process, and
our evaluation changes process-wide settings (glibc's malloc thresholds, core/allocator.py) that would speed the
baseline up too.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


class NotebookDataset(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], labels: list[int], processor):
        self.paths, self.labels, self.transform = paths, labels, processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx: int):
        from PIL import Image

        image = Image.open(self.paths[idx]).convert("RGB")
        image = self.transform(images=image, return_tensors="pt")["pixel_values"].squeeze(0)
        return image, torch.tensor(self.labels[idx])


def notebook_pipeline(model_folder: Path | str, paths: list[Path], labels: list[int], batch_size: int = 64) -> dict:
    """Seconds and images/s of the notebook's loop over `paths`, and its predictions."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(model_folder, backend="pil")
    model = AutoModelForImageClassification.from_pretrained(model_folder)
    model.eval()
    loader = torch.utils.data.DataLoader(NotebookDataset(paths, labels, processor), batch_size=batch_size)
    with torch.no_grad():  # warm-up on the first batch, untimed: the notebook ran 50,000 images, so its
        imgs, _labels = next(iter(loader))  # first-batch costs (kernel selection, first allocations) were noise
        model(imgs)
    preds = []
    start = time.time()
    with torch.no_grad():
        for imgs, _labels in loader:
            outputs = model(imgs)
            preds.append(outputs.logits.argmax(-1).cpu())
    seconds = time.time() - start
    return {"seconds": seconds, "images_per_second": len(paths) / seconds, "preds": torch.cat(preds),
            "processor": type(processor).__name__}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a save_pretrained folder with its image processor")
    p.add_argument("--images", required=True, help='a JSON file: {"paths": [...], "labels": [...]}')
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    listed = json.loads(Path(args.images).read_text())
    r = notebook_pipeline(args.model, [Path(x) for x in listed["paths"]], listed["labels"], args.batch_size)
    print(json.dumps({k: r[k] for k in ("seconds", "images_per_second", "processor")}))


if __name__ == "__main__":
    main()
