"""The background jobs a page submitted, drawn where their results will appear."""
from __future__ import annotations

import streamlit as st

ACTIVE = ("queued", "running")


def any_active(rows: list[dict]) -> bool:
    return any(r["state"] in ACTIVE for r in rows)


def show_jobs(rows: list[dict]) -> None:
    """A progress bar for each queued or running job, the error of each failed one (job_rows' rows)."""
    for r in rows:
        if r["state"] in ACTIVE:
            st.progress(r["progress"], text=f"{r['title']}: {r['state']}")
        elif r["state"] == "failed":
            st.error(f"{r['title']}: {r['error']}")
