"""A fix for a Streamlit race that drops the end of a page run while a fragment polls (docs/reliability.md).

What happens (Streamlit 1.67, `streamlit/runtime/app_session.py`): a ScriptRunner's thread hands every event
(each element of the page, then `script_finished`, then SHUTDOWN) to the session's event loop with
`call_soon_threadsafe`. When a fragment's rerun request (a `run_every` poll, or a click inside a fragment) reaches
that loop in the moment after the runner's script ended on its own but before the loop has handled the runner's
queued events, `AppSession.request_rerun` finds the runner stopped and starts a new one at once. The old runner is
no longer current, so `_handle_scriptrunner_event_on_event_loop` drops every event it still had queued: the run's
last elements and its `script_finished` never reach the browser, which keeps the previous run's elements with the
script idle. Measured with `benchmarks/fragment_race.py` (16 sessions, a fragment polling every 0.2 s): 5 to 15
of 320 uploads lost from run to run; in a run whose server logged the dropped events, each of the 7 lost uploads
had its result among them. With this fix: 0 of 640 steps lost, and no run's events dropped.

The fix: a fragment's rerun that finds the current runner finished waits (on the event loop, a few milliseconds at
a time) until that runner's queued events, its SHUTDOWN last, have been handled, then goes on as Streamlit would:
to the runner current by then, or to a new one. Nothing is dropped and the order of messages is kept. Full-page
reruns are left alone (they redraw everything, so dropping a replaced run's events is right for them).

It patches one private method, so `install` checks that the installed Streamlit has the parts it relies on and
otherwise leaves Streamlit as it is (and says so in the log); `tests/test_rerun_race.py` fails if it is not active.
"""
from __future__ import annotations

import logging

import streamlit
from streamlit.runtime import app_session

_log = logging.getLogger(__name__)

RETRY_SECONDS = 0.005  # how often a waiting fragment rerun looks again
GIVE_UP_SECONDS = 5.0  # after this the old runner is taken as gone: Streamlit's own behaviour


def installed() -> bool:
    """Whether this process's AppSession carries the fix."""
    return getattr(app_session.AppSession._create_scriptrunner, "_waits_for_finished_runner", False)


def install() -> bool:
    """Patch AppSession once per process; True when the fix is active."""
    session = app_session.AppSession
    original = getattr(session, "_create_scriptrunner", None)
    if original is None or getattr(original, "_waits_for_finished_runner", False):
        return original is not None
    needed = ("request_rerun", "has_fragment", "_handle_scriptrunner_event_on_event_loop")
    if not all(hasattr(session, name) for name in needed):
        _log.warning("Streamlit %s lacks the parts ui.rerun_race patches; its fragment race is not fixed",
                     streamlit.__version__)
        return False

    def create_scriptrunner(self, initial_rerun_data, *args, **kwargs):
        old = getattr(self, "_scriptrunner", None)
        loop = getattr(self, "_event_loop", None)
        if old is None or not initial_rerun_data.fragment_id or loop is None:
            return original(self, initial_rerun_data, *args, **kwargs)
        # A fragment rerun that `old` refused: its script ended and its events are still queued on this loop.
        deadline = loop.time() + GIVE_UP_SECONDS

        def retry() -> None:
            state = getattr(self, "_state", None)
            if state is not None and state.name == "SHUTDOWN_REQUESTED":
                return
            if not self.has_fragment(initial_rerun_data.fragment_id):
                return  # the run that just ended removed it; so would request_rerun
            current = getattr(self, "_scriptrunner", None)
            if current is old and loop.time() < deadline:
                loop.call_later(RETRY_SECONDS, retry)  # its SHUTDOWN has not been handled yet
            elif current is None or current is old:
                original(self, initial_rerun_data, *args, **kwargs)
            elif not current.request_rerun(initial_rerun_data):  # a newer runner: it queues (or ran) the fragment
                create_scriptrunner(self, initial_rerun_data, *args, **kwargs)

        loop.call_soon_threadsafe(retry)  # after the events already queued: often they end with its SHUTDOWN

    create_scriptrunner._waits_for_finished_runner = True
    create_scriptrunner.__wrapped__ = original
    session._create_scriptrunner = create_scriptrunner
    return True
