"""`make lecture` on the fastest notebook: the page, the slide deck, the index, assets served from
the build folder (nothing loaded from off the machine), the panel shown as a still (its picture,
settings and where it is live; no dead control, no broken image), and a failing cell or panel
named in the error.

Needs npm (the build installs reveal.js and MathJax with it). Without npm the
test is skipped, except under CI=true, where it fails. The checks in a browser need Chromium at
/usr/bin/chromium and the Python package playwright, with the same rule.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_guided_backprop.ipynb"  # the fastest, about 20 s on a CPU
NAME = NOTEBOOK.stem
# Its own folder under build/ (gitignored), so a full `make lecture` in build/ is left alone and
# the npm install in <out>/.npm is done once and reused.
OUT = ROOT / "build" / "test-lecture"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
PANEL = "guided"  # the notebook's one panel: lu.widgets.guided_panel(...)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.slow


def _need(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"`{tool}` not found; the lecture build needs it: {how}"
        if IN_CI:
            pytest.fail(message + " (CI=true: required)")
        pytest.skip(message)
    return path


def _missing(message: str):
    if IN_CI:
        pytest.fail(message + " (CI=true: required)")
    pytest.skip(message)


def _clean(out: Path) -> None:
    """Remove earlier output but keep the npm install."""
    if out.exists():
        for child in out.iterdir():
            if child.name != ".npm":
                shutil.rmtree(child) if child.is_dir() else child.unlink()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------- what a page loads
class _Loads(HTMLParser):
    """Collect the URLs a page loads by itself (not links a reader may follow): <script src>,
    <link href> (stylesheets, icons, preloads), <img|source|iframe|video|audio|embed src>,
    CSS url()/@import in <style> and style attributes, and URLs in inline JavaScript
    (dynamic imports, script elements it creates)."""

    LOADING = {"script": "src", "img": "src", "source": "src", "iframe": "src", "video": "src",
               "audio": "src", "embed": "src", "input": "src", "link": "href"}

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (where, url)
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        want = self.LOADING.get(tag)
        if want and attrs.get(want):
            if tag != "link" or (attrs.get("rel") or "").lower() not in {"canonical", "alternate"}:
                self.urls.append((f"<{tag} {want}>", attrs[want]))
        if attrs.get("srcset"):
            for part in attrs["srcset"].split(","):
                self.urls.append((f"<{tag} srcset>", part.strip().split(" ")[0]))
        if attrs.get("style"):
            self.urls += [(f"<{tag} style>", u) for u in css_urls(attrs["style"])]
        kind = (attrs.get("type") or "text/javascript").lower()
        runs = tag == "script" and ("javascript" in kind or kind == "module")
        self._in = tag if tag == "style" or runs else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.urls += [("<style>", u) for u in css_urls(data)]
        elif self._in == "script":
            self.urls += [("<script> JS", u) for u in re.findall(LOADING_JS, data)]


# a URL in inline JavaScript that is loaded: import()/import from, x.src = / href =, require([..])
LOADING_JS = re.compile(r"""(?:\bimport\s*\(?|\bfrom|[sS]rc\s*=|\bhref\s*=|\brequire\s*\(\s*\[?)\s*"""
                        r"""["'`]((?:https?:)?//[^"'`\s]+)""")


def css_urls(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # commented-out imports load nothing
    found = re.findall(r"""url\(\s*["']?([^"')\s]+)""", css)
    found += re.findall(r"""@import\s+["']([^"']+)""", css)
    return found


def off_machine(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about", "javascript", "mailto"}:
        return False
    if url.startswith("//"):
        return True
    return parts.scheme in {"http", "https", "ftp", "ws", "wss"} and parts.hostname not in {
        "localhost", "127.0.0.1", "::1"}


def loaded_urls(page: Path) -> list[tuple[str, Path, str]]:
    """Every (where, base, url) a page loads, following its local stylesheets' @import and
    url(); a relative url is relative to the file ``base``."""
    parser = _Loads()
    parser.feed(page.read_text(encoding="utf-8"))
    found = [(f"{page.name} {where}", page, url) for where, url in parser.urls]
    seen, todo = set(), [(page, url) for _, _, url in found]
    while todo:
        base, url = todo.pop()
        local = _local_file(base, url)
        if local is None or local in seen or local.suffix != ".css" or not local.exists():
            continue
        seen.add(local)
        for inner in css_urls(local.read_text(encoding="utf-8", errors="replace")):
            found.append((f"{local.name} (css)", local, inner))
            todo.append((local, inner))
    return found


def _local_file(base: Path, url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme or url.startswith(("//", "#")) or not parts.path:
        return None
    return (base.parent / parts.path).resolve()


# ------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def built():
    _need("make", "install make (Debian/Ubuntu: sudo apt-get install make)")
    _need("npm", "install Node.js and npm (Debian/Ubuntu: sudo apt-get install npm)")
    _clean(OUT)
    before = _digest(NOTEBOOK)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(
        ["make", "lecture", f"NOTEBOOKS={NOTEBOOK.relative_to(ROOT)}", f"LECTURE_DIR={OUT}",
         f"VENV={Path(sys.prefix)}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, f"make lecture failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert _digest(NOTEBOOK) == before, "the build wrote to the committed notebook"
    return OUT


def test_page_slides_and_index(built):
    page = built / f"{NAME}.html"
    deck = built / f"{NAME}.slides.html"
    executed = built / "notebooks" / f"{NAME}.ipynb"
    for path in (page, deck, executed, built / "index.html"):
        assert path.is_file(), f"{path} was not written"

    nb = nbformat.read(executed, as_version=4)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), "not executed"
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "error"]
    # nothing renders from widget state any more (panels are stills): none is stored
    assert "widgets" not in nb.metadata, "widget state was stored"

    html = page.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" not in html
    assert "data:image/png;base64" in html  # the pictures are in the page
    titles = [c for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "slide"]
    slides = deck.read_text(encoding="utf-8")
    assert len(re.findall(r"<section\b", slides)) >= len(titles) > 0
    assert "Reveal.initialize" in slides and "assets/reveal.js/dist/reveal.js" in slides

    index = (built / "index.html").read_text(encoding="utf-8")
    assert f"href='{NAME}.html'" in index and f"href='{NAME}.slides.html'" in index
    timings = json.loads((built / "timings.json").read_text())
    assert timings[NAME]["seconds"] > 0


# ------------------------------------------------------------------------ the panel's still
def test_the_panel_is_a_still_in_the_executed_notebook(built):
    nb = nbformat.read(built / "notebooks" / f"{NAME}.ipynb", as_version=4)
    views = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for o in c.outputs if WIDGET_VIEW in o.get("data", {})]
    assert not views, f"cells {views} still have widget outputs"
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "_panel(" in c.source]
    (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert result.execution_count == cell.execution_count
    still = result.data["text/html"]
    assert 'class="lu-still"' in still
    assert len(re.findall(r'<img src="data:image/(?:png|jpeg);base64,', still)) == 2  # map, photo
    assert "Live under `make present`" in result.data["text/plain"]
    assert f"panel «{PANEL}»" in result.data["text/plain"]
    assert not re.search(r"<(button|input|select|textarea)\b", still), "a control in the still"


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}; install Chromium: sudo apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            yield browser
        finally:
            browser.close()


# What the browser shows: broken images, the still (live line, settings, pictures), controls.
LOOK = """async () => {
    const images = [...document.images];
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    const stills = [...document.querySelectorAll(".lu-still")];
    const controls = "button, input, select, textarea, [role=slider], .widget-button, .jupyter-widgets";
    return {
        images: images.length,
        broken: images.filter(img => !(img.naturalWidth > 0))
                      .map(img => (img.getAttribute("src") || "(no src)").slice(0, 60)),
        widgets: document.querySelectorAll(
            'script[type="application/vnd.jupyter.widget-view+json"]').length,
        stills: stills.map(s => ({
            live: s.querySelector(".lu-still-live")?.textContent || "",
            settings: [...s.querySelectorAll("table.lu-still-settings tr")].map(
                tr => [tr.querySelector("th")?.textContent, tr.querySelector("td")?.textContent]),
            pictures: s.querySelectorAll("img").length,
            controls: [...s.querySelectorAll(controls)].map(e => e.outerHTML.slice(0, 80)),
        })),
    };
}"""


@pytest.mark.parametrize("kind", ["html", "slides.html"])
def test_the_panel_is_a_still_in_the_browser(built, chromium, kind):
    page = chromium.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto((built / f"{NAME}.{kind}").as_uri())
        page.wait_for_load_state("load")
        seen = page.evaluate(LOOK)
    finally:
        page.close()
    assert seen["images"] > 0 and not seen["broken"], f"broken images: {seen['broken']}"
    assert seen["widgets"] == 0, "a widget output is left in the page"
    (still,) = seen["stills"]
    assert "Live under make present" in still["live"], still["live"]
    assert f"panel «{PANEL}»" in still["live"], still["live"]
    assert "page «5 · Guided backpropagation" in still["live"], still["live"]
    settings = dict(still["settings"])
    assert settings.get("layer") == "blocks.5" and settings.get("channel") == "40", settings
    assert settings.get("rule") == "guided" and settings.get("image") == "chelsea", settings
    assert still["pictures"] >= 2  # the map and the photograph
    assert not still["controls"], f"controls in the still: {still['controls']}"


def _stills_module():
    spec = importlib.util.spec_from_file_location("stills", ROOT / "tools" / "stills.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_still_shows_pictures_settings_and_no_control():
    """panel_still on a small panel: the run draws one picture, the empty one is left out."""
    import ipywidgets as W

    from lecture_utils.display import to_png
    from lecture_utils.widgets.still import panel_still

    steps = W.IntSlider(value=8, min=8, max=64, description="steps")
    status = W.HTML("<i>Press run.</i>")
    drawn, empty = W.Image(format="png"), W.Image(format="png")
    button = W.Button(description="Run", button_style="primary")

    def run(_):
        drawn.value = to_png(__import__("numpy").zeros((4, 4, 3)))
        status.value = f"done in <b>{steps.value}</b> steps"

    button.on_click(run)
    panel = W.HBox([W.VBox([steps, W.HBox([button, status])]), drawn, empty])
    still = panel_still(panel, page="99 Test", name="test")
    assert still.pictures == 1 and still.settings == {"steps": "8"}
    assert "done in <b>8</b> steps" in still.html and "Press run" not in still.html
    assert "Live under <code>make present</code>: page «99 Test», panel «test» (press Run)" in still.html
    assert not re.search(r"<(button|input|select|textarea)\b", still.html)
    assert still.html.count("<img") == 1


def test_a_progress_bar_becomes_its_text():
    stills = _stills_module()
    state = {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b",
                                                                  "IPY_MODEL_c"]}},
        "a": {"model_name": "HTMLModel", "state": {"value": "synthesis:\u2007100%"}},
        "b": {"model_name": "FloatProgressModel", "state": {"value": 64.0, "max": 128.0}},
        "c": {"model_name": "HTMLModel", "state": {"value": "\u2007128/128 [00:06&lt;00:00]"}},
    }
    assert stills.widget_text(state, "box", 3) == "synthesis: 100%|█████     | 128/128 [00:06<00:00]"
    state["b"]["model_name"] = "IntSliderModel"
    with pytest.raises(stills.CellError, match="cell 3 shows a widget with a control"):
        stills.widget_text(state, "box", 3)


def test_assets_are_served_from_the_build(built):
    problems = []
    for page in (built / f"{NAME}.html", built / f"{NAME}.slides.html", built / "index.html"):
        for where, base, url in loaded_urls(page):
            if off_machine(url):
                problems.append(f"{where}: {url} (off the machine)")
                continue
            local = _local_file(base, url)
            if local is not None and not local.exists():
                problems.append(f"{where}: {url} (missing in {built})")
    assert not problems, "pages load from outside build/:\n" + "\n".join(sorted(set(problems)))
    # the pieces the deck needs are really there
    for asset in ("assets/reveal.js/dist/reveal.js", "assets/reveal.js/plugin/notes/notes.js",
                  "assets/mathjax/MathJax.js", "assets/requirejs/require.js"):
        assert (built / asset).is_file(), asset


def test_the_url_check_catches_cdn_assets(tmp_path):
    """The offline check itself: a CDN script, stylesheet and CSS import are caught, a link in
    prose to a paper is not."""
    page = tmp_path / "p.html"
    page.write_text(
        '<link rel="stylesheet" href="https://cdn.example/x.css">'
        '<script src="//unpkg.com/reveal.js/dist/reveal.js"></script>'
        "<style>@import url('https://fonts.googleapis.com/css?family=Lato');</style>"
        "<script>el.src = 'https://cdn.jsdelivr.net/npm/embed.js';"
        " var dtd = 'http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd';</script>"
        '<p><a href="https://arxiv.org/abs/1312.6034">the paper</a></p>'
        '<img src="data:image/png;base64,AAAA">'
    )
    flagged = [url for _, _, url in loaded_urls(page) if off_machine(url)]
    assert len(flagged) == 4 and not any("arxiv" in u for u in flagged)


def test_a_failing_cell_fails_the_build_and_is_named(tmp_path):
    _need("npm", "install Node.js and npm (Debian/Ubuntu: sudo apt-get install npm)")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# broken"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('lambda must be positive')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_lecture.py"), "--out", str(OUT), str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    assert "99_broken.ipynb: cell 2 failed with ValueError: lambda must be positive" in done.stderr
    assert not (OUT / "99_broken.html").exists()


def test_a_panel_that_draws_nothing_fails_the_build_and_is_named(tmp_path):
    """A panel whose run fails (here: it only reports a bad setting) cannot become a still."""
    _need("npm", "install Node.js and npm (Debian/Ubuntu: sudo apt-get install npm)")
    panel = """import ipywidgets as W

def broken_panel():
    button = W.Button(description="Run", button_style="primary")
    status = W.HTML("<i>Press run.</i>")
    def run(_):
        status.value = "<b style='color:#b00'>λ must be positive</b>"
    button.on_click(run)
    return W.VBox([button, status, W.Image(format="png")])

broken_panel()"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# broken panel"),
                                         nbformat.v4.new_code_cell(panel)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "98_panel.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_lecture.py"), "--out", str(OUT), str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "98_panel.ipynb: cell 1 (panel «broken») could not be run by the build" in done.stderr
    assert "drew no picture (the panel says: λ must be positive)" in done.stderr
    assert not (OUT / "98_panel.html").exists()
