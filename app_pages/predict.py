"""Predict: upload images (or pick a bundled example) and see each selected model's top-5 side by side."""
import streamlit as st

from core.data.decode import decode_image
from core.errors import ImageDecodeError, UserError
from core.predict import example_images, load_for_prediction, predict_image
from core.results import quick_choices

st.title("Predict")


@st.cache_resource(max_entries=4, show_spinner="loading model")
def model(model_id: str):
    return load_for_prediction(model_id)


@st.cache_data(show_spinner=False)
def examples():
    return example_images()


choices = quick_choices()
picked = st.multiselect("Models", choices.models, default=choices.default_models, accept_new_options=True,
                        help="scratch architectures and trained runs; type a pretrained id or a local folder")
uploads = st.file_uploader("Images", type=["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff"],
                           accept_multiple_files=True)
images: dict[str, object] = {}
for f in uploads or []:
    try:
        images[f.name] = decode_image(f.getvalue(), name=f.name)
    except ImageDecodeError as e:
        st.error(str(e))
if not uploads:
    ex = examples()
    name = st.selectbox("or a bundled example", list(ex))
    images[name] = ex[name]

for name, image in images.items():
    st.subheader(name)
    cols = st.columns(len(picked) + 1 if picked else 1)
    cols[0].image(image, width="stretch")
    for col, model_id in zip(cols[1:], picked):
        with col:
            try:
                m = model(model_id)
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
