"""Seconds from `streamlit run app.py` starting to the Overview's title drawn in headless Chromium.

    .venv/bin/python benchmarks/app_start.py [--repeats 3]

A cold start each time (a new server process, an empty store); used by benchmarks/speed.py (section `app`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_page_seconds(timeout: float = 60) -> float:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    store = tempfile.mkdtemp(prefix="cnnvit-start-")
    env = os.environ | {"CNNVIT_CACHE_DIR": store}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=FLAGS)
        page = browser.new_page()
        t0 = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:  # the first moment the server answers, the browser asks for the page
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.perf_counter() - t0 > timeout:
                        raise TimeoutError("the server did not start") from None
                    time.sleep(0.02)
            page.goto(f"http://127.0.0.1:{port}/", timeout=timeout * 1000)
            page.get_by_role("heading", name="CNN vs ViT Lab").wait_for(timeout=timeout * 1000)
            return time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()
            shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times = sorted(first_page_seconds() for _ in range(args.repeats))
    print(f"first page: median {times[len(times) // 2]:.2f} s (min {times[0]:.2f}, max {times[-1]:.2f})")
