"""The playground in a real browser: Debian's Chromium driven headless by Playwright.

Needs /usr/bin/chromium (``apt-get install -y chromium``; ``.ci/run`` installs it). The server
runs in a background thread on a free port; the screenshot is kept under pytest's tmp folder.
"""

import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import deltaprop as dp  # noqa: E402
from deltaprop.playground import create_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url)
    page.wait_for_selector("#connection:text('connected')")
    wait_until(page, "document.getElementById('epoch').textContent === '0'")
    yield page
    context.close()
    assert not errors, errors


def wait_until(page, expression: str, timeout: float = WAIT_MS / 1000):
    """Poll ``expression`` (JavaScript) until truthy. Not ``wait_for_function``: that
    compiles strings in the page, which the page's Content-Security-Policy forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def percent(page, selector) -> float:
    text = page.text_content(selector)
    return float(text.rstrip(" %")) if text and text[0].isdigit() else 0.0


def train_until(page, selector, threshold):
    page.click("#play")
    wait_until(page, f"parseFloat(document.querySelector('{selector}').textContent) > {threshold}")
    page.click("#play")
    page.wait_for_selector("#play:text('Play')")


def set_field(page, selector, value):
    page.fill(selector, value)
    page.dispatch_event(selector, "change")


def canvas_stats(page, canvas_id):
    """Painted pixels and distinct (coarse) colours of a canvas, read back from the page."""
    return page.evaluate(
        """(id) => {
            const c = document.getElementById(id);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let painted = 0; const colours = new Set();
            for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) painted++;
                colours.add((d[i] >> 5) + ',' + (d[i + 1] >> 5) + ',' + (d[i + 2] >> 5));
            }
            return {painted, colours: colours.size, total: d.length / 4};
        }""",
        canvas_id,
    )


def region_colour_counts(page):
    """Pixels of the output plot closest to each class colour's tint (blue, orange, green)."""
    return page.evaluate(
        """() => {
            const c = document.getElementById('regions');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const counts = [0, 0, 0];
            for (let i = 0; i < d.length; i += 4) {
                const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
                if (b > r + 40 && b > g + 20) counts[0]++;
                else if (r > b + 60 && r > g + 20) counts[1]++;
                else if (g > r + 30 && g > b + 10) counts[2]++;
            }
            return counts;
        }"""
    )


def test_spiral_trains_past_90_percent_with_curves_regions_and_backprop(page, tmp_path):
    train_until(page, "#test-acc", 90)
    assert percent(page, "#test-acc") > 90 and int(page.text_content("#epoch")) > 1
    loss = canvas_stats(page, "loss-curve")
    accuracy = canvas_stats(page, "accuracy-curve")
    assert loss["painted"] > 300 and accuracy["painted"] > 300
    counts = region_colour_counts(page)
    total = canvas_stats(page, "regions")["total"]
    assert all(count > 0.1 * total for count in counts), counts  # three class regions
    assert canvas_stats(page, "network")["colours"] > 10
    set_field(page, "#trace-index", "5")
    page.wait_for_selector("#trace table")
    rows = page.inner_text("#trace table")
    assert "δ(1) = σ′(a(1)) ∘ (W(2))ᵀ δ(2)" in rows and "f − ỹ" in rows
    page.click("#regions", position={"x": 200, "y": 200})  # a pick on the plot also works
    wait_until(page, "document.getElementById('trace-index').value !== '5'")
    page.screenshot(path=tmp_path / "playground.png", full_page=True)
    assert (tmp_path / "playground.png").stat().st_size > 10_000


def test_uploaded_csv_is_trained_in_the_page(page, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(160, 3))
    label = np.where(X[:, 0] + X[:, 2] > 0, "yes", "no")
    lines = ["a,b,c,answer"] + [f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{y}" for r, y in zip(X, label)]
    path = tmp_path / "answers.csv"
    path.write_text("\n".join(lines))
    page.set_input_files("#upload", path)
    page.wait_for_selector("#output-note:has-text('answers.csv')")
    assert page.input_value("#target") == "answer"
    assert page.is_visible("#view-x") and not page.is_visible("#noise")
    train_until(page, "#test-acc", 85)
    assert canvas_stats(page, "regions")["painted"] > 1000


def test_bad_settings_and_divergence_show_messages(page):
    set_field(page, "#hidden", "16,0")
    page.wait_for_selector("#error:not([hidden])")
    assert "hidden layers" in page.text_content("#error")
    set_field(page, "#hidden", "16")
    page.wait_for_selector("#error", state="hidden")
    set_field(page, "#learning-rate", "10000")
    page.click("#play")
    page.wait_for_selector("#warning:not([hidden])", timeout=WAIT_MS)
    warning = page.text_content("#warning")
    assert "diverged" in warning and "smaller learning rate" in warning
    page.wait_for_selector("#play:text('Play')")  # training paused itself
    assert page.text_content("#train-loss") not in ("NaN", "Infinity")


def test_export_downloads_a_model_that_loads(page, tmp_path):
    page.click("#step")
    wait_until(page, "document.getElementById('epoch').textContent === '1'")
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    network = dp.load(path)
    assert network.sizes == [2, 32, 32, 3]
    command = page.text_content("#command")
    assert command.startswith("deltaprop train spiral --hidden 32,32") and "--epochs 1" in command
