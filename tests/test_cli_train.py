"""`train`, `jobs` and trained runs through the CLI, in subprocesses (DESIGN.md contract)."""
import json

from test_cli import assert_user_error, cli


def test_train_json_then_the_run_is_a_model_everywhere(tmp_path):
    args = ("train", "--model", "cnn-2layer", "--dataset", "digits", "--epochs", "2", "--limit", "256",
            "--optimizer", "adam", "--lr", "0.003", "--json")
    out = json.loads(cli(*args).stdout)
    assert set(out) >= {"run_id", "model", "dataset", "epochs", "history", "model_id"}
    assert out["model"] == "cnn-2layer" and out["epochs"] == 2 and not out["cached"]
    assert [h["epoch"] for h in out["history"]] == [1, 2]
    for h in out["history"]:
        assert set(h) >= {"epoch", "train_loss", "val_loss", "val_top1", "lr", "seconds"}
    again = json.loads(cli(*args).stdout)
    assert again["cached"] and again["run_id"] == out["run_id"]  # the same recipe: one run

    model = out["model_id"]
    ev = json.loads(cli("evaluate", "--model", model, "--dataset", "digits", "--precision", "fp32", "--json").stdout)
    assert ev["top1"] == out["history"][-1]["val_top1"]  # the trainer's val top-1, recomputed by evaluate
    rows = {r["id"]: r for r in json.loads(cli("models", "--json").stdout)}
    assert rows[model]["source"] == "trained" and rows[model]["family"] == "cnn"
    jobs = json.loads(cli("jobs", "--json").stdout)
    mine = [j for j in jobs if j["result"] and j["result"].get("run_id") == out["run_id"]]
    assert len(mine) == 1 and mine[0]["state"] == "done"

    img = tmp_path / "three.png"
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    top = json.loads(cli("predict", "--model", model, str(img), "--json").stdout)[0]["top"]
    assert len(top) == 5 and {t["label"] for t in top} <= {str(i) for i in range(10)}


def test_train_errors_are_one_line():
    assert_user_error(cli("train", "--model", "cnn-2layer", "--dataset", "digits", "--lr", "-1", ok=False),
                      "learning rate")
    assert_user_error(cli("train", "--model", "nope", "--dataset", "digits", "--epochs", "1", ok=False),
                      "unknown model 'nope'")
    assert_user_error(cli("train", "--model", "linear", "--dataset", "digits", "--augment", "sparkle", ok=False),
                      "sparkle")
    assert_user_error(cli("jobs", "cancel", ok=False), "needs a job id")
    assert_user_error(cli("jobs", "resume", "99999", ok=False), "no job 99999")
    assert_user_error(cli("evaluate", "--model", "run-000000000000", "--dataset", "digits", ok=False),
                      "no trained run")

