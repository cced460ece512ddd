"""Does a polling fragment lose a page's rerun? `benchmarks/fragment_race_app.py` served three times: its sidebar
fragment polling every 0.2 s without and with the app's fix (ui/rerun_race.py), and with no polling; N Chromium
sessions each click a button and upload a file in turn, STEPS times. A step is whole when, with the script idle,
the page shows the new click count or the uploaded file's name; one still not whole after 20 s counts as lost.
`--event-delay S` serves through benchmarks/fragment_race_server.py, which hands every script event to the event
loop S seconds late (a busy server), so that the race strikes on most runs.

    .venv/bin/python benchmarks/fragment_race.py [--sessions 16] [--steps 40] [--event-delay 0]
"""
import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load_sessions import free_port, wait_healthy  # benchmarks/: the crowd benchmark's
from playwright.async_api import async_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
APP = Path(__file__).with_name("fragment_race_app.py")
SERVER = Path(__file__).with_name("fragment_race_server.py")


async def _idle(page, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if await page.get_attribute("[data-testid=stApp]", "data-test-script-state") == "notRunning":
            await asyncio.sleep(0.8)
            if await page.get_attribute("[data-testid=stApp]", "data-test-script-state") == "notRunning":
                return
        await asyncio.sleep(0.1)


async def _session(browser, url: str, i: int, steps: int, lost: list) -> None:
    page = await browser.new_page()
    await page.goto(url)
    await _idle(page, 60)
    clicks = 0
    for step in range(steps):
        if step % 2 == 0:
            await page.get_by_role("button", name="click").click()
            clicks += 1
            want = f"clicks: {clicks}"
        else:
            name = f"s{i}-{step}.txt"
            await page.locator("input[type=file]").set_input_files(
                files=[{"name": name, "mimeType": "text/plain", "buffer": b"x" * 10}])
            want = f"result: {name}"
        end = time.time() + 20
        while time.time() < end:
            await _idle(page, 5)
            if await page.get_by_text(want, exact=True).count():
                break
            await asyncio.sleep(0.3)
        else:
            lost.append((i, step, want))
            clicks = int((await page.get_by_text("clicks:").first.inner_text()).split()[-1])  # go on from what it shows
    await page.close()


def serve(poll: float, fix: bool, delay: float = 0.0, trace: str = "") -> tuple[subprocess.Popen, str]:
    """The race app on a free port: (server process, its URL)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(SERVER), "run", str(APP), "--server.headless", "true",
                               "--server.port", str(port), "--runner.postScriptGC", "false"],
                              env=os.environ | {"RACE_POLL": str(poll), "RACE_FIX": str(int(fix)),
                                                "RACE_EVENT_DELAY": str(delay), "RACE_TRACE": trace},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    return server, url


async def run(url: str, sessions: int, steps: int) -> list:
    """(session, step, what it waited for) of each lost step."""
    lost: list = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        await asyncio.gather(*(_session(browser, url, i, steps, lost) for i in range(sessions)))
        await browser.close()
    return lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--event-delay", type=float, default=0.0)
    args = ap.parse_args()
    for poll, fix in ((0.2, False), (0.2, True), (0.0, False)):
        trace = Path(tempfile.mkdtemp()) / "dropped.txt"
        trace.touch()
        server, url = serve(poll, fix, args.event_delay, str(trace))
        try:
            t = time.time()
            lost = asyncio.run(run(url, args.sessions, args.steps))
        finally:
            server.terminate()
            server.wait(timeout=30)
        kinds = {k: sum(1 for _, _, w in lost if w.startswith(k)) for k in ("clicks", "result")}
        print(f"fragment polling every {poll:g} s, {'with' if fix else 'without'} the fix" if poll
              else "no polling fragment", f"- {args.sessions} sessions x "
              f"{args.steps} steps in {time.time() - t:.0f} s: {len(lost)} lost ({kinds['clicks']} clicks, "
              f"{kinds['result']} uploads)", lost[:5], flush=True)
        dropped = trace.read_text().splitlines()
        ends = sum(1 for line in dropped if line.split()[2] == "SCRIPT_STOPPED_WITH_SUCCESS")
        explained = sum(1 for _, _, want in lost
                        if any(line.split(None, 3)[2:] == ["ENQUEUE_FORWARD_MSG", want] for line in dropped))
        print(f"  the server dropped the queued events of {ends} page runs that had ended (a fragment's rerun "
              f"replaced their runner); {explained} of the {len(lost)} lost steps had their element among them",
              flush=True)


if __name__ == "__main__":
    main()
