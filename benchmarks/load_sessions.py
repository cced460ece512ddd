"""Eight people on the hosted demo at once: concurrent Predict sessions with uploads while an evaluation runs.

    .venv/bin/python benchmarks/load_sessions.py [--sessions 8] [--rounds 1] [--settle 10] [--ttl 15]
                                                 [--eval-model se-googlenet] [--keep]

On loopback, with a fresh store in a temp folder: starts `streamlit run app.py` in hosted mode
(CNNVIT_HOSTED=1, headless, a free port), submits one evaluation job (SE-GoogLeNet, the heaviest scratch
architecture, over the 5,000 `shapes` training images, in a background worker, as the Evaluate page does),
then opens one browser (Debian's Chromium through Playwright) with N contexts - N separate sessions - that at
the same time open Predict, upload a different generated image each and read every model's top-5 from the
page. Checks:

- no cross-talk: each session shows only its own image, and its top-5 (labels and probabilities) is the
  one core computes for that image with the same model (and the N images' top-5s all differ, so a swap
  would show);
- each model loaded once: the server's log has one `model loaded: ID` line per model (core/predict.py
  logs it; the Streamlit resource cache holds the model for every session) and Streamlit's metrics count
  one cache miss per model;
- the evaluation job was running when each session read its top-5, and it finished;
- memory: the server's RSS after a warm-up session (baseline), its peak while the N sessions run, after they
  close (`--settle` seconds later) and once Streamlit has dropped them; that last one must be back near the
  baseline (MEMORY_SLACK_MB), and the bytes of uploads and images Streamlit holds (its /_stcore/metrics)
  back to 0. `--rounds K` runs the N sessions K times (the job overlaps the first) and prints how the RSS
  moves from round to round.

Prints a table, exits 1 when a check fails (a failed session leaves a screenshot next to the server log).
Streamlit keeps a closed tab's session (state, uploads) for `server.disconnectedSessionTTL` seconds (default
120) so that a reload can resume it, and drops the expired ones when it stores the next closed session
(AppSession.__del__ then shuts them down, freeing their uploads). This run sets the TTL to `--ttl` (15 s)
and closes one more session after it, to see that happen.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
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
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
EVAL_DATASET, EVAL_SPLIT = "shapes", "train"  # the largest split on the hosted allow-list
# Once Streamlit has dropped the closed sessions, the server's RSS may stay this far above the warm-up baseline.
# The sessions' own data is a few KB (their uploads and images, counted exactly by Streamlit's metrics, must be
# back to 0) and the Python heap is flat from round to round (tracemalloc, 6 rounds of 8: 250.8-250.95 MB);
# what stays is native memory (allocator pools, libraries' per-thread state), not Python objects (measured:
# +21 to +27 MB after one round of 8 over a ~925 MB baseline, then ~+3.6 MB a round, not monotonic).
MEMORY_SLACK_MB = 50.0
TOLERANCE = 1e-5  # probabilities: the page and core run the same code; only float summation order may differ


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
        out[f"session-{i + 1}.png"] = buf.getvalue()
    return out


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
    text = urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "_bucket{" not in line:
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop_event.wait(0.2)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak


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


async def predict_session(browser, url: str, name: str, data: bytes, n_models: int, on_read=None,
                          barrier: asyncio.Barrier | None = None, all_done: asyncio.Event | None = None,
                          shots: Path | None = None) -> dict:
    """One browser session: open Predict, upload `data`, read each model's top-5 (and call `on_read`, whose
    answer is kept); then wait at `barrier` (every session has read) and for `all_done`, so that all sessions
    are open at once, and close. A session that fails leaves a screenshot in `shots`."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1400})
    page = await context.new_page()
    page.set_default_timeout(300_000)
    t0, when_read = time.monotonic(), None
    try:
        await page.goto(f"{url}/predict")
        await page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
            {"name": name, "mimeType": "image/png", "buffer": data})
        await page.get_by_role("heading", name=name).wait_for()
        # the run with the upload has drawn every table: while it runs, Streamlit keeps the previous run's
        # elements (the bundled example's top-5) on screen marked data-stale until it replaces them. (Not
        # "the app is idle": the sidebar's job list reruns every 3 s, and on a busy machine it is rarely idle.)
        await page.wait_for_function(
            """([name, n]) => {
                const main = document.querySelector('[data-testid=stMain]');
                const tables = main.querySelectorAll('[data-testid=stDataFrame] table');
                return !main.querySelector('[data-stale=true]')
                    && [...main.querySelectorAll('h3')].some(h => h.innerText.trim() === name)
                    && tables.length === n && [...tables].every(t => t.querySelectorAll('tr').length >= 6); }""",
            arg=[name, n_models], polling=250)
        shown = await page.evaluate(PAGE_STATE)
        when_read = on_read() if on_read else None
    except Exception as e:  # a timeout or a closed page: reported as this session's failure, with what it showed
        try:
            state = await page.evaluate(PAGE_STATE)
            if shots is not None:
                await page.screenshot(path=shots / f"failed-{name}", full_page=True)
        except Exception:
            state = {}
        shown = {"headings": state.get("headings", []), "exceptions": state.get("exceptions", 0), "columns": [],
                 "errors": [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (page: script "
                            f"{state.get('script')}, {state.get('stale')} stale elements, "
                            f"{len(state.get('columns', []))} tables, errors {state.get('errors')})"]}
    seconds = time.monotonic() - t0
    if barrier is not None:
        await barrier.wait()
        await all_done.wait()
    await context.close()
    shown["top5"] = {c["model"]: [(r[0], float(r[1])) for r in c["rows"][:5]] for c in shown.pop("columns")}
    return {"name": name, "seconds": seconds, "when_read": when_read,
            **{k: shown[k] for k in ("headings", "exceptions", "errors", "top5")}}


def session_problems(result: dict, expected: dict[str, list[tuple[str, float]]]) -> list[str]:
    problems = []
    if result["headings"] != [result["name"]]:
        problems.append(f"shows images {result['headings']}")
    if result["exceptions"] or result["errors"]:
        problems.append(f"{result['exceptions']} exceptions, errors {result['errors']}")
    for model, want in expected.items():
        got = result["top5"].get(model)
        if got is None:
            problems.append(f"no top-5 for {model}")
        elif [lab for lab, _ in got] != [lab for lab, _ in want] or any(
                abs(p - q) > TOLERANCE for (_, p), (_, q) in zip(got, want)):
            problems.append(f"{model}: shows {got[:2]}..., core says {want[:2]}...")
    return problems


async def open_and_close(browser, url: str) -> None:
    """A session that opens a page without images (Evaluate) and closes: storing it makes Streamlit drop the
    sessions whose TTL is over, and it holds no upload or image of its own."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(300_000)
    await page.goto(f"{url}/evaluate")
    await page.get_by_role("heading", name="Evaluate").wait_for()
    await context.close()


async def drive(url: str, images: dict[str, bytes], warmup: tuple[str, bytes], n_models: int, ttl: float,
                rounds: int, on_phase, on_read, shots: Path) -> tuple[dict, list[list[dict]]]:
    """The warm-up session alone, then on_phase("warm", 0). Each round: the N sessions at once, on_phase("read")
    once every one of them has read its results (all still open); they close, on_phase("closed"); after the TTL
    one more session opens and closes (Streamlit then drops the expired ones), on_phase("dropped")."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            warm = await predict_session(browser, url, *warmup, n_models, shots=shots)
            await asyncio.to_thread(on_phase, "warm", 0)
            per_round = []
            for r in range(1, rounds + 1):
                await asyncio.to_thread(on_phase, "start", r)
                barrier, all_done = asyncio.Barrier(len(images) + 1), asyncio.Event()
                tasks = [asyncio.create_task(predict_session(browser, url, name, data, n_models, on_read if r == 1
                                                             else None, barrier, all_done, shots))
                         for name, data in images.items()]
                await barrier.wait()
                await asyncio.to_thread(on_phase, "read", r)
                all_done.set()
                per_round.append(list(await asyncio.gather(*tasks)))
                closed = time.monotonic()
                await asyncio.to_thread(on_phase, "closed", r)
                await asyncio.sleep(max(0.0, closed + ttl + 2 - time.monotonic()))
                await open_and_close(browser, url)
                await asyncio.to_thread(on_phase, "dropped", r)
        finally:
            await browser.close()
    return warm, per_round


def start_server(tmp: Path, env: dict, ttl: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
           "--server.disconnectedSessionTTL", str(ttl)]
    with open(tmp / "server.log", "wb") as log:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return server, url
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit(f"the server did not start; see {tmp / 'server.log'}")


UPLOADS = 'cache_memory_bytes{cache_type="UploadedFileManager",cache=""}'
MEDIA = 'cache_memory_bytes{cache_type="st_memory_media_file_storage",cache=""}'  # st.image files
MODEL_CACHE = 'cache_lookups_total{cache="ui.pickers.cached_model",cache_type="st_cache_resource",result="%s"}'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the sessions close")
    ap.add_argument("--ttl", type=int, default=15, help="server.disconnectedSessionTTL for this run (Streamlit's "
                    "default, 120, keeps closed sessions two minutes; shorter here so the run sees them dropped)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of N sessions (2 or more: RSS must not grow "
                    "from round to round)")
    ap.add_argument("--eval-model", default="se-googlenet", help="the model the evaluation job scores (long enough "
                    "to outlast the first round of sessions)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (store, server log)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cnnvit-load-"))
    env = os.environ | {"CNNVIT_HOSTED": "1", "CNNVIT_CACHE_DIR": str(tmp / "cache"), "CNNVIT_DEVICE": "cpu",
                        "CNNVIT_MAX_JOBS": "1"}
    os.environ.update(env)  # this process computes the expected answers and submits the job: the same store
    sys.path.insert(0, str(REPO))
    from core.jobs import Jobs
    from core.results import quick_choices

    models = quick_choices().default_models  # what Predict shows by default on an empty store
    images = sample_images(args.sessions + 1)
    warmup = next(iter(images.items()))
    images = dict(list(images.items())[1:])
    print(f"store {tmp / 'cache'}; Predict's models: {', '.join(models)}; the expected top-5s from core ...", flush=True)
    expected = expected_top5(models, {warmup[0]: warmup[1], **images})  # also builds `shapes` into the store
    distinct = len({json.dumps(expected[n]) for n in images}) == len(images)

    server, url = start_server(tmp, env, args.ttl)
    print(f"server pid {server.pid} on {url}; {args.rounds} x {args.sessions} sessions ...", flush=True)
    jobs, job = Jobs(), None
    seen: dict[int, dict] = {}

    def on_phase(name: str, r: int) -> None:
        nonlocal job
        now = seen.setdefault(r, {})
        if name == "warm":  # the warm-up session closed: settle, read the baseline, start the evaluation
            time.sleep(args.settle)
            now["rss"] = rss_mb(server.pid)
            job = jobs.submit("evaluate", {"model": args.eval_model, "dataset": EVAL_DATASET, "split": EVAL_SPLIT,
                                           "limit": None}, f"evaluate {args.eval_model} on {EVAL_DATASET}/{EVAL_SPLIT}")
            for _ in range(600):
                if jobs.get(job.id).state != "queued":
                    break
                time.sleep(0.1)
        elif name == "start":
            now["job_at_start"], now["t0"] = jobs.get(job.id).state, time.monotonic()
            now["sampler"] = RssSampler(server.pid)
            now["sampler"].start()
        elif name == "read":
            now["wall"] = time.monotonic() - now["t0"]
            now["read"] = metrics(url)
        elif name == "closed":
            now["peak"] = now.pop("sampler").stop()
            time.sleep(args.settle)
            now["closed_rss"], now["closed"] = rss_mb(server.pid), metrics(url)
        elif name == "dropped":
            time.sleep(args.settle)
            now["dropped_rss"], now["dropped"] = rss_mb(server.pid), metrics(url)

    rows: list[tuple[str, bool, str]] = []
    try:
        def job_state() -> str:  # asked by each round-1 session as soon as it has read its top-5
            return jobs.get(job.id).state

        warm, per_round = asyncio.run(drive(url, images, warmup, len(models), args.ttl, args.rounds, on_phase,
                                            job_state, tmp))
        for r, results in enumerate([[warm], *per_round]):
            for res in results:
                problems = session_problems(res, expected[res["name"]])
                rows.append((f"{'warm-up' if r == 0 else f'round {r}'} session {res['name']}", not problems,
                             "; ".join(problems) or f"its own image; top-5 of {' and '.join(models)} = core's "
                                                    f"({res['seconds']:.1f} s)"))
        rows.append(("the images' top-5s all differ", distinct, "so a swapped result would show" if distinct else
                     "two images give the same top-5: a swap could go unseen"))
        last = seen[args.rounds]
        loads = re.findall(r"model loaded: (\S+)", (tmp / "server.log").read_text())
        rows.append(("model loads in the server log", sorted(loads) == sorted(models),
                     ", ".join(f"{m} x{loads.count(m)}" for m in models)))
        misses, hits = (last["dropped"].get(MODEL_CACHE % k, 0) for k in ("miss", "hit"))
        rows.append(("model cache (Streamlit metrics)", misses == len(models), f"{misses:.0f} misses, {hits:.0f} hits"))
        during = [res["when_read"] for res in per_round[0]]
        rows.append((f"evaluation job {job.id} ({args.eval_model}) during round 1",
                     seen[1]["job_at_start"] == "running" and during == ["running"] * len(during),
                     f"{seen[1]['job_at_start']} when the sessions started; when each read its top-5: "
                     + ", ".join(f"{n} x{during.count(n)}" for n in dict.fromkeys(during))))
        for _ in range(1200):
            if jobs.get(job.id).state not in ("queued", "running"):
                break
            time.sleep(0.5)
        final = jobs.get(job.id)
        res = final.result or {}
        rows.append((f"evaluation job {job.id} result", final.state == "done",
                     f"done: {res.get('n')} images, top-1 {res.get('top1'):.3f}" if final.state == "done"
                     else f"{final.state}: {final.error}"))
        base = seen[0]["rss"]
        for r in range(1, args.rounds + 1):
            now = seen[r]
            rows.append((f"server RSS, round {r} (MB)", r > 1 or now["dropped_rss"] - base <= MEMORY_SLACK_MB,
                         f"baseline {base:.0f} after the warm-up; peak {now['peak']:.0f} with {len(images)} sessions; "
                         f"{now['closed_rss']:.0f} {args.settle:.0f} s after they closed; {now['dropped_rss']:.0f} once "
                         f"Streamlit dropped them ({now['dropped_rss'] - base:+.1f}"
                         + (f", allowed +{MEMORY_SLACK_MB:.0f})" if r == 1 else "; not a check after round 1)")))
        if args.rounds > 1:
            growth = seen[args.rounds]["dropped_rss"] - seen[1]["dropped_rss"]
            rows.append((f"RSS growth, round 1 to {args.rounds}", True,
                         f"{growth:+.1f} MB, {growth / (args.rounds - 1):+.1f} MB a round (not a check: what the "
                         "allocator keeps; Streamlit's per-session bytes are the row below)"))
        rows.append(("active sessions (Streamlit metrics)", last["dropped"].get("active_sessions", 0) == 0,
                     f"{last['read'].get('active_sessions', 0):.0f} while reading, "
                     f"{last['closed'].get('active_sessions', 0):.0f} after closing"))
        held = [(last[k].get(UPLOADS, 0), last[k].get(MEDIA, 0)) for k in ("read", "closed", "dropped")]
        rows.append(("bytes Streamlit holds: uploads, media", held[2] == (0, 0),
                     f"{held[0][0]:.0f}, {held[0][1]:.0f} while reading; {held[1][0]:.0f}, {held[1][1]:.0f} after "
                     f"closing (kept {args.ttl} s for a reconnect); {held[2][0]:.0f}, {held[2][1]:.0f} after the TTL "
                     "and the next closed session"))
        rows.append(("wall time", True, ", ".join(f"round {r}: {seen[r]['wall']:.1f} s" for r in range(1, args.rounds + 1))
                     + f" until all {len(images)} sessions had read (not a check: this machine is shared)"))
    finally:
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
    failed = [r for r in rows if not r[1]]
    keep = args.keep or failed
    print(f"\n{'all checks passed' if not failed else f'{len(failed)} checks FAILED'}; "
          + (f"store and server log kept in {tmp}" if keep else "temp folder removed (--keep keeps it)"))
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
