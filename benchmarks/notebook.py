"""The reference notebook's evaluation pipeline, reproduced as the speed baseline.

As in the notebook (cells 56-63): a Dataset whose __getitem__ opens the image with PIL, converts it to RGB
and runs the Hugging Face image processor on that one image; a DataLoader with batch size 64 and no
workers; `torch.no_grad()`, the model in fp32, `outputs.logits.argmax(-1)`. The processor is the
"slow" (PIL + NumPy) class the notebook's `ViTImageProcessor.from_pretrained` gave at the time.
"""
from __future__ import annotations

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
    preds = []
    start = time.time()
    with torch.no_grad():
        for imgs, _labels in loader:
            outputs = model(imgs)
            preds.append(outputs.logits.argmax(-1).cpu())
    seconds = time.time() - start
    return {"seconds": seconds, "images_per_second": len(paths) / seconds, "preds": torch.cat(preds),
            "processor": type(processor).__name__}
