"""Predict: upload images (or pick a bundled example) and see each selected model's top-5 side by side."""
import streamlit as st

from core.errors import ImageDecodeError, UserError
from core.predict import predict_image
from ui.pickers import cached_model, pick_images, pick_models

st.title("Predict")
picked = pick_models("predict-models")
images = pick_images("predict")

for name, image in images.items():
    st.subheader(name)
    cols = st.columns(len(picked) + 1 if picked else 1)
    cols[0].image(image, width="stretch")
    for col, model_id in zip(cols[1:], picked):
        with col:
            try:
                m = cached_model(model_id)
                pred = predict_image(m, image, top_k=5)
            except (UserError, ImageDecodeError) as e:
                st.error(f"{model_id}: {e}")
                continue
            st.markdown(f"**{m.name}**  \n`{model_id}` · {m.family}")
            st.dataframe({"class": pred.labels, "probability": pred.probabilities}, hide_index=True,
                         column_config={"probability": st.column_config.ProgressColumn(
                             "probability", min_value=0.0, max_value=1.0, format="percent")})
            st.caption(f"{1000 * pred.seconds:.1f} ms on {m.device.type.upper()}, batch of 1")
if not picked:
    st.info("Pick one or more models above.")
