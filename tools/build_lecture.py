"""Build the lecture: execute the notebooks headless and write HTML pages and reveal.js slides.

Usage (the Makefile's ``make lecture`` calls this)::

    python tools/build_lecture.py [--out build] [notebooks/01_....ipynb ...]

For every notebook, in the order given (default: ``notebooks/[0-9][0-9]_*.ipynb``, sorted):

1. execute a copy with nbclient; the committed notebook is never written. Every panel is run
   once at its defaults and shown as a *still* (its pictures, settings and status, and where it
   is live under ``make present``), other widget outputs (progress bars) as their text: see
   ``tools/stills.py``. No widget is left to render, so no widget state is stored. A failing
   cell or panel stops the build: the notebook, the cell index, the error name and value are
   printed and the exit status is 1;
2. write ``<out>/notebooks/<name>.ipynb`` (the executed copy), ``<out>/<name>.html`` (nbconvert's
   ``lab`` template) and ``<out>/<name>.slides.html`` (reveal.js). Slides follow the cells'
   ``metadata.slideshow.slide_type``; in the copy used for the slides, a code cell longer than
   ``LONG_CODE_LINES`` lines that has no slide type of its own (``-``) becomes a ``subslide``
   (reveal.js' vertical slide, below the section it belongs to), and tall slides scroll. Both
   get ``tools/lecture.css`` (its ``.reveal`` rules apply to the decks only): code wraps,
   pictures and tables are scaled to the slide, so a deck fits a 1280×720 projector
   (``tests/test_slides_fit.py`` measures every slide);
3. write ``<out>/index.html`` linking every page and deck built in ``<out>`` with its run time
   (also in ``<out>/timings.json``).

Offline: the pages load nothing from the internet. JavaScript and CSS come from npm packages
pinned in ``NPM_PACKAGES``, installed once with ``npm install`` into ``<out>/.npm`` (needs the
npm registry or a warm npm cache the first time; later builds reuse it) and copied into
``<out>/assets``. No widget renderer is needed: no page has a live widget. Serve ``<out>`` with
any static server, or open the files directly.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter, SlidesExporter

try:  # run as a script (make lecture), tools/ is on the path; imported, it is a package
    from .stills import CellError, execute_with_stills, page_name
except ImportError:
    from stills import CellError, execute_with_stills, page_name

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 900  # seconds per cell, as nbval's --nbval-cell-timeout
LONG_CODE_LINES = 10
STYLE = Path(__file__).with_name("lecture.css")  # added to every page and deck

# Exact versions: the templates of nbconvert 7 expect reveal.js 4 and MathJax 2.
NPM_PACKAGES = {
    "reveal.js": "4.6.1",
    "mathjax": "2.7.9",
    "requirejs": "2.3.7",
    "jquery": "3.7.1",
}

# What each page loads, relative to <out>/ (where the pages are). The widget renderer is not
# among them: the executed copies keep no widget state (tools/stills.py), so nbconvert
# writes no widget script.
ASSET_URLS = {
    "require_js_url": "assets/requirejs/require.js",
    "mathjax_url": "assets/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    "jquery_url": "assets/jquery/jquery.min.js",
}
REVEAL_PREFIX = "assets/reveal.js"
REVEAL_THEME = "white"  # its fonts ship with reveal.js ("simple" imports Google Fonts)
# The templates import mermaid.js (diagrams in markdown); the notebooks have none, so an
# inline do-nothing module stands in for it (a data: URL also loads from file://).
MERMAID_STUB = "data:text/javascript,export default {initialize(){},registerLayoutLoaders(){}}"


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and what to do."""


# ---------------------------------------------------------------------------------- assets
def _copy(src: Path, dst: Path, ignore: tuple[str, ...] = ()) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*ignore))
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def install_assets(out: Path) -> None:
    """npm-install the pinned packages into ``out/.npm`` (once) and copy what the pages load
    into ``out/assets``."""
    npm_dir = out / ".npm"
    stamp = npm_dir / "installed.json"
    pins = json.dumps(NPM_PACKAGES, sort_keys=True)
    installed = json.loads(stamp.read_text()) if stamp.exists() else {}
    # an install that has every pin (an older one may hold more) is reused: no registry needed
    if any(installed.get(name) != version for name, version in NPM_PACKAGES.items()):
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError(
                "npm not found: the slides' reveal.js, MathJax, require.js and jQuery are installed "
                "with npm. Install Node.js and npm (Debian/Ubuntu: sudo apt-get install npm; "
                "macOS: brew install node) and run `make lecture` again."
            )
        npm_dir.mkdir(parents=True, exist_ok=True)
        package = {"name": "lecture-assets", "private": True, "dependencies": NPM_PACKAGES}
        (npm_dir / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        print(f"npm install {' '.join(f'{k}@{v}' for k, v in NPM_PACKAGES.items())}", flush=True)
        cmd = [npm, "install", "--prefix", str(npm_dir), "--no-audit", "--no-fund",
               "--prefer-offline", "--loglevel=error"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(
                f"`{' '.join(cmd)}` failed (exit {done.returncode}); the first build needs the npm "
                f"registry or a warm npm cache.\n{done.stdout}{done.stderr}"
            )
        stamp.write_text(pins)

    nm = npm_dir / "node_modules"
    assets = out / "assets"
    _copy(nm / "reveal.js" / "dist", assets / "reveal.js" / "dist", ("*.map", "*.esm.js"))
    _copy(nm / "reveal.js" / "plugin", assets / "reveal.js" / "plugin", ("*.map", "*.esm.js"))
    for part in ("MathJax.js", "config", "extensions", "jax", "fonts/HTML-CSS/TeX/woff",
                 "fonts/HTML-CSS/TeX/otf", "localization/en"):
        _copy(nm / "mathjax" / part, assets / "mathjax" / part)
    _copy(nm / "requirejs" / "require.js", assets / "requirejs" / "require.js")
    _copy(nm / "jquery" / "dist" / "jquery.min.js", assets / "jquery" / "jquery.min.js")


# ------------------------------------------------------------------------------- execution
def execute(path: Path) -> nbformat.NotebookNode:
    """Run a copy of the notebook in its own folder, panels as stills; raise BuildError naming
    the failing cell."""
    nb = nbformat.read(path, as_version=4)
    source = {i: cell.source for i, cell in enumerate(nb.cells)}
    try:
        return execute_with_stills(nb, path.parent, page_name(path, title_of(nb, path.stem)),
                                   CELL_TIMEOUT)
    except CellError as err:
        first = "\n".join("    " + line for line in source.get(err.index, "").splitlines()[:6])
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise BuildError(f"{shown}: {err}\n{first}") from None


def slides_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as the deck shows it: long code cells without a slide type of their own go
    to a sub-slide."""
    deck = copy.deepcopy(nb)
    for cell in deck.cells:
        show = cell.metadata.setdefault("slideshow", {})
        if (cell.cell_type == "code" and show.get("slide_type", "-") == "-"
                and len(cell.source.splitlines()) > LONG_CODE_LINES):
            show["slide_type"] = "subslide"
    return deck


def _exporters() -> tuple[HTMLExporter, SlidesExporter]:
    page = HTMLExporter(**ASSET_URLS)
    deck = SlidesExporter(**ASSET_URLS, reveal_url_prefix=REVEAL_PREFIX, reveal_theme=REVEAL_THEME,
                          reveal_scroll=True,
                          reveal_number="c/t")
    for exporter in (page, deck):
        # not configurable traits in nbconvert 7, so set after construction
        exporter.mermaid_js_url = MERMAID_STUB
        exporter.mermaid_layout_elk_js_url = ""
    return page, deck


def with_style(body: str) -> str:
    """The page with ``lecture.css`` last in its head (after the reveal.js theme it overrides)."""
    if "</head>" not in body:
        raise BuildError("nbconvert wrote a page without </head>; tools/lecture.css has no place")
    style = f"<style>/* {STYLE.name} */\n{STYLE.read_text(encoding='utf-8')}</style>\n"
    return body.replace("</head>", style + "</head>", 1)


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


# ----------------------------------------------------------------------------------- index
def write_index(out: Path, timings: dict) -> None:
    rows = []
    for name in sorted(timings):
        if not (out / f"{name}.html").exists():
            continue
        t = timings[name]
        rows.append(
            f"<tr><td>{html.escape(t['title'])}</td>"
            f"<td><a href='{name}.html'>page</a></td>"
            f"<td><a href='{name}.slides.html'>slides</a></td>"
            f"<td><a href='notebooks/{name}.ipynb'>notebook</a></td>"
            f"<td>{t['seconds']:.0f} s</td></tr>"
        )
    (out / "index.html").write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Explaining CNNs: Early Methods</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.3em 1em;text-align:left}}</style></head>
<body><h1>Explaining CNNs: Early Methods</h1>
<p>Executed notebooks as pages and reveal.js slides (arrow keys to move, <kbd>s</kbd> for
speaker notes, <kbd>f</kbd> full screen). Everything here works offline.</p>
<table><tr><th>notebook</th><th></th><th></th><th></th><th>run time (build machine)</th></tr>
{chr(10).join(rows)}
</table></body></html>
""")


# ------------------------------------------------------------------------------------ main
def build(notebooks: list[Path], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    install_assets(out)
    page, deck = _exporters()
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    for path in notebooks:
        name = path.stem
        print(f"executing {path} ...", flush=True)
        start = time.perf_counter()
        nb = execute(path)
        seconds = time.perf_counter() - start
        print(f"  {seconds:.0f} s", flush=True)
        (out / "notebooks").mkdir(exist_ok=True)
        nbformat.write(nb, out / "notebooks" / f"{name}.ipynb")
        resources = {"metadata": {"name": name}}
        body, _ = page.from_notebook_node(nb, resources=dict(resources))
        (out / f"{name}.html").write_text(with_style(body), encoding="utf-8")
        body, _ = deck.from_notebook_node(slides_copy(nb), resources=dict(resources))
        (out / f"{name}.slides.html").write_text(with_style(body), encoding="utf-8")
        timings[name] = {"title": title_of(nb, name), "seconds": round(seconds, 1)}
        timings_file.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    write_index(out, timings)
    print(f"wrote {out / 'index.html'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to build, in order (default: notebooks/[0-9][0-9]_*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output folder (build/)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        print(f"build_lecture: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        build([p.resolve() for p in notebooks], args.out.resolve())
    except BuildError as err:
        print(f"build_lecture: FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
