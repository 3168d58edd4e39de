"""Live microphone under load: one session streams live audio while N sessions upload and
classify songs, all against one ``streamlit run`` on 127.0.0.1.

How it drives the sessions: one headless Debian Chromium (Playwright, async), one browser
context per session, so every session is a real page with its own websocket, its own uploads
and its own plotly rendering. The live session's microphone is Chromium's fake capture device
playing a GTZAN track (decoded to a temporary 48 kHz wav; nothing is written to the repo).
Every upload session loops: drop the next GTZAN track on the uploader, click **Classify**,
wait until the chart shows that track's windows. The loops stop when the live take ends (and
after ``--max-uploads`` each).

What it reports (and writes as JSON):

- live sound -> bar: for window k, when its bar appeared in the browser minus when its last
  sound was played (the take's start, read from the page's "x s received", plus 3(k+1) s);
  median, p90, max, and the bar count;
- upload latency: click on Classify -> the chart drawn, median, p90, max;
- the server process's CPU (cores, averaged over the measured phase) and resident memory;
- the load generator's CPU (Chromium, Playwright's driver and this script), the whole
  machine's busy cores, and ``uptime``'s load averages before and after.

``--app DIR`` serves another checkout of the app (a "before" figure from an older commit);
``--py-spy PATH`` runs the server under ``py-spy record`` and writes its raw samples there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
WINDOW_SECONDS = 3.0
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Pages of a headless browser count as hidden; timers must not be throttled.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
]  # fmt: skip
BAR_COUNT = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    if (!plot || !plot.calcdata || !plot.calcdata[0]) return 0;
    return plot.calcdata[0].filter(bar => typeof bar.p === 'number' && !isNaN(bar.p)).length;
}"""
# Runs inside the live page: note when each bar appears and what the status line says, every
# 20 ms, so the figures do not depend on how quickly this script polls.
RECORDER = """() => {
    const bars = BAR_COUNT;
    window.__live = {bars: [], received: []};
    setInterval(() => {
        const n = bars('live_windows'), now = Date.now();
        while (window.__live.bars.length < n) window.__live.bars.push(now);
        const status = [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]
            .find(e => e.innerText.includes('s received'));
        const m = status && status.innerText.match(/([\\d.]+) s received/);
        if (m) window.__live.received.push([now, parseFloat(m[1])]);
    }, 20);
}""".replace("BAR_COUNT", BAR_COUNT, 1)
IDLE = (
    "() => document.querySelector('[data-testid=stApp]').dataset.testScriptState === 'notRunning'"
    " && !document.querySelector('[data-testid=stSpinner]')"
)


# ----------------------------------------------------------------------------- /proc sampling


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(root: int) -> set[int]:
    """Every live process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Sampler:
    """Samples the server's CPU and memory every half second on a thread, and the CPU of the
    load generator (this process and its children other than the server) at start and stop."""

    def __init__(self, server_pids: callable):
        self.server_pids = server_pids
        self.rss: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _server_cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.server_pids())

    def _generator_cpu(self) -> float:
        server = set(self.server_pids())
        mine = descendants(os.getpid()) - server
        return cpu_seconds(os.getpid()) + sum(cpu_seconds(p) for p in mine)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.rss.append(sum(rss_mib(p) for p in self.server_pids()))

    def start(self) -> None:
        self.t0, self.server0, self.gen0, self.busy0 = (
            time.time(),
            self._server_cpu(),
            self._generator_cpu(),
            machine_busy(),
        )
        self.rss.append(sum(rss_mib(p) for p in self.server_pids()))
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        seconds = time.time() - self.t0
        busy1 = machine_busy()
        cores = os.cpu_count() or 1
        return {
            "seconds": round(seconds, 1),
            "server_cpu_cores": round((self._server_cpu() - self.server0) / seconds, 2),
            "server_rss_mib_start": round(self.rss[0]),
            "server_rss_mib_max": round(max(self.rss)),
            "server_rss_mib_end": round(self.rss[-1]),
            "load_generator_cpu_cores": round((self._generator_cpu() - self.gen0) / seconds, 2),
            "machine_busy_cores": round(cores * (busy1[0] - self.busy0[0]) / max(1, busy1[1] - self.busy0[1]), 2),
        }


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p90": round(float(np.percentile(values, 90)), 2),
        "max": round(max(values), 2),
    }


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app: Path, port: int, log: Path, py_spy: str | None, spy_out: Path | None) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "streamlit", "run", str(app / "streamlit_app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    if py_spy:
        # --threads: one root per thread; --idle: waiting stacks too; --gil would hide them.
        command = [
            py_spy,
            "record",
            "--threads",
            "--idle",
            "--rate",
            "50",
            "--format",
            "raw",
            "-o",
            str(spy_out),
            "--",
        ] + command
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.setdefault("GENRE_MODELS_DIR", str(app / "models"))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    sys.exit(f"the server did not answer in 120 s:\n{log.read_text()[-3000:]}")


def server_pids(process: subprocess.Popen, profiled: bool) -> list[int]:
    """The streamlit process and its children (under py-spy, only py-spy's children)."""
    kids = sorted(descendants(process.pid))
    return kids if profiled else [process.pid] + kids


# ----------------------------------------------------------------------------- sessions


async def open_classify(context, url: str):
    page = await context.new_page()
    page.set_default_timeout(120_000)
    await page.goto(f"{url}/classify")
    await page.wait_for_selector("h1")
    await page.wait_for_function(IDLE)
    return page


async def upload_session(
    context, url: str, tracks: list[tuple[Path, int]], stop: asyncio.Event, max_uploads: int, out: list[dict]
) -> None:
    """Upload and classify ``tracks`` in turn until ``stop``; record click -> chart seconds."""
    page = await open_classify(context, url)
    dropzone = page.locator("[data-testid=stFileUploaderDropzoneInput]")
    button = page.get_by_role("button", name="Classify", exact=True)
    for k in range(max_uploads):
        if stop.is_set():
            break
        path, windows = tracks[k % len(tracks)]
        uploaded = time.perf_counter()
        await dropzone.set_input_files(path)
        # The new file's rerun has ended: the previous chart is gone and Classify is back.
        await page.wait_for_function(f"() => ({BAR_COUNT})('upload_windows') === 0 && ({IDLE})()", polling=20)
        await button.wait_for()
        started = time.perf_counter()
        await button.click()
        await page.wait_for_function(f"() => ({BAR_COUNT})('upload_windows') === {windows}", polling=20)
        done = time.perf_counter()
        out.append(
            {
                "track": path.name,
                "windows": windows,
                "click_to_chart_s": done - started,
                "upload_to_chart_s": done - uploaded,
            }
        )
    await page.close()


async def live_session(context, url: str, seconds: float, listening: asyncio.Event) -> dict:
    """Start the microphone, keep it open for ``seconds`` of audio, return the bar timings."""
    page = await open_classify(context, url)
    await page.get_by_role("tab", name="Microphone (live)").click()
    await page.evaluate(RECORDER)
    start = page.frame_locator("iframe[title*=webrtc]").get_by_role("button", name="START")
    await start.click()
    clicked = time.time()
    await page.wait_for_function("() => window.__live.received.length > 0")
    listening.set()
    await asyncio.sleep(seconds)
    # Let the bars of the windows completed by now arrive (bounded: a stalled page ends the run).
    expected = int(seconds // WINDOW_SECONDS)
    try:
        await page.wait_for_function(f"() => window.__live.bars.length >= {expected}", timeout=60_000)
    except Exception:
        pass
    record = await page.evaluate("() => window.__live")
    await page.frame_locator("iframe[title*=webrtc]").get_by_role("button", name="STOP").click()
    await page.close()
    bars = [t / 1000 for t in record["bars"]]
    take_start = min(t / 1000 - x for t, x in record["received"])
    delays = [t - (take_start + WINDOW_SECONDS * (k + 1)) for k, t in enumerate(bars)]
    gaps = [b - a for a, b in zip(bars, bars[1:])]
    return {
        "bars": len(bars),
        "first_bar_after_start_s": round(bars[0] - clicked, 2) if bars else None,
        "sound_to_bar_s": [round(d, 2) for d in delays],
        "longest_gap_between_bars_s": round(max(gaps), 2) if gaps else None,
    }


async def drive(url: str, mic: Path, args, tracks: list[tuple[Path, int]], sampler: Sampler) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=BROWSER_ARGS + [f"--use-file-for-fake-audio-capture={mic}"]
        )

        async def context():
            return await browser.new_context(viewport={"width": 1400, "height": 1500}, permissions=["microphone"])

        # Warm up: load the model and the decoders, and classify one file, outside the figures.
        warm: list[dict] = []
        await upload_session(await context(), url, tracks[-1:], asyncio.Event(), 1, warm)

        stop, listening = asyncio.Event(), asyncio.Event()
        uploads: list[list[dict]] = [[] for _ in range(args.sessions)]
        per_session = [tracks[i :: max(1, args.sessions)] for i in range(args.sessions)]
        live_task = asyncio.create_task(live_session(await context(), url, args.live_seconds, listening))
        await listening.wait()
        sampler.start()
        load = [
            asyncio.create_task(
                upload_session(await context(), url, per_session[i], stop, args.max_uploads, uploads[i])
            )
            for i in range(args.sessions)
        ]
        live = await live_task
        stop.set()
        for task in load:
            try:
                await asyncio.wait_for(task, 120)
            except Exception as error:  # a stalled upload must not hide the live figures
                print(f"  an upload session ended with {type(error).__name__}: {error}", file=sys.stderr)
        usage = sampler.stop()
        await browser.close()
    flat = [u for session in uploads for u in session]
    return {"live": live, "uploads": flat, "usage": usage}


def prepare_audio(data: Path, mic_track: str, count: int, tmp: Path) -> tuple[Path, list[tuple[Path, int]]]:
    """The fake microphone's wav (48 kHz stereo s16), and the upload tracks with their window
    counts (so a session knows when its chart is complete)."""
    import soundfile as sf
    import soxr

    from genre import SAMPLE_RATE
    from genre.audio.decode import decode
    from genre.audio.windows import window_starts

    source = data / mic_track
    mono = decode(source)
    wav = tmp / "microphone.wav"
    up = soxr.resample(mono, SAMPLE_RATE, 48_000, quality="HQ")
    sf.write(wav, np.stack([up, up], axis=1), 48_000, subtype="PCM_16")
    everything = sorted(p for p in data.glob("*/*.ogg") if p != source)
    # Spread over the genres, in a fixed order: the same tracks before and after a change.
    picked = everything[:: max(1, len(everything) // count)][:count]
    return wav, [(p, len(window_starts(len(decode(p))))) for p in picked]


def _starts(text: str, word: str) -> list[int]:
    out, at = [], text.find(word)
    while at >= 0:
        out.append(at)
        at = text.find(word, at + 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default=str(REPO), help="the checkout whose streamlit_app.py is served")
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "gtzan"), help="GTZAN folder (<genre>/<track>.ogg)"
    )
    parser.add_argument("--sessions", type=int, default=3, help="sessions uploading and classifying (0: live alone)")
    parser.add_argument("--live-seconds", type=float, default=40.0)
    parser.add_argument("--max-uploads", type=int, default=40, help="per session")
    parser.add_argument("--mic-track", default="disco/disco.00000.ogg")
    parser.add_argument("--label", default="", help="a name for this run in the output")
    parser.add_argument("--out", help="append the results to this JSON file (a list of runs)")
    parser.add_argument("--py-spy", nargs=2, metavar=("PY_SPY", "OUT"), help="profile the server with py-spy")
    args = parser.parse_args()
    app, data = Path(args.app).resolve(), Path(args.data)
    if not (data / args.mic_track).is_file():
        sys.exit(f"no {args.mic_track} under {data}; pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mic, tracks = prepare_audio(data, args.mic_track, 24, tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        spy = (args.py_spy[0], Path(args.py_spy[1]).resolve()) if args.py_spy else (None, None)
        server = start_server(app, port, tmp / "server.log", *spy)
        before = loadavg()
        sampler = Sampler(lambda: server_pids(server, bool(args.py_spy)))
        try:
            result = asyncio.run(drive(url, mic, args, tracks, sampler))
        finally:
            os.killpg(server.pid, 2 if args.py_spy else 15)  # SIGINT lets py-spy write its file
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()
        log = (tmp / "server.log").read_text()
        if "Traceback" in log:
            print("the server logged tracebacks:\n" + log[log.index("Traceback") - 200 :][:4000], file=sys.stderr)
    live, uploads, usage = result["live"], result["uploads"], result["usage"]
    summary = {
        "label": args.label,
        "app": str(app),
        "commit": subprocess.run(
            ["git", "-C", str(app), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "sessions": args.sessions,
        "live_seconds": args.live_seconds,
        "live_bars": live["bars"],
        "sound_to_bar_s": spread(live["sound_to_bar_s"]),
        "longest_gap_between_bars_s": live["longest_gap_between_bars_s"],
        "upload_click_to_chart_s": spread([u["click_to_chart_s"] for u in uploads]),
        "usage": usage,
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "server_tracebacks": log.count("Traceback"),
        "server_traceback_excerpts": [log[i : i + 1500] for i in _starts(log, "Traceback")][:3],
        "detail": {"live": live, "uploads": uploads},
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "detail"}))
    print("live sound -> bar per window:", live["sound_to_bar_s"])
    if args.out:
        out = Path(args.out)
        runs = json.loads(out.read_text()) if out.is_file() else []
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(runs + [summary], indent=1) + "\n")


if __name__ == "__main__":
    main()
