"""The panels build, react to their controls, and a click runs the real computation."""

import numpy as np
import pytest

import lecture_utils as lu
from tests.conftest import find_widgets as _find


def test_class_panel_runs_and_updates_the_preview(clf):
    import ipywidgets as W

    panel = lu.widgets.class_model_panel(clf, label="lemon", recipe="plain")
    (steps,) = _find(panel, W.IntSlider, "steps")
    (lam,) = _find(panel, W.FloatLogSlider, "λ (L2 prior)")
    (button,) = _find(panel, W.Button)
    preview = _find(panel, W.Image)[0]
    before = preview.value
    steps.value = 8
    lam.value = 1e-2
    button.click()
    assert preview.value != before
    (status,) = [h for h in _find(panel, W.HTML) if "P(" in h.value]
    assert "lemon" in status.value


def test_recipe_change_resets_the_sliders(clf):
    import ipywidgets as W

    panel = lu.widgets.class_model_panel(clf, recipe="plain")
    (recipe,) = _find(panel, W.Dropdown, "recipe")
    (lr,) = _find(panel, W.FloatLogSlider, "step size")
    recipe.value = "fourier"
    assert lr.value == pytest.approx(lu.RECIPES["fourier"].lr, rel=0.05)


def test_class_panel_reports_bad_input_instead_of_crashing(clf):
    import ipywidgets as W

    panel = lu.widgets.class_model_panel(clf, recipe="plain")
    (combo,) = _find(panel, W.Combobox)
    combo.value = ""  # nothing chosen
    (button,) = _find(panel, W.Button)
    button.click()
    assert any("Unknown class label" in h.value for h in _find(panel, W.HTML))
    assert not button.disabled


def test_neuron_panel_sizes_the_channel_slider_to_the_layer(clf):
    import ipywidgets as W

    panel = lu.widgets.neuron_panel(clf, layer="blocks.2")
    (channel,) = _find(panel, W.IntSlider, "channel")
    (layer,) = _find(panel, W.Dropdown, "layer")
    assert channel.max == 39
    layer.value = "blocks.4"
    assert channel.max == 111


def test_the_run_area_reads_the_loops_result_whatever_its_terms(linear_clf, clf):
    """One live area for every loop: the status shows the loop's own term (the score of a class
    model, the code loss of a reconstruction), and finish() shows the result it returns."""
    import torch

    from lecture_utils.widgets.common import RunArea

    area = RunArea(size=8)
    blank = area.preview.value
    result = lu.visualize_class(linear_clf, 1, "plain", steps=3, progress=False,
                                callback=area.live)
    assert area.preview.value != blank and area.status.value.startswith("step 3: score ")
    area.finish(result, "done")
    assert area.status.value == "done" and area.preview.value == lu.to_png(result.image)

    area = RunArea(size=32, curve_title="objective and its terms")
    lu.invert(clf, torch.zeros(1, 3, 32, 32) + 0.5, "blocks.0", steps=2, progress=False,
              callback=area.live)
    assert area.status.value.startswith("step 2: code ")


def test_a_one_picture_panel_shows_its_picture_without_a_history(clf):
    from lecture_utils.widgets.common import RunArea

    area = RunArea(size=8, curve=False)
    area.show(np.zeros((8, 8, 3)), "guided: channel blocks.1:0 at its strongest position")
    assert area.preview.value == lu.to_png(np.zeros((8, 8, 3)))
    assert "strongest" in area.status.value
