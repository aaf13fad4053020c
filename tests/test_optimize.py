"""The one image-optimisation loop (lecture_utils.optimize): closed-form steps on tiny problems,
the settings check shared by every recipe, and settings that a recipe cannot use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import torch

import lecture_utils as lu
from lecture_utils.optimize import check_settings, lr_factor, optimize_image


def _image(clf, n=1, init=None):
    return lu.PixelImage(clf, n, clf.input_size, init=init)


def test_one_sgd_step_ascends_the_linear_score(linear_clf):
    """S(x) = w·x + b: one SGD step of size lr from zeros moves x to lr·w; the penalty and the
    objective are recorded as the loop computed them."""
    w = linear_clf.net[1].weight[3].reshape(1, 3, 8, 8)
    image = _image(linear_clf)
    result = optimize_image(
        linear_clf, image, lambda x: linear_clf.net(x)[:, 3], name="score", maximize=True,
        steps=1, lr=0.5, optimizer="sgd", penalties={"l2": lambda x: 0.1 * x.pow(2).flatten(1).sum(1)},
        progress=False,
    )
    torch.testing.assert_close(result.inputs, 0.5 * w)
    assert result.history["l2"] == [0.0]  # the penalty at the step's start (x = 0)
    assert result.history["objective"] == pytest.approx(result.history["score"])


def test_minimising_descends_and_penalties_add(linear_clf):
    """Minimising ½‖x - t‖² + λ‖x‖² by gradient descent converges to t / (1 + 2λ)."""
    target = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    image = _image(linear_clf)
    result = optimize_image(
        linear_clf, image, lambda x: 0.5 * (x - target).pow(2).flatten(1).sum(1), name="fit",
        maximize=False, steps=200, lr=0.2, optimizer="sgd",
        penalties={"l2": lambda x: 0.5 * x.pow(2).flatten(1).sum(1)}, progress=False,
    )
    torch.testing.assert_close(result.inputs, target / 2, atol=1e-4, rtol=1e-4)
    o = result.history["objective"][-1]
    assert o == pytest.approx(result.history["fit"][-1] + result.history["l2"][-1], rel=1e-5)


def test_transform_sees_the_input_and_projection_runs_after_each_step(linear_clf):
    seen, projected = [], []
    image = _image(linear_clf)

    def transform(x):
        seen.append(x.detach().clone())
        return x

    optimize_image(linear_clf, image, lambda x: linear_clf.net(x)[:, 0], name="score",
                   maximize=True, steps=3, lr=1.0, optimizer="sgd", transform=transform,
                   project=lambda step: (projected.append(step), image.x.zero_()), progress=False)
    assert projected == [0, 1, 2]
    assert all(torch.equal(x, torch.zeros_like(x)) for x in seen)  # zeroed after every step


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0]), ("step", [1.0, 1.0, 1.0, 0.1]),
    ("cosine", [1.0, 0.8535533905932737, 0.5, 0.14644660940672627]),
])
def test_schedules(schedule, expected):
    assert [lr_factor(schedule, s, 4) for s in range(4)] == pytest.approx(expected)


def test_callback_after_the_first_step_every_k_and_at_the_end(linear_clf):
    steps = []
    optimize_image(linear_clf, _image(linear_clf), lambda x: linear_clf.net(x)[:, 0], name="score",
                   maximize=True, steps=7, lr=0.1, optimizer="sgd", progress=False,
                   callback=lambda step, images, history: steps.append((step, images.shape)),
                   callback_every=3)
    assert steps == [(1, (1, 8, 8, 3)), (3, (1, 8, 8, 3)), (6, (1, 8, 8, 3)), (7, (1, 8, 8, 3))]


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class _Settings:
    mode: Literal["a", "b"] = "a"
    steps: int = field(default=1, metadata={"min": 1})
    rate: float = 0.5
    flag: bool = False
    size: int | None = field(default=None, metadata={"min": 8, "hint": " Or None."})
    power: float = field(default=2.0, metadata={"above": 1})


@pytest.mark.parametrize("change, match", [
    ({"mode": "c"}, "mode must be 'a' or 'b', got 'c'"),
    ({"steps": 0}, "steps must be a whole number >= 1, got 0"),
    ({"steps": True}, "steps must be a whole number >= 1, got True"),
    ({"steps": 2.0}, "steps must be a whole number"),
    ({"rate": -0.1}, "rate must be a finite number >= 0, got -0.1"),
    ({"rate": float("nan")}, "rate must be a finite number"),
    ({"rate": "fast"}, "rate must be a finite number"),
    ({"flag": 1}, "flag must be True or False"),
    ({"size": 4}, "size must be a whole number >= 8, got 4. Or None."),
    ({"power": 1}, "power must be a finite number > 1, got 1"),
])
def test_check_settings_names_the_field_and_the_rule(change, match):
    check_settings(_Settings())  # the defaults pass
    check_settings(_Settings(size=None, rate=3))  # None where allowed; an int is a number
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        check_settings(_Settings(**change))


@pytest.mark.parametrize("settings", [{"blur_every": 4}, {"clamp": True}])
def test_a_pixel_setting_with_the_fourier_recipe_is_an_error(linear_clf, settings):
    with pytest.raises(ValueError, match="act on pixels.*Fourier.*recipe='blur'"):
        lu.visualize_class(linear_clf, 1, "fourier", steps=1, progress=False, **settings)


def test_momentum_with_adam_is_an_error(clf):
    with pytest.raises(ValueError, match="momentum=0.5 applies to optimizer='sgd' only"):
        lu.invert(clf, torch.zeros(1, 3, 32, 32), "blocks.0", momentum=0.5, steps=1, progress=False)


def test_class_models_and_reconstructions_return_one_result_type(linear_clf, clf):
    a = lu.visualize_class(linear_clf, 1, "plain", steps=2, progress=False)
    b = lu.invert(clf, torch.zeros(1, 3, 32, 32) + 0.5, "blocks.0", steps=2, progress=False)
    assert type(a) is type(b) is lu.OptimizationResult
    assert a.scores and a.layer is None and not a.code_errors
    assert b.layer == "blocks.0" and len(b.code_errors) == 1 and not b.scores
    with pytest.raises(AttributeError, match="not a reconstruction"):
        _ = a.code_error


def test_penalties_share_one_penalty_space_per_step(linear_clf):
    """Reconstructions put both priors on the same pixel units: computed once per step, so the
    gradient is summed where the two priors meet (as the papers' loop does)."""
    calls = []

    def pixels(x):
        calls.append(1)
        return 2 * x

    seen = []
    optimize_image(linear_clf, _image(linear_clf), lambda x: x.flatten(1).sum(1), name="fit",
                   maximize=False, steps=3, lr=0.1, optimizer="sgd", penalty_space=pixels,
                   penalties={"a": lambda u: seen.append(u) or u.flatten(1).sum(1),
                              "b": lambda u: seen.append(u) or u.flatten(1).sum(1)},
                   progress=False)
    assert len(calls) == 3 and seen[0] is seen[1]
