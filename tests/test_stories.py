"""Stories (core/stories.py and the Stories page): pinned views kept in order, edited without losing another session's
edit, checked on the way in, and shown on a page that reorders, edits, presents and shares them."""
import subprocess
import sys

import pytest
from app_test import open_page

from core.errors import UserError
from core.settings import REPO_ROOT
from core.store import Store
from core.stories import (
    MAX_VIEWS,
    View,
    add_view,
    delete_story,
    edit_view,
    get_story,
    list_stories,
    move_view,
    new_story,
    remove_view,
    rename_story,
    slide_query,
)


def _views(story) -> list[str]:
    return [v.title for v in story.views]


def test_a_story_keeps_its_views_in_order_and_edits_them(store):
    s = new_story("  Review:   CNN vs ViT ", store)
    assert s.title == "Review: CNN vs ViT" and s.id.startswith("story-") and get_story(s.id, store) == s
    for i, page in enumerate(("", "compare", "confusion")):
        add_view(s.id, View.make(page, {"eval": ["a", "b"], "present": "x", "slide": "2"}, f"v{i}", "note"), store)
    s = get_story(s.id, store)
    assert _views(s) == ["v0", "v1", "v2"]
    assert s.views[1].query == {"eval": ["a", "b"]}  # the presenter's own keys are never part of a view
    assert _views(move_view(s.id, 2, -1, store)) == ["v0", "v2", "v1"]
    assert _views(move_view(s.id, 0, -1, store)) == ["v0", "v2", "v1"]  # the first stays first
    assert _views(move_view(s.id, 0, 5, store)) == ["v2", "v1", "v0"]  # clamped to the end
    assert _views(remove_view(s.id, 1, store)) == ["v2", "v0"]
    edited = edit_view(s.id, 0, "Confusions", "hexagon vs circle", store)
    assert (edited.views[0].title, edited.views[0].note, edited.views[0].page) == ("Confusions", "hexagon vs circle",
                                                                                   "confusion")
    assert rename_story(s.id, "Final", store).title == "Final"
    assert [x.id for x in list_stories(store)] == [s.id]
    assert slide_query(get_story(s.id, store), 9) == ("", {"eval": ["a", "b"], "present": s.id, "slide": "2"})
    assert delete_story(s.id, store) and get_story(s.id, store) is None and not delete_story(s.id, store)


def test_what_goes_in_is_checked(store):
    s = new_story("t", store)
    with pytest.raises(UserError, match="not a page"):
        View.make("../etc/passwd", {}, "x")
    with pytest.raises(UserError, match="longer than 4000 characters"):
        View.make("compare", {"eval": ["k" * 50] * 100}, "x")
    with pytest.raises(UserError, match="a view needs a title"):
        View.make("compare", {}, "   ")
    with pytest.raises(UserError, match="at most 300 characters"):
        View.make("compare", {}, "x", "n" * 301)
    assert View.make("compare", {}, "x", "two\nlines").note == "two lines"  # a note is one line
    with pytest.raises(UserError, match="no such view"):
        move_view(s.id, 3, 1, store)
    for i in range(MAX_VIEWS):
        add_view(s.id, View.make("", {}, f"v{i}"), store)
    with pytest.raises(UserError, match=f"at most {MAX_VIEWS} views"):
        add_view(s.id, View.make("", {}, "one more"), store)
    assert get_story("story-not-there", store) is None and get_story("x'; DROP TABLE records;--", store) is None
    with pytest.raises(UserError, match="no longer exists"):
        add_view("story-goneeeeeeeee", View.make("", {}, "x"), store)


ADD_MANY = """
import sys
from core.stories import View, add_view
from core.settings import REPO_ROOT
from core.store import Store
root, story, who = sys.argv[1:4]
for i in range(15):
    add_view(story, View.make("", {}, f"{who}{i}"), Store(root))
"""


def test_two_processes_pinning_at_once_lose_nothing(store):
    s = new_story("busy", store)
    procs = [subprocess.Popen([sys.executable, "-c", ADD_MANY, str(store.root), s.id, who], cwd=REPO_ROOT,
                              stderr=subprocess.PIPE, text=True) for who in "ab"]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    titles = _views(get_story(s.id, store))
    assert sorted(titles) == sorted(f"{w}{i}" for w in "ab" for i in range(15))
    assert [t for t in titles if t[0] == "a"] == [f"a{i}" for i in range(15)]  # each process's own order kept


def test_a_hosted_demo_caps_how_many_stories_visitors_make(store, monkeypatch):
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    monkeypatch.setattr("core.stories.MAX_HOSTED_STORIES", 3)
    for i in range(3):
        new_story(f"s{i}", store)
    with pytest.raises(UserError, match="holds 3 stories already"):
        new_story("one too many", store)


def test_the_stories_page_reorders_edits_and_deletes(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    at = open_page("app_pages/stories.py")
    assert not at.exception and "No story yet" in at.info[0].value
    store = Store(tmp_path)
    s = new_story("Review", store)
    for i, page in enumerate(("", "compare", "confusion")):
        add_view(s.id, View.make(page, {"eval": [f"k{i}"]}, f"view {i}", f"note {i}"), store)
    at = open_page("app_pages/stories.py", link={"story": s.id})
    assert not at.exception
    links = at.get("page_link")
    assert [(x.proto.label, x.proto.page) for x in links] == [("1. view 0", ""), ("2. view 1", "compare"),
                                                              ("3. view 2", "confusion")]
    assert "?present=" + s.id in at.code[0].value and "stories?story=" + s.id in at.code[0].value
    at.button(key="down-0").click().run()
    assert _views(get_story(s.id, store)) == ["view 1", "view 0", "view 2"]
    at.button(key="drop-2").click().run()
    assert _views(get_story(s.id, store)) == ["view 1", "view 0"]
    assert [x.proto.label for x in at.get("page_link")] == ["1. view 1", "2. view 0"]
    form = [t for t in at.text_input if t.label == "View title"][0]
    form.set_value("Leaderboard")
    [b for b in at.button if b.label == "Save"][0].click().run()
    assert _views(get_story(s.id, store)) == ["Leaderboard", "view 0"] and not at.exception
    at.text_input(key=f"title-{s.id}").set_value("Review, final").run()
    assert get_story(s.id, store).title == "Review, final"
    [b for b in at.button if b.label == "Present"][0].click().run()
    assert at.query_params["present"] in (s.id, [s.id]) and at.query_params["slide"] in ("1", ["1"])


def test_a_hosted_demo_lists_a_visitor_only_their_stories_but_opens_a_shared_link(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CNNVIT_HOSTED", "1")
    store = Store(tmp_path)
    theirs = new_story("someone else's", store)
    add_view(theirs.id, View.make("compare", {}, "their view"), store)
    at = open_page("app_pages/stories.py")
    assert "No story yet" in at.info[0].value  # another visitor's story is not listed
    at = open_page("app_pages/stories.py", link={"story": theirs.id})
    assert [x.proto.label for x in at.get("page_link")] == ["1. their view"]  # but its link opens it
    assert not [c for c in at.code if str(tmp_path) in c.value]


def test_presenting_a_story_opens_each_slide_and_survives_a_page_that_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIT_CACHE_DIR", str(tmp_path))
    store = Store(tmp_path)
    s = new_story("Review", store)
    add_view(s.id, View.make("stories", {"story": s.id}, "The list", "first"), store)
    add_view(s.id, View.make("a-page-since-removed", {}, "Gone", "second"), store)
    at = open_page(link={"present": s.id, "slide": "1"})
    assert [h.value for h in at.header] == ["The list"] and at.title[0].value == "Stories"
    assert not at.sidebar.caption  # presenting: no sidebar (device, store, jobs)
    [b for b in at.button if b.label == "Next"][0].click().run()
    assert not at.exception and [h.value for h in at.header] == ["Gone"]
    assert at.query_params["slide"] in ("2", ["2"]) and at.title[0].value == "CNN vs ViT Lab"  # Overview instead
    at = open_page(link={"present": "story-doesnotexist", "slide": "1"})
    assert "present" not in at.query_params and at.sidebar.caption  # a dead link shows the app, not an error
