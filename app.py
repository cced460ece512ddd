"""CNN vs ViT Lab: the entry file routes and draws the sidebar; pages draw; core computes."""
import logging

import streamlit as st

from ui.sidebar import sidebar

st.set_page_config(page_title="CNN vs ViT Lab", layout="wide")

if not logging.getLogger("core").handlers:  # core's INFO lines (e.g. one per model load) go to the server's log
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("core").addHandler(_handler)
    logging.getLogger("core").setLevel(logging.INFO)

# The page files live in app_pages/, not pages/: Streamlit treats a folder named `pages` next to the entry
# file as a v1 multipage app until st.navigation first runs, so a deep link such as /confusion opened on a
# freshly started server ran the page alone, without this file's navigation and sidebar (seen in Chromium).
pages = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/play_circle:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("app_pages/arena.py", title="Arena", icon=":material/sports_kabaddi:", url_path="arena"),
    st.Page("app_pages/shape_bias.py", title="Shape vs texture", icon=":material/texture:", url_path="shape-bias"),
    st.Page("app_pages/robustness.py", title="Robustness", icon=":material/shield:", url_path="robustness"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/image_search:"),
    st.Page("app_pages/confusion.py", title="Confusion matrix", icon=":material/grid_on:", url_path="confusion"),
    st.Page("app_pages/drilldown.py", title="Class drill-down", icon=":material/zoom_in:", url_path="drilldown"),
    st.Page("app_pages/filters.py", title="Filters & feature maps", icon=":material/filter:", url_path="filters"),
    st.Page("app_pages/attention.py", title="Attention & Grad-CAM", icon=":material/visibility:", url_path="attention"),
]
nav = st.navigation(pages)
sidebar()
nav.run()
