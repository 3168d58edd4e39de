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

from genre.files import read_json
from synth import song, write

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHIPPED = (ROOT / "models" / "ACTIVE").read_text().strip()  # the run the app serves
# The Compare page's second run: another shipped run (its model file is not needed there).
COMPARED = "fast-stratified" if SHIPPED != "fast-stratified" else "transfer-stratified"
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
    # The shipped GTZAN run: ten genres with long names, for the layout checks.
    shutil.copytree(ROOT / "models" / SHIPPED, folder / SHIPPED)
    # The other shipped runs without their model files: the Compare page's second run (same test
    # songs), and every run's history for the Training history page with all of them.
    for other in sorted(
        p.name for p in (ROOT / "models").iterdir() if (p / "history.json").is_file() and p.name != SHIPPED
    ):
        shutil.copytree(ROOT / "models" / other, folder / other, ignore=shutil.ignore_patterns("*.keras"))
    (folder / "ACTIVE").write_text(tiny_run.name + "\n")
    # The tiny run gets its song map here (the shipped runs carry theirs).
    from genre.jobs.song_map import compute_song_map, save_song_map

    save_song_map(folder / tiny_run.name, compute_song_map(folder / tiny_run.name))
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
    # No --server.address: the bind address is the one .streamlit/config.toml gives (loopback).
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
        "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while True:  # the test's own timeout bounds the wait
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.2)
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
    """Wait until the script run is over, nothing is still loading and every chart is drawn
    (plotly draws after the run ends)."""
    page.wait_for_selector("h1")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]').dataset.testScriptState === 'notRunning'"
        " && !document.querySelector('[data-testid=stStatusWidget]')"
        " && !document.querySelector('[data-testid=stSpinner]')"
        " && !document.querySelector('[data-testid=stSkeleton]')"
        " && [...document.querySelectorAll('[data-testid=stPlotlyChart]')]"
        "      .every(chart => chart.querySelector('.js-plotly-plot .main-svg .xtick, .js-plotly-plot .main-svg "
        ".ytick'))"
    )


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def shoot_below(page, name: str, key: str) -> None:
    """Scroll to the element with ``key`` (Streamlit's main area scrolls inside the page, out of
    a full-page shot's reach) and take the window as it is then."""
    page.locator(f".st-key-{key}").scroll_into_view_if_needed()
    shoot(page, name)


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
    from genre.serve.prediction import Classifier

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
    # Then what the model heard (spectrogram and window strip) and the song on the run's map.
    page.wait_for_function(
        f"() => ({TRACE_COUNT})('upload_heard') === 2 && ({TRACE_COUNT})('upload_map') > 0", polling=20
    )
    views = time.perf_counter() - started
    settle(page)
    no_exceptions(page)
    vote = page.locator("[data-testid=stMetric]").filter(has_text="Majority vote")
    assert expected.vote_genre in vote.inner_text()
    assert page.locator("audio").count() >= 1  # the upload can be played
    strip = page.evaluate("() => document.querySelector('.st-key-upload_heard .js-plotly-plot').data[1].base")
    assert strip == pytest.approx(list(expected.starts))  # one strip segment per window
    names = page.evaluate("() => document.querySelector('.st-key-upload_map .js-plotly-plot').data.map(t => t.name)")
    assert "your song" in names and "nearest training songs" in names
    assert page.get_by_text("Its nearest training songs").is_visible()
    shoot(page, "5-classify-upload")
    shoot_below(page, "5-classify-upload-heard", "upload_heard")
    shoot_below(page, "5-classify-upload-map", "upload_map")
    _record(
        "upload_click_to_chart",
        {"audio_seconds": 30, "format": "mp3", "seconds": round(seconds, 2), "seconds_to_map": round(views, 2)},
    )


def test_song_map_page(page, server, models):
    page.goto(f"{server}/")
    settle(page)
    go_to(page, "Song map", "song_map")
    split = read_json(models / "tiny-fast" / "split.json")
    points = page.evaluate(
        "() => document.querySelector('.st-key-song_map_chart .js-plotly-plot').data.reduce((n, t) => n + "
        "(t.customdata ? t.customdata.length : 0), 0)"
    )
    assert points == len(split["train"]) + len(split["valid"]) + len(split["test"])
    shoot(page, "6-song-map")


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
    while len(appeared) < 3:  # the test's timeout bounds the wait
        bars = page.evaluate(BAR_COUNT, "live_windows")
        now = time.time()
        appeared.extend([now] * (bars - len(appeared)))
        status = page.evaluate(STATUS_TEXT)
        if match := re.search(r"([\d.]+) s received", status):
            received.append((now, float(match.group(1))))
        time.sleep(0.05)
    assert len(appeared) >= 3
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


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* shows them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_dashboard_listens_on_loopback_only(server):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    port = int(server.rsplit(":", 1)[1])
    # 127.0.0.1 in /proc's little-endian hex; not 00000000 (every interface) nor a LAN address.
    assert _listening(port) == {"0100007F"}


@pytest.fixture
def narrow(browser, server):
    """A 1024 px wide window: a laptop with the sidebar open."""
    context = browser.new_context(viewport={"width": 1024, "height": 2400}, permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    context.close()


# Text that is cut off: an element whose content is wider than its box.
CLIPPED = """selector => [...document.querySelectorAll(selector)]
    .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText)"""
TICKS = """([key, axis]) => [...document.querySelectorAll(`.st-key-${key} .js-plotly-plot .${axis}tick text`)]
    .filter(t => t.getBBox().width > 0 && getComputedStyle(t).display !== 'none').map(t => t.textContent)"""
TICKS_INSIDE = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    const box = plot.getBoundingClientRect();
    return [...plot.querySelectorAll('.ytick text')].every(t => {
        const r = t.getBoundingClientRect();
        return r.left >= box.left - 0.5 && r.right <= box.right + 0.5;
    });
}"""


# A plotly legend too tall for its figure becomes a scroll box; one placed in the margin can
# overlap the axis titles. The history chart's legend must be neither, and lie inside the chart.
LEGEND_FITS = """key => {
    const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    const legend = plot.querySelector('.legend').getBoundingClientRect();
    const svg = plot.querySelector('.main-svg').getBoundingClientRect();
    const bar = plot.querySelector('.legend .scrollbar');
    const overlaps = [...plot.querySelectorAll('.xtitle, .xtick text')].map(t => t.getBoundingClientRect())
        .filter(r => r.bottom > legend.top && r.top < legend.bottom && r.right > legend.left && r.left < legend.right);
    return {
        entries: plot.querySelectorAll('.legend .traces').length,
        scrolls: !!bar && bar.getBoundingClientRect().height > 0,
        overlaps: overlaps.length,
        inside: legend.top >= svg.top && legend.bottom <= svg.bottom + 0.5 && legend.right <= svg.right + 0.5,
    };
}"""
# Buttons named Cancel in the page and in every frame (streamlit-webrtc's iframes), and how many
# of them are on screen.
CANCELS = """() => {
    const all = [...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Cancel');
    return [all.length, all.filter(b => b.offsetParent !== null && b.getBoundingClientRect().width > 0).length];
}"""


def cancel_buttons(page) -> tuple[int, int]:
    """(in the DOM, visible) over the page and all its frames."""
    from playwright.sync_api import Error

    total = shown = 0
    for frame in page.frames:
        try:
            n, v = frame.evaluate(CANCELS)
        except Error:  # a frame detached meanwhile (webrtc's reloads) holds no button
            continue
        total, shown = total + n, shown + v
    return total, shown


SCROLL_WIDTHS = """e => { const s = e.querySelector('.dvn-scroller');
  return s ? [s.scrollWidth, s.clientWidth] : [0, 0]; }"""


def assert_no_sideways_scroll(table) -> None:
    """A data grid shows all its columns: its scroller is no wider inside than its box."""
    inside, box = table.evaluate(SCROLL_WIDTHS)
    assert inside <= box + 1, f"the table scrolls sideways: {inside} px of columns in a {box} px box"


def history_of_every_run(page, shot: str) -> None:
    """On the Training history page, overlay every run: one legend entry per run, below the
    axes, neither scrolling nor overlapping the axis titles."""
    box = page.locator(".st-key-history_runs [data-testid=stMultiSelect]")
    options = sorted(p.name for p in (ROOT / "models").iterdir() if (p / "history.json").is_file()) + ["tiny-fast"]
    entries = (
        "() => { const p = document.querySelector('.st-key-history_chart .js-plotly-plot');"
        " return p ? p.querySelectorAll('.legend .traces').length : 0; }"
    )
    box.click()
    page.get_by_role("option", name="Select all", exact=True).click()  # Streamlit's multiselect offers it
    page.wait_for_function(f"() => ({entries})() === {len(options)}")
    page.keyboard.press("Escape")
    settle(page)
    no_exceptions(page)
    fits = page.evaluate(LEGEND_FITS, "history_chart")
    assert fits == {"entries": len(options), "scrolls": False, "overlaps": 0, "inside": True}, fits
    # The table shows every column, names whole, without scrolling sideways.
    assert_no_sideways_scroll(page.locator("[data-testid=stDataFrame]").first)
    shoot(page, shot)


def go_to(page, title: str, path: str) -> None:
    page.get_by_role("link", name=title).click()
    page.wait_for_url(f"**/{path}")
    settle(page)
    no_exceptions(page)


def choose_run(page, run_id: str) -> None:
    """Pick ``run_id`` in the sidebar and wait until the Overview shows it (the rerun may not
    have started when the click returns, so a settled page alone can still be the old run's)."""
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(run_id)} ")).click()
    page.locator("[data-testid=stMain] h3 code", has_text=run_id).wait_for()
    settle(page)


def compare_with(page, run_id: str, shot: str) -> None:
    """On the Compare page (the sidebar's run is A), choose ``run_id`` as B and check every
    genre labels the charts' axes and the disagreement table fits."""
    page.locator(".st-key-compare_run_b [data-testid=stSelectbox]").click()
    page.get_by_role("option", name=run_id, exact=True).click()
    page.locator("[data-testid=stMetricLabel]", has_text=f"B · {run_id}").wait_for()
    settle(page)
    no_exceptions(page)
    shoot(page, shot)
    genres = read_json(ROOT / "models" / run_id / "genres.json")
    assert sorted(page.evaluate(TICKS, ["compare_per_genre_chart", "x"])) == sorted(genres)
    assert sorted(page.evaluate(TICKS, ["compare_confusion_a", "x"])) == sorted(genres)
    assert page.locator(".st-key-compare_confusion_a").bounding_box()["width"] >= 450
    page.get_by_role("tab", name="B − A").click()
    page.locator(".st-key-compare_difference_chart .ytick text").first.wait_for()
    assert sorted(page.evaluate(TICKS, ["compare_difference_chart", "y"])) == sorted(genres)
    shoot(page, shot + "-difference")
    assert page.evaluate(TRACE_COUNT, "compare_per_genre_chart") == 2
    assert page.get_by_text("Paired test").is_visible()
    assert_no_sideways_scroll(page.locator("[data-testid=stDataFrame]").last)  # the page's only table
    assert page.evaluate(CLIPPED, "[data-testid=stMetricLabel] *, [data-testid=stMetricValue] *") == []


def test_compare_page_at_1400_px(page, server):
    page.goto(f"{server}/")
    settle(page)
    choose_run(page, SHIPPED)
    shoot(page, "1-overview-shipped")
    assert page.locator(".st-key-recall_chart").bounding_box()["width"] >= 400
    go_to(page, "Training history", "history")
    history_of_every_run(page, "2-history-every-run")
    go_to(page, "Compare", "compare")
    compare_with(page, COMPARED, "5-compare")


def test_every_page_reads_at_1024_px(narrow, server, models, tmp_path):
    page = narrow
    metrics = read_json(models / SHIPPED / "metrics.json")
    page.goto(f"{server}/")
    settle(page)
    choose_run(page, SHIPPED)
    no_exceptions(page)
    shoot(page, "1024-1-overview")
    genres = metrics["genres"]
    assert sorted(t.split(" · ")[0] for t in page.evaluate(TICKS, ["recall_chart", "y"])) == genres
    assert page.evaluate(TICKS_INSIDE, "recall_chart")
    # Both per-genre charts wide enough to read (beside the facts table they were 55 px).
    for key in ("recall_chart", "unseen_recall_chart"):
        assert page.locator(f".st-key-{key}").bounding_box()["width"] >= 240, key
    assert (
        page.evaluate(
            CLIPPED, "[data-testid=stMain] button *, [data-testid=stMetricLabel] *, [data-testid=stMetricValue] *"
        )
        == []
    )

    go_to(page, "Held-out songs", "held_out")  # links keep the session (and its run choice)
    shoot(page, "1024-3-held-out")
    # Every genre labels both axes of the confusion matrix, and the matrix is not a postage stamp.
    assert sorted(page.evaluate(TICKS, ["confusion_chart", "x"])) == genres
    assert sorted(page.evaluate(TICKS, ["confusion_chart", "y"])) == genres
    assert page.locator(".st-key-confusion_chart").bounding_box()["width"] >= 450
    # The per-genre table shows all its columns without scrolling sideways.
    assert_no_sideways_scroll(page.locator("[data-testid=stDataFrame]").first)

    go_to(page, "Compare", "compare")
    compare_with(page, COMPARED, "1024-5-compare")

    go_to(page, "Training history", "history")
    history_of_every_run(page, "1024-2-history")

    path = tmp_path / "ten-seconds.wav"
    sf.write(path, song("drones", 10.0, seed=5, sr=22_050), 22_050)
    go_to(page, "Classify", "classify")
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(path)
    page.get_by_role("button", name="Classify", exact=True).click()
    page.wait_for_function(f"() => ({BAR_COUNT})('upload_windows') === 3")
    assert len(genres) == 10
    # The shipped model reads through musicnn: its taggram is the third part of the figure.
    page.wait_for_function(f"() => ({TRACE_COUNT})('upload_heard') === 3")
    settle(page)
    no_exceptions(page)
    assert len(page.evaluate(TICKS, ["upload_heard", "y3"])) == 10  # musicnn's top 10 tags, all labelled
    assert page.locator(".st-key-upload_heard").bounding_box()["width"] >= 500
    # The shipped run carries its song map: the upload is a star on it, the map wide enough to read.
    page.wait_for_function(f"() => ({TRACE_COUNT})('upload_map') > 0")
    names = page.evaluate("() => document.querySelector('.st-key-upload_map .js-plotly-plot').data.map(t => t.name)")
    assert "your song" in names and "nearest training songs" in names
    assert page.locator(".st-key-upload_map").bounding_box()["width"] >= 500
    shoot(page, "1024-4-classify-upload")
    shoot_below(page, "1024-4-classify-upload-map", "upload_map")
    shoot_below(page, "1024-4-classify-upload-heard", "upload_heard")
    # Genre names whole on the ranking chart ("classical", not "assical"); card titles whole.
    assert sorted(t.split(" · ")[0] for t in page.evaluate(TICKS, ["upload_ranking", "y"])) == genres
    assert page.evaluate(TICKS_INSIDE, "upload_ranking")
    assert page.evaluate(CLIPPED, "[data-testid=stMetricLabel] *, [data-testid=stMetricValue] *") == []
    assert page.locator(".st-key-upload_ranking").bounding_box()["width"] >= 300

    page.goto(f"{server}/song_map")  # a new session: the active run, tiny-fast, which has a map
    settle(page)
    no_exceptions(page)
    shoot(page, "1024-7-song-map")
    assert page.locator(".st-key-song_map_chart").bounding_box()["width"] >= 500
    assert page.evaluate(CLIPPED, "[data-testid=stMain] [data-testid=stCaptionContainer] *") == []


def test_an_upload_over_the_size_limit_says_so_visibly(page, server, tmp_path):
    big = tmp_path / "too-big.wav"
    with open(big, "wb") as f:
        f.truncate(65 * 1024 * 1024)  # over the 64 MB limit (a sparse file: no disk used)
    page.goto(f"{server}/classify")
    settle(page)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(big)
    message = page.get_by_text(re.compile(r"File must be 64(\.0)? ?MB or smaller"))
    message.wait_for(state="visible")
    box = message.bounding_box()
    assert box and box["width"] > 100 and box["height"] >= 10  # readable, not a bare icon
    assert "too-big.wav" in page.locator("[data-testid=stMain]").inner_text()
    shoot(page, "8-classify-upload-too-big")


@pytest.fixture
def training_job(models, tiny_run):
    """A training job in the middle of epoch 6, as a job process would leave its files; the
    process is a stand-in that sleeps (the lock needs a live process with 'genre' in its command)."""
    from genre.jobs import jobs

    run = models / "in-progress"
    run.mkdir()
    history = read_json(tiny_run / "history.json")[:5]
    (run / "history.json").write_text(json.dumps(history))
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "genre"])
    (run / "status.json").write_text(
        json.dumps(
            {
                "state": "running",
                "pid": stand_in.pid,
                "epoch": 6,
                "epochs": 8,
                "batch": 2,
                "batches": 4,
                "loss": 0.5,
                "accuracy": 0.8,
                "eta_seconds": 30,
                "updated": time.time(),
            }
        )
    )
    lock = {
        "kind": "train",
        "job_id": "train-browser",
        "pid": stand_in.pid,
        "started": time.time(),
        "log": str(run / "train.log"),
        "argv": ["-m", "genre", "train", "--data", "x", "--model", "fast", "--protocol", "stratified"],
        "run_id": run.name,
        "run_dir": str(run),
        "progress": str(run / "status.json"),
    }
    (models / jobs.LOCK_NAME).write_text(json.dumps(lock))
    yield run
    stand_in.kill()
    stand_in.wait()
    (models / jobs.LOCK_NAME).unlink(missing_ok=True)
    shutil.rmtree(run)


def test_the_sidebar_training_chart_is_readable(narrow, server, training_job):
    page = narrow
    page.goto(f"{server}/")
    settle(page)
    chart = page.locator(".st-key-retrain_progress_chart .js-plotly-plot")
    chart.wait_for()
    box = chart.bounding_box()
    assert box["height"] >= 150 and box["width"] >= 200
    assert "epoch 6/8" in page.locator("[data-testid=stSidebar]").inner_text()
    assert "None" not in page.locator("[data-testid=stSidebar]").inner_text()  # no config.json yet: nothing, not "None"
    page.locator("[data-testid=stSidebar]").screenshot(path=str(SHOTS / "1024-9-sidebar-training.png"))
    # One Cancel in the whole page, the one on screen: no hidden twin that a script or an
    # assistive tool could press (Streamlit draws a button with a help tooltip twice).
    assert cancel_buttons(page) == (1, 1)
    page.goto(f"{server}/classify")
    settle(page)
    page.get_by_role("tab", name="Microphone (live)").click()
    page.frame_locator("iframe[title*=webrtc]").get_by_role("button", name="START").wait_for()
    assert cancel_buttons(page) == (1, 1)


def test_job_controls_are_the_operators(browser, server):
    """On loopback the sidebar offers Retrain; the same page reached through a proxy (a
    visitor from elsewhere) shows the runs but no job controls."""
    for headers, operator in (({}, True), ({"X-Forwarded-For": "203.0.113.9"}, False)):
        context = browser.new_context(viewport={"width": 1400, "height": 1500}, extra_http_headers=headers)
        page = context.new_page()
        page.set_default_timeout(120_000)
        try:
            page.goto(f"{server}/")
            settle(page)
            sidebar = page.locator("[data-testid=stSidebar]")
            assert sidebar.get_by_text("Retrain", exact=True).first.is_visible()  # the panel's title
            assert sidebar.get_by_role("button", name="Retrain").count() == (1 if operator else 0)
            assert sidebar.get_by_text("open only to the operator").count() == (0 if operator else 1)
            if not operator:
                shoot(page, "10-remote-visitor")
        finally:
            context.close()


def test_library_scan_select_a_song_and_read_at_both_widths(page, narrow, server, tmp_path):
    music = tmp_path / "music"  # under pytest's folder: inside the operator's roots (conftest)
    (music / "sub").mkdir(parents=True)
    write(music / "drones.flac", song("drones", 9.0, seed=1))
    write(music / "sub" / "noise.ogg", song("noise", 7.0, seed=2))
    write(music / "sub" / "clicks.wav", song("clicks", 12.0, seed=3))
    (music / "notes.mp3").write_text("not audio")  # its reason must be readable at 1024 px
    page.goto(f"{server}/library")
    settle(page)
    no_exceptions(page)
    page.get_by_role("textbox", name="Music folder on the server").fill(str(music))
    page.get_by_role("button", name="Scan").click()
    page.get_by_text("3 songs classified").wait_for(timeout=180_000)
    settle(page)
    no_exceptions(page)
    # Select a song (the grid's row marker column), then its timeline and player appear.
    table = page.locator(".st-key-library_table [data-testid=stDataFrame]")
    box = table.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 35 + 17)  # the second row: the unreadable file comes first
    page.locator(".st-key-library_timeline .js-plotly-plot").wait_for()
    settle(page)
    assert page.locator("[data-testid=stAudio]").count() == 1
    shoot(page, "6-library")
    narrow.goto(f"{server}/library")
    settle(narrow)
    no_exceptions(narrow)
    assert narrow.evaluate(CLIPPED, "[data-testid=stMain] button *") == []
    reason = narrow.locator("[data-testid=stTable]").get_by_text(
        "not a readable audio file (its format was not recognised, or the file is damaged)"
    )
    assert reason.is_visible() and narrow.evaluate(CLIPPED, "[data-testid=stTable] td, [data-testid=stTable] th") == []
    shoot(narrow, "1024-6-library")
