"""Every slide of every deck fits a 1280×720 projector.

`make lecture` builds all five notebooks once (into build/test-lecture-all, keeping its npm
install between runs; a few minutes on a 2-core CPU). Each deck is opened in Chromium at a
1280×720 viewport, every slide is visited through the deck's own reveal.js API, and element
boxes are measured. The fit rules, on each slide:

1. no code line runs past the slide: a <pre> (code or text output) or <table> does not scroll
   sideways (its scrollWidth is at most its clientWidth), so every line is wrapped or short
   enough and nothing is hidden behind a scroll bar;
2. no <pre>, <img>, <svg>, <table>, display-math block, output area or panel still reaches
   past the slide's left or right edge (getBoundingClientRect against the slide's own box,
   1 px of rounding allowed);
3. no picture (<img>, <svg>) is taller than the visible slide (the slide area's height on the
   screen); a slide taller than the screen is allowed, it scrolls (reveal_scroll).

Elements that take no space (hidden, zero size) are not measured. Every offender is reported in
one failure message, by deck, slide number (as the deck shows it, h.v) and element.

Needs npm (the build), Chromium at /usr/bin/chromium and the Python package playwright (which
drives that Chromium; it downloads no browser). Without them the test is skipped, except under
CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "test-lecture-all"  # its own folder: `make lecture` in build/ is left alone
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu", "--disable-quic",
                 "--allow-file-access-from-files"]
VIEWPORT = {"width": 1280, "height": 720}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

pytestmark = pytest.mark.slow


def _missing(message: str):
    if IN_CI:
        pytest.fail(message + " (CI=true: the slide-fit test is required)")
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


@pytest.fixture(scope="module")
def decks(chromium_path) -> list[Path]:
    """All five decks, built once by tools/build_lecture.py (earlier output removed, .npm kept)."""
    if shutil.which("npm") is None:
        _missing("`npm` not found; the lecture build needs it: install Node.js and npm "
                 "(Debian/Ubuntu: sudo apt-get install npm)")
    if OUT.exists():
        for child in OUT.iterdir():
            if child.name != ".npm":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_lecture.py"), "--out", str(OUT),
         *map(str, NOTEBOOKS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert done.returncode == 0, f"the build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return [OUT / f"{nb.stem}.slides.html" for nb in NOTEBOOKS]


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# The deck's reveal.js is an AMD module (require.js), not a global: ask require for it.
REVEAL_READY = """async () => {
    const R = await new Promise((ok, fail) =>
        require(["assets/reveal.js/dist/reveal.js"], ok, fail));
    for (let i = 0; i < 200 && !R.isReady(); i++) await new Promise(ok => setTimeout(ok, 50));
    if (!R.isReady()) throw new Error("reveal.js never became ready");
    if (window.MathJax && MathJax.Hub) await new Promise(ok => MathJax.Hub.Queue(ok));
    await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
    R.configure({transition: "none", backgroundTransition: "none"});
    window.__reveal = R;
    return R.getTotalSlides();
}"""

# Visit slide i (in the deck's order) and measure it; returns the offenders on it.
MEASURE = """async (i) => {
    const R = window.__reveal;
    const slide = R.getSlides()[i];
    const {h, v} = R.getIndices(slide);
    R.slide(h, v);
    await new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)));
    const area = document.querySelector(".reveal .slides").getBoundingClientRect();
    const box = slide.getBoundingClientRect();
    const left = box.left, right = box.right;
    const tall = Math.min(area.height, window.innerHeight);
    const name = (el) => {
        const cls = (el.getAttribute("class") || "").split(/\\s+/).filter(Boolean).slice(0, 2);
        const text = (el.getAttribute("alt") || el.textContent || "").trim().replace(/\\s+/g, " ");
        return el.tagName.toLowerCase() + (cls.length ? "." + cls.join(".") : "")
            + (text ? ` "${text.slice(0, 40)}"` : "");
    };
    const found = [];
    const selector = "pre, img, svg, table, .MJXc-display, .jp-OutputArea-output, .lu-still";
    for (const el of slide.querySelectorAll(selector)) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        const px = (d) => Math.round(d);
        if (r.left < left - 1) found.push(`${name(el)} starts ${px(left - r.left)} px left of the slide`);
        if (r.right > right + 1) found.push(`${name(el)} runs ${px(r.right - right)} px past the right edge`);
        const wide = el.scrollWidth - el.clientWidth;
        if ((el.tagName === "PRE" || el.tagName === "TABLE") && wide > 1)
            found.push(`${name(el)}: a line is ${wide} px too long (scrolls sideways)`);
        if ((el.tagName === "IMG" || el.tagName === "svg") && r.height > tall + 1)
            found.push(`${name(el)} is ${px(r.height)} px tall, the slide shows ${px(tall)}`);
    }
    return {number: v ? `${h + 1}.${v + 1}` : `${h + 1}`, found};
}"""


def slide_offenders(browser, deck: Path) -> list[str]:
    """Every fit-rule violation in ``deck``, as "deck slide N: element ..." lines."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(deck.as_uri())
        total = page.evaluate(REVEAL_READY)
        problems = []
        for i in range(total):
            result = page.evaluate(MEASURE, i)
            problems += [f"{deck.name} slide {result['number']}: {what}" for what in result["found"]]
        return problems
    finally:
        page.close()


def test_every_slide_fits_1280x720(decks, browser):
    problems = []
    for deck in decks:
        assert deck.is_file(), f"{deck} was not written"
        problems += slide_offenders(browser, deck)
    assert not problems, (f"{len(problems)} elements do not fit a 1280×720 slide:\n"
                          + "\n".join(problems))


def test_the_fit_check_catches_an_overflowing_slide(decks, browser, tmp_path):
    """The check itself, on a two-slide deck with a built deck's head (nbconvert's and reveal's
    CSS) but without tools/lecture.css: a long code line, a wide table and a tall picture are
    each caught, and the slide that fits is not blamed."""
    head = decks[0].read_text(encoding="utf-8")
    head = head[:head.index('<div class="reveal">')]
    head, left_out = re.subn(r"<style>/\* lecture\.css \*/.*?</style>", "", head, flags=re.S)
    assert left_out == 1, "the deck's head has no lecture.css block to leave out"
    long_line = "x = " + " + ".join(f"value_{i}" for i in range(40))
    tall = ('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="1500">'
            '<rect width="300" height="1500" fill="teal"/></svg>')
    cells = "".join(f"<td>column {i}</td>" for i in range(40))
    deck = tmp_path / "overflow.slides.html"
    deck.write_text(
        f"{head}<div class='reveal'><div class='slides'>"
        f"<section><h2>fits</h2><p>short</p></section>"
        f"<section><pre>{long_line}</pre><table><tr>{cells}</tr></table>{tall}</section>"
        "</div></div>"
        "<script>require(['assets/reveal.js/dist/reveal.js'], R => R.initialize({width: 960, "
        "height: 700}));</script></body></html>",
        encoding="utf-8")
    (tmp_path / "assets").symlink_to(OUT / "assets")
    problems = slide_offenders(browser, deck)
    assert not [p for p in problems if " slide 1:" in p], problems
    assert any("pre" in p and "a line is" in p for p in problems), problems
    assert any("table" in p and "past the right edge" in p for p in problems), problems
    assert any("svg" in p and "px tall" in p for p in problems), problems
