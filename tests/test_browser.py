"""The dashboard in a real browser: ``streamlit run`` on 127.0.0.1 and headless Debian Chromium
(Playwright), with a fake microphone that plays a generated wav.

Screenshots of every page go to ``artifacts/screenshots/``; the measured latencies (click on
Classify to chart; sound to live bar) to ``artifacts/latency.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synth import song

from genre.files import read_json

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
LATENCY = ROOT / "artifacts" / "latency.json"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Bars drawn in a window chart: plotly's calcdata holds one positioned entry per bar of the
# first trace (an empty trace holds a single unpositioned one).
BAR_COUNT = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    if (!plot || !plot.calcdata || !plot.calcdata[0]) return 0;
    return plot.calcdata[0].filter(bar => typeof bar.p === 'number' && !isNaN(bar.p)).length;
}"""
TRACE_COUNT = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    return plot && plot.data ? plot.data.length : 0;
}"""
STATUS_TEXT = """() => {
    const e = [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]
        .find(e => e.innerText.includes('Listening') || e.innerText.includes('waiting for audio'));
    return e ? e.innerText : '';
}"""


def _browser_available() -> None:
    """Skip only on a developer machine without Debian's chromium; CI must have it."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed"
    if problem is None:
        return
    if "CI" in os.environ:
        pytest.fail(f"browser tests must run in CI, but {problem}")
    pytest.skip(problem)


def _record(name: str, values: dict) -> None:
    LATENCY.parent.mkdir(parents=True, exist_ok=True)
    data = read_json(LATENCY, {})
    data[name] = values
    LATENCY.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n{name}: {values}")


@pytest.fixture(scope="module")
def models(tiny_run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser-models")
    shutil.copytree(tiny_run, folder / tiny_run.name)
    (folder / "ACTIVE").write_text(tiny_run.name + "\n")
    return folder


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """One ``streamlit run`` for the whole module, on a free port of 127.0.0.1."""
    _browser_available()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {**os.environ, "GENRE_MODELS_DIR": str(models), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            process.kill()
            pytest.fail(f"streamlit did not answer in 90 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory) -> Path:
    """What the fake microphone plays (looped): 10 s of synthetic clicks, 48 kHz stereo."""
    clicks = song("clicks", 10.0, seed=11, sr=48_000)
    path = tmp_path_factory.mktemp("mic") / "microphone.wav"
    sf.write(path, np.stack([clicks, clicks], axis=1), 48_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(server, microphone_wav):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS
            + [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1500}, permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    context.close()


def settle(page) -> None:
    """Wait until the script run is over and nothing is still loading."""
    page.wait_for_selector("h1")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]').dataset.testScriptState === 'notRunning'"
        " && !document.querySelector('[data-testid=stStatusWidget]')"
        " && !document.querySelector('[data-testid=stSpinner]')"
        " && !document.querySelector('[data-testid=stSkeleton]')"
    )
    time.sleep(0.5)  # plotly draws after the run ends


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_exceptions(page) -> None:
    errors = page.locator("[data-testid=stException]")
    assert errors.count() == 0, errors.first.inner_text()


def test_every_page_renders(page, server, models):
    metrics = read_json(models / "tiny-fast" / "metrics.json")
    page.goto(f"{server}/")
    settle(page)
    no_exceptions(page)
    assert page.locator("[data-testid=stSidebarNav]").get_by_text("Held-out songs").is_visible()
    assert f"{metrics['song_accuracy_vote']:.1%}" in page.locator("[data-testid=stMetric]").first.inner_text()
    shoot(page, "1-overview")

    page.get_by_role("link", name="Training history").click()
    page.wait_for_url("**/history")
    settle(page)
    no_exceptions(page)
    assert page.evaluate(TRACE_COUNT, "history_chart") >= 3  # training, validation, best epoch
    shoot(page, "2-history")

    page.get_by_role("link", name="Held-out songs").click()
    page.wait_for_url("**/held_out")
    settle(page)
    no_exceptions(page)
    assert page.evaluate(TRACE_COUNT, "confusion_chart") == 1
    shoot(page, "3-held-out")

    # A deep link opens the page with its navigation and sidebar, not a bare script.
    page.goto(f"{server}/classify")
    settle(page)
    no_exceptions(page)
    assert page.locator("[data-testid=stSidebarNav]").get_by_text("Overview").is_visible()
    assert page.get_by_role("tab", name="Microphone (live)").is_visible()
    shoot(page, "4-classify")


def test_upload_through_the_page(page, server, models, tmp_path):
    from genre.prediction import Classifier

    path = tmp_path / "thirty-seconds.mp3"
    sf.write(path, song("clicks", 30.0, seed=21, sr=44_100), 44_100)
    expected = Classifier.load(models / "tiny-fast").classify(path)
    assert len(expected.starts) == 10

    page.goto(f"{server}/classify")
    settle(page)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(path)
    button = page.get_by_role("button", name="Classify", exact=True)
    button.wait_for()
    settle(page)
    started = time.perf_counter()
    button.click()
    page.wait_for_function(f"() => ({BAR_COUNT})('upload_windows') === 10", polling=20)
    seconds = time.perf_counter() - started
    settle(page)
    no_exceptions(page)
    vote = page.locator("[data-testid=stMetric]").filter(has_text="Genre (majority vote)")
    assert expected.vote_genre in vote.inner_text()
    assert page.locator("audio").count() >= 1  # the upload can be played
    shoot(page, "5-classify-upload")
    _record("upload_click_to_chart", {"audio_seconds": 30, "format": "mp3", "seconds": round(seconds, 2)})
    assert seconds < 30


def test_microphone_bars_appear_live(page, server):
    page.goto(f"{server}/classify")
    settle(page)
    page.get_by_role("tab", name="Microphone (live)").click()
    start = page.frame_locator("iframe[title*=webrtc]").get_by_role("button", name="START")
    start.click()
    clicked = time.time()
    # Poll what the user sees: when each bar appears, and how much audio the page says it has.
    appeared: list[float] = []
    received: list[tuple[float, float]] = []
    while len(appeared) < 3 and time.time() - clicked < 90:
        bars = page.evaluate(BAR_COUNT, "live_windows")
        now = time.time()
        appeared.extend([now] * (bars - len(appeared)))
        status = page.evaluate(STATUS_TEXT)
        if match := re.search(r"([\d.]+) s received", status):
            received.append((now, float(match.group(1))))
        time.sleep(0.05)
    assert len(appeared) >= 2, f"no live bars within 90 s; status: {page.evaluate(STATUS_TEXT)!r}"
    no_exceptions(page)
    assert page.get_by_text("Running vote:").is_visible()
    shoot(page, "6-classify-microphone-live")
    caption = page.get_by_text(re.compile(r"each bar appeared about")).inner_text()
    server_lag = float(re.search(r"about ([\d.]+) s", caption).group(1))

    page.frame_locator("iframe[title*=webrtc]").get_by_role("button", name="STOP").click()
    page.get_by_text(re.compile(r"^The whole take:")).wait_for()  # not the "Classify the whole take" button
    settle(page)
    page.get_by_role("button", name="Classify the whole take").click()
    page.wait_for_function(f"() => ({BAR_COUNT})('take_windows') >= 2")
    settle(page)
    no_exceptions(page)
    assert page.locator("audio").count() >= 1  # the take plays back
    shoot(page, "7-classify-microphone-take")

    # The take's clock starts with its first frame; "x s received" at time t means it began by
    # t - x. Window k (0-based) is complete 3(k+1) s later; its bar appeared `appeared[k]`.
    take_start = min(t - x for t, x in received)
    delays = [round(t - (take_start + 3 * (k + 1)), 2) for k, t in enumerate(appeared)]
    _record(
        "microphone_sound_to_bar",
        {
            "first_bar_after_start_click_s": round(appeared[0] - clicked, 2),
            "bar_after_its_window_ended_s": delays,
            "server_lag_median_s": server_lag,
            "note": "a sound at the start of a window waits up to 3 s more for the window to fill",
        },
    )
    assert server_lag < 5
