"""The panels build, react to their controls, and a click runs the real computation."""

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
