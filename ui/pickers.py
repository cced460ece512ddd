"""Widgets several pages share: models (held in a bounded resource cache) and an image to look at."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from core.data.decode import decode_image
from core.errors import ImageDecodeError


@st.cache_resource(max_entries=6, show_spinner="loading model")
def cached_model(model_id: str):
    """One loaded model per id across reruns and sessions (bounded: the oldest is dropped)."""
    from core.predict import load_for_prediction

    return load_for_prediction(model_id)


@st.cache_data(show_spinner=False)
def _examples(dataset: str) -> dict[str, np.ndarray]:
    from core.predict import example_images

    return example_images(dataset)


def pick_models(key: str, *, families: tuple[str, ...] = ()) -> list[str]:
    """A model multiselect whose default is the best trained run (validation top-1) of each family in
    `families` (or the newest runs), remembered in the URL."""
    from core.hosted import is_hosted
    from core.results import model_choices, quick_choices
    from core.train.runs import list_runs

    hosted = is_hosted()  # hosted: the allow-listed models only, nothing typed in
    choices = quick_choices()
    options = model_choices() if hosted else choices.models
    runs = sorted(list_runs(), key=lambda r: -(r.get("val_top1") or 0))
    default = [next(r["run_id"] for r in runs if r["family"] == f) for f in families
               if any(r["family"] == f for r in runs)] or choices.default_models
    from_url = [m for m in st.query_params.get_all("model") if not hosted or m in options]
    hint = ("scratch architectures, trained runs and the pretrained ids this deployment offers" if hosted else
            "scratch architectures and trained runs; type a pretrained id or a local folder")
    picked = st.multiselect("Models", options, default=from_url or default, accept_new_options=not hosted, key=key,
                            help=hint)
    st.query_params["model"] = picked
    return picked


def pick_images(key: str, *, many: bool = True) -> dict[str, np.ndarray]:
    """Uploaded images (decoded by the one safe decoder; a bad file is a message) or a bundled example.
    Uploads stay in memory: Streamlit holds their bytes, the decoder reads them from there."""
    from core.hosted import check_upload, max_upload_bytes

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
    if not uploads:
        from core.data.registry import default_dataset

        ex = _examples(default_dataset())
        name = st.selectbox("or a bundled example", list(ex), key=f"{key}-example")
        images[name] = ex[name]
    return images


def stored_evaluations() -> list[dict]:
    """The leaderboard rows, or an explanation and the end of the page when the store has none."""
    from core.results import evaluation_table

    rows = evaluation_table()
    if not rows:
        st.info("No evaluations in the store yet: run the demo or evaluate a model on the Overview page.")
        st.stop()
    return rows


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_evaluation(key: str):
    """A stored evaluation with its predictions (immutable once written, so cached by key)."""
    from core.evaluate import load_evaluation

    return load_evaluation(key)


@st.cache_data(show_spinner=False)
def dataset_classes(dataset: str) -> tuple[list[str], list[str] | None]:
    """Class names and WordNet ids of a dataset, read once (a folder layout scans its files to load)."""
    from core.data.registry import load_dataset

    ds = load_dataset(dataset)
    return ds.classes, ds.wnids
