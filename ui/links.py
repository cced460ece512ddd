"""What a page reads from its link. Numbers: a link is typed, pasted and edited by hand, so a value `int()` cannot
read ("abc", "²") is the default and one outside the widget's bounds is brought within them, never an exception.
And when a link's choice counts at all (`first_run`)."""
from __future__ import annotations

import streamlit as st


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def first_run(name: str) -> bool:
    """True on the session's first run of what asks (`name`), then False. Where a page writes its choices back to
    the URL on every run, a later run cannot tell a link's choice from the page's own: the link's counts on this
    first run only (a new link opens a new session; a story's slide clears the session's state on arrival)."""
    first = not st.session_state.get(f"{name}-opened")
    st.session_state[f"{name}-opened"] = True
    return first


def url_int(name: str, default: int, low: int, high: int) -> int:
    """The link's integer `name` within [low, high]; the default when it is missing or does not read."""
    value = _int(st.query_params.get(name, ""))
    return default if value is None else min(high, max(low, value))


def url_ints(name: str) -> list[int]:
    """Every whole number (0 or more) the link gives for `name` (a repeated key); the others left out."""
    return [v for v in map(_int, st.query_params.get_all(name)) if v is not None and v >= 0]
