"""Does a polling fragment lose a page's rerun? `benchmarks/fragment_race_app.py` served twice, with its sidebar
fragment polling every 0.2 s and with no polling; N Chromium sessions each click a button and upload a file in
turn, STEPS times. A step is whole when, with the script idle, the page shows the new click count or the uploaded
file's name; one still not whole after 20 s counts as lost.

    .venv/bin/python benchmarks/fragment_race.py [--sessions 16] [--steps 40]
"""
import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from load_sessions import free_port  # benchmarks/: the crowd benchmark's
from playwright.async_api import async_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
APP = Path(__file__).with_name("fragment_race_app.py")


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


def _serve(poll: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                               "--server.port", str(port), "--runner.postScriptGC", "false"],
                              env=os.environ | {"RACE_POLL": str(poll)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    return server, f"http://127.0.0.1:{port}"


async def _run(url: str, sessions: int, steps: int) -> list:
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
    args = ap.parse_args()
    for poll in (0.2, 0.0):
        server, url = _serve(poll)
        try:
            t = time.time()
            lost = asyncio.run(_run(url, args.sessions, args.steps))
        finally:
            server.terminate()
            server.wait(timeout=30)
        kinds = {k: sum(1 for _, _, w in lost if w.startswith(k)) for k in ("clicks", "result")}
        print(f"fragment polling every {poll:g} s" if poll else "no polling fragment", f"- {args.sessions} sessions x "
              f"{args.steps} steps in {time.time() - t:.0f} s: {len(lost)} lost ({kinds['clicks']} clicks, "
              f"{kinds['result']} uploads)", lost[:5], flush=True)


if __name__ == "__main__":
    main()
