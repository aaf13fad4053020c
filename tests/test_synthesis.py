"""Class models and neuron visualisations: closed forms on a linear model, behaviour on the
real default model, and the model left untouched whatever happens."""

import math

import numpy as np
import pytest
import torch

import lecture_utils as lu
from tests.conftest import hooks_left

FIVE_CLASSES = ["goldfish", "ostrich", "dumbbell", "bell pepper", "lemon"]


def test_plain_ascent_matches_the_closed_form(linear_clf):
    """S(x) = w·x + b with penalty λ‖x‖² and step η from x0 = 0 gives
    x_k = w / (2λ) · (1 − (1 − 2ηλ)^k)."""
    lam, lr, k, c = 0.05, 0.5, 7, 3
    result = lu.visualize_class(linear_clf, c, "plain", l2=lam, lr=lr, steps=k, progress=False)
    w = linear_clf.net[1].weight[c].view(1, 3, 8, 8)
    expected = w / (2 * lam) * (1 - (1 - 2 * lr * lam) ** k)
    assert torch.allclose(result.inputs, expected, atol=1e-5)
    assert result.settings["l2"] == lam and result.settings["steps"] == k
    assert len(result.history["objective"]) == k


def test_larger_lambda_gives_a_smaller_image(clf):
    norms = []
    for lam in (1e-3, 1e-1):
        r = lu.visualize_class(clf, "lemon", "plain", l2=lam, steps=15, progress=False)
        norms.append(r.inputs.norm().item())
    assert norms[1] < 0.8 * norms[0]


def test_history_records_score_and_image_penalty(linear_clf):
    lam = 0.1
    r = lu.visualize_class(linear_clf, 5, "plain", l2=lam, lr=0.1, steps=3, progress=False)
    assert r.history["penalty"][0] == 0.0  # the first step starts from zeros
    w = linear_clf.net[1].weight[5]
    x1 = 0.1 * w  # after one step from zeros
    assert r.history["penalty"][1] == pytest.approx(lam * float(x1.pow(2).sum()), rel=1e-4)
    for s, p, o in zip(*(r.history[k] for k in ("score", "penalty", "objective"))):
        assert o == pytest.approx(s - p, abs=1e-5)


@pytest.mark.slow
def test_default_class_models_are_top1_with_high_probability(clf):
    result = lu.visualize_class(clf, FIVE_CLASSES, progress=False)
    assert result.settings["parametrization"] == "fourier"
    for label, probability, x in zip(FIVE_CLASSES, result.probabilities, result.inputs):
        assert probability >= 0.99, (label, probability)
        assert clf.predict(x[None], k=1)[0].label == label


def test_neuron_visualisation_raises_the_activation(clf):
    neuron = lu.Channel("blocks.2", 5)
    result = lu.visualize_neuron(clf, neuron, steps=24, progress=False)
    x0 = clf.normalize(lu.FourierImage(clf, 1, clf.input_size,
                                       generator=torch.Generator().manual_seed(0))())
    from lecture_utils.targets import score_pass

    with torch.no_grad():
        start = float(score_pass(clf, x0, [neuron])[1])
    assert result.scores[0] > start + 1.0
    assert math.isnan(result.probabilities[0])


def test_same_seed_same_picture(clf):
    a = lu.visualize_neuron(clf, "blocks.1:3", steps=4, seed=1, progress=False)
    b = lu.visualize_neuron(clf, "blocks.1:3", steps=4, seed=1, progress=False)
    c = lu.visualize_neuron(clf, "blocks.1:3", steps=4, seed=2, progress=False)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_callback_sees_live_images(linear_clf):
    seen = []
    lu.visualize_class(
        linear_clf, 1, "plain", steps=5, callback_every=2, progress=False,
        callback=lambda step, images, history: seen.append((step, images.shape, len(history["score"]))),
    )
    # after the first step (a live panel's first picture), every 2 steps, and at the end
    assert seen == [(1, (1, 8, 8, 3), 1), (2, (1, 8, 8, 3), 2), (4, (1, 8, 8, 3), 4),
                    (5, (1, 8, 8, 3), 5)]


def test_one_forward_pass_per_step_and_one_at_the_end(linear_clf):
    calls = []
    handle = linear_clf.net.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        result = lu.visualize_class(linear_clf, [1, 2], "plain", steps=4, progress=False)
    finally:
        handle.remove()
    assert len(calls) == 4 + 1  # the final scores and probabilities share one pass
    assert len(result.history["objective"]) == 4


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"l2": -1.0}, ValueError, "l2 must be a finite number >= 0"),
        ({"lr": float("nan")}, ValueError, "lr must be a finite number"),
        ({"lr": float("inf")}, ValueError, "lr must be a finite number"),
        ({"steps": 0}, ValueError, "steps must be a whole number >= 1"),
        ({"jitter": -2}, ValueError, "jitter"),
        ({"learning_rate": 1.0}, TypeError, "valid: parametrization"),
    ],
)
def test_bad_settings_are_refused(linear_clf, kwargs, error, match):
    with pytest.raises(error, match=match):
        lu.visualize_class(linear_clf, 1, "plain", progress=False, **kwargs)


def test_bad_targets_and_recipes(clf):
    with pytest.raises(ValueError, match="0..999"):
        lu.visualize_class(clf, 1000, progress=False)
    with pytest.raises(ValueError, match="Unknown recipe"):
        lu.visualize_class(clf, 1, "deepdream", progress=False)
    with pytest.raises(ValueError, match="visualize_neuron"):
        lu.visualize_class(clf, "blocks.1:3", progress=False)
    with pytest.raises(ValueError, match="visualize_class"):
        lu.visualize_neuron(clf, "goldfish", progress=False)


def test_no_hook_left_after_success_error_or_interrupt(clf):
    lu.visualize_neuron(clf, "blocks.1:1", steps=2, progress=False)
    assert hooks_left(clf.net) == []
    with pytest.raises(ValueError, match="channels"):
        lu.visualize_neuron(clf, "blocks.1:999", steps=2, progress=False)
    assert hooks_left(clf.net) == []

    def interrupt(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lu.visualize_neuron(clf, "blocks.1:1", steps=4, callback=interrupt, callback_every=1,
                            progress=False)
    assert hooks_left(clf.net) == []
    assert not any(p.requires_grad for p in clf.net.parameters())


def test_training_mode_is_put_back(clf):
    clf.net.train()
    try:
        with pytest.warns(UserWarning, match="eval mode"):
            lu.visualize_neuron(clf, "blocks.1:1", steps=1, progress=False)
        assert not clf.net.training
    finally:
        clf.net.eval()


def test_blur_robustness_starts_from_the_result_probabilities(clf):
    result = lu.visualize_class(clf, ["lemon", "goldfish"], "plain", steps=10, progress=False)
    table = lu.blur_robustness(clf, result, sigmas=(0, 3))
    assert table.shape == (2, 2)
    assert np.allclose(table[0], result.probabilities, atol=1e-5)
    neuron = lu.visualize_neuron(clf, "blocks.1:1", steps=1, progress=False)
    with pytest.raises(ValueError, match="class models"):
        lu.blur_robustness(clf, neuron)
