"""Widgets several pages share: model and dataset pickers, models (held in a bounded resource cache) and an
image to look at."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from core.data.decode import decode_image
from core.data.registry import load_dataset
from core.errors import ImageDecodeError, UserError
from core.hosted import check_upload, is_hosted, max_upload_bytes
from core.results import (
    dataset_labels,
    default_models,
    evaluation_table,
    example_dataset,
    model_choices,
    quick_choices,
    run_labels,
    typed_model_problem,
)


@dataclass(frozen=True)
class PickerOptions:
    """What a picker offers and whether it takes a typed value (an id or a folder) besides."""

    options: list[str]
    typed: bool
    labels: dict[str, str] = field(default_factory=dict)  # option -> what the picker shows, where not the id
    check: Callable[[str], str | None] | None = None  # a typed value -> what is wrong with it, or None
    _problems: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)

    def label(self, option: str) -> str:
        return self.labels.get(option, option)

    def problem(self, value: str) -> str | None:
        """What `check` finds wrong with a value not among the options (None for an option), asked once a value:
        the picker says it, and a page leaves the value out (pick_models)."""
        if value in self.options or not self.check:
            return None
        if value not in self._problems:
            self._problems[value] = self.check(value)
        return self._problems[value]


def typing_accepted() -> bool:
    """Whether pickers take typed ids and folders: everywhere but a hosted deployment, which offers its
    allow-lists only (core refuses anything else anyway; the picker does not invite it)."""
    return not is_hosted()


def model_options(*, pretrained: bool = False) -> PickerOptions:
    """Scratch architectures and trained runs, with `pretrained` the default pretrained ids too, and a typed
    id or folder; hosted: scratch architectures, runs and the allow-listed pretrained ids, nothing typed."""
    typed, labels = typing_accepted(), run_names()
    options = model_choices() if pretrained or not typed else quick_choices().models
    shown = {o: labels.get(o, o) for o in options}  # what a typed value is compared with: what the list shows
    return PickerOptions(options, typed, labels, check=lambda text: typed_model_problem(text, shown))


def dataset_options(*, registered: bool = False) -> PickerOptions:
    """The embedded datasets (with `registered`, every registered one, labelled) and a typed folder;
    hosted: the allow-list, nothing typed."""
    if registered:
        labels = dataset_labels()
        return PickerOptions(list(labels), typing_accepted(), labels)
    return PickerOptions(quick_choices().datasets, typing_accepted())


def model_select(label: str, *, multi: bool = False, key: str | None = None, default: str | list[str] | None = None,
                 pretrained: bool = False, help_typed: str | None = None, help_hosted: str | None = None,
                 persist: bool = False) -> str | list[str] | None:
    """A model selectbox (or multiselect) over `model_options`, with the help text of the mode it runs in."""
    return choice_widget(label, model_options(pretrained=pretrained), multi=multi, key=key, default=default,
                         help_typed=help_typed, help_hosted=help_hosted, persist=persist)


def dataset_select(label: str, *, multi: bool = False, key: str | None = None, default: str | list[str] | None = None,
                   registered: bool = False, help_typed: str | None = None, help_hosted: str | None = None,
                   persist: bool = False) -> str | list[str] | None:
    """A dataset selectbox (or multiselect) over `dataset_options`, with the help text of the mode it runs in."""
    return choice_widget(label, dataset_options(registered=registered), multi=multi, key=key, default=default,
                         help_typed=help_typed, help_hosted=help_hosted, persist=persist)


def choice_widget(label: str, picker: PickerOptions, *, multi: bool, key: str | None,
                  default: str | list[str] | None, help_typed: str | None,
                  help_hosted: str | None, persist: bool = False) -> str | list[str] | None:
    """Draw `picker` as a selectbox or multiselect. A default it does not offer was typed (kept, as an option,
    where typing is accepted) or is not on the allow-list (dropped); a selectbox without one starts on the first.
    `persist` (with a `key`): the choice is kept for the session, so it is still there after another page. A typed
    value the picker's `check` finds wrong is said under it at once, not on submit."""
    wanted = [] if default is None else [default] if isinstance(default, str) else list(default)
    options = picker.options + [d for d in wanted if picker.typed and d not in picker.options]
    wanted = [d for d in wanted if d in options]
    common = dict(key=key, format_func=picker.label, accept_new_options=picker.typed,
                  help=help_typed if picker.typed else help_hosted, persist_state="session" if persist else None)
    if multi:
        picked = st.multiselect(label, options, default=wanted, **common)
    else:
        picked = st.selectbox(label, options, index=options.index(wanted[0]) if wanted else 0, **common)
    for value in [picked] if isinstance(picked, str) else picked or []:
        if problem := picker.problem(value):
            st.error(problem)
    return picked


@st.cache_resource(max_entries=6, show_spinner="loading model")
def cached_model(model_id: str):
    """One loaded model per id across reruns and sessions (bounded: the oldest is dropped)."""
    # lazy: core.predict imports torch (~2 s); a page draws its title and stored results before it loads
    from core.predict import load_for_prediction

    return load_for_prediction(model_id)


@st.cache_data(show_spinner=False)
def _examples(dataset: str) -> dict[str, np.ndarray]:
    # lazy: core.predict imports torch (~2 s); a page draws its title and stored results before it loads
    from core.predict import example_images

    return example_images(dataset)


def pick_models(key: str, *, families: tuple[str, ...] = (), dataset: str | None = None) -> list[str]:
    """A model multiselect starting at core.results.default_models (the best trained run of each family in
    `families`; with `dataset`, of the runs that learned it), remembered in the URL. Returns the picked models less
    the typed values flagged under the picker: what is wrong with one is said there, not again where a page
    would load it."""
    picker = model_options()
    from_url = [m for m in st.query_params.get_all("model") if picker.typed or m in picker.options]
    picked = choice_widget("Models", picker, multi=True, key=key,
                           default=from_url or default_models(families, dataset),
                           help_typed="scratch architectures and trained runs; type a pretrained id or a local folder",
                           help_hosted="scratch architectures, trained runs and the pretrained ids this deployment "
                                       "offers")
    st.query_params["model"] = picked
    return [m for m in picked if not picker.problem(m)]


def run_names() -> dict[str, str]:
    """What pickers, charts and captions call trained runs (core.results.run_labels): "ResNet-20 · shapes · 76.8%
    val · seed 0", never a bare run id."""
    return run_labels()


PRECISION_CHOICES = ("auto", "fp32", "bf16")


@st.cache_data(show_spinner=False)
def auto_precision() -> str:
    """What `auto` runs on this machine's device."""
    # lazy: core.precision imports torch (~2 s); the Overview page must draw without it
    from core.precision import resolve_precision
    from core.settings import resolve_device

    return resolve_precision("auto", resolve_device())


def pick_precision(key: str) -> str:
    """The precision of every forward pass a page runs (Evaluate, Predict, Attention & Grad-CAM), remembered in
    the URL: at one precision a confusion cell, a prediction and an explanation give an image the same top-1."""
    from_url = st.query_params.get("precision")
    value = st.radio("Precision", PRECISION_CHOICES, horizontal=True, key=key,
                     index=PRECISION_CHOICES.index(from_url) if from_url in PRECISION_CHOICES else 0,
                     help=f"auto runs {auto_precision()} here: bf16 on GPUs and on CPUs with bf16 hardware (AMX, "
                          "AVX-512 BF16), where it is several times faster, fp32 elsewhere. bf16 and fp32 can "
                          "rank near-tied classes differently, so each result says which it used; evaluations "
                          "store fp32 and bf16 runs side by side.")
    st.query_params["precision"] = value
    if value == "bf16" and auto_precision() == "fp32":  # auto is fp32 only on a CPU without bf16 arithmetic
        st.caption(":orange[This CPU has no bf16 arithmetic (AMX or AVX-512 BF16), so bf16 runs emulated here: 10 "
                   "to 600 times slower than fp32 in our measurements. auto runs fp32.]")
    return value


LINKED_IMAGE = ("image_dataset", "image_split", "image_index")  # a dataset image another page links to


@st.cache_data(show_spinner=False, max_entries=64)
def dataset_image(dataset: str, split: str, index: int) -> np.ndarray:
    """One image of a dataset's split, decoded once; a UserError for an index the split does not have."""
    data = load_dataset(dataset).split(split)
    if not 0 <= index < len(data):
        raise UserError(f"{dataset}/{split} has no image #{index} (it has {len(data)})")
    return data.load(index)


def linked_image() -> tuple[str, np.ndarray] | None:
    """The dataset image named in the URL (image_dataset, image_split, image_index: how the Shape vs texture page
    opens an example here), as (a name, its pixels); None when there is none, and a message when it does not load."""
    qp = st.query_params
    dataset, split, index = (qp.get(k) for k in LINKED_IMAGE)
    if not (dataset and split and index):
        return None
    try:
        if not index.isdecimal():
            raise UserError(f"image_index={index!r} is not an image number")
        return f"{dataset} {split} #{index}", dataset_image(dataset, split, int(index))
    except UserError as e:  # a dataset not offered, a missing split, an unreadable file
        st.error(f"The linked image does not load: {e}")
        return None


def pick_images(key: str, *, many: bool = True, models: list[str] = ()) -> dict[str, np.ndarray]:
    """Uploaded images (decoded by the one safe decoder; a bad file is a message), else the dataset image the
    link names, else a bundled example: of the dataset the picked `models` learned (core.results.example_dataset).
    Uploads stay in memory: Streamlit holds their bytes, the decoder reads them from there."""
    limit = max_upload_bytes()  # the browser refuses bigger files; check_upload holds whatever the client
    uploads = st.file_uploader("Images" if many else "Image", key=f"{key}-upload", accept_multiple_files=many,
                               type=["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff"],
                               max_upload_size=max(1, math.ceil(limit / 2**20)) if limit else None)
    uploads = (uploads or []) if many else ([uploads] if uploads else [])
    images: dict[str, np.ndarray] = {}
    for f in uploads:
        try:
            check_upload(f.name, f.size)  # before decoding
            images[f.name] = decode_image(f.getvalue(), name=f.name)
        except ImageDecodeError as e:
            st.error(str(e))
    if uploads:
        return images
    if (linked := linked_image()) is not None:
        c1, c2 = st.columns([4, 1])
        c1.caption(f"The image the link opened: {linked[0]}. Upload images to look at others.")
        if c2.button("Pick another", key=f"{key}-unlink", help="forget the linked image; offer the bundled examples"):
            for k in LINKED_IMAGE:
                del st.query_params[k]
            st.rerun()
        return dict([linked])
    source = example_dataset(list(models))
    ex = _examples(source)
    # keyed by the set: another set starts at its first image
    name = st.selectbox("or a bundled example", list(ex), key=f"{key}-example-{source}",
                        help=f"one image per class of {source} (the dataset the picked runs learned, else the "
                             "embedded default), used when nothing is uploaded")
    images[name] = ex[name]
    return images


def stored_evaluations() -> list[dict]:
    """The leaderboard rows, or an explanation and the end of the page when the store has none."""
    rows = evaluation_table()
    if not rows:
        st.info("No evaluations in the store yet: run the demo or evaluate a model on the Overview page.")
        st.stop()
    return rows


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_evaluation(key: str):
    """A stored evaluation with its predictions (immutable once written, so cached by key)."""
    # lazy: core.evaluate imports torch (~2 s); a page draws its title and stored results before it loads
    from core.evaluate import load_evaluation

    return load_evaluation(key)


@st.cache_data(show_spinner=False)
def dataset_classes(dataset: str) -> tuple[list[str], list[str] | None]:
    """Class names and WordNet ids of a dataset, read once (a folder layout scans its files to load)."""
    ds = load_dataset(dataset)
    return ds.classes, ds.wnids
