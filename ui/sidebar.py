"""The sidebar every page shows: device, store, running jobs."""
from __future__ import annotations

import logging

import streamlit as st

from core.errors import UserError
from core.jobs import Jobs
from core.settings import device_description, get_settings, resolve_device
from core.store import Store
from ui.jobs import ACTIVE, rerun_when_done
from ui.pickers import auto_precision
from ui.stories import pin_view


@st.cache_data(ttl=30, show_spinner=False)
def _device() -> str:
    """The device and the precision `auto` runs at on it: without bf16 hardware that is fp32, and a page's result
    computed at another precision says so."""
    precision = auto_precision()
    why = " (no bf16 hardware)" if precision == "fp32" else ""
    return f"{device_description()}, auto precision {precision}{why}"


@st.cache_data(ttl=10, show_spinner=False)
def _store_size(root: str) -> str:
    return f"{Store(root).size_bytes() / 1e6:,.1f} MB"


def setup_problem() -> str | None:
    """Why the lab cannot run as set up, in words for the user, or None: a store folder it cannot use, or a device
    setting this machine cannot honour (CNNVIT_DEVICE=cuda without CUDA). The app asks before any page or the
    sidebar reads the store or picks a device, either of which would otherwise end every page in a traceback. A
    public deployment names no server path; its log does."""
    try:
        Store()
    except UserError as e:
        return _told(e, "The lab's store cannot be used; the server's log says why.")
    try:
        resolve_device()
    except UserError as e:
        return _told(e, "The lab's device setting cannot be used on this server; the server's log says why.")
    return None


def _told(error: UserError, hosted: str) -> str:
    logging.getLogger("core").error("%s", error)
    return hosted if get_settings().hosted else str(error)


def sidebar(page=None) -> None:
    """Device, store and jobs; with `page` (the page about to run), "Pin this view" for stories."""
    settings = get_settings()
    root = settings.cache_dir
    with st.sidebar:
        if page is not None:
            pin_view(page)
        st.caption(f"**Device:** {_device()}")
        if not settings.hosted:  # a public deployment shows neither its server paths nor walks its store every 10 s
            st.caption(f"**Store:** `{root}` ({_store_size(str(root))})")
        # jobs as the page run began (a job the page submits shows from the next click, the page shows it at once);
        # every 3 s while one runs; a session with none running polls nothing
        running = bool(Jobs().list(states=ACTIVE))
        st.fragment(_jobs, run_every=3 if running else None)()


def _jobs() -> None:
    active = Jobs().list(states=ACTIVE)
    rerun_when_done("sidebar_active", [{"state": j.state} for j in active])  # they finished: redraw the page
    if not active:
        st.caption("**Jobs:** none running")
        return
    st.caption(f"**Jobs:** {len(active)} queued or running")
    for j in active:
        where = f" - {j.progress.where()}" if j.progress.epochs else ""
        st.caption(f"{j.id}: {j.state}{where} - {j.title}")
