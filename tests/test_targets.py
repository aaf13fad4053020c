import pytest
import torch

import lecture_utils as lu
from lecture_utils.targets import score_pass


def target_scores(clf, x, targets):
    return score_pass(clf, x, targets)[1]


def test_index_and_label_resolve_to_the_same_class(clf):
    assert lu.resolve_target(clf, 1) == lu.resolve_target(clf, "goldfish") == lu.ClassTarget(1, "goldfish")
    assert lu.resolve_target(clf, "Goldfish").index == 1


@pytest.mark.parametrize("index", [-1, 1000, 5000])
def test_class_index_out_of_range(clf, index):
    with pytest.raises(ValueError, match=r"0\.\.999"):
        lu.resolve_target(clf, index)


def test_unknown_label_suggests_close_ones(clf):
    with pytest.raises(ValueError, match="goldfish"):
        lu.resolve_target(clf, "goldfsh")


def test_ambiguous_label_asks_for_the_index(linear_clf):
    # torchvision's names are unique ("crane" and "crane bird"), other label lists are not
    linear_clf.labels = ["crane" if i in (134, 517) else f"class {i}" for i in range(1000)]
    with pytest.raises(ValueError, match="several classes"):
        lu.resolve_target(linear_clf, "crane")


def test_neuron_and_channel_strings(clf):
    assert lu.resolve_target(clf, "blocks.3:5") == lu.Channel("blocks.3", 5, "mean")
    assert lu.resolve_target(clf, "blocks.3:5:max") == lu.Channel("blocks.3", 5, "max")
    assert lu.resolve_target(clf, "blocks.3:5:2:3") == lu.Neuron("blocks.3", 5, 2, 3)
    with pytest.raises(ValueError, match="layer:channel"):
        lu.resolve_target(clf, "blocks.3:five")
    with pytest.raises(KeyError, match="blocks.3"):
        lu.resolve_target(clf, "block.3:5")
    with pytest.raises(ValueError, match=">= 0"):
        lu.resolve_target(clf, lu.Channel("blocks.3", -1))
    with pytest.raises(ValueError, match="Unknown reduce 'sum' for a channel"):
        lu.Channel("blocks.3", 1, "sum")


@pytest.mark.parametrize("position", [{}, {"y": 2}, {"x": 2}])
def test_a_neuron_without_a_position_says_which_channel_to_use(position):
    """A neuron is one unit: without (y, x) the reader must choose the channel's mean or max."""
    with pytest.raises(ValueError, match=r"needs a position y and x.*Channel\('blocks.3', 1\).*"
                                         r"reduce='max'"):
        lu.Neuron("blocks.3", 1, **position)


def test_a_number_that_is_not_a_class_index(clf):
    with pytest.raises(TypeError, match="class index"):
        lu.resolve_target(clf, 3.5)


def test_class_score_is_the_raw_logit(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    scores = target_scores(clf, x, [lu.resolve_target(clf, "espresso")])
    assert torch.allclose(scores, clf(x)[:, 967])


def test_neuron_score_is_the_activation(clf):
    x = clf.preprocess_batch([lu.sample_image("coffee"), lu.sample_image("chelsea")])
    _, acts = lu.activations(clf.net, x, ["blocks.2"])
    targets = [lu.Channel("blocks.2", 7), lu.Neuron("blocks.2", 3, 4, 5)]
    scores = target_scores(clf, x, targets)
    assert torch.allclose(scores[0], acts["blocks.2"][0, 7].mean())
    assert torch.allclose(scores[1], acts["blocks.2"][1, 3, 4, 5])
    scores = target_scores(clf, x, [lu.Channel("blocks.2", 7, "max")] * 2)
    assert torch.allclose(scores, acts["blocks.2"][:, 7].flatten(1).max(dim=1).values)


def test_one_scorer_for_synthesis_and_attribution(clf):
    """A channel means the same in notebook 01 (synthesis) and notebook 05 (attribution): the
    gradient input_gradient takes is the gradient of the score synthesis ascends."""
    x = clf.preprocess(lu.sample_image("coffee")).requires_grad_(True)
    for target in (lu.Channel("blocks.2", 7), lu.Channel("blocks.2", 7, "max"),
                   lu.Neuron("blocks.2", 7, 3, 3)):
        (expected,) = torch.autograd.grad(target_scores(clf, x, [target]).sum(), x)
        torch.testing.assert_close(lu.input_gradient(clf, x.detach(), target), expected)


def test_neuron_scores_stop_at_the_layer(clf):
    called = []
    handle = clf.net.classifier.register_forward_hook(lambda *a: called.append(1))
    try:
        target_scores(clf, clf.preprocess(lu.sample_image("coffee")), [lu.Channel("blocks.1", 0)])
    finally:
        handle.remove()
    assert called == []


def test_channel_and_position_out_of_range(clf):
    x = clf.preprocess(lu.sample_image("coffee"))
    with pytest.raises(ValueError, match=r"has 40 channels \(0\.\.39\)"):
        target_scores(clf, x, [lu.Channel("blocks.2", 40)])
    with pytest.raises(ValueError, match="outside"):
        target_scores(clf, x, [lu.Neuron("blocks.2", 0, 99, 0)])
    assert lu.channel_count(clf, "blocks.2") == 40


def test_one_target_per_image(clf):
    assert len(lu.resolve_targets(clf, "goldfish", n=3)) == 3
    with pytest.raises(ValueError, match="one target per image"):
        lu.resolve_targets(clf, ["goldfish", "lemon"], n=3)
