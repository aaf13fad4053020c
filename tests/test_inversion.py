"""Reconstruction from a CNN code: the loop, its settings, its result, bad input, the panel."""

import pytest
import torch
import torch.nn.functional as F

import lecture_utils as lu
from lecture_utils.inversion import LOGITS, code_of, invert
from tests.conftest import hooks_left


@pytest.fixture(scope="module")
def small_cat(clf):
    """The cat photograph as a 64 x 64 input (a small size keeps these tests fast)."""
    x = clf.preprocess(lu.sample_image("chelsea"))
    return F.interpolate(x, size=64, mode="bilinear", antialias=True, align_corners=False)


def test_early_layer_code_error_falls_tenfold(clf, small_cat):
    result = invert(clf, small_cat, "blocks.0", steps=200, lambda_tv=1e-3, jitter=0, progress=False)
    assert result.initial_code_errors[0] > 1.0
    assert result.code_error < result.initial_code_errors[0] / 10
    assert result.image.shape == (64, 64, 3) and 0 <= result.image.min() and result.image.max() <= 1
    assert result.inputs.shape == (1, 3, 64, 64) and result.layer == "blocks.0"


def test_history_is_split_into_its_terms(clf, small_cat):
    result = invert(clf, small_cat, "blocks.1", steps=5, lambda_tv=0.1, progress=False)
    assert set(result.history) == {"code", "alpha", "tv", "objective"}
    assert all(len(v) == 5 for v in result.history.values())
    h = result.history
    total = h["code"][-1] + h["alpha"][-1] + h["tv"][-1]
    assert h["objective"][-1] == pytest.approx(total, rel=1e-5)
    assert result.settings["lambda_tv"] == 0.1 and result.settings["steps"] == 5


def test_same_seed_same_result(clf, small_cat):
    a = invert(clf, small_cat, "blocks.2", steps=4, seed=3, jitter=2, progress=False)
    b = invert(clf, small_cat, "blocks.2", steps=4, seed=3, jitter=2, progress=False)
    assert torch.equal(a.inputs, b.inputs) and a.history == b.history
    c = invert(clf, small_cat, "blocks.2", steps=4, seed=4, jitter=2, progress=False)
    assert not torch.equal(a.inputs, c.inputs)


def test_code_and_image_give_the_same_reconstruction(clf, small_cat):
    with torch.no_grad():
        code = code_of(clf, small_cat, "blocks.2")
    from_image = invert(clf, small_cat, "blocks.2", steps=4, progress=False)
    from_code = invert(clf, code, "blocks.2", steps=4, size=64, progress=False)
    from_one_code = invert(clf, code[0], "blocks.2", steps=4, size=64, progress=False)
    assert torch.allclose(from_image.inputs, from_code.inputs, atol=1e-6)
    assert torch.allclose(from_code.inputs, from_one_code.inputs, atol=1e-6)


@pytest.mark.parametrize("layer", ["global_pool", LOGITS, None])
def test_deep_codes_can_be_inverted(clf, small_cat, layer):
    result = invert(clf, small_cat, layer, steps=3, progress=False)
    assert result.layer in ("global_pool", LOGITS)
    assert result.code_error < result.initial_code_errors[0]


def test_sgd_schedule_and_callback(clf, small_cat):
    seen = []
    result = invert(clf, small_cat, "blocks.0", steps=6, optimizer="sgd", lr=1.0, schedule="step",
                    callback=lambda step, images, history: seen.append((step, images.shape)),
                    callback_every=4, progress=False)
    assert seen == [(1, (1, 64, 64, 3)), (4, (1, 64, 64, 3)), (6, (1, 64, 64, 3))]
    assert result.settings["optimizer"] == "sgd"


def test_suggested_settings_grow_with_depth(clf):
    shallow = lu.inversion.suggested_settings(clf, "blocks.1")
    deep = lu.inversion.suggested_settings(clf, LOGITS)
    assert shallow["lambda_tv"] < deep["lambda_tv"] and shallow["jitter"] < deep["jitter"]


@pytest.mark.parametrize("layer", ["blocks.1", LOGITS])
def test_defaults_by_depth_are_the_suggested_ones_and_cost_no_extra_pass(clf, layer):
    calls = []
    handle = clf.net.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        result = invert(clf, lu.sample_image("chelsea"), layer, steps=2, progress=False)
    finally:
        handle.remove()
    expected = lu.inversion.suggested_settings(clf, layer)
    assert {k: result.settings[k] for k in expected} == expected
    assert len(calls) == 2 + 3  # the steps; the photograph's code, the start and the final error


def test_batch_of_images(clf, small_cat):
    batch = torch.cat([small_cat, small_cat.flip(-1)])
    result = invert(clf, batch, "blocks.1", steps=2, progress=False)
    assert result.images.shape == (2, 64, 64, 3) and len(result.code_errors) == 2


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(alpha=1.0), ValueError, "alpha must be a finite number > 1.*The papers use 6"),
    (dict(beta=0.0), ValueError, "beta must be a finite number > 0"),
    (dict(lambda_tv=-1.0), ValueError, "lambda_tv must be"),
    (dict(lambda_alpha=-0.1), ValueError, "lambda_alpha must be"),
    (dict(steps=0), ValueError, "steps must be a whole number >= 1"),
    (dict(optimizer="lbfgs"), ValueError, "optimizer must be"),
    (dict(schedule="linear"), ValueError, "schedule must be"),
    (dict(steps=True), ValueError, "steps must be a whole number"),
    (dict(clamp="yes"), ValueError, "clamp must be True or False"),
    (dict(pixel_bound=0), ValueError, "pixel_bound must be a finite number > 0"),
    (dict(momentun=0.9), TypeError, "Unknown setting"),
])
def test_bad_settings_are_refused(clf, small_cat, kwargs, error, match):
    with pytest.raises(error, match=match):
        invert(clf, small_cat, "blocks.1", progress=False, **kwargs)


def test_unknown_layer_lists_close_names(clf, small_cat):
    with pytest.raises(KeyError, match="blocks.3") as info:
        invert(clf, small_cat, "block.3", progress=False)
    assert "logits" in str(info.value)


def test_code_of_the_wrong_shape_is_refused(clf):
    with pytest.raises(ValueError, match=r"has shape \(N, 40, 28, 28\)"):
        invert(clf, torch.ones(1, 24, 56, 56), "blocks.2", progress=False)


def test_zero_code_cannot_be_normalised(clf):
    with pytest.raises(ValueError, match="cannot be normalised"):
        invert(clf, torch.zeros(1, 1280), "global_pool", progress=False)


def test_no_hook_left(clf, small_cat):
    invert(clf, small_cat, "blocks.3", steps=2, progress=False)
    with pytest.raises(ValueError):
        invert(clf, torch.zeros(1, 1280), "global_pool", progress=False)
    assert hooks_left(clf.net) == []


def test_panel_runs_and_updates_the_preview(clf):
    import ipywidgets as W

    from tests.test_widgets import _find

    panel = lu.widgets.inversion_panel(clf, image="coffee", layer="blocks.1", size=64)
    (steps,) = _find(panel, W.IntSlider, "steps")
    (layer,) = _find(panel, W.Dropdown, "layer")
    (button,) = _find(panel, W.Button)
    assert "logits" in layer.options and "global_pool" in layer.options
    preview = _find(panel, W.Image)[0]
    before = preview.value
    steps.value = 8
    button.click()
    assert not button.disabled
    assert any("code error" in h.value for h in _find(panel, W.HTML))
    assert preview.value != before
