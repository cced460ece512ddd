"""CNN vs ViT Lab: the entry file routes; pages draw; core computes."""
import streamlit as st

st.set_page_config(page_title="CNN vs ViT Lab", layout="wide")

pages = [
    st.Page("pages/overview.py", title="Overview", default=True),
]
st.navigation(pages).run()
