"""Hub loading stays real code: tiny random transformers models saved with save_pretrained and
loaded back through the same from_pretrained path a Hub id takes."""
import numpy as np
import pytest
from PIL import Image

from core.evaluate import evaluate
from core.models.registry import create_model


def _save_tiny(folder, kind: str):
    from transformers import (
        ConvNextImageProcessor,
        ResNetConfig,
        ResNetForImageClassification,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    labels = {0: "cat", 1: "dog", 2: "fox"}
    if kind == "vit":
        cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
        model, proc = ViTForImageClassification(cfg), ViTImageProcessor(size={"height": 32, "width": 32})
    else:
        cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=3,
                           id2label=labels, label2id={v: k for k, v in labels.items()})
        model = ResNetForImageClassification(cfg)
        proc = ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875, resample=3)
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return model


@pytest.mark.parametrize("kind, family, size, resize", [("vit", "vit", (32, 32), None), ("resnet", "cnn", (32, 32), 36)])
def test_local_folder_loads_through_from_pretrained(tmp_path, kind, family, size, resize):
    _save_tiny(tmp_path / "model", kind)
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    m = create_model(str(tmp_path / "model"))
    assert m.source == "local" and m.family == family
    assert m.labels.names == ["cat", "dog", "fox"]
    assert m.preprocess.size == size and m.preprocess.resize == resize  # 32 / 0.875 = 36 for the crop_pct style
    assert m.flops_per_image() > 0 and m.params > 0

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog", "fox"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(tmp_path / "data" / cls / f"{i}.jpg")
    from core.store import Store

    ev = evaluate(m, tmp_path / "data", store=Store(tmp_path / "store"), num_workers=0)
    assert ev.meta["n"] == 9 and ev.meta["family"] == family and ev.meta["source"] == "local"


def test_folder_without_config_is_refused_clearly(tmp_path):
    from core.errors import ModelError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        create_model(str(tmp_path / "empty"))


def test_pickle_weights_are_refused_safetensors_only(tmp_path):
    """A folder whose weights are only a pickle (pytorch_model.bin) is not loaded: nothing foreign is unpickled."""
    import torch

    from core.errors import ModelError

    model = _save_tiny(tmp_path / "model", "vit")
    (tmp_path / "model" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "model" / "pytorch_model.bin")
    with pytest.raises(ModelError, match="not a loadable model folder"):
        create_model(str(tmp_path / "model"))


def _save_backbone_only(folder):
    """A ViTModel (encoder and pooler, no classifier): how backbone checkpoints are saved on the Hub."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32)
    ViTModel(cfg).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)


def test_backbone_without_a_trained_head_is_refused(tmp_path):
    """AutoModelForImageClassification would give this checkpoint a randomly initialised classifier: refused."""
    from core.errors import ModelError

    _save_backbone_only(tmp_path / "backbone")
    with pytest.raises(ModelError, match="no trained classification head") as e:
        create_model(str(tmp_path / "backbone"))
    msg = str(e.value)
    assert "classifier.bias" in msg and "classifier.weight" in msg and "ViTModel" in msg and "new head" in msg, msg


def test_cli_refuses_a_backbone_only_folder_in_one_line(tmp_path):
    """DESIGN.md's CLI contract: exit code 2, one `error:` line on stderr (transformers' load report is not printed)."""
    import os
    import subprocess
    import sys

    from core.settings import REPO_ROOT

    _save_backbone_only(tmp_path / "backbone")
    proc = subprocess.run([sys.executable, "-m", "core", "evaluate", "--model", str(tmp_path / "backbone"),
                           "--dataset", "digits"], cwd=REPO_ROOT, capture_output=True, text=True,
                          env=os.environ | {"CNNVIT_DEVICE": "cpu"}, timeout=300)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "no trained classification head" in lines[0] and "classifier.weight" in lines[0], lines[0]
