"""A crowd on the hosted demo: 32 browser sessions ramp up, click through the app and leave while an evaluation runs.

    .venv/bin/python benchmarks/load_sessions.py [--sessions 32] [--ramp 30] [--hold 60] [--alone-loops 3]
                                                 [--ttl 15] [--settle 10] [--profile SECONDS] [--keep]

On loopback, with a fresh store in a temp folder, in hosted mode (CNNVIT_HOSTED=1, headless, a free port):

1. The store gets what a demo deployment builds before visitors come: a 2-layer CNN trained on `digits` (3 epochs,
   Adam) and the plain ViT (untrained), both evaluated on digits/val (the CNN last, so pages that open the newest
   evaluation open the CNN's).
2. `streamlit run app.py` starts; a warm-up session walks the app once (loads the model, fills Streamlit's caches),
   then the server's RSS is the baseline. One evaluation job starts (`--eval-model`, default SE-GoogLeNet over the
   5,000 `shapes` training images in fp32, a few minutes of CPU) in a background worker, as the Evaluate page does.
3. One session alone walks the app `--alone-loops` times: the page times without a crowd (the job running).
4. The crowd: N sessions (one Chromium, N contexts) start one every RAMP/N seconds, each walks the app in a loop
   until HOLD seconds after its start, then closes. A walk, with a person's pause (0.5-2 s) between steps:
   Overview -> Compare -> Confusion matrix -> click a diagonal cell (session i clicks class i mod 10) -> Predict ->
   upload an image (a different generated PNG per session). Pages are opened from the sidebar, as a person does.

Checks (exit 1 when one fails; a failed step leaves a screenshot in the temp folder):
- no errors: every step of every session ended drawn, with no exception and no error box;
- no cross-talk: the clicked cell's heading names the session's class with core's count for it; the upload shows
  the session's own image with exactly core's top-5 for it (the images' top-5s all differ, so a swap would show);
- each model loaded once (one `model loaded:` line per model in the server log; one cache miss per model in
  Streamlit's metrics);
- the evaluation job was running during the whole crowd, and it finished;
- memory: the server's RSS back within MEMORY_SLACK_MB of the baseline once Streamlit has dropped the closed sessions
  (it keeps a closed tab's session `server.disconnectedSessionTTL` seconds for a reconnect - `--ttl`, 15 s here
  against the default 120 - and drops expired ones when it stores the next closed session), and the bytes of uploads
  and images Streamlit holds (its /_stcore/metrics) back to 0.

Figures (not checks: the machine is shared): page time p50/p95 per step alone and in the crowd, and their ratio;
/_stcore/health latency (the server's event loop) alone and in the crowd; CPU used by the server, the job's worker,
Chromium and the whole machine; the server's thread count. `--profile S` (needs `pip install py-spy`) samples the
server for S seconds in the middle of the crowd, only while a thread holds the GIL, and prints the share of time the
GIL was held and where.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
DATASET = "digits"  # the pages' results: a CNN that learns digits in seconds
EVAL_DATASET, EVAL_SPLIT = "shapes", "train"  # the job's: the largest split on the hosted allow-list
# Once Streamlit has dropped the closed sessions, the server's RSS may stay this far above the warm-up baseline.
# The sessions' own data (uploads, images) is counted exactly by Streamlit's metrics and must be back to 0; what
# stays is native memory (allocator pools, libraries' per-thread state): +21 to +27 MB after 8 Predict sessions
# over a ~925 MB baseline, then ~+3.6 MB a round (tracemalloc: the Python heap flat from round to round).
MEMORY_SLACK_MB = 100.0
TOLERANCE = 1e-5  # probabilities: the page and core run the same code; only float summation order may differ
STEPS = ("Overview", "Compare", "Confusion matrix", "confusion cell", "Predict", "Predict upload")
TITLES = {"Overview": "CNN vs ViT Lab", "Compare": "Compare", "Confusion matrix": "Confusion matrix",
          "Predict": "Predict"}
TICK = os.sysconf("SC_CLK_TCK")


def sample_images(n: int) -> dict[str, bytes]:
    """N different 64x64 PNGs: a coloured background with a white shape whose size and place vary."""
    out = {}
    rng = np.random.default_rng(0)
    for i in range(n):
        background = tuple(int(c) for c in rng.integers(0, 256, 3))
        img = Image.new("RGB", (64, 64), background)
        draw = ImageDraw.Draw(img)
        x, y, r = 10 + 4 * (i % 5), 10 + 5 * (i % 4), 8 + 2 * (i % 6)
        (draw.ellipse if i % 2 else draw.rectangle)([x, y, x + 2 * r, y + 2 * r], fill=(255, 255, 255))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out[f"session-{i}.png"] = buf.getvalue()
    return out


def build_store(env: dict):
    """The demo's results: a CNN trained on digits and evaluated, beside the untrained ViT's evaluation. The CLI
    trains (as the deployment's build step would); returns the CNN's evaluation."""
    cmd = [sys.executable, "-m", "core", "train", "--model", "cnn-2layer", "--dataset", DATASET, "--epochs", "3",
           "--optimizer", "adam", "--lr", "0.003", "--limit", "5000", "--json"]  # hosted: the count must be named
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    run = json.loads(done.stdout)["model_id"]
    from core.evaluate import evaluate

    evaluate("vit-small", DATASET, "val")
    return evaluate(run, DATASET, "val")


def expected_cells(ev) -> list[tuple[str, int]]:
    """What the Confusion matrix opens on (the newest evaluation, the first 10 classes): for each row, its class
    and the count of its diagonal cell, as core computes them."""
    from core.confusion import class_subset, confusion
    from core.data import load_dataset

    classes = load_dataset(DATASET).classes
    cm = confusion(ev)
    return [(classes[i], int(cm[i, i])) for i in class_subset(ev, classes, "first", min(20, len(classes)))]


def expected_top5(models: list[str], images: dict[str, bytes]) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """What core says for each image and model: the same decoder, loader and predict_image the page uses."""
    from core.data.decode import decode_image
    from core.predict import load_for_prediction, predict_image

    loaded = {m: load_for_prediction(m) for m in models}
    return {name: {m: list(zip(p.labels, p.probabilities)) for m, p in
                   ((m, predict_image(loaded[m], decode_image(data, name=name), top_k=5)) for m in models)}
            for name, data in images.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def metrics(url: str) -> dict[str, float]:
    """Streamlit's own gauges and counters (/_stcore/metrics, OpenMetrics text), flattened."""
    text = urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=30).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "_bucket{" not in line:
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def chromium_pids() -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "chromium" in os.readlink(entry / "exe"):
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine spent not idle (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK  # less idle and iowait


def threads(pid: int) -> int:
    return int(re.search(r"Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


class Monitor(threading.Thread):
    """Every 0.5 s, charged to the current phase: CPU-seconds of the server, the job's worker, Chromium and the
    machine; the server's RSS peak and thread count; the latency of /_stcore/health; the job's state."""

    def __init__(self, server_pid: int, url: str, job):
        super().__init__(daemon=True)
        self.server_pid, self.url, self.job = server_pid, url, job  # job(): its (state, worker pid), or None
        self.phase, self.wall = "setup", defaultdict(float)
        self.cpu = defaultdict(lambda: defaultdict(float))
        self.peak_rss, self.peak_threads = defaultdict(float), defaultdict(int)
        self.health, self.job_states = defaultdict(list), defaultdict(list)
        self._stop_event = threading.Event()

    def _read(self) -> dict[str, float]:
        worker = (self.job() or (None, None))[1]
        return {"server": cpu_seconds(self.server_pid), "worker": cpu_seconds(worker) if worker else 0.0,
                "chromium": sum(cpu_seconds(p) for p in chromium_pids()), "machine": machine_busy_seconds()}

    def run(self) -> None:
        last, t_last = self._read(), time.monotonic()
        while not self._stop_event.wait(0.5):
            phase = self.phase
            t0 = time.monotonic()
            try:
                urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=60).read()
                self.health[phase].append(time.monotonic() - t0)
            except OSError:
                self.health[phase].append(float("inf"))
            now, t_now = self._read(), time.monotonic()
            for k in now:  # a process that ended reads 0: its last interval is not charged
                self.cpu[phase][k] += max(0.0, now[k] - last[k])
            self.wall[phase] += t_now - t_last
            last, t_last = now, t_now
            self.peak_rss[phase] = max(self.peak_rss[phase], rss_mb(self.server_pid))
            self.peak_threads[phase] = max(self.peak_threads[phase], threads(self.server_pid))
            self.job_states[phase].append((self.job() or ("none",))[0])

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# Page-side predicates, polled by Playwright. DRAWN is true once the step's page shows its last element, the script
# run that drew it has ended and nothing on it is stale - or once it shows an exception or an error box, which the
# caller reports. All three are needed: while a script runs, Streamlit keeps the previous run's elements on screen
# (marked data-stale only after a moment: under the crowd a new heading stood above the previous image's top-5
# table, unmarked), and the script state alone says nothing of which run ended. The sidebar's job list reruns as a
# fragment every 3 s while a job runs, so "not running" comes in short windows; polling every 200 ms catches them.
DRAWN = """([step, title, name, n]) => {
    const main = document.querySelector('[data-testid=stMain]');
    if (!main) return false;
    if (document.querySelector('[data-testid=stException], [data-testid=stAlertContentError]')) return true;
    const app = document.querySelector('[data-testid=stApp]');
    if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (main.querySelector('[data-stale=true]')) return false;
    const heads = (tag) => [...main.querySelectorAll(tag)].map(h => h.innerText.trim());
    if (title && !heads('h1').includes(title)) return false;
    const charts = [...main.querySelectorAll('[data-testid=stVegaLiteChart]')].filter(c => c.querySelector('.marks'));
    const tables = [...main.querySelectorAll('[data-testid=stDataFrame] table')];
    const topk = tables.length === n && tables.every(t => t.querySelectorAll('tr').length >= 6);
    switch (step) {
        case 'Overview': return heads('h3').includes('Stored evaluations') && tables.length >= 1;
        case 'Compare': return heads('h3').includes('Training curves') && charts.length >= 3;
        case 'Confusion matrix': return heads('h3').includes('Two models: where they disagree') && charts.length >= 2;
        case 'confusion cell': return heads('h3').some(h => h.includes('predicted'))
            && main.querySelectorAll('[data-testid=stImage] img').length >= 1;
        case 'Predict': return topk;
        case 'Predict upload': return heads('h3').includes(name) && topk;
    }
    return false; }"""

PAGE_STATE = """() => {
    const main = document.querySelector('[data-testid=stMain]');
    return {
        script: document.querySelector('[data-testid=stApp]').getAttribute('data-test-script-state'),
        stale: main.querySelectorAll('[data-stale=true]').length,
        headings: [...main.querySelectorAll('h3')].map(h => h.innerText.trim()),
        exceptions: document.querySelectorAll('[data-testid=stException]').length,
        errors: [...document.querySelectorAll('[data-testid=stAlertContentError]')].map(e => e.innerText),
        columns: [...main.querySelectorAll('[data-testid=stColumn]')]
            .filter(c => c.querySelector('[data-testid=stDataFrame]'))
            .map(c => ({model: c.querySelector('code')?.innerText.trim(),
                        rows: [...c.querySelectorAll('[data-testid=stDataFrame] table tr')].slice(1)
                              .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))})),
    }; }"""


def diagonal_cell(png: bytes, n: int, i: int) -> tuple[float, float] | None:
    """The centre of cell (i, i) in a screenshot of an n x n confusion chart, or None while it is not painted. The
    plot area is the bounding box of the view's grey fill (#f4f4f4, ui.charts.confusion_chart), which shows
    wherever a cell is empty (opened with a 5 x 5 square: text's anti-aliasing has that grey too); the chart
    stretches to its column's width, so cells are n x n equal rectangles."""
    from scipy import ndimage

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    fill = ndimage.binary_opening((np.abs(pixels - 244) <= 2).all(axis=-1), structure=np.ones((5, 5)))
    ys, xs = np.nonzero(fill)
    if len(xs) == 0 or ys.max() - ys.min() < 4 * n or xs.max() - xs.min() < 4 * n:
        return None
    width, height = (xs.max() + 1 - xs.min()) / n, (ys.max() + 1 - ys.min()) / n
    return xs.min() + (i + 0.5) * width, ys.min() + (i + 0.5) * height


class Session:
    """One visitor: a browser context walking the app. Each step's time is from the action (a goto, a click, an
    upload) to the page drawn; `steps` keeps (step, seconds, problems)."""

    def __init__(self, browser, url: str, index: int, image: tuple[str, bytes], expect: dict, shots: Path,
                 timeout: float):
        self.browser, self.url, self.index, self.shots, self.timeout = browser, url, index, shots, timeout
        self.name, self.data = image
        self.expect = expect  # {"cells": [(class, count)], "top5": {model: [(label, p)]}, "models": n}
        self.steps: list[tuple[str, float, list[str]]] = []
        self.rng = random.Random(index)

    async def _step(self, step: str, action, check=None) -> None:
        t0 = time.monotonic()
        problems: list[str] = []
        try:
            await action()
            await self.page.wait_for_function(DRAWN, arg=[step, TITLES.get(step), self.name,
                                                          self.expect["models"]], polling=200)
            seconds = time.monotonic() - t0
            state = await self.page.evaluate(PAGE_STATE)
            if state["exceptions"] or state["errors"]:
                problems.append(f"{state['exceptions']} exceptions, errors {state['errors']}")
            if check is not None and not problems:
                problems += await check(state)
        except Exception as e:  # a timeout or a closed page: this step's failure, with what the page showed
            seconds = time.monotonic() - t0
            try:
                state = await self.page.evaluate(PAGE_STATE)
                state.pop("columns")
            except Exception:
                state = {}
            problems.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (page: {state})")
        if problems:
            try:
                await self.page.screenshot(path=self.shots / f"failed-{self.index}-{len(self.steps)}-{step}.png",
                                           full_page=True)
            except Exception:
                pass
        self.steps.append((step, seconds, problems))

    async def _nav(self, link: str) -> None:
        await self.page.locator("[data-testid=stSidebarNav] a", has_text=link).first.click()

    async def _click_cell(self) -> None:
        chart = self.page.locator("[data-testid=stVegaLiteChart]").first
        n = len(self.expect["cells"])
        for _ in range(40):  # the chart paints after the run that drew it ended
            where = diagonal_cell(await chart.screenshot(), n, self.index % n)
            if where is not None:
                break
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError(f"no {n} x {n} grid painted in the confusion chart")
        box = await chart.bounding_box()
        x, y = where
        await self.page.mouse.click(box["x"] + x, box["y"] + y)

    async def _check_cell(self, state: dict) -> list[str]:
        cls, count = self.expect["cells"][self.index % len(self.expect["cells"])]
        want = f"true {cls}, predicted {cls}: {count} images"  # then " (first 24)" when it shows fewer
        shown = [h.split(" (first ")[0] for h in state["headings"] if "predicted" in h]
        return [] if shown == [want] else [f"cell: shows {shown}, core says {want!r}"]

    async def _upload(self) -> None:
        await self.page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
            {"name": self.name, "mimeType": "image/png", "buffer": self.data})

    async def _check_upload(self, state: dict) -> list[str]:
        problems = []
        images = [h for h in state["headings"] if h.endswith(".png")]
        if images != [self.name]:
            problems.append(f"shows images {images}")
        top5 = {c["model"]: [(r[0], float(r[1])) for r in c["rows"][:5]] for c in state["columns"]}
        for model, want in self.expect["top5"].items():
            got = top5.get(model)
            if got is None:
                problems.append(f"no top-5 for {model}")
            elif [lab for lab, _ in got] != [lab for lab, _ in want] or any(
                    abs(p - q) > TOLERANCE for (_, p), (_, q) in zip(got, want)):
                problems.append(f"{model}: shows {got[:2]}..., core says {want[:2]}...")
        return problems

    async def walk(self, loops: int | None = None, until: float | None = None, pause: bool = True) -> None:
        """Open the app and walk it `loops` times, or until the monotonic time `until` (at least once)."""
        context = await self.browser.new_context(viewport={"width": 1280, "height": 1400})
        self.page = await context.new_page()
        self.page.set_default_timeout(self.timeout * 1000)
        try:
            done = 0
            while True:
                walk = [("Overview", (lambda: self.page.goto(self.url)) if done == 0 else (lambda: self._nav(
                            "Overview")), None),
                        ("Compare", lambda: self._nav("Compare"), None),
                        ("Confusion matrix", lambda: self._nav("Confusion matrix"), None),
                        ("confusion cell", self._click_cell, self._check_cell),
                        ("Predict", lambda: self._nav("Predict"), None),
                        ("Predict upload", self._upload, self._check_upload)]
                for step, action, check in walk:
                    await self._step(step, action, check)
                    if pause:
                        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                done += 1
                if (loops is not None and done >= loops) or (until is not None and time.monotonic() >= until):
                    break
        finally:
            await context.close()


async def open_and_close(browser, url: str) -> None:
    """A session that opens a page without images (Evaluate) and closes: storing it makes Streamlit drop the
    sessions whose TTL is over, and it holds no upload or image of its own."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(300_000)
    await page.goto(f"{url}/evaluate")
    await page.get_by_role("heading", name="Evaluate").wait_for()
    await context.close()


async def drive(url: str, images: list[tuple[str, bytes]], expect, args, on_phase, shots: Path) -> dict:
    """Warm-up, alone, crowd, then the TTL drop; on_phase(name) between them. Returns the sessions by phase."""
    from playwright.async_api import async_playwright

    def session(i: int) -> Session:
        return Session(browser, url, i, images[i], {**expect, "top5": expect["top5"][images[i][0]]}, shots,
                       args.step_timeout)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            warm = session(0)
            await warm.walk(loops=1, pause=False)
            await asyncio.to_thread(on_phase, "warm")
            alone = session(1)
            await alone.walk(loops=args.alone_loops)
            await asyncio.to_thread(on_phase, "crowd")
            crowd = [session(2 + i) for i in range(args.sessions)]
            t0 = time.monotonic()

            async def visit(i: int, s: Session) -> None:
                await asyncio.sleep(i * args.ramp / args.sessions)
                await s.walk(until=time.monotonic() + args.hold)

            tasks = [asyncio.create_task(visit(i, s)) for i, s in enumerate(crowd)]
            if args.profile:
                await asyncio.sleep(args.ramp)
                await asyncio.to_thread(on_phase, "profile")
            await asyncio.gather(*tasks)
            crowd_wall = time.monotonic() - t0
            await asyncio.to_thread(on_phase, "closed")
            await asyncio.sleep(args.ttl + 2)
            await open_and_close(browser, url)
            await asyncio.to_thread(on_phase, "dropped")
        finally:
            await browser.close()
    return {"warm-up": [warm], "alone": [alone], "crowd": crowd, "crowd_wall": crowd_wall}


def wait_healthy(url: str, tries: int = 240) -> bool:
    """Whether the Streamlit server at `url` answers its health check within `tries` half-second waits."""
    for _ in range(tries):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return True
        except OSError:
            time.sleep(0.5)
    return False


def start_server(tmp: Path, env: dict, ttl: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
           "--server.disconnectedSessionTTL", str(ttl)]
    with open(tmp / "server.log", "wb") as log:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if wait_healthy(url):
        return server, url
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit(f"the server did not start; see {tmp / 'server.log'}")


def gil_profile(pid: int, seconds: int, out: Path) -> str:
    """py-spy's samples of the server taken only while a thread holds the GIL: their count against the samples a
    fully held GIL would give, and the share of them in each part of the code."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    rate = 100
    done = subprocess.run([py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
                           "--gil", "--nonblocking", "--format", "raw", "--output", str(out)], capture_output=True,
                          text=True)
    if done.returncode != 0 or not out.exists():
        return f"py-spy failed: {(done.stderr or done.stdout).strip()[-300:]}"
    where = {"model forward (torch)": "torch/nn/", "the app's pages and ui": "app_pages/|/ui/", "core": "/core/",
             "Streamlit (runtime, protobuf, caching)": "streamlit/",
             "pandas / Altair / numpy": "pandas/|altair/|numpy/",
             "the event loop (uvicorn, starlette, asyncio)": "uvicorn/|starlette/|anyio/|h11/|asyncio/"}
    total, parts = 0, defaultdict(int)
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        frames = stack.split(";")
        for frame in reversed(frames):  # charged to the innermost part named above
            hit = next((k for k, pat in where.items() if re.search(pat, frame)), None)
            if hit:
                parts[hit] += int(count)
                break
        else:
            parts["other"] += int(count)
    held = total / (rate * seconds)
    return (f"GIL held {held:.0%} of {seconds} s ({total} samples at {rate}/s); of that: "
            + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])))


UPLOADS = 'cache_memory_bytes{cache_type="UploadedFileManager",cache=""}'
MEDIA = 'cache_memory_bytes{cache_type="st_memory_media_file_storage",cache=""}'  # st.image files
MODEL_CACHE = 'cache_lookups_total{cache="ui.pickers.cached_model",cache_type="st_cache_resource",result="%s"}'


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{np.percentile(values, 50):5.2f} {np.percentile(values, 95):6.2f}  ({len(values)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--ramp", type=float, default=30.0, help="seconds over which the sessions start")
    ap.add_argument("--hold", type=float, default=60.0, help="each session walks the app again until this many "
                    "seconds after its start (at least once)")
    ap.add_argument("--step-timeout", type=float, default=180.0, help="seconds a step may take before it counts "
                    "as an error (a visitor would have left)")
    ap.add_argument("--alone-loops", type=int, default=3, help="walks of the one session alone")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to wait before reading memory")
    ap.add_argument("--ttl", type=int, default=15, help="server.disconnectedSessionTTL for this run (Streamlit's "
                    "default, 120, keeps closed sessions two minutes; shorter here so the run sees them dropped)")
    ap.add_argument("--eval-model", default="se-googlenet", help="the model the evaluation job scores (long enough "
                    "to outlast the crowd)")
    ap.add_argument("--eval-precision", default="fp32")
    ap.add_argument("--no-job", action="store_true", help="no evaluation job: the crowd alone")
    ap.add_argument("--profile", type=int, default=0, help="seconds of py-spy on the server in the crowd (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (store, server log)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cnnvit-crowd-"))
    env = os.environ | {"CNNVIT_HOSTED": "1", "CNNVIT_CACHE_DIR": str(tmp / "cache"), "CNNVIT_DEVICE": "cpu",
                        "CNNVIT_MAX_JOBS": "1"}
    os.environ.update(env)  # this process builds the store, computes the expected answers and submits the job
    sys.path.insert(0, str(REPO))
    from core.jobs import Jobs
    from core.results import quick_choices

    print(f"store {tmp / 'cache'}: training and evaluating the demo's results ...", flush=True)
    ev = build_store(env)
    models = quick_choices().default_models  # what Predict shows by default
    images = list(sample_images(args.sessions + 2).items())
    expect = {"cells": expected_cells(ev), "models": len(models), "top5": expected_top5(models, dict(images))}
    distinct = len({json.dumps(expect["top5"][n]) for n, _ in images}) == len(images)

    server, url = start_server(tmp, env, args.ttl)
    print(f"server pid {server.pid} on {url}; Predict's models: {', '.join(models)}; warm-up, "
          f"{args.alone_loops} walks alone, then {args.sessions} sessions ...", flush=True)
    jobs, job = Jobs(), None

    def job_now() -> tuple[str, int | None] | None:
        if job is None:
            return None
        now = jobs.get(job.id)
        return now.state, now.pid

    monitor = Monitor(server.pid, url, job_now)
    monitor.start()
    seen: dict[str, dict] = {}

    def on_phase(name: str) -> None:
        nonlocal job
        if name == "warm":  # the warm-up session closed: settle, read the baseline, start the evaluation
            time.sleep(args.settle)
            seen["baseline"] = {"rss": rss_mb(server.pid)}
            monitor.phase = "alone"
            if args.no_job:
                return
            job = jobs.submit("evaluate", {"model": args.eval_model, "dataset": EVAL_DATASET, "split": EVAL_SPLIT,
                                           "precision": args.eval_precision})
            for _ in range(600):
                if jobs.get(job.id).state != "queued":
                    break
                time.sleep(0.1)
        elif name == "crowd":
            monitor.phase = "crowd"
        elif name == "profile":
            seen["profile"] = gil_profile(server.pid, args.profile, tmp / "py-spy.txt")
        elif name == "closed":
            monitor.phase = "closed"
            seen["read"] = metrics(url)  # the last sessions closed a moment ago
            time.sleep(args.settle)
            seen["closed"] = {"rss": rss_mb(server.pid), **metrics(url)}
        elif name == "dropped":
            time.sleep(args.settle)
            seen["dropped"] = {"rss": rss_mb(server.pid), **metrics(url)}

    rows: list[tuple[str, bool, str]] = []
    try:
        by_phase = asyncio.run(drive(url, images, expect, args, on_phase, tmp))
        monitor.stop()
        for phase in ("warm-up", "alone", "crowd"):
            steps = [(s, st) for s in by_phase[phase] for st in s.steps]
            failed = [(s, st) for s, st in steps if st[2]]
            rows.append((f"{phase}: steps without an error", not failed,
                         f"{len(steps) - len(failed)} of {len(steps)} ({len(by_phase[phase])} sessions)"
                         + "".join(f"; session {s.index} {st[0]}: {'; '.join(st[2])}" for s, st in failed[:5])))
        checked = [st for s in by_phase["crowd"] for st in s.steps
                   if st[0] in ("confusion cell", "Predict upload")]
        rows.append(("crowd: cells and uploads checked against core",
                     bool(checked) and not any(st[2] for st in checked),
                     f"{len(checked)} (each session its own class and image)"))
        rows.append(("the images' top-5s all differ", distinct, "so a swapped result would show" if distinct else
                     "two images give the same top-5: a swap could go unseen"))
        loads = re.findall(r"model loaded: (\S+)", (tmp / "server.log").read_text())
        rows.append(("model loads in the server log", sorted(loads) == sorted(models),
                     ", ".join(f"{m} x{loads.count(m)}" for m in models)))
        last = seen["dropped"]
        misses, hits = (last.get(MODEL_CACHE % k, 0) for k in ("miss", "hit"))
        rows.append(("model cache (Streamlit metrics)", misses == len(models), f"{misses:.0f} misses, {hits:.0f} hits"))
        if job is None:
            rows.append(("no evaluation job (--no-job)", True, "nothing polls: the pages' and the sidebar's job lists "
                         "refresh only while a job runs"))
        else:
            during = monitor.job_states["crowd"]
            rows.append((f"evaluation job {job.id} ({args.eval_model}, {args.eval_precision}) during the crowd",
                         set(during) == {"running"}, ", ".join(f"{n} x{during.count(n)}" for n in dict.fromkeys(during))
                         + " (sampled every 0.5 s)"))
            for _ in range(2400):
                if jobs.get(job.id).state not in ("queued", "running"):
                    break
                time.sleep(0.5)
            final = jobs.get(job.id)
            res = final.result or {}
            rows.append((f"evaluation job {job.id} result", final.state == "done",
                         f"done: {res.get('n')} images, top-1 {res.get('top1'):.3f}" if final.state == "done"
                         else f"{final.state}: {final.error}"))
        base = seen["baseline"]["rss"]
        rows.append(("server RSS (MB)", last["rss"] - base <= MEMORY_SLACK_MB,
                     f"baseline {base:.0f} after the warm-up; peak {monitor.peak_rss['alone']:.0f} alone, "
                     f"{monitor.peak_rss['crowd']:.0f} in the crowd; {seen['closed']['rss']:.0f} {args.settle:.0f} s "
                     f"after the last session closed; {last['rss']:.0f} once Streamlit dropped them "
                     f"({last['rss'] - base:+.1f}, allowed +{MEMORY_SLACK_MB:.0f})"))
        rows.append(("active sessions (Streamlit metrics)", last.get("active_sessions", 0) == 0,
                     f"{seen['closed'].get('active_sessions', 0):.0f} after closing, "
                     f"{last.get('active_sessions', 0):.0f} after the TTL"))
        held = [(seen[k].get(UPLOADS, 0), seen[k].get(MEDIA, 0)) for k in ("read", "closed", "dropped")]
        rows.append(("bytes Streamlit holds: uploads, media", held[2] == (0, 0),
                     f"{held[0][0]:,.0f}, {held[0][1]:,.0f} as the last closed; {held[1][0]:,.0f}, {held[1][1]:,.0f} "
                     f"{args.settle:.0f} s later (kept {args.ttl} s for a reconnect); {held[2][0]:,.0f}, "
                     f"{held[2][1]:,.0f} after the TTL and the next closed session"))
    finally:
        monitor.stop() if monitor.is_alive() else None
        if job is not None and jobs.get(job.id).state in ("queued", "running"):
            jobs.cancel(job.id)
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    width = max(len(r[0]) for r in rows)
    print(f"\n{'check':<{width}}  ok   what happened")
    for what, ok, detail in rows:
        print(f"{what:<{width}}  {'yes' if ok else 'NO':<3}  {detail}")

    print(f"\npage time in seconds, from the click (or upload) to the page drawn; p50 p95 (samples). The crowd: "
          f"{args.sessions} sessions started over {args.ramp:.0f} s, each walking until {args.hold:.0f} s after its "
          f"start ({by_phase['crowd_wall']:.0f} s in all); Chromium runs on the server's cores")
    times = {ph: defaultdict(list) for ph in ("alone", "crowd")}
    for ph in times:
        for s in by_phase[ph]:
            for step, seconds, problems in s.steps:
                if not problems:
                    times[ph][step].append(seconds)
    print(f"{'step':<18} {'alone':>20}  {'crowd':>20}  ratio p50  p95")
    for step in STEPS:
        a, c = times["alone"][step], times["crowd"][step]
        ratio = (f"{np.percentile(c, 50) / np.percentile(a, 50):8.1f} "
                 f"{np.percentile(c, 95) / np.percentile(a, 95):5.1f}" if a and c else "")
        print(f"{step:<18} {percentiles(a):>20}  {percentiles(c):>20}  {ratio}")
    print(f"{'/_stcore/health':<18} {percentiles(monitor.health['alone']):>20}  "
          f"{percentiles(monitor.health['crowd']):>20}  (the server's event loop answering)")

    print("\nCPU, in cores busy on average (CPU-seconds / wall seconds), of "
          f"{os.cpu_count()} cores; threads: the server's peak count")
    print(f"{'phase':<8} {'wall s':>7} {'server':>7} {'job':>6} {'chromium':>9} {'machine':>8} {'threads':>8}")
    for ph in ("alone", "crowd"):
        w, cpu = monitor.wall[ph], monitor.cpu[ph]
        print(f"{ph:<8} {w:7.0f} {cpu['server'] / w:7.2f} {cpu['worker'] / w:6.2f} {cpu['chromium'] / w:9.2f} "
              f"{cpu['machine'] / w:8.2f} {monitor.peak_threads[ph]:8d}")
    if "profile" in seen:
        print(f"\nserver profile in the crowd (py-spy --gil): {seen['profile']}")

    failed = [r for r in rows if not r[1]]
    keep = args.keep or failed
    print(f"\n{'all checks passed' if not failed else f'{len(failed)} checks FAILED'}; "
          + (f"store and server log kept in {tmp}" if keep else "temp folder removed (--keep keeps it)"))
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
