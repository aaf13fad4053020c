"""Time to first picture: how long a live panel keeps the lecture waiting, measured in a browser.

``make present``'s server (``tools/present.py``: Voila, preheated kernels) serves the five
notebooks; Chromium (Playwright) opens each page, and for every panel at its defaults
presses its button (Run, Show, Reconstruct, Segment) and measures, in the page, from the
click to

* the **first preview**: the panel's preview picture changes (optimisation panels call back
  after their first step, then every 10 steps);
* the **final picture**: the button is enabled again (the panel disables it while it runs;
  the kernel sends the last picture before it re-enables the button, in order).

The panels that draw one picture at once (saliency, GrabCut, guided map) redraw the same
picture when pressed at their defaults, so nothing changes on the page: their first preview
*is* the final picture. ``ROUNDS`` presses per panel; the median and the range are reported.
What a student sees includes the kernel's work, the widget messages and the browser's
drawing. Goal on a 2-core CPU: first preview ≤ 1 s for every panel.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import torch

from .common import fmt_seconds, progress, table, write_section

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu", "--disable-quic"]
ROUNDS = 3
GOAL = 1.0  # seconds to the first preview
BUTTONS = ("Run", "Show", "Reconstruct", "Segment")
ONE_SHOT = ("Show", "Segment")  # draw one picture at once

# In the page: press the button, then watch the panel's first picture (its preview) and the
# button's `disabled` flag; resolve with the seconds to each, from the click.
PRESS = """async (button, timeout) => {
    const panel = button.closest('.jp-OutputArea-output') || button.parentElement;
    const preview = panel.querySelector('img');
    return await new Promise((resolve, reject) => {
        let first = null, disabled = false, start = 0;
        const observer = new MutationObserver(records => {
            const now = performance.now();
            for (const r of records) {
                if (r.target === preview && r.attributeName === 'src' && first === null) first = now;
                if (r.target !== button || r.attributeName !== 'disabled') continue;
                if (r.oldValue === null) disabled = true;       // the run started
                else if (disabled && !button.hasAttribute('disabled')) {   // and it is over
                    observer.disconnect();
                    resolve({first: first === null ? null : (first - start) / 1000,
                             final: (now - start) / 1000});
                    return;
                }
            }
        });
        observer.observe(panel, {subtree: true, attributes: true, attributeOldValue: true,
                                 attributeFilter: ['src', 'disabled']});
        setTimeout(() => { observer.disconnect(); reject(new Error('no result in time')); },
                   timeout);
        start = performance.now();
        button.click();
    });
}"""


def _panels(page) -> list:
    buttons = page.locator("button.jupyter-button")
    return [b for b in buttons.all() if b.inner_text().strip() in BUTTONS]


def _name(button, index: int) -> str:
    """The panel's first control's description, e.g. 'class', 'layer', 'image'."""
    label = button.evaluate("""b => {
        const panel = b.closest('.jp-OutputArea-output') || b.parentElement;
        const first = panel.querySelector('.widget-label');
        return first ? first.textContent.trim() : '';
    }""")
    return f"panel {index + 1} ({label}…)" if label else f"panel {index + 1}"


def measure(page, url: str, rounds: int = ROUNDS) -> list[dict]:
    page.goto(url)
    page.locator("button.jupyter-button").first.wait_for(timeout=180_000)
    results = []
    for index, button in enumerate(_panels(page)):
        button.scroll_into_view_if_needed()
        label = button.inner_text().strip()
        times = [button.evaluate(PRESS, 600_000) for _ in range(rounds)]
        finals = [t["final"] for t in times]
        firsts = [t["first"] if t["first"] is not None else t["final"] for t in times]
        results.append({"panel": _name(button, index), "button": label, "first": firsts,
                        "final": finals, "one_shot": label in ONE_SHOT})
    return results


def _cell(values: list[float]) -> str:
    return f"{fmt_seconds(statistics.median(values))} [{fmt_seconds(min(values))}–{fmt_seconds(max(values))}]"


def run(device: torch.device) -> bool:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import present
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        progress(f"panels: skipped ({err}; needs `pip install -e '.[present,test]'`)")
        return False
    if not CHROMIUM.exists():
        progress(f"panels: skipped (no Chromium at {CHROMIUM}; sudo apt-get install chromium)")
        return False
    started = time.perf_counter()
    rows, ok = [], True
    progress(f"panels: starting the server, {len(NOTEBOOKS)} notebooks (preheating takes minutes)")
    with present.serving(NOTEBOOKS, device=str(device)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            for path in NOTEBOOKS:
                progress(f"panels: {path.name}")
                for r in measure(page, server.page_url(path.name)):
                    first = statistics.median(r["first"])
                    ok &= first <= GOAL
                    rows.append([path.stem, r["panel"], r["button"],
                                 _cell(r["first"]) + (" (one picture)" if r["one_shot"] else ""),
                                 _cell(r["final"]), "yes" if first <= GOAL else "**no**"])
        finally:
            browser.close()
        ready = server.ready_seconds
    body = (
        f"Each panel pressed {ROUNDS} times at its defaults in Chromium (Playwright), on "
        "`make present`'s Voila server with preheated kernels (first start: "
        + ", ".join(f"{k[:2]} {v:.0f} s" for k, v in ready.items())
        + "). Seconds from the click to the first preview and to the final picture (button "
        "enabled again), median [range]. Panels marked *one picture* draw their result at once."
        "\n\n"
        + table(["notebook", "panel", "button", "first preview", "final picture",
                 f"first ≤ {GOAL:.0f} s"], rows)
    )
    write_section("panels", device, "Time to first picture in the live panels", body,
                  time.perf_counter() - started)
    return ok
