"""Numbers read from the page's link: a link is typed, pasted and edited by hand, so a value `int()` cannot read
("abc", "²") is the default and one outside the widget's bounds is brought within them, never an exception."""
from __future__ import annotations

import streamlit as st


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def url_int(name: str, default: int, low: int, high: int) -> int:
    """The link's integer `name` within [low, high]; the default when it is missing or does not read."""
    value = _int(st.query_params.get(name, ""))
    return default if value is None else min(high, max(low, value))


def url_ints(name: str) -> list[int]:
    """Every whole number (0 or more) the link gives for `name` (a repeated key); the others left out."""
    return [v for v in map(_int, st.query_params.get_all(name)) if v is not None and v >= 0]
