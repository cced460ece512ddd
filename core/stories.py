"""Stories: views of the app pinned in order, each a page with its URL state, a title and a one-line note, to present
full-screen in a review and to share by link.

A view is what the app shows at a link (every page keeps its choices in the URL), so a story stores links, not
pictures: presenting it opens each one live, on the store's results. A story is a store record (kind "story") under
a random id; its link is the way to it (a hosted demo lists to a visitor only the stories made in that visit).
Edits are read-modify-write under the story's lock, so two sessions editing one story lose nothing.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field, replace

from core.errors import UserError
from core.hosted import is_hosted
from core.records import JsonRecord
from core.store import Store

KIND = "story"
MAX_VIEWS = 40
MAX_TITLE = 120
MAX_NOTE = 300
MAX_QUERY_CHARS = 4000  # a view's URL state, all values together
MAX_HOSTED_STORIES = 1000  # a public deployment's visitors cannot fill its disk with stories
PRESENT_KEYS = ("present", "slide")  # the presenter's own URL keys, never part of a view
_PAGE = re.compile(r"[a-z0-9-]{0,40}")  # a page's url_path ("" is the default page)
_ID = re.compile(r"story-[A-Za-z0-9_-]{8,32}")


@dataclass(frozen=True)
class View(JsonRecord):
    """One pinned view: the page's url_path, its query parameters (each a list of values), a title and a note."""

    page: str = ""
    query: dict = field(default_factory=dict)
    title: str = ""
    note: str = ""

    @classmethod
    def make(cls, page: str, query: dict, title: str, note: str = "") -> View:
        """A checked view: a known-looking page path, string parameters within MAX_QUERY_CHARS, a title."""
        page = str(page or "").strip("/")
        if not _PAGE.fullmatch(page):
            raise UserError(f"{page!r} is not a page of this app")
        clean = {str(k): [str(v) for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
                 for k, vs in (query or {}).items() if k not in PRESENT_KEYS}
        if sum(len(k) + sum(len(v) for v in vs) for k, vs in clean.items()) > MAX_QUERY_CHARS:
            raise UserError(f"this view's link is longer than {MAX_QUERY_CHARS} characters; pin a simpler view")
        return cls(page=page, query=clean, title=_text(title, MAX_TITLE, "a view needs a title"),
                   note=_text(note, MAX_NOTE, None))


@dataclass(frozen=True)
class Story(JsonRecord):
    id: str = ""
    title: str = ""
    views: tuple = ()  # View
    created: float = 0.0
    updated: float = 0.0

    @classmethod
    def from_json(cls, d) -> Story:
        d = dict(d or {})
        d["views"] = tuple(View.from_json(v) for v in d.get("views", ()) if isinstance(v, dict))
        return super().from_json(d)

    def to_json(self) -> dict:
        return {**dict(self), "views": [v.to_json() for v in self.views]}


def _text(value, limit: int, required: str | None) -> str:
    text = " ".join(str(value or "").split())  # one line
    if required and not text:
        raise UserError(required)
    if len(text) > limit:
        raise UserError(f"at most {limit} characters ({len(text)} given)")
    return text


def _put(story: Story, store: Store) -> Story:
    store.put(story.id, KIND, story.to_json())
    return story


def new_story(title: str, store: Store | None = None) -> Story:
    store = store or Store()
    if is_hosted() and len(store.records(KIND)) >= MAX_HOSTED_STORIES:
        raise UserError(f"this deployment holds {MAX_HOSTED_STORIES} stories already; present or share an existing "
                        "one")
    now = time.time()
    story = Story(id="story-" + secrets.token_urlsafe(12), title=_text(title, MAX_TITLE, "a story needs a title"),
                  created=now, updated=now)
    return _put(story, store)


def get_story(story_id: str | None, store: Store | None = None) -> Story | None:
    """The story under `story_id`; None for no such story (or a malformed id: a link typed by hand)."""
    if not story_id or not _ID.fullmatch(story_id):
        return None
    record = (store or Store()).get(story_id)
    return Story.from_json(record.meta) if record is not None and record.kind == KIND else None


def list_stories(store: Store | None = None) -> list[Story]:
    """Every story, the most recently edited first."""
    stories = [Story.from_json(r.meta) for r in (store or Store()).records(KIND)]
    return sorted(stories, key=lambda s: -s.updated)


def _edit(story_id: str, change, store: Store | None) -> Story:
    store = store or Store()
    with store.lock(story_id):  # read, change, write: another session's edit in between is not lost
        story = get_story(story_id, store)
        if story is None:
            raise UserError("this story no longer exists")
        return _put(replace(change(story), updated=time.time()), store)


def add_view(story_id: str, view: View, store: Store | None = None) -> Story:
    def change(s: Story) -> Story:
        if len(s.views) >= MAX_VIEWS:
            raise UserError(f"a story holds at most {MAX_VIEWS} views")
        return replace(s, views=(*s.views, view))

    return _edit(story_id, change, store)


def move_view(story_id: str, index: int, offset: int, store: Store | None = None) -> Story:
    """Move view `index` by `offset` places (-1: earlier, 1: later), within the story."""
    def change(s: Story) -> Story:
        views = list(s.views)
        if not 0 <= index < len(views):
            raise UserError("no such view in this story")
        to = min(max(index + offset, 0), len(views) - 1)
        views.insert(to, views.pop(index))
        return replace(s, views=tuple(views))

    return _edit(story_id, change, store)


def remove_view(story_id: str, index: int, store: Store | None = None) -> Story:
    def change(s: Story) -> Story:
        if not 0 <= index < len(s.views):
            raise UserError("no such view in this story")
        return replace(s, views=s.views[:index] + s.views[index + 1:])

    return _edit(story_id, change, store)


def edit_view(story_id: str, index: int, title: str, note: str, store: Store | None = None) -> Story:
    def change(s: Story) -> Story:
        if not 0 <= index < len(s.views):
            raise UserError("no such view in this story")
        view = View.make(s.views[index].page, s.views[index].query, title, note)
        return replace(s, views=s.views[:index] + (view,) + s.views[index + 1:])

    return _edit(story_id, change, store)


def rename_story(story_id: str, title: str, store: Store | None = None) -> Story:
    return _edit(story_id, lambda s: replace(s, title=_text(title, MAX_TITLE, "a story needs a title")), store)


def delete_story(story_id: str, store: Store | None = None) -> bool:
    store = store or Store()
    return get_story(story_id, store) is not None and store.delete(story_id)


def slide_query(story: Story, slide: int) -> tuple[str, dict]:
    """Slide `slide` (1-based, clamped to the story) as (page url_path, query parameters): the view's own, and the
    presenter's (present = the story id, slide = its number)."""
    if not story.views:
        raise UserError("this story has no views yet: pin some first")
    slide = min(max(int(slide), 1), len(story.views))
    view = story.views[slide - 1]
    return view.page, {**view.query, "present": story.id, "slide": str(slide)}
