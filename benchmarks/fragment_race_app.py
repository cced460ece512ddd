"""The smallest app that shows docs/reliability.md's open race (issue 22): a sidebar fragment polling every
`RACE_POLL` seconds (0: no polling) beside a button and a file uploader. benchmarks/fragment_race.py drives it."""
import os
import time

import streamlit as st

POLL = float(os.environ.get("RACE_POLL", "0.2"))
if "clicks" not in st.session_state:
    st.session_state.clicks = 0


@st.fragment(run_every=POLL or None)
def poll():
    st.caption(f"tick {time.time():.1f}")


with st.sidebar:
    poll()
if st.button("click"):
    st.session_state.clicks += 1
time.sleep(0.2)  # a page's work
st.markdown(f"clicks: {st.session_state.clicks}")
f = st.file_uploader("image")
time.sleep(0.2)
st.markdown(f"result: {f.name if f else 'none'}")
