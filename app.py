"""CNN vs ViT Lab: the entry file routes and draws the sidebar; pages draw; core computes."""
import streamlit as st

from ui.sidebar import sidebar

st.set_page_config(page_title="CNN vs ViT Lab", layout="wide")

pages = [
    st.Page("pages/overview.py", title="Overview", icon=":material/leaderboard:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]
nav = st.navigation(pages)
sidebar()
nav.run()
