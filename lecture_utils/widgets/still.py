"""A panel as a *still*: run it once at its settings and draw it as static HTML.

Pages and slides built by ``make lecture`` have no kernel behind them, so a live panel would be
a dead one there: a grey box, "Press run." and a button that does nothing. The build shows each
panel as its still instead: the pictures of one run at the panel's defaults, the settings that
made them, the status line, and a line saying where the panel is live (``make present``).

    >>> panel = lu.widgets.guided_panel(clf)
    >>> lu.widgets.panel_still(panel, page="05 Guided backpropagation", name="guided")

What is read from the panel, so that any panel built from ipywidgets works:

- the run button: the panel's ``Button`` (the ``primary`` one if there are several); a click
  runs the handlers in this kernel, as a click in the browser would;
- pictures: every ``Image`` with a value after the run, in the panel's order (empty ones, such
  as a photo drawn only by a run, are left out); an ``HTML`` or ``Label`` right before an image
  in the same box is its caption. A photograph-like PNG is stored as JPEG when that halves it;
- settings: every control with a description and a value (dropdowns, sliders, text boxes,
  toggle buttons), as ``description → value`` with the slider's own readout format;
- status: the other ``HTML`` and ``Label`` values (e.g. "P(goldfish) = 0.97").

A run that draws no picture, or that leaves an error in one of the panel's ``Output`` areas,
raises :class:`StillError` with what the panel said.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field

import ipywidgets as W

# Widgets that show something rather than hold a setting.
_SHOWN = (W.Image, W.HTML, W.HTMLMath, W.Label, W.Output, W.FileUpload)


class StillError(RuntimeError):
    """The panel's run failed or drew nothing; the message says what the panel showed."""


@dataclass
class PanelStill:
    """The still of a panel: ``html`` for pages and slides, ``text`` for plain-text readers."""

    html: str
    text: str
    pictures: int = 0
    settings: dict[str, str] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def live_line(page: str, name: str, button: str | None = None) -> str:
    """Where the panel is live, as plain text."""
    press = f" (press {button})" if button else ""
    return f"Live under `make present`: page «{page}», panel «{name}»{press}."


def panel_still(panel: W.Widget, page: str, name: str, run: bool = True) -> PanelStill:
    """Run ``panel`` once (click its run button, unless ``run=False``) and return its still.

    ``page`` and ``name`` say where the panel is live: the notebook's page and the panel's name
    on it, for the line "Live under `make present`: page «page», panel «name» (press Run)".
    """
    widgets = list(_walk(panel))
    buttons = [w for w in widgets if isinstance(w, W.Button)]
    button = next((b for b in buttons if b.button_style == "primary"), buttons[0] if buttons else None)
    if run and button is not None:
        _run(button, widgets, name)

    captions = _captions(panel)
    pictures = [w for w in widgets if isinstance(w, W.Image) and w.value and w.format != "url"]
    settings = {w.description: _value(w) for w in widgets
                if isinstance(w, W.ValueWidget) and not isinstance(w, _SHOWN)
                and getattr(w, "description", "")}
    status = [w for w in widgets if isinstance(w, (W.HTML, W.HTMLMath, W.Label))
              and w.value.strip() and w not in captions.values()]
    line = live_line(page, name, button.description if button is not None else None)

    figures = "".join(_figure(image, captions.get(image)) for image in pictures)
    cell = 'style="padding:.1em .8em .1em 0;text-align:left;border:0'
    rows = "".join(f"<tr><th {cell};font-weight:normal;color:#555\">{html.escape(k)}</th>"
                   f"<td {cell}\">{html.escape(v)}</td></tr>" for k, v in settings.items())
    notes = "".join(f"<div>{w.value if isinstance(w, (W.HTML, W.HTMLMath)) else html.escape(w.value)}"
                    f"</div>" for w in status)
    live = html.escape(line).replace("`make present`", "<code>make present</code>")
    body = (
        '<div class="lu-still" style="border:1px solid #bbb;border-radius:4px;padding:.4em .6em;'
        'max-width:100%;box-sizing:border-box">'
        f'<p class="lu-still-live" style="margin:0 0 .4em;color:#555;font-style:italic">{live}</p>'
        '<div style="display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:flex-start">'
        '<div class="lu-still-side" style="flex:0 1 16em;min-width:0">'
        f'<table class="lu-still-settings" style="border-collapse:collapse;margin:0">{rows}</table>'
        f'<div class="lu-still-status" style="margin-top:.4em">{notes}</div></div>'
        '<div class="lu-still-pictures" style="flex:1 1 20em;min-width:0;display:flex;'
        f'flex-wrap:wrap;gap:.4em;align-items:flex-start">{figures}</div>'
        "</div></div>"
    )
    text = "\n".join([
        line,
        *(f"  {k}: {v}" for k, v in settings.items()),
        *(f"  {_plain(w.value)}" for w in status),
        f"  ({len(pictures)} picture{'s' if len(pictures) != 1 else ''})",
    ])
    return PanelStill(body, text, len(pictures), settings)


def _walk(widget: W.Widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _run(button: W.Button, widgets: list, name: str) -> None:
    """Click ``button`` with every picture blanked first; pictures the run did not draw get
    their value back. Raise StillError if nothing was drawn or an error was shown."""
    images = [w for w in widgets if isinstance(w, W.Image)]
    before = {id(w): w.value for w in images}
    drawn: set[int] = set()

    def mark(change):
        if change["new"]:
            drawn.add(id(change["owner"]))

    for image in images:
        image.value = b""
        image.observe(mark, names="value")
    try:
        button.click()
    finally:
        for image in images:
            image.unobserve(mark, names="value")
            if id(image) not in drawn:
                image.value = before[id(image)]
    errors = [o for w in widgets if isinstance(w, W.Output) for o in w.outputs
              if o.get("output_type") == "error"]
    if errors:
        raise StillError(f"panel «{name}»: pressing {button.description!r} failed with "
                         f"{errors[0].get('ename')}: {errors[0].get('evalue')}")
    if not drawn:
        said = "; ".join(_plain(w.value) for w in widgets
                         if isinstance(w, (W.HTML, W.Label)) and w.value.strip())
        raise StillError(f"panel «{name}»: pressing {button.description!r} drew no picture"
                         f" (the panel says: {said or 'nothing'}); run it by hand to see why.")


def _captions(panel: W.Widget) -> dict:
    """An HTML or Label right before an Image in the same box captions it: {image: label}."""
    found = {}
    for box in _walk(panel):
        children = list(getattr(box, "children", ()))
        for label, image in zip(children, children[1:]):
            if isinstance(label, (W.HTML, W.Label)) and isinstance(image, W.Image):
                found[image] = label
    return found


def _figure(image: W.Image, caption: W.Widget | None) -> str:
    mime, value = _compact(f"image/{image.format}", bytes(image.value))
    data = base64.b64encode(value).decode("ascii")
    width = str(image.width).removesuffix("px")
    size = f' width="{width}"' if width.isdigit() else ""
    text = _plain(caption.value) if caption is not None else ""
    label = f"<figcaption>{html.escape(text)}</figcaption>" if text else ""
    return (f'<figure style="margin:0"><img src="data:{mime};base64,{data}"{size} '
            f'alt="{html.escape(text or "panel picture")}" style="max-width:100%;height:auto">'
            f"{label}</figure>")


def _compact(mime: str, value: bytes) -> tuple[str, bytes]:
    """A photograph-like PNG as JPEG (quality 90) when that is under half the size; plots and
    maps with flat areas stay PNG. Keeps pages small: a 224×224 photo is ~100 kB as PNG."""
    if mime != "image/png" or len(value) < 30_000:
        return mime, value
    from PIL import Image

    with Image.open(io.BytesIO(value)) as picture:
        if picture.mode == "RGBA" and picture.getchannel("A").getextrema() == (255, 255):
            picture = picture.convert("RGB")  # matplotlib's opaque figures
        if picture.mode not in {"RGB", "L"}:
            return mime, value
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
    jpeg = buffer.getvalue()
    return ("image/jpeg", jpeg) if len(jpeg) < len(value) / 2 else (mime, value)


def _value(widget: W.Widget) -> str:
    if isinstance(widget, (W.Dropdown, W.ToggleButtons, W.RadioButtons, W.Select,
                           W.SelectionSlider)):
        return str(widget.label)
    value = widget.value
    fmt = getattr(widget, "readout_format", None)
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return format(value, fmt)
        except (TypeError, ValueError):
            pass
    if isinstance(value, str):
        return value or "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _plain(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()
