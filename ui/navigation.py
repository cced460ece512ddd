"""The app's pages, in the order the sidebar lists them: app.py navigates between them, and a story's views link to
them by their URL path."""
from __future__ import annotations

import streamlit as st

# (file, title, icon, url_path); the files live in app_pages/ (see app.py for why not pages/)
PAGES = (
    ("app_pages/overview.py", "Overview", ":material/leaderboard:", ""),
    ("app_pages/evaluate.py", "Evaluate", ":material/play_circle:", "evaluate"),
    ("app_pages/train.py", "Train", ":material/model_training:", "train"),
    ("app_pages/compare.py", "Compare", ":material/compare:", "compare"),
    ("app_pages/arena.py", "Arena", ":material/sports_kabaddi:", "arena"),
    ("app_pages/shape_bias.py", "Shape vs texture", ":material/texture:", "shape-bias"),
    ("app_pages/robustness.py", "Robustness", ":material/shield:", "robustness"),
    ("app_pages/predict.py", "Predict", ":material/image_search:", "predict"),
    ("app_pages/confusion.py", "Confusion matrix", ":material/grid_on:", "confusion"),
    ("app_pages/drilldown.py", "Class drill-down", ":material/zoom_in:", "drilldown"),
    ("app_pages/filters.py", "Filters & feature maps", ":material/filter:", "filters"),
    ("app_pages/attention.py", "Attention & Grad-CAM", ":material/visibility:", "attention"),
    ("app_pages/stories.py", "Stories", ":material/slideshow:", "stories"),
)
FILES = {url_path: file for file, _, _, url_path in PAGES}


def pages() -> list[st.Page]:
    return [st.Page(file, title=title, icon=icon, default=not url_path, **({"url_path": url_path} if url_path else {}))
            for file, title, icon, url_path in PAGES]
