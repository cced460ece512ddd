"""Predict: upload images (or pick a bundled example) and see each selected model's top-5 side by side."""
import streamlit as st

from core.errors import ImageDecodeError, UserError
from core.predict import predict_image
from ui.pickers import cached_model, pick_images, pick_models, pick_precision
from ui.tables import show_table, significant

TIMING_REPEATS = 5

st.title("Predict")
picked = pick_models("predict-models")
precision = pick_precision("predict-precision")
images = pick_images("predict", models=picked)

for name, image in images.items():
    st.subheader(name)
    cols = st.columns(len(picked) + 1 if picked else 1)
    cols[0].image(image, width="stretch")
    for col, model_id in zip(cols[1:], picked):
        with col:
            try:
                m = cached_model(model_id)
                pred = predict_image(m, image, top_k=5, precision=precision, timing_repeats=TIMING_REPEATS)
            except (UserError, ImageDecodeError) as e:
                st.error(f"{model_id}: {e}")
                continue
            st.markdown(f"**{m.name}**  \n`{model_id}` · {m.family}")
            show_table({"class": pred.labels, "probability": pred.probabilities, "index": pred.class_indices},
                      column_config={"probability": st.column_config.ProgressColumn(
                          "probability", min_value=0.0, max_value=1.0, format="percent")})
            st.caption(f"{pred.precision} on {m.device.type.upper()}, one image: "
                       f"{significant(1000 * pred.warm_seconds)} ms a forward pass (median of {pred.timing_repeats} "
                       f"after a warm-up); this call {significant(1000 * pred.seconds)} ms with resize and "
                       "normalisation (a model's first call also "
                       "prepares its forward)"
                       + (f"  \n{m.labels.assumed}" if m.labels.assumed else ""))
if not picked:
    st.info("Pick one or more models above.")
