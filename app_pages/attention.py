"""Attention & Grad-CAM: where each model looks for the same image and class, and how far its layers see."""
import altair as alt
import pandas as pd
import streamlit as st

from core.errors import UserError
from core.explain import attention_distances, explain_many, receptive_fields
from core.explain.render import render
from ui.pickers import cached_model, pick_images, pick_models, pick_precision

st.title("Attention & Grad-CAM")
picked = pick_models("attention-models", families=("cnn", "vit"))
c1, c2, c3 = st.columns([2, 1, 1])
method = c1.radio("Method", ["gradcam", "rollout", "attention"], horizontal=True, key="attention-method",
                  format_func={"gradcam": "Grad-CAM", "rollout": "attention rollout",
                               "attention": "attention per head (CLS)"}.get)
fusion = c2.selectbox("Head fusion (rollout)", ["mean", "max", "min"], disabled=method != "rollout")
discard = c3.slider("Discard ratio (rollout)", 0.0, 0.95, 0.0, 0.05, disabled=method != "rollout")
precision = pick_precision("attention-precision")
images = pick_images("attention", many=False)
if not picked:
    st.info("Pick one or more models above.")
    st.stop()
name, image = next(iter(images.items()))
models = []
for model_id in picked:
    try:
        models.append(cached_model(model_id))
    except UserError as e:
        st.error(f"{model_id}: {e}")
labels = models[0].labels.names if models else []
shared = all(m.labels.names == labels for m in models)
cls = st.selectbox("Class (the same for every model)", [None] + list(range(len(labels))) if shared else [None],
                   format_func=lambda i: "each model's own top-1" if i is None else labels[i])
opts = {"head_fusion": fusion, "discard_ratio": discard} if method == "rollout" else {}
opts["precision"] = precision
rows = explain_many(models, image, method, cls, **opts)
cols = st.columns(max(1, len(rows)))
for col, row in zip(cols, rows):
    with col:
        st.markdown(f"**{row.name}**  \n`{row.model_id}` · {row.family}")
        if row.error:
            st.warning(row.error)  # e.g. attention asked of a CNN: a message in place, the others still draw
            continue
        e = row.explanation
        st.image(render(e), width="stretch", caption=f"{e.class_label or ''} · {e.layer or ''}")
        st.caption(" · ".join(f"{lab} {p:.0%}" for lab, p in e.top5[:5]) + f" ({e.precision})  \n"
                   f"{1000 * row.seconds:.0f} ms for the prediction and the map (one call, not warmed)")
        if e.note:
            st.caption(e.note)

st.subheader("How far each layer sees")
st.caption("ViT: the attention-weighted mean distance between a patch and the patches it attends to, per layer and "
           "head (the ViT paper's Figure 7). CNN: the theoretical receptive field of each conv layer. Early ViT "
           "heads already reach across the image; a CNN's field grows layer by layer.")
data = []
for m in models:
    try:
        if m.family == "vit":
            data += [{"model": m.name, "depth": r["layer"] + 1, "pixels": r["mean_distance_px"], "what": "attention"}
                     for r in attention_distances(m, image)]
        else:
            data += [{"model": m.name, "depth": i + 1, "pixels": r["receptive_field_px"], "what": "receptive field"}
                     for i, r in enumerate(x for x in receptive_fields(m, image) if x["kind"].startswith("Conv"))]
    except UserError as e:
        st.caption(f"{m.name}: {e}")
if data:
    df = pd.DataFrame(data)
    st.altair_chart(alt.Chart(df).mark_point(filled=True, opacity=0.7).encode(
        alt.X("depth:Q", title="layer (ViT block / CNN conv, in forward order)"),
        alt.Y("pixels:Q", title="pixels of the model's input"), alt.Color("model:N"), alt.Shape("what:N"),
        tooltip=["model", "what", "depth", alt.Tooltip("pixels", format=".1f")]).properties(height=320),
        width="stretch", key="attention-distance")
