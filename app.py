"""CNN vs ViT Lab: the entry file routes and draws the sidebar; pages draw; core computes."""
import logging

import streamlit as st

from ui import navigation, rerun_race
from ui.sidebar import setup_problem, sidebar
from ui.stories import present, presenting

st.set_page_config(page_title="CNN vs ViT Lab", layout="wide")
rerun_race.install()  # a polling fragment must not drop the end of a page run (ui/rerun_race.py); once per process

if not logging.getLogger("core").handlers:  # core's INFO lines (e.g. one per model load) go to the server's log
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("core").addHandler(_handler)
    logging.getLogger("core").setLevel(logging.INFO)

if (problem := setup_problem()) is not None:  # a store or device it cannot use: one message, not a traceback per page
    st.error(problem)
    st.stop()

# The page files live in app_pages/, not pages/: Streamlit treats a folder named `pages` next to the entry
# file as a v1 multipage app until st.navigation first runs, so a deep link such as /confusion opened on a
# freshly started server ran the page alone, without this file's navigation and sidebar (seen in Chromium).
pages = navigation.pages()
story = presenting()
if story is not None:  # presentation mode (a link with present=<story>): the slide's page, full-screen
    nav = st.navigation(pages, position="hidden")
    present(story, nav, {p.url_path: p for p in pages})
else:
    nav = st.navigation(pages, expanded=True)  # every page listed: no "View 3 more" to find one behind
    sidebar(nav)
nav.run()
