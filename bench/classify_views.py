"""Classify page with its explore views (issue 23): one browser session uploads 30 s GTZAN
tracks to the served model and times, per upload, as ``bench/live_load.py`` does (same server
start, same Chromium, the same "chart holds the track's windows" condition):

- click on **Classify** -> the window bars drawn (the first chart the issue's 1.5 s is about;
  the ranking chart above them is drawn in the same step) and upload -> bars drawn;
- click -> "What the model heard" drawn (spectrogram, window strip and, for a musicnn model,
  the taggram; they are computed after the bars are sent);
- click -> the page idle (the map, or the line saying the run has none).

The first upload warms the model and the decoders and is not counted. Nothing is written to
the repository unless ``--out`` says where.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_load import (  # bench/ is not a package: found through sys.path
    BAR_COUNT,
    BROWSER_ARGS,
    CHROMIUM,
    IDLE,
    REPO,
    free_port,
    loadavg,
    open_classify,
    prepare_audio,
    spread,
    start_server,
)

TRACE_COUNT = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    return plot && plot.data ? plot.data.length : 0;
}"""


async def session(url: str, tracks: list[tuple[Path, int]]) -> list[dict]:
    from playwright.async_api import async_playwright

    out = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        context = await browser.new_context(viewport={"width": 1400, "height": 1500})
        page = await open_classify(context, url)
        dropzone = page.locator("[data-testid=stFileUploaderDropzoneInput]")
        button = page.get_by_role("button", name="Classify", exact=True)
        for path, windows in tracks:
            uploaded = time.perf_counter()
            await dropzone.set_input_files(path)
            await page.wait_for_function(f"() => ({BAR_COUNT})('upload_windows') === 0 && ({IDLE})()", polling=20)
            await button.wait_for()
            started = time.perf_counter()
            await button.click()
            await page.wait_for_function(f"() => ({BAR_COUNT})('upload_windows') === {windows}", polling=20)
            bars = time.perf_counter()
            # An app without the views (a "before" figure, --app) goes idle without them.
            await page.wait_for_function(f"() => ({TRACE_COUNT})('upload_heard') >= 2 || ({IDLE})()", polling=20)
            heard = time.perf_counter() if await page.evaluate(TRACE_COUNT, "upload_heard") else None
            await page.wait_for_function(IDLE, polling=20)
            idle = time.perf_counter()
            out.append(
                {
                    "track": path.name,
                    "windows": windows,
                    "click_to_bars_s": round(bars - started, 3),
                    "upload_to_bars_s": round(bars - uploaded, 3),
                    "click_to_heard_s": round(heard - started, 3) if heard else None,
                    "click_to_idle_s": round(idle - started, 3),
                    "heard_parts": await page.evaluate(TRACE_COUNT, "upload_heard"),
                }
            )
        await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default=str(REPO), help="the checkout whose streamlit_app.py is served")
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "gtzan"), help="GTZAN folder (<genre>/<track>.ogg)"
    )
    parser.add_argument("--uploads", type=int, default=5, help="uploads timed, after one warm-up upload")
    parser.add_argument("--out", help="append the results to this JSON file (a list of runs)")
    args = parser.parse_args()
    app, data = Path(args.app).resolve(), Path(args.data)
    if not data.is_dir():
        sys.exit(f"no dataset at {data}; pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # prepare_audio's microphone wav is not used here; its tracks are live_load's.
        _, tracks = prepare_audio(data, "disco/disco.00000.ogg", args.uploads + 1, tmp)
        port = free_port()
        server = start_server(app, port, tmp / "server.log", None, None)
        before = loadavg()
        try:
            results = asyncio.run(session(f"http://127.0.0.1:{port}", tracks))
        finally:
            os.killpg(server.pid, 15)
            server.wait(30)
        log = (tmp / "server.log").read_text()
    timed = results[1:]
    summary = {
        "app": str(app),
        "commit": subprocess.run(
            ["git", "-C", str(app), "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True
        ).stdout.strip(),
        "served": (app / "models" / "ACTIVE").read_text().strip()
        if not os.environ.get("GENRE_MODELS_DIR")
        else os.environ["GENRE_MODELS_DIR"],
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "click_to_bars_s": spread([r["click_to_bars_s"] for r in timed]),
        "upload_to_bars_s": spread([r["upload_to_bars_s"] for r in timed]),
        "click_to_heard_s": spread([r["click_to_heard_s"] for r in timed if r["click_to_heard_s"] is not None]),
        "click_to_idle_s": spread([r["click_to_idle_s"] for r in timed]),
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "server_tracebacks": log.count("Traceback"),
        "detail": results,
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        out = Path(args.out)
        runs = json.loads(out.read_text()) if out.is_file() else []
        out.write_text(json.dumps(runs + [summary], indent=1) + "\n")


if __name__ == "__main__":
    main()
