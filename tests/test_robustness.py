"""Robustness on real models and real corrupted images: the same pixels for every model, cached per corruption and
severity, corruption errors worked by hand, the CLI's JSON, a background job, and a folder of files corrupted as
they are decoded."""
import functools
import json
import os

import numpy as np
import pytest
from core_process import run_core
from PIL import Image

from core.data import corruptions, load_dataset
from core.evaluate import evaluate
from core.jobs import Jobs, RobustnessJob, job_spec
from core.robustness import corrupted_image, corruption_errors, robustness
from core.settings import REPO_ROOT

NAMES = ("gaussian_noise", "contrast")


def test_corruption_errors_worked_by_hand():
    model = {"model": "m", "clean_top1": 0.9, "results": [
        {"corruption": "gaussian_noise", "severity": 1, "top1": 0.8},
        {"corruption": "gaussian_noise", "severity": 3, "top1": 0.6},
        {"corruption": "contrast", "severity": 1, "top1": 0.9}, {"corruption": "contrast", "severity": 3, "top1": 0.9},
        {"corruption": "saturate", "severity": 1, "top1": 0.5}]}
    base = {"model": "b", "clean_top1": 0.8, "results": [
        {"corruption": "gaussian_noise", "severity": 1, "top1": 0.6},
        {"corruption": "gaussian_noise", "severity": 3, "top1": 0.4},
        {"corruption": "contrast", "severity": 1, "top1": 0.8}, {"corruption": "contrast", "severity": 3, "top1": 0.8},
        {"corruption": "saturate", "severity": 1, "top1": 0.9}]}
    r = corruption_errors(model, base)
    noise, contrast, saturate = r["per_corruption_errors"]
    assert saturate["ce"] == pytest.approx(0.5 / 0.1)  # an extra of the reference code: a CE, but not in the mCE
    assert r["mce_corruptions"] == ["gaussian_noise", "contrast"]
    assert noise["ce"] == pytest.approx((0.2 + 0.4) / (0.4 + 0.6))  # errors summed over severities, divided
    assert noise["relative_ce"] == pytest.approx((0.1 + 0.3) / (0.2 + 0.4))  # drops from clean, divided
    assert contrast["ce"] == pytest.approx(0.2 / 0.4)
    assert contrast["relative_ce"] is None  # the baseline does not drop under contrast: no ratio
    assert r["mce"] == pytest.approx((0.6 + 0.5) / 2)
    assert r["relative_mce"] is None
    assert corruption_errors(base, base)["mce"] == pytest.approx(1.0)  # the baseline against itself


def test_every_model_sees_the_same_corrupted_pixels_with_or_without_a_limit():
    ds = load_dataset("shapes")
    full = ds.split("val")
    fn = functools.partial(corruptions.corrupt_indexed, "gaussian_noise", 3)
    everything, limited = full.mapped(fn), full.limited(40).mapped(fn)
    for row, i in enumerate(limited.index[:5]):
        np.testing.assert_array_equal(limited.load(row), everything.load(int(i)))
        np.testing.assert_array_equal(limited.load(row), corrupted_image("shapes", "val", int(i), "gaussian_noise", 3))
    assert not np.array_equal(everything.load(0), full.load(0))
    np.testing.assert_array_equal(corrupted_image("shapes", "val", 0, "gaussian_noise", 0), full.load(0))  # clean


def test_robustness_of_two_models_cached_per_corruption_and_severity(store):
    kw = dict(names=NAMES, severities=(1, 5), limit=60, store=store, precision="fp32")
    r = robustness("cnn-2layer", "shapes", **kw)
    assert [(x["corruption"], x["severity"]) for x in r["results"]] == [(c, s) for c in NAMES for s in (1, 5)]
    clean = evaluate("cnn-2layer", "shapes", "val", limit=60, store=store, precision="fp32")
    assert clean.cached and r["clean_top1"] == clean.meta.top1 and r["clean_key"] == clean.key
    assert r["mean_corruption_top1"] == pytest.approx(np.mean([x["top1"] for x in r["results"]]))
    assert r["parameters"] == "tiny-imagenet" and r["n"] == 60  # shapes is 64 px: Tiny-ImageNet-C's table
    assert r["complete"] and not r["cached"]
    # each corrupted evaluation is its own record, a cache hit the second time, and equal to evaluate's
    ev = evaluate("cnn-2layer", "shapes", "val", limit=60, store=store, precision="fp32", corruption=("contrast", 5))
    assert ev.cached and ev.key == r["results"][-1]["key"] and ev.meta.top1 == r["results"][-1]["top1"]
    assert ev.meta.corruption == "contrast" and ev.meta.severity == 5
    again = robustness("cnn-2layer", "shapes", **kw)
    assert again["cached"] and again["results"] == r["results"]
    # shapes has val and test: the temperature is fitted on val and reported on test
    ts = r["temperature_scaling"]
    assert ts["split"] == "fitted on val, reported on test" and ts["temperature"] > 0
    assert r["ece_scaled"] == ts["after"]["ece"]
    # with a baseline: corruption errors over the same corruptions and severities; the baseline's own mCE is 1
    vs = robustness("linear", "shapes", baseline="cnn-2layer", **kw)
    assert vs["baseline"] == "cnn-2layer" and len(vs["per_corruption_errors"]) == 2
    assert corruption_errors(r, r)["mce"] == pytest.approx(1.0)
    # the leaderboard lists clean evaluations only
    from core.results import evaluation_table

    assert {row["model"] for row in evaluation_table(store)} == {"cnn-2layer", "linear"}
    assert all("(" not in row["model"] for row in evaluation_table(store))
    assert len(evaluation_table(store)) == 4  # each model on val and test


def test_stored_only_reports_what_is_stored(store):
    assert robustness("linear", "shapes", names=NAMES, severities=(1,), limit=30, store=store,
                      stored_only=True) is None
    evaluate("linear", "shapes", "val", limit=30, store=store, corruption=("contrast", 1))
    evaluate("linear", "shapes", "val", limit=30, store=store)
    part = robustness("linear", "shapes", names=NAMES, severities=(1,), limit=30, store=store, stored_only=True)
    assert [x["corruption"] for x in part["results"]] == ["contrast"] and not part["complete"]
    # the held-out split (test) is not evaluated yet: no temperature, rather than one fitted on halves of val
    assert part["temperature"] is None and "test is not evaluated" in part["temperature_scaling"]["why"]


def test_a_dataset_with_one_split_fits_the_temperature_on_half_and_reports_on_the_other(store):
    from core.data.base import Dataset
    from core.robustness import temperature_scaling

    shapes = load_dataset("shapes")
    one = Dataset("shapes-val-only", "shapes, val only", "embedded", "shapes", shapes.classes,
                  {"val": lambda: shapes.split("val")}, lambda: shapes.fingerprint() + ":val-only")
    r = robustness("cnn-2layer", one, names=("contrast",), severities=(1,), limit=100, store=store)
    ts = r["temperature_scaling"]
    assert "half" in ts["split"] and ts["n"] == 50 and r["ece_heldout"] == ts["before"]["ece"]
    again = temperature_scaling(evaluate("cnn-2layer", one, "val", limit=100, store=store), None)
    assert again["temperature"] == ts["temperature"]  # the halves are a fixed permutation


def test_a_robustness_job_measures_in_the_background_and_reads_back(store):
    job = RobustnessJob("linear", "shapes", None, ("contrast",), (2,), limit=20, precision="fp32")
    assert job_spec(job.kind, json.loads(json.dumps(job.to_json()))) == job  # the job table's JSON round trip
    jobs = Jobs(store)
    row = jobs.submit(job, start_worker=False)
    assert jobs.work(max_jobs=1) == 1
    done = jobs.get(row.id)
    assert done.state == "done", done.error
    r = robustness("linear", "shapes", names=("contrast",), severities=(2,), limit=20, store=store,
                   precision="fp32", stored_only=True)
    assert r["complete"] and done.result["clean_top1"] == r["clean_top1"]


def test_files_are_corrupted_as_they_are_decoded(tmp_path, store):
    """An image folder: the corruption applies to each decoded file, seeded by its position in the split."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "data" / c / f"{i}.png")
    ds = load_dataset(str(tmp_path / "data"))
    split = ds.default_split()
    clean = ds.split(split)
    shown = corrupted_image(str(tmp_path / "data"), split, 4, "pixelate", 5)
    assert shown.shape == clean.load(4).shape and not np.array_equal(shown, clean.load(4))
    mapped = clean.mapped(functools.partial(corruptions.corrupt_indexed, "pixelate", 5))
    np.testing.assert_array_equal(mapped.load(4), shown)
    ev = evaluate("linear", ds, split, store=store, corruption=("pixelate", 5))
    assert ev.meta.n == 6 and ev.meta.corruption == "pixelate"


def test_cli_robustness_json_and_bad_choices(tmp_path):
    env = os.environ | {"CNNVIT_CACHE_DIR": str(tmp_path / "store"), "CNNVIT_DEVICE": "cpu"}
    proc = run_core("robustness", "--model", "linear", "--dataset", "shapes", "--corruptions", "gaussian_noise",
                    "--severities", "1,3", "--limit", "30", "--precision", "fp32", "--json", cwd=REPO_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for k in ("model", "dataset", "split", "clean_top1", "results", "mean_corruption_top1", "ece", "nll", "brier",
              "temperature", "ece_scaled", "cached"):
        assert k in r, k
    assert [(x["corruption"], x["severity"]) for x in r["results"]] == [("gaussian_noise", 1), ("gaussian_noise", 3)]
    assert all(set(x) >= {"corruption", "severity", "top1", "ece"} for x in r["results"])
    for args, says in ((["--corruptions", "fog,frosty"], "frosty"), (["--severities", "1,6"], "6"),
                       (["--severities", "two"], "two")):
        bad = run_core("robustness", "--model", "linear", "--dataset", "shapes", *args, cwd=REPO_ROOT, env=env)
        assert bad.returncode == 2 and bad.stderr.startswith("error:") and says in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
