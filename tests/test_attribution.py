"""Tests for lecture_utils.attribution: closed forms on a linear classifier, batches, targets,
reductions, SmoothGrad, the not-predicted warning, bad input and hook hygiene."""

from __future__ import annotations

import warnings

import pytest
import torch

import lecture_utils as lu
from tests.conftest import hooks_left, make_linear_classifier


def _x(n: int = 2, size: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _w(clf, index: int) -> torch.Tensor:
    """The weight row of class ``index`` as an image ``(3, H, W)``: the closed-form gradient."""
    s = clf.input_size
    return clf.net[1].weight[index].view(3, s, s)


# --- closed forms on S(x) = W x + b ---------------------------------------------------------
def test_linear_gradient_is_the_weight_row(linear_clf):
    x = _x()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        grad = lu.input_gradient(linear_clf, x, [3, 17])
    assert grad.shape == x.shape
    torch.testing.assert_close(grad[0], _w(linear_clf, 3))
    torch.testing.assert_close(grad[1], _w(linear_clf, 17))


def test_linear_saliency_is_max_abs_weight_over_channels(linear_clf):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        grad = lu.input_gradient(linear_clf, _x(1), 5)
    expected = _w(linear_clf, 5).abs().amax(dim=0)
    torch.testing.assert_close(lu.saliency_map(grad)[0], expected)


@pytest.mark.parametrize("reduce", ["max", "sum", "signed"])
def test_reduce_variants_by_hand(reduce):
    grad = torch.tensor([[[[1.0, -4.0]], [[-3.0, 2.0]], [[2.0, 0.5]]]])  # (1, 3, 1, 2)
    expected = {"max": [[3.0, 4.0]], "sum": [[6.0, 6.5]], "signed": [[-3.0, -4.0]]}[reduce]
    torch.testing.assert_close(lu.saliency_map(grad, reduce), torch.tensor([expected]))
    torch.testing.assert_close(lu.saliency_map(grad[0], reduce), torch.tensor(expected))


def test_batch_equals_a_loop_over_single_images(clf):
    x = torch.cat([clf.preprocess(lu.sample_image(n)) for n in ("chelsea", "coffee")])
    targets = ["tiger cat", "espresso"]
    batch = lu.input_gradient(clf, x, targets)
    for i, t in enumerate(targets):
        single = lu.input_gradient(clf, x[i : i + 1], t)
        torch.testing.assert_close(batch[i : i + 1], single, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
def test_relu_rules_equal_the_gradient_without_relus(linear_clf, rule):
    fn = {"guided": lu.guided_backprop, "deconvnet": lu.deconvnet}[rule]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        torch.testing.assert_close(fn(linear_clf, _x(), 7), lu.input_gradient(linear_clf, _x(), 7))


def test_targets_by_index_and_label_agree(linear_clf):
    label = linear_clf.labels[42]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        torch.testing.assert_close(lu.input_gradient(linear_clf, _x(1), 42),
                                   lu.input_gradient(linear_clf, _x(1), label))


# --- neuron targets -------------------------------------------------------------------------
def test_neuron_target_at_a_given_position_is_its_weight_row(linear_clf):
    # the Linear layer "1" is (N, 1000): channel c at (0, 0) is the logit c
    grad = lu.input_gradient(linear_clf, _x(1), lu.Neuron("1", 9, 0, 0))
    torch.testing.assert_close(grad[0], _w(linear_clf, 9))


def test_channel_targets_max_is_the_strongest_position_and_mean_all_positions():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 2, kernel_size=1, bias=False)
    net = torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 1000))
    clf = lu.Classifier("conv", net, "cpu", mean=(0, 0, 0), std=(1, 1, 1), input_size=4,
                        resize_size=4, interpolation="bilinear")
    x = _x(1, 4)
    act = conv(x)[0, 1]
    y, xx = divmod(int(act.flatten().argmax()), 4)
    grad = lu.input_gradient(clf, x, "0:1:max")
    expected = torch.zeros_like(x)
    expected[0, :, y, xx] = conv.weight[1, :, 0, 0]
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(lu.input_gradient(clf, x, lu.Channel("0", 1, "max")), expected)
    torch.testing.assert_close(lu.input_gradient(clf, x, lu.Neuron("0", 1, y, xx)), expected)
    # the mean: every position counts 1/16
    mean = conv.weight[1, :, 0, 0][None, :, None, None].expand_as(x) / 16
    torch.testing.assert_close(lu.input_gradient(clf, x, "0:1"), mean)


def test_neuron_on_the_default_model_touches_only_its_receptive_field(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    grad = lu.input_gradient(clf, x, lu.Neuron("blocks.1", 3, 0, 0))  # top-left, 56x56 map
    sal = lu.saliency_map(grad)[0]
    assert sal[:20, :20].sum() > 0
    assert sal[60:, :].sum() == 0 and sal[:, 60:].sum() == 0


# --- SmoothGrad -----------------------------------------------------------------------------
def test_smooth_grad_with_zero_noise_is_the_gradient(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    plain = lu.input_gradient(clf, x, "espresso")
    smooth = lu.smooth_grad(clf, x, "espresso", noise=0.0, samples=2)
    torch.testing.assert_close(smooth, plain, rtol=1e-4, atol=1e-6)


def test_smooth_grad_on_a_linear_model_is_exact_for_any_noise(linear_clf):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        smooth = lu.smooth_grad(linear_clf, _x(2), 4, noise=0.5, samples=3, batch_size=2)
    torch.testing.assert_close(smooth[1], _w(linear_clf, 4))


def test_smooth_grad_is_repeatable_and_changes_with_noise(clf):
    x = clf.preprocess(lu.sample_image("chelsea"))
    a = lu.smooth_grad(clf, x, "tiger cat", noise=0.2, samples=2, seed=3)
    b = lu.smooth_grad(clf, x, "tiger cat", noise=0.2, samples=2, seed=3)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, lu.input_gradient(clf, x, "tiger cat"))


# --- the "not the prediction" warning -------------------------------------------------------
def test_warning_once_per_call_when_the_target_is_not_predicted(clf):
    x = torch.cat([clf.preprocess(lu.sample_image(n)) for n in ("chelsea", "coffee")])
    with pytest.warns(lu.TargetNotPredictedWarning) as record:
        lu.input_gradient(clf, x, "goldfish")  # wrong for both images
    assert len(record) == 1
    assert "goldfish" in str(record[0].message) and "1 more" in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error", lu.TargetNotPredictedWarning)
        lu.input_gradient(clf, x, ["tiger cat", "espresso"])  # the predictions: silent


def test_smooth_grad_warns_once_too(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    with pytest.warns(lu.TargetNotPredictedWarning) as record:
        lu.smooth_grad(clf, x, "goldfish", noise=0.1, samples=3, batch_size=2)
    assert len(record) == 1


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 8), (1, 1, 8, 8), (2, 4, 8, 8), (1, 2, 3, 8, 8)])
def test_saliency_of_a_wrong_shape_says_what_it_expects(shape):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        lu.saliency_map(torch.ones(shape))


def test_saliency_rejects_unknown_reduce_and_non_tensors():
    with pytest.raises(ValueError, match="max, sum, signed"):
        lu.saliency_map(torch.ones(1, 3, 2, 2), reduce="mean")
    with pytest.raises(TypeError, match="gradient tensor"):
        lu.saliency_map([[1.0]])


def test_input_gradient_bad_input(linear_clf):
    with pytest.raises(ValueError, match="one target per image"):
        lu.input_gradient(linear_clf, _x(3), [1, 2])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        lu.input_gradient(linear_clf, torch.ones(1, 1, 8, 8), 1)
    with pytest.raises(ValueError, match="Unknown rule"):
        lu.input_gradient(linear_clf, _x(1), 1, rule="lrp")
    with pytest.raises(ValueError, match="out of range"):
        lu.input_gradient(linear_clf, _x(1), 1000)


def test_smooth_grad_bad_settings(linear_clf):
    with pytest.raises(ValueError, match="noise"):
        lu.smooth_grad(linear_clf, _x(1), 1, noise=-0.1)
    with pytest.raises(ValueError, match="samples"):
        lu.smooth_grad(linear_clf, _x(1), 1, samples=0)
    with pytest.raises(ValueError, match="one target per image"):
        lu.smooth_grad(linear_clf, _x(2), [1, 2, 3])


# --- no hooks left behind -------------------------------------------------------------------
def test_no_hooks_left_after_calls_or_errors(clf):
    x = clf.preprocess(lu.sample_image("rocket"))
    for fn in (lu.input_gradient, lu.guided_backprop, lu.deconvnet):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
            fn(clf, x, "blocks.3:5")
            fn(clf, x, "missile")
        with pytest.raises(ValueError):
            fn(clf, x, "blocks.3:100000")  # channel out of range, raised mid-forward
        assert hooks_left(clf.net) == []
    assert not any(p.requires_grad for p in clf.net.parameters())


def test_linear_helper_is_deterministic():
    a, b = make_linear_classifier(seed=3), make_linear_classifier(seed=3)
    torch.testing.assert_close(a.net[1].weight, b.net[1].weight)
