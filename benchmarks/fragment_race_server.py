"""`streamlit run ...` with fault injection for benchmarks/fragment_race.py and tests/test_rerun_race.py: with
RACE_EVENT_DELAY=S, every ScriptRunner event reaches the session's event loop S seconds late, in order, as on a
server whose event loop is busy. That widens the window in which docs/reliability.md's fragment race strikes from
milliseconds to S, so that it strikes on most runs instead of a few in a hundred. With RACE_TRACE=FILE it appends
a line to FILE for each event the session drops from a runner that a fragment's rerun replaced, with the text of
the markdown element the event carried: `dropped <session> <event> [<markdown>]`.

    python benchmarks/fragment_race_server.py run APP [streamlit options]
"""
import collections
import os
import sys

from streamlit.runtime.app_session import AppSession
from streamlit.web import cli

DELAY = float(os.environ.get("RACE_EVENT_DELAY", "0"))
TRACE = os.environ.get("RACE_TRACE")

if DELAY > 0:
    def _late(self, callback) -> None:
        queue = self.__dict__.setdefault("_late_events", collections.deque())

        def enqueue() -> None:
            queue.append(callback)
            self._event_loop.call_later(DELAY, lambda: queue.popleft()())  # one pop per push: first in, first out

        self._event_loop.call_soon_threadsafe(enqueue)

    AppSession._call_soon_on_event_loop = _late

if TRACE:
    _log = open(TRACE, "a", buffering=1)  # noqa: SIM115 - the server's lifetime
    _create, _handle = AppSession._create_scriptrunner, AppSession._handle_scriptrunner_event_on_event_loop

    def _traced_create(self, rerun_data, *args, **kwargs):
        if self._scriptrunner is not None and rerun_data.fragment_id:  # the runner refused: it had stopped
            self._scriptrunner.replaced_by_fragment = True
        return _create(self, rerun_data, *args, **kwargs)

    def _traced_handle(self, sender, event, forward_msg=None, *args, **kwargs):
        if sender is not self._scriptrunner and getattr(sender, "replaced_by_fragment", False):
            body = forward_msg.delta.new_element.markdown.body if forward_msg is not None else ""
            _log.write(f"dropped {self.id} {event.name} {body}".rstrip() + "\n")
        return _handle(self, sender, event, forward_msg, *args, **kwargs)

    AppSession._create_scriptrunner = _traced_create
    AppSession._handle_scriptrunner_event_on_event_loop = _traced_handle

if __name__ == "__main__":
    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main()
