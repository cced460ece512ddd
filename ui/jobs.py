"""The background jobs a page submitted, drawn where their results will appear."""
from __future__ import annotations

import streamlit as st

ACTIVE = ("queued", "running")
POLL_SECONDS = 2


def any_active(rows: list[dict]) -> bool:
    return any(r["state"] in ACTIVE for r in rows)


def poll_every(rows: list[dict]) -> float | None:
    """`run_every` for a fragment that shows these jobs: POLL_SECONDS while one is queued or running, else None. A
    session with nothing running costs the server nothing between clicks (32 open sessions each polling every few
    seconds were the hosted demo's largest load: docs/reliability.md)."""
    return POLL_SECONDS if any_active(rows) else None


def rerun_when_done(flag: str, rows: list[dict]) -> None:
    """Called in a polling fragment: the first poll that finds none of `rows` active reruns the whole page once, which
    draws their results and, nothing being active any more, stops the polling. `flag`: a session-state key."""
    active = any_active(rows)
    if st.session_state.get(flag) and not active:
        st.session_state[flag] = False
        st.rerun()
    st.session_state[flag] = active


def show_jobs(rows: list[dict]) -> None:
    """A progress bar for each queued or running job, the error of each failed one (job_rows' rows)."""
    for r in rows:
        if r["state"] in ACTIVE:
            st.progress(r["progress"], text=f"{r['title']}: {r['state']}"
                        + (f" ({r['message']})" if r.get("message") else ""))
        elif r["state"] == "failed":
            st.error(f"{r['title']}: {r['error']}")
