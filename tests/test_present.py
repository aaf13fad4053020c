"""`make present` (tools/present.py): the notebooks as live Voila pages on localhost.

The browser test serves notebooks 01 and 05, waits until both are preheated, opens each from the
landing page in Chromium, changes a control, presses Run / Show and checks that the picture
changes; every request stays on this machine, and no console error or failed request comes from
any page or extension. One request is let through: leaving a page, Voila's script sends its
kernel's shutdown as a beacon, which Chromium reports aborted as the page unloads; the server's
log must show that kernel shut down. (Console *warnings* are allowed: the widget extension,
built against JupyterLab 4.6, notes that Voila bundles 4.2.) After the server stops, no Voila
or kernel process is left. Screenshots: build/browser/present_*.png.
It needs Chromium at /usr/bin/chromium, the Python package playwright and Voila; without them it
is skipped, except under CI=true, where it fails. The other tests are fast (no browser, no kernel).
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [ROOT / "notebooks" / "01_backprop_to_image.ipynb",
             ROOT / "notebooks" / "05_guided_backprop.ipynb"]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SHOTS = ROOT / "build" / "browser"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu", "--disable-quic"]
PANEL_RUN_TIMEOUT_MS = 4 * 60_000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _load_present():
    spec = importlib.util.spec_from_file_location("present", ROOT / "tools" / "present.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["present"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


present = _load_present()


def _missing(message: str):
    if IN_CI:
        pytest.fail(message + " (CI=true: the browser test is required)")
    pytest.skip(message)


# ---- fast: no browser, no kernel -------------------------------------------------------------


def test_a_taken_port_is_named_with_the_way_out():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, str(ROOT / "tools" / "present.py"), "--port", str(port),
                              str(NOTEBOOKS[1])], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"port {port} is in use" in run.stderr
    assert "make present PORT=" in run.stderr


def test_make_present_passes_port_and_device():
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "present", *args], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout

    default = dry()
    assert "tools/present.py --port 8866" in default and "--device" not in default
    assert "01_backprop_to_image.ipynb" in default and "05_guided_backprop.ipynb" in default
    chosen = dry("PORT=8870", "DEVICE=cuda")
    assert "--port 8870 --device cuda" in chosen
    assert "--allow-root" not in default  # Voila, unlike Jupyter Server, runs as root unasked


def test_titles_and_page_urls():
    assert present.notebook_title(NOTEBOOKS[1]) == "5 · Guided backpropagation versus the deconvnet"
    server = present.Server("http://127.0.0.1:1/", [p.name for p in NOTEBOOKS], Path("/x"), None)
    assert server.page_url(NOTEBOOKS[0]) == "http://127.0.0.1:1/voila/render/01_backprop_to_image.ipynb"
    assert server.page_url("05_guided_backprop") == server.page_url("05_guided_backprop.ipynb")
    with pytest.raises(KeyError, match="not served here"):
        server.page_url("02_data_gradient")


# ---- slow: the server and Chromium --------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}; install Chromium: sudo apt-get install chromium")
    for module, how in (("playwright.sync_api", "pip install -e '.[test]'"),
                        ("voila", "pip install -e '.[present]'")):
        try:
            importlib.import_module(module)
        except ImportError:
            _missing(f"the Python package {module.split('.')[0]} is missing: {how}")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def server(chromium_path):
    """01 and 05 preheated (01 takes 1.5-4 min on a 2-core CPU); afterwards nothing is left."""
    with present.serving(NOTEBOOKS, log=print, timeout=1200) as running:
        yield running
    assert running.process.returncode is not None
    left = present.leftover_processes(str(running.runtime_dir))
    assert not left, f"processes left after the server stopped: {left}"


class Watch:
    """Every request and web socket of a browser context, and every error it reports."""

    def __init__(self, context) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        context.on("request", lambda r: self.urls.append(r.url))
        context.on("requestfailed", self._failed)
        context.on("weberror", lambda e: self.errors.append(f"page error: {e.error}"))
        context.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console error: {m.text} ({m.location.get('url')})"))

    def _failed(self, request) -> None:
        # Leaving a page, Voila's script sends its kernel's shutdown as a beacon: Chromium
        # reports it aborted as the page unloads, but it arrives (checked in the server's log).
        if not ("/voila/api/shutdown/" in request.url and request.failure == "net::ERR_ABORTED"):
            self.errors.append(f"request failed: {request.url} {request.failure}")

    def kernels(self) -> set[str]:
        """The kernels the pages connected to (their web sockets)."""
        return {m[1] for u in self.urls if (m := re.search(r"/api/kernels/([-0-9a-f]+)/channels", u))}

    def watch_page(self, page) -> None:
        page.on("websocket", lambda ws: self.urls.append(ws.url))

    def off_machine(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).scheme not in ("data", "blob")
                and urlsplit(u).hostname not in LOCAL_HOSTS]


@pytest.fixture
def browser_context(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": 1600, "height": 1000})
        finally:
            browser.close()


def _press(handle, key: str) -> None:
    handle.focus()
    handle.press(key)


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(SHOTS / f"present_{name}.png"))
    except Exception as err:  # never hide the test's own failure
        print(f"no screenshot {name}: {err}")


def _open_from_landing(page, server, notebook: Path) -> float:
    """Open the landing page, check the order and readiness, click ``notebook``; seconds until
    its first widget is drawn."""
    page.goto(server.url)
    links = page.locator("li a")
    assert links.all_inner_texts() == [present.notebook_title(p) for p in NOTEBOOKS]
    assert page.locator("li .ok").all_inner_texts() == ["ready"] * len(NOTEBOOKS)
    start = time.monotonic()
    page.locator("li a", has_text=present.notebook_title(notebook)).click()
    page.wait_for_url(server.page_url(notebook))
    page.locator(".widget-button").first.wait_for(timeout=120_000)
    return time.monotonic() - start


def _errors_on_page(page) -> list[str]:
    texts = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]').all_inner_texts()
    return [t for t in texts if "Traceback" in t or "Error" in t]


@pytest.mark.slow
def test_live_pages_in_chromium(server, browser_context, record_property):
    record_property("ready_seconds", server.ready_seconds)
    assert not server.errors, f"a notebook failed while preheating: {server.errors}"
    watch = Watch(browser_context)
    page = browser_context.new_page()
    watch.watch_page(page)

    # 01: the class-model panel (the output with the class combobox), the shortest run
    seconds = _open_from_landing(page, server, NOTEBOOKS[0])
    record_property("open_01_seconds", round(seconds, 1))
    print(f"01 opened in {seconds:.1f} s")
    assert seconds < 60, "the page took as long as running the notebook: was it preheated?"
    assert "import lecture_utils" not in page.content(), "code is shown"
    assert page.locator("mjx-container").count() > 0, "no formula typeset (MathJax)"
    assert page.locator(".jp-OutputArea-output img").count() > 2, "pictures missing"
    panel = page.locator(".jp-OutputArea-output").filter(has=page.locator("datalist")).first
    panel.scroll_into_view_if_needed(timeout=60_000)
    steps = panel.locator(".widget-slider", has_text="steps")
    _press(steps.locator(".noUi-handle"), "Home")  # the fewest steps (8): a short run
    page.wait_for_function("el => el.textContent.trim() === '8'",
                           arg=steps.locator(".widget-readout").element_handle(), timeout=10_000)
    preview = panel.locator("img").first
    old_src = preview.get_attribute("src")
    status = panel.locator(".widget-html").filter(has_text="Press run").first.element_handle()
    _shoot(page, "01_before")
    try:
        panel.locator("button", has_text="Run").click()
        page.wait_for_function("([img, old]) => img.getAttribute('src') !== old",
                               arg=[preview.element_handle(), old_src], timeout=PANEL_RUN_TIMEOUT_MS)
        page.wait_for_function("el => el.textContent.includes('P(')", arg=status,
                               timeout=PANEL_RUN_TIMEOUT_MS)
    finally:
        _shoot(page, "01_after")
    assert "color:#b00" not in status.inner_html()
    assert not _errors_on_page(page)

    # 05: switch the backward rule (the panel redraws), then press Show
    seconds = _open_from_landing(page, server, NOTEBOOKS[1])
    record_property("open_05_seconds", round(seconds, 1))
    panel = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-toggle-buttons")).first
    panel.scroll_into_view_if_needed(timeout=60_000)
    preview = panel.locator("img").first
    status = panel.locator(".widget-html").first.element_handle()
    _shoot(page, "05_before")
    try:
        old_src = preview.get_attribute("src")
        panel.locator(".widget-toggle-button", has_text="deconvnet").click()
        page.wait_for_function("([img, old]) => img.getAttribute('src') !== old",
                               arg=[preview.element_handle(), old_src], timeout=PANEL_RUN_TIMEOUT_MS)
        page.wait_for_function("el => el.textContent.startsWith('deconvnet:')", arg=status,
                               timeout=PANEL_RUN_TIMEOUT_MS)
        drawn = preview.get_attribute("src")
        panel.locator("button", has_text="Show").click()
        page.wait_for_function("el => !el.disabled", arg=panel.locator("button", has_text="Show")
                               .element_handle(), timeout=PANEL_RUN_TIMEOUT_MS)
    finally:
        _shoot(page, "05_after")
    assert preview.get_attribute("src") == drawn  # the same rule and channel: the same map
    assert re.match(r"deconvnet: .* at its strongest position", status.inner_text())
    assert not _errors_on_page(page)
    page.goto(server.url)  # leaving a page shuts its kernel down
    log = server.runtime_dir / "voila.log"
    for _ in range(40):
        if all(f"Kernel shutdown: {k}" in log.read_text() for k in watch.kernels()):
            break
        time.sleep(0.5)
    assert len(watch.kernels()) == 2
    assert all(f"Kernel shutdown: {k}" in log.read_text() for k in watch.kernels()), \
        "a page's kernel is still running after the page was left"
    page.close()

    assert not watch.off_machine(), f"requests off this machine: {watch.off_machine()}"
    assert not watch.errors, "\n".join(watch.errors)
