"""The recipe's fields are written once (core/train/recipe.py): the `train` flags and the Train page's form
are built from them, with the same help, choices and defaults."""
import argparse
import dataclasses

import pytest
from test_pages import _app, _by_label

from core.cli import _recipe, build_parser
from core.demo import DEMO_RECIPES
from core.errors import UserError
from core.jobs import Jobs
from core.store import Store
from core.train.presets import PRESETS
from core.train.recipe import OPTIMIZERS, TRANSFER, Recipe, recipe_fields
from core.train.schedules import SCHEDULES

# Every flag `train` had before the fields moved, by name (plateau_*, warmup_fraction and max_steps are new): none
# may be renamed.
FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "optimizer": "--optimizer", "lr": "--lr",
         "momentum": "--momentum", "nesterov": "--nesterov", "weight_decay": "--weight-decay",
         "schedule": "--schedule", "warmup_epochs": "--warmup-epochs", "step_size": "--step-size", "gamma": "--gamma",
         "min_lr": "--min-lr", "plateau_factor": "--plateau-factor", "plateau_patience": "--plateau-patience",
         "clip_norm": "--clip-norm", "label_smoothing": "--label-smoothing", "augment": "--augment",
         "aux_weight": "--aux-weight", "transfer": "--transfer", "head_hidden": "--head-hidden",
         "unfreeze_every": "--unfreeze-every", "limit": "--limit", "val_limit": "--val-limit",
         "image_size": "--image-size", "seed": "--seed", "amp": "--no-amp",
         "warmup_fraction": "--warmup-fraction", "max_steps": "--max-steps", "world_size": "--world-size"}


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    return Store(tmp_path)


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def _train_actions() -> dict[str, argparse.Action]:
    return {a.dest: a for a in _train_parser()._actions}


def _parse(*flags: str) -> Recipe:
    return _recipe(build_parser().parse_args(["train", *flags]))


def test_every_recipe_field_but_model_and_dataset_has_its_train_flag_with_help():
    actions = _train_actions()
    names = [f.name for f in dataclasses.fields(Recipe)]
    assert names[:2] == ["model", "dataset"] and set(names[2:]) == set(FLAGS)
    for name, flag in FLAGS.items():
        assert actions[name].option_strings == [flag]
        assert actions[name].help.strip(), flag
    assert actions["model"].required and actions["dataset"].required


def test_train_help_has_a_line_for_every_flag():
    text = " ".join(_train_parser().format_help().split())
    for action in _train_parser()._actions:
        assert action.help and action.help.strip(), action.option_strings
        first_words = " ".join(action.help.split()[:4])
        assert action.option_strings[-1] in text and first_words in text, action.option_strings
    assert "(default 0.05)" in text  # the Recipe's default lr, shown with its flag
    assert "A flag left out takes a scratch architecture's own recipe" in text  # and where it does not apply


def test_a_command_line_gives_exactly_the_recipe_its_flags_say():
    recipe = _parse("--model", "resnet20", "--dataset", "shapes", "--optimizer", "adam", "--lr", "0.002",
                    "--image-size", "32", "--augment", "flip+cutmix", "--no-amp", "--nesterov")
    # a flag left out takes the architecture's own recipe: ResNet-20's is Adam 2e-3 with no weight decay, cosine
    expected = Recipe(model="resnet20", dataset="shapes", optimizer="adam", lr=0.002, weight_decay=0.0,
                      image_size=32, augment="flip+cutmix", amp=False, nesterov=True)
    assert recipe == expected and recipe.run_id == expected.run_id
    assert (recipe.epochs, recipe.weight_decay, recipe.schedule, recipe.clip_norm) == (5, 0.0, "cosine", None)
    # linear has no recipe of its own: the arena's default for such architectures (the same Adam, 2e-3, cosine)
    assert _parse("--model", "linear", "--dataset", "digits", "--plateau-factor", "0.2", "--plateau-patience", "2") == \
        Recipe(model="linear", dataset="digits", optimizer="adam", lr=2e-3, weight_decay=0.0, plateau_factor=0.2,
               plateau_patience=2)
    # a model that is not a scratch architecture (a trained run, a pretrained id): the Recipe's defaults, SGD 0.05
    assert _parse("--model", "run-000000000000", "--dataset", "digits") == Recipe(model="run-000000000000",
                                                                                  dataset="digits")


def test_flags_left_out_keep_the_run_id_it_had():
    # computed with the hand-typed flags of commit c994526 (run-556754fe389d and run-601ef36c85d1 then); recomputed
    # when RECIPE_VERSION became 2 (bf16 CPU training, DeiT init, warmup_fraction and max_steps; run-4ce7ba592feb
    # and run-3ed560fd3a51) and 3 (the CPU dropout masks): the run id is a fingerprint of every field and the version.
    # Recomputed once more when a flag left out began to take the architecture's own recipe (ResNet-20's Adam 2e-3,
    # no weight decay, in place of the Recipe's SGD 0.05; run-3d17dd4fe3ef and run-b855e80fb73a before)
    assert _parse("--model", "resnet20", "--dataset", "shapes").run_id == "run-a1ff51521721"
    assert _parse("--model", "resnet20", "--dataset", "shapes", "--image-size", "32").run_id == "run-fbac991bd1a4"



def test_flags_left_out_take_the_architectures_own_recipe():
    """`train --model vit-small` trains with DeiT's recipe (AdamW, weight decay 0.05, label smoothing 0.1), as the
    arena and the Train page do, not the Recipe's generic SGD 0.05; a flag given still wins."""
    from core.demo import demo_recipe

    vit = _parse("--model", "vit-small", "--dataset", "shapes")
    assert (vit.optimizer, vit.lr, vit.weight_decay, vit.warmup_fraction, vit.label_smoothing) == \
        ("adamw", 2e-3, 0.05, 0.017, 0.1)
    assert _parse("--model", "vit-small", "--dataset", "shapes", "--lr", "1e-3").lr == 1e-3
    assert _parse("--model", "vit-small", "--dataset", "shapes", "--optimizer", "sgd").optimizer == "sgd"
    # the demo's run, asked for by its shared settings alone, is the demo's run id (a cache hit once it has run)
    assert _parse("--model", "cct-2", "--dataset", "shapes", "--epochs", "8", "--val-limit", "500",
                  "--image-size", "32").run_id == demo_recipe("cct-2").run_id

@pytest.mark.parametrize("flag, value, message", [
    ("--optimizer", "rmsprop", "invalid choice: 'rmsprop'"),
    ("--schedule", "linear", "invalid choice: 'linear'"),
    ("--transfer", "all", "invalid choice: 'all'"),
    ("--epochs", "many", "invalid int value: 'many'"),
    ("--augment", "sparkle", "unknown augmentation 'sparkle'"),
    ("--epochs", "0", "epochs must be between 1 and 1000"),
])
def test_bad_values_are_user_errors(flag, value, message):
    with pytest.raises(UserError, match=message):
        _parse("--model", "linear", "--dataset", "digits", flag, value)


def test_the_cli_offers_the_choices_where_they_are_defined():
    actions = _train_actions()
    assert tuple(actions["optimizer"].choices) == OPTIMIZERS == ("sgd", "adam", "adamw")
    assert tuple(actions["schedule"].choices) == SCHEDULES
    assert tuple(actions["transfer"].choices) == tuple(TRANSFER) == ("none", "new-head", "frozen", "layerwise")
    assert actions["augment"].choices is None  # presets combine with "+": the Recipe checks them
    for name, description in {**PRESETS, **TRANSFER}.items():
        assert f"{name}: {description}" in actions["augment"].help + actions["transfer"].help
    [augment] = [f for f in recipe_fields() if f.name == "augment"]
    assert augment.choices == tuple(PRESETS) and augment.combine


def test_train_page_draws_every_field_with_its_help(fresh_store):
    at = _app("app_pages/train.py")
    widgets = [*at.number_input, *at.selectbox, *at.multiselect, *at.checkbox]
    labels = {w.label for w in widgets}
    assert {f.label for f in recipe_fields() if f.name not in ("model", "dataset")} <= labels
    assert {"Architecture", "Dataset", "Epochs", "Train images (0 = all)", "Image side (0 = dataset's)"} <= labels
    assert [w.label for w in widgets if not w.proto.help] == []
    [lr] = [f for f in recipe_fields() if f.name == "lr"]
    assert _by_label(at.number_input, "Learning rate").proto.help == lr.help


def test_the_default_train_form_queues_the_demos_resnet20(fresh_store, monkeypatch):
    monkeypatch.setattr(Jobs, "ensure_worker", lambda self: None)  # the test checks what is queued, trains nothing
    at = _app("app_pages/train.py")
    _by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception and not at.error
    [job] = Jobs(fresh_store).list()
    resnet20 = next(r for r in DEMO_RECIPES if r.model == "resnet20")
    assert Recipe.from_dict(job.spec["recipe"]) == resnet20 and job.spec["recipe"] == resnet20.to_dict()
    assert (resnet20.optimizer, resnet20.lr, resnet20.weight_decay, resnet20.epochs, resnet20.image_size,
            resnet20.batch_size) == ("adam", 0.002, 0.0, 8, 32, 64)  # what the page says it starts at
