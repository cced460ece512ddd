"""The smallest app that shows docs/reliability.md's fragment race (issue 22): a sidebar fragment polling every
`RACE_POLL` seconds (0: no polling) beside a button and a file uploader; with RACE_FIX=1 it installs the app's fix
(ui/rerun_race.py) as app.py does. benchmarks/fragment_race.py and tests/test_rerun_race.py drive it."""
import os
import sys
import time
from pathlib import Path

import streamlit as st

POLL = float(os.environ.get("RACE_POLL", "0.2"))
if os.environ.get("RACE_FIX") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ui.rerun_race import install

    install()
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
