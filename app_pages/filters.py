"""Filters & feature maps: what the first layers learned, and what they see in one image, CNN and ViT side by side."""
import streamlit as st

from core.errors import UserError
from core.explain import explain_many
from core.explain.render import render
from ui.pickers import cached_model, pick_images, pick_models

st.title("Filters & feature maps")
st.caption("A CNN's first convolution and a ViT's patch embedding are both a bank of small filters over pixels: "
           "shown the same way, per filter normalised to its own range.")
picked = pick_models("filters-models", families=("cnn", "vit"))
c1, c2 = st.columns([1, 2])
method = c1.radio("Show", ["filters", "feature-maps"], horizontal=True, key="filters-method", help="filters: the "
                  "learned kernels or patch-embedding weights; feature maps: a layer's outputs for the image",
                  format_func={"filters": "learned filters", "feature-maps": "feature maps"}.get)
layer = c2.text_input("Layer (empty = the first conv / patch embedding for filters, the last conv or block for maps)",
                      key="filters-layer", help="a layer's name as the model calls it (a wrong name lists them)"
                      ).strip() or None
images = pick_images("filters", many=False, models=picked)
if not picked:
    st.info("Pick one or more models above.")
    st.stop()

name, image = next(iter(images.items()))
models, errors = [], {}
for model_id in picked:
    try:
        models.append(cached_model(model_id))
    except UserError as e:
        errors[model_id] = str(e)
rows = explain_many(models, image, method, layer=layer)
cols = st.columns(len(picked))
for col, model_id in zip(cols, picked):
    with col:
        row = next((r for r in rows if r.model_id == model_id), None)
        if row is None or row.error:
            st.error(f"{model_id}: {errors.get(model_id) or row.error}")
            continue
        e = row.explanation
        st.markdown(f"**{row.name}**  \n`{model_id}` · {row.family}")
        st.image(render(e), width="stretch", caption=f"{e.layer or ''} - {len(e.tiles)} tiles")
        if e.note:
            st.caption(e.note)
with st.expander("Layers you can name"):
    for m in models:
        st.markdown(f"**{m.name}**: " + ", ".join(f"`{n}`" for n, _ in m.conv_layers()[:40]))
