"""Guided backpropagation and the deconvnet through input_gradient, and the sanity check."""

import warnings

import pytest
import torch
from torch import nn

import lecture_utils as lu
from lecture_utils import sanity
from tests.conftest import find_widgets, hooks_left

# A hand-set ReLU classifier on (1, 3, 2, 2) inputs: z = W1 x + b1, f = relu(z), S = W2 f.
W1 = torch.zeros(3, 12)
W1[0, 0], W1[0, 5] = -1.0, -2.0
W1[1, 1], W1[1, 7] = -1.0, 3.0
W1[2, 2], W1[2, 11] = 2.0, 1.0
B1 = torch.tensor([0.5, -0.5, -4.0])
W2 = torch.zeros(1000, 3)
W2[0] = torch.tensor([2.0, -3.0, 1.0])
W2[1] = torch.tensor([-1.0, 1.0, 5.0])


def relu_classifier() -> lu.Classifier:
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.ReLU(), nn.Linear(3, 1000, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(W1)
        net[1].bias.copy_(B1)
        net[3].weight.copy_(W2)
    return lu.Classifier("relu2", net, "cpu", mean=(0.0,) * 3, std=(1.0,) * 3, input_size=2,
                         resize_size=2, interpolation="bilinear")


X = torch.arange(12, dtype=torch.float32).view(1, 3, 2, 2) / 4.0 - 1.0


@pytest.mark.parametrize("c", [0, 1])
def test_each_rule_matches_its_closed_form(c):
    clf = relu_classifier()
    z = W1 @ X.flatten() + B1
    mask = (z > 0).float()
    expected = {
        "backprop": W1.T @ (mask * W2[c]),
        "deconvnet": W1.T @ W2[c].clamp(min=0),
        "guided": W1.T @ (mask * W2[c].clamp(min=0)),
    }
    assert mask.tolist() == [1.0, 1.0, 0.0]  # one hidden unit is off: the rules differ
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        got = {rule: lu.input_gradient(clf, X, c, rule=rule).flatten() for rule in lu.RULES}
        assert torch.allclose(lu.guided_backprop(clf, X, c).flatten(), expected["guided"])
        assert torch.allclose(lu.deconvnet(clf, X, c).flatten(), expected["deconvnet"])
    for rule in lu.RULES:
        assert torch.allclose(got[rule], expected[rule]), rule
    assert hooks_left(clf.net) == []


def test_neuron_below_every_relu_has_the_same_map_under_every_rule():
    clf = relu_classifier()
    for rule in lu.RULES:
        grad = lu.input_gradient(clf, X, lu.Neuron("1", 1, 0, 0), rule=rule)
        assert torch.allclose(grad.flatten(), W1[1])


def test_backprop_rule_is_plain_autograd_on_the_default_model(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    ours = lu.input_gradient(clf, x, "espresso")
    leaf = x.clone().requires_grad_(True)
    clf(leaf)[0, 967].backward()
    assert torch.equal(ours, leaf.grad)
    with lu.relu_rule(clf.net, "backprop"):
        leaf.grad = None
        clf(leaf)[0, 967].backward()
    assert torch.equal(ours, leaf.grad)


def test_deconvnet_without_max_pooling_ignores_the_image(clf):
    """EfficientNet-Lite0 has no max pooling, so the deconvnet's backward pass never looks at
    the forward activations: the class map is the same for every image."""
    x = clf.preprocess_batch([lu.sample_image("coffee"), lu.sample_image("chelsea")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lu.TargetNotPredictedWarning)
        deconv = lu.deconvnet(clf, x, "espresso")
        guided = lu.guided_backprop(clf, x, "espresso")
    assert torch.allclose(deconv[0], deconv[1])
    assert not torch.allclose(guided[0], guided[1])


def test_unknown_rule_and_nested_rules_are_refused(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    with pytest.raises(ValueError, match="backprop, deconvnet, guided"):
        lu.input_gradient(clf, x, "espresso", rule="lrp")
    with lu.relu_rule(clf.net, "deconvnet"):
        with pytest.raises(RuntimeError, match="already active"):
            lu.input_gradient(clf, x, "espresso", rule="guided")
    assert hooks_left(clf.net) == []


def test_rank_correlation_closed_forms():
    a = torch.tensor([[0.1, 0.5], [0.2, 0.9]])
    assert sanity.rank_correlation(a, a * 7 + 1) == pytest.approx(1.0)
    assert sanity.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert sanity.rank_correlation(a, a.pow(3)) == pytest.approx(1.0)  # ranks only
    with pytest.raises(ValueError, match="differ in shape"):
        sanity.rank_correlation(a, a.flatten())


def test_layer_groups_go_from_the_output_down(clf):
    groups = sanity.layer_groups(clf.net)
    assert groups[0] == "classifier" and groups[-1] == "conv_stem"
    assert groups.index("blocks.6") < groups.index("blocks.0")
    assert sanity.layer_groups(relu_classifier().net) == ["3", "1"]


def test_randomised_copy_leaves_the_trained_model_alone(clf):
    before = {k: v.clone() for k, v in clf.net.state_dict().items()}
    twin = sanity.randomized_copy(clf, ["classifier", "bn2"])
    assert all(torch.equal(before[k], v) for k, v in clf.net.state_dict().items())
    assert not torch.equal(twin.net.classifier.weight, clf.net.classifier.weight)
    assert torch.equal(twin.net.blocks[0][0].conv_dw.weight, clf.net.blocks[0][0].conv_dw.weight)
    with pytest.raises(KeyError, match="valid"):
        sanity.randomized_copy(clf, ["head"])


def test_guided_backprop_fails_the_sanity_check_and_the_gradient_passes(clf):
    """Adebayo et al. 2018: with the classifier and head random, the gradient changes,
    guided backprop still shows the same edges."""
    x = clf.preprocess(lu.sample_image("coffee"))
    result = lu.cascading_randomization(clf, x, "espresso", groups=["classifier", "bn2", "conv_head"])
    assert result.steps == ["trained", "classifier", "bn2", "conv_head"]
    assert result.maps["guided"].shape == (4, 224, 224)
    assert result.correlation["backprop"][0] == pytest.approx(1.0)
    assert result.correlation["guided"][-1] > 0.9
    assert result.correlation["backprop"][-1] < 0.8


def test_guided_panel_draws_a_map(clf):
    import ipywidgets as W

    panel = lu.widgets.guided_panel(clf, image="coffee", layer="blocks.3", channel=5)
    images = find_widgets(panel, W.Image)
    (button,) = find_widgets(panel, W.Button)
    before = images[0].value
    button.click()
    assert images[0].value != before and images[-1].value
