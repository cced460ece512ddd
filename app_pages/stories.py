"""Stories: the views pinned with "Pin this view", in order - reorder, retitle, remove, present full-screen, share."""
from urllib.parse import urlencode, urlsplit

import streamlit as st

from core.errors import UserError
from core.stories import delete_story, edit_view, get_story, move_view, remove_view, rename_story
from ui.navigation import FILES
from ui.stories import visible_stories

st.title("Stories")
st.caption("A story is a list of views - a page as you set it up, kept as its link - with a title and a one-line "
           "note each. Pin views with **Pin this view** in the sidebar, then present them full-screen in a review "
           "or send the link.")
stories = {s.id: s for s in visible_stories()}
linked = get_story(st.query_params.get("story"))
if linked is not None:
    stories.setdefault(linked.id, linked)  # a shared link opens its story, listed or not
if not stories:
    st.info("No story yet. Open a page, choose what it shows, and click **Pin this view** in the sidebar; the "
            "story appears here.")
    st.stop()

ids = list(stories)
chosen = linked.id if linked is not None else ids[0]
story_id = st.selectbox("Story", ids, index=ids.index(chosen), key="story-pick", format_func=lambda k: (
    f"{stories[k].title} ({len(stories[k].views)} views)"), help="the stories made here, the most recently edited "
    "first (a hosted demo lists the ones made in this visit; a shared link opens its own)")
st.query_params["story"] = story_id
story = stories[story_id]


def _do(change, *args) -> None:
    try:
        change(story.id, *args)
    except UserError as e:
        st.session_state["story-error"] = str(e)


if error := st.session_state.pop("story-error", None):
    st.error(error)

c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
c1.text_input("Title", value=story.title, key=f"title-{story.id}", help="the story's name (press Enter to keep it)",
              on_change=lambda: _do(rename_story, st.session_state[f"title-{story.id}"]))
if c2.button("Present", type="primary", icon=":material/slideshow:", disabled=not story.views, width="stretch",
             help="full-screen, one view at a time: Left / Right arrows to move, Esc to leave"):
    st.query_params.update({"present": story.id, "slide": "1"})
    st.rerun()
with c3.popover("Delete", icon=":material/delete:", width="stretch", help="delete this story (not its results)"):
    if st.button("Delete the story for good", type="primary", help="its views are links: the results stay"):
        delete_story(story.id)
        st.query_params.pop("story", None)
        st.rerun()

base = urlsplit(st.context.url or "")
root = f"{base.scheme}://{base.netloc}{base.path.rsplit('/stories', 1)[0].rstrip('/')}" if base.netloc else ""
st.markdown("**Share** - anyone with the link sees it, presented or as this list:")
st.code(f"{root}/?{urlencode({'present': story.id})}\n{root}/stories?{urlencode({'story': story.id})}",
        language=None)

if not story.views:
    st.info("This story has no views yet: open a page and click **Pin this view** in the sidebar.")
    st.stop()
st.subheader(f"{len(story.views)} views")
for i, view in enumerate(story.views):
    with st.container(border=True, key=f"view-{i}"):
        left, up, down, drop = st.columns([8, 1, 1, 1], vertical_alignment="center")
        with left:
            st.page_link(FILES.get(view.page, FILES[""]), label=f"{i + 1}. {view.title}", query_params=view.query,
                         help="open this view as it was pinned")
            if view.note:
                st.caption(view.note)
        up.button("", icon=":material/arrow_upward:", key=f"up-{i}", disabled=i == 0, on_click=_do,
                  args=(move_view, i, -1), help="show this view earlier")
        down.button("", icon=":material/arrow_downward:", key=f"down-{i}", disabled=i == len(story.views) - 1,
                    on_click=_do, args=(move_view, i, 1), help="show this view later")
        drop.button("", icon=":material/close:", key=f"drop-{i}", on_click=_do, args=(remove_view, i),
                    help="remove this view from the story")
        with st.expander("Edit title and note"), st.form(f"edit-{i}-{story.updated}", border=False):
            title = st.text_input("View title", value=view.title, help="the slide's heading")
            note = st.text_input("Note", value=view.note, help="one line under the heading")
            if st.form_submit_button("Save", help="keep this title and note"):
                _do(edit_view, i, title, note)
                st.rerun()
