"""The saliency and GrabCut panels build, react to their controls, and a click redraws."""

from __future__ import annotations

import datetime
import io

import ipywidgets as W
import numpy as np
from PIL import Image

import lecture_utils as lu
from lecture_utils.widgets.saliency import UPLOADED


def _find(widget, cls, description=None):
    found = []

    def walk(w):
        named = description is None or getattr(w, "description", None) == description
        if isinstance(w, cls) and named:
            found.append(w)
        for child in getattr(w, "children", ()):
            walk(child)

    walk(widget)
    return found


def _status(panel) -> str:
    return " ".join(h.value for h in _find(panel, W.HTML))


def test_saliency_panel_click_and_controls_redraw(clf):
    panel = lu.widgets.saliency_panel(clf, image="coffee", show=False)
    (button,) = _find(panel, W.Button)
    pictures = _find(panel, W.Image)
    before = [p.value for p in pictures]
    button.click()
    assert all(p.value != b for p, b in zip(pictures, before, strict=True))
    assert "espresso" in _status(panel)
    (reduce,) = _find(panel, W.ToggleButtons, "reduce")
    drawn = pictures[-1].value
    reduce.value = "signed"  # redraws by itself
    assert pictures[-1].value != drawn


def test_saliency_panel_other_class_and_smoothgrad(clf):
    panel = lu.widgets.saliency_panel(clf, image="chelsea")
    (combo,) = _find(panel, W.Combobox)
    (noise,) = _find(panel, W.FloatSlider, "noise")
    (samples,) = _find(panel, W.IntSlider, "samples")
    combo.value, noise.value, samples.value = "goldfish", 0.1, 2
    _find(panel, W.Button)[0].click()
    status = _status(panel)
    assert "goldfish" in status and "not" in status and "SmoothGrad, 2 samples" in status


def test_saliency_panel_reports_a_bad_class_and_a_missing_upload(clf):
    panel = lu.widgets.saliency_panel(clf, show=False)
    (combo,) = _find(panel, W.Combobox)
    (button,) = _find(panel, W.Button)
    combo.value = "not a class"
    button.click()
    assert "Unknown class label" in _status(panel) and not button.disabled
    combo.value = ""
    (dropdown,) = _find(panel, W.Dropdown, "image")
    dropdown.value = UPLOADED
    assert "No file uploaded" in _status(panel)


def test_upload_becomes_the_picked_image(clf):
    panel = lu.widgets.saliency_panel(clf, image="coffee")
    (upload,) = _find(panel, W.FileUpload)
    (dropdown,) = _find(panel, W.Dropdown, "image")
    buffer = io.BytesIO()
    Image.fromarray(lu.sample_image("rocket")).save(buffer, format="PNG")
    upload.value = ({"name": "rocket.png", "type": "image/png", "size": buffer.tell(),
                     "content": memoryview(buffer.getvalue()),
                     "last_modified": datetime.datetime(2024, 1, 1)},)
    assert dropdown.value == UPLOADED
    status = _status(panel)
    assert "color:#b00" not in status and "missile" in status  # the rocket, drawn


def test_grabcut_panel_sliders_change_the_mask(clf):
    panel = lu.widgets.grabcut_panel(clf, image="coffee")  # drawn at once
    (button,) = _find(panel, W.Button)
    first = _status(panel)
    assert "box (" in first
    (fg,) = _find(panel, W.FloatSlider, "fg quantile")
    (sigma,) = _find(panel, W.FloatSlider, "blur σ (px)")
    fg.value, sigma.value = 0.8, 2.0
    button.click()
    assert _status(panel) != first


def test_grabcut_panel_reports_crossed_quantiles(clf):
    panel = lu.widgets.grabcut_panel(clf, show=False)
    (fg,) = _find(panel, W.FloatSlider, "fg quantile")
    (bg,) = _find(panel, W.FloatSlider, "bg quantile")
    fg.value, bg.value = 0.6, 0.8
    _find(panel, W.Button)[0].click()
    assert "must be greater than bg_quantile" in _status(panel)
    assert np.isfinite(fg.value)
