"""Stories in the app: the sidebar's "Pin this view", and presentation mode (app.py runs it instead of the sidebar
when the link says `present=<story>`)."""
from __future__ import annotations

import streamlit as st

from core.errors import UserError
from core.hosted import is_hosted
from core.stories import PRESENT_KEYS, Story, View, add_view, get_story, list_stories, new_story, slide_query

MINE = "stories-made-here"  # ids of the stories this session made (a hosted demo lists only those)
SHOWING = "presenting"  # (story id, slide) the presenter last opened: a different one is a slide change
KEEP = {MINE, SHOWING, "tour-dismissed"}
NEW = "+ new story"

# Presentation: no sidebar, no header, no forms or page buttons (the slide is shown, not operated), larger type
PRESENT_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stExpandSidebarButton"], [data-testid="stHeader"],
[data-testid="stForm"], [data-testid="stMain"] [data-testid="stButton"]:not(.st-key-presenter *) { display: none; }
html { font-size: 19px; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding: 1.2rem 3rem 3rem; }
</style>"""


def replace_query(params: dict) -> None:
    """Replace the page's URL state with `params`, keeping the presenter's keys: a page that rewrites its whole link
    must not end the presentation it is shown in."""
    kept = {k: st.query_params[k] for k in PRESENT_KEYS if k in st.query_params}
    st.query_params.from_dict({**params, **kept})


def visible_stories() -> list[Story]:
    """The stories a picker offers: all of them, or on a hosted demo the ones this visit made."""
    stories = list_stories()
    if is_hosted():
        mine = set(st.session_state.get(MINE, []))
        stories = [s for s in stories if s.id in mine]
    return stories


def _remember(story: Story) -> None:
    st.session_state[MINE] = [*st.session_state.get(MINE, []), story.id]


def pin_view(page) -> None:
    """The sidebar's popover: pin the page as it is now (its URL state) to a story, with a title and a note."""
    with st.popover("Pin this view", icon=":material/push_pin:", width="stretch",
                    help="add what this page shows now (its link) to a story you can present and share"):
        stories = {s.id: s for s in visible_stories()}
        with st.form("pin-view", border=False):
            target = st.selectbox("Story", [*stories, NEW], format_func=lambda k: NEW if k == NEW else (
                f"{stories[k].title} ({len(stories[k].views)} views)"), help="the story to add this view to")
            new_title = st.text_input("New story's title", placeholder="e.g. CNN vs ViT on shapes",
                                      help=f"names the story made when Story is '{NEW}'")
            title = st.text_input("View title", value=page.title, help="the slide's heading when presented")
            note = st.text_input("Note", placeholder="one line: what to look at", help="shown under the title")
            pinned = st.form_submit_button("Pin", type="primary", help="add the view to the story")
        if pinned:
            query = {k: st.query_params.get_all(k) for k in st.query_params if k not in PRESENT_KEYS}
            try:
                view = View.make(page.url_path, query, title, note)
                if target == NEW:
                    story = new_story(new_title or "Untitled story")
                    _remember(story)
                    target = story.id
                story = add_view(target, view)
            except UserError as e:
                st.error(str(e))
                return
            st.success(f"Pinned as view {len(story.views)} of '{story.title}'.")
            st.page_link("app_pages/stories.py", label="Open the story", icon=":material/slideshow:",
                         query_params={"story": story.id})


def presenting() -> Story | None:
    """The story the link presents (`present=<id>`), or None; a link to a story that is gone or empty loses its
    presenter keys and says so."""
    story_id = st.query_params.get("present")
    if story_id is None:
        return None
    story = get_story(story_id)
    if story is None or not story.views:
        for k in PRESENT_KEYS:
            st.query_params.pop(k, None)
        st.toast("That story is gone or has no views: showing the app instead.", icon=":material/info:")
        return None
    return story


def present(story: Story, current, pages: dict) -> None:
    """Open the link's slide, then draw the presenter's bar above it: the story, where we are, the view's title and
    note, previous / next / exit (also the Left, Right and Esc keys)."""
    try:
        slide = int(st.query_params.get("slide", "1"))
    except ValueError:
        slide = 1
    slide = min(max(slide, 1), len(story.views))
    if st.session_state.get(SHOWING) != (story.id, slide):  # arriving at this slide by its link
        page, query = slide_query(story, slide)
        if current.url_path != page:
            _open(story, slide, pages)
        _forget_widgets(story, slide)
        st.query_params.from_dict(query)  # the same page: it runs below with the view's choices
    st.html(PRESENT_CSS)
    view = story.views[slide - 1]
    with st.container(key="presenter"):
        left, prev, nxt, leave = st.columns([5, 1.5, 1.5, 1.5], vertical_alignment="center")
        left.caption(f"{story.title} · {slide} / {len(story.views)}")
        if prev.button("Previous", icon=":material/chevron_left:", disabled=slide == 1, shortcut="Left",
                       width="stretch", help="the previous view (Left arrow)"):
            _open(story, slide - 1, pages)
        if nxt.button("Next", icon=":material/chevron_right:", disabled=slide == len(story.views), shortcut="Right",
                      width="stretch", help="the next view (Right arrow)"):
            _open(story, slide + 1, pages)
        if leave.button("Exit", icon=":material/close:", shortcut="Esc", width="stretch",
                        help="leave the presentation (Esc)"):
            st.session_state.pop(SHOWING, None)
            st.switch_page("app_pages/stories.py", query_params={"story": story.id})
        st.header(view.title, anchor=False)
        if view.note:
            st.markdown(f"##### {view.note}")
        st.divider()


def _forget_widgets(story: Story, slide: int) -> None:
    """Another slide's widget choices must not override this one's link: drop them, and note the slide shown."""
    for k in [k for k in st.session_state if k not in KEEP]:
        del st.session_state[k]
    st.session_state[SHOWING] = (story.id, slide)


def _open(story: Story, slide: int, pages: dict) -> None:
    """Go to slide `slide`: its page with its link's query (a switch, so the browser's address follows)."""
    _forget_widgets(story, slide)
    page, query = slide_query(story, slide)
    st.switch_page(pages.get(page, pages[""]), query_params=query)  # a page since removed: Overview
