"""The widgets in a real browser: JupyterLab from this environment, driven by Chromium through
Playwright. Opens notebook 01, runs all cells, moves the class-model panel's λ slider with the
keyboard, presses Run and checks that the preview picture changes and no error appears.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser downloads are not used).
Without it the test is skipped, except under CI=true, where it fails. A screenshot is saved as
build/browser/01_class_model_panel.png (also when the test fails).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_backprop_to_image.ipynb"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = ROOT / "build" / "browser" / "01_class_model_panel.png"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu", "--disable-quic"]
RUN_ALL_TIMEOUT_MS = 8 * 60_000  # notebook 01: 1.5–3 min on a 2-core CPU
PANEL_RUN_TIMEOUT_MS = 4 * 60_000

pytestmark = pytest.mark.slow


def _missing(message: str):
    if IN_CI:
        pytest.fail(message + " (CI=true: the browser test is required)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}; install Chromium: sudo apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the Python package playwright is missing: pip install -e '.[test]'")
    return str(CHROMIUM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab_url(chromium_path, tmp_path_factory):
    """JupyterLab on a free loopback port, no token, serving a copy of notebook 01 (autosave
    must not touch the committed one), with its own settings and workspaces."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    settings = home / "settings" / "@jupyterlab"
    for name, values in {
        # start the notebook's kernel without asking; render every cell (no windowing)
        "notebook-extension/tracker": '{"autoStartDefaultKernel": true, "windowingMode": "none"}',
        # no news or update checks (no internet, and no toast over the notebook)
        "apputils-extension/notification": '{"fetchNews": "false", "checkForUpdates": false}',
    }.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(values)
    port = _free_port()
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={root}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(home / "jupyterlab.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({server.returncode}):\n"
                                   + (home / "jupyterlab.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not answer within 120 s:\n"
                                   + (home / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield f"{url}/lab/tree/{NOTEBOOK.name}"
    finally:
        server.terminate()  # the server shuts its kernels down
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def page(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


# Every cell is in the DOM (windowingMode "none" above), so the prompts tell
# whether all code cells have run: "[12]:" done, "[*]:" running or queued, "[ ]:" not yet.
ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


NO_CELL_RAN = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .every(p => !/\\[\\d+\\]/.test(p.textContent))"""


def _errors(page) -> list[str]:
    """Tracebacks and error outputs shown anywhere in the notebook (widget outputs included)."""
    texts = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
    ).all_inner_texts()
    return [t for t in texts if "Traceback" in t or "Error" in t]


def _accept_kernel_dialog(page) -> None:
    """If JupyterLab asks which kernel to start, take the notebook's own (the default)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=3_000)
    except Exception:  # no dialog: the kernel started by itself
        return
    dialog.locator("button.jp-mod-accept").click()


def _press(handle, key: str, times: int = 1) -> None:
    handle.focus()
    for _ in range(times):
        handle.press(key)


def test_class_model_panel_runs_in_the_browser(lab_url, page, record_property):
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    record_property("screenshot", str(SCREENSHOT))
    try:
        page.goto(lab_url)
        page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=120_000)
        _accept_kernel_dialog(page)
        # the kernel is up before we run (the toolbar's status reads "Idle")
        page.wait_for_function(
            """() => [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator, '
                + '.jp-KernelStatus, [data-status]')].some(e => /idle/i.test(
                    (e.getAttribute('data-status') || '') + e.textContent + (e.title || '')))""",
            timeout=120_000,
        )

        # the committed notebook carries outputs and execution counts: clear them first, so
        # that numbered prompts below mean "ran in this kernel"
        page.locator(".lm-MenuBar-itemLabel", has_text="Edit").first.click()
        page.get_by_role("menuitem", name="Clear Outputs of All Cells", exact=True).click()
        page.wait_for_function(NO_CELL_RAN, timeout=30_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        _accept_kernel_dialog(page)
        page.wait_for_function(ALL_CELLS_RAN, timeout=RUN_ALL_TIMEOUT_MS, polling=1000)
        assert not _errors(page), "error output after Run All:\n" + "\n".join(_errors(page))

        # the class-model panel is the widget output with the "class" combobox (an <input> with
        # a <datalist>); the neuron panel has none
        panel = page.locator(".jp-OutputArea-output").filter(has=page.locator("datalist")).first
        panel.scroll_into_view_if_needed(timeout=60_000)
        lam = panel.locator(".widget-slider", has_text="λ (L2 prior)")
        steps = panel.locator(".widget-slider", has_text="steps")
        lam_readout = lam.locator(".widget-readout")
        before = lam_readout.inner_text()
        _press(lam.locator(".noUi-handle"), "ArrowRight", 3)  # λ up by 3 × 0.1 decades
        page.wait_for_function("([el, old]) => el.textContent.trim() !== old.trim()",
                               arg=[lam_readout.element_handle(), before], timeout=10_000)
        _press(steps.locator(".noUi-handle"), "Home")  # the fewest steps (8): a short run
        page.wait_for_function("el => el.textContent.trim() === '8'",
                               arg=steps.locator(".widget-readout").element_handle(), timeout=10_000)

        preview = panel.locator("img").first  # the live preview; the loss curve comes after it
        old_src = preview.get_attribute("src")
        status = panel.locator(".widget-html").filter(has_text="Press run").first
        status_handle = status.element_handle()
        panel.locator("button", has_text="Run").click()
        page.wait_for_function("([img, old]) => img.getAttribute('src') !== old",
                               arg=[preview.element_handle(), old_src], timeout=PANEL_RUN_TIMEOUT_MS)
        # the run is over when the status shows the class probability
        page.wait_for_function("el => el.textContent.includes('P(')", arg=status_handle,
                               timeout=PANEL_RUN_TIMEOUT_MS)
        assert preview.get_attribute("src") != old_src
        assert not _errors(page), "error output after Run:\n" + "\n".join(_errors(page))
        assert "color:#b00" not in status_handle.inner_html()
    finally:
        try:
            page.screenshot(path=str(SCREENSHOT))
            print(f"screenshot: {SCREENSHOT}")
        except Exception as err:  # never hide the test's own failure
            print(f"no screenshot: {err}")
