"""A first-visit tour: three things to try, shown on the Overview page until the visitor dismisses it."""
from __future__ import annotations

import streamlit as st

DISMISSED = "tour-dismissed"
STEPS = (  # (page, label, what to do there)
    ("app_pages/compare.py", "Compare", "Pick a CNN and a ViT: accuracy, speed, parameters and FLOPs side by side, "
                                        "with what was held equal."),
    ("app_pages/confusion.py", "Confusion matrix", "Click a cell to see the images one model mixes up, and what "
                                                   "it predicted for each."),
    ("app_pages/attention.py", "Attention & Grad-CAM", "Where each model looks on the same image, and which heat "
                                                       "map is faithful to what the model uses."),
)


def first_visit_tour() -> None:
    """Three steps with links to their pages, and a button that hides them for the rest of the visit (the session:
    a reload or a new tab shows them again)."""
    if st.session_state.get(DISMISSED) or "present" in st.query_params:  # dismissed, or a slide being presented
        return
    with st.container(border=True):
        st.markdown("**New here? Three things to try**")
        for col, (i, (page, label, what)) in zip(st.columns(len(STEPS)), enumerate(STEPS, 1)):
            col.page_link(page, label=f"{i}. {label}")
            col.caption(what)
        if st.button("Got it", key="tour-dismiss", help="hide these tips for this visit"):
            st.session_state[DISMISSED] = True
            st.rerun()
