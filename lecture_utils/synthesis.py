"""Backpropagation to the image: class models and neuron visualisations.

The slides' loop (Simonyan, Vedaldi & Zisserman 2014)::

    1. feed zeros (the mean image) as input
    2. set the gradient of the score vector to [0, ..., 1, ..., 0], backprop to the image
    3. do a small image update
    4. forward the image through the network
    5. go back to step 2

is gradient ascent on  argmax_I  S_c(I) - λ‖I‖²,  where S_c is the raw class
score *before* the softmax. For a neuron the same loop maximises one channel's
activation instead ("set activations in a layer of interest to all zero,
except 1.0 for a neuron of interest").

Three recipes, from the slides to today's practice:

* ``"plain"``   — the slides: pixels from zeros, L2 penalty, SGD.
* ``"blur"``    — CS231n: also jitter, a Gaussian blur every few steps and
  clamping to valid pixels.
* ``"fourier"`` — Lucid: a decorrelated Fourier parametrisation
  (:mod:`lecture_utils.parametrization`) with random jitter, scale and
  rotation, optimised with Adam. The most natural pictures; the default.

Any setting of a recipe can be overridden by keyword (``steps``, ``lr``, ``l2``,
``jitter``, ...); a setting the recipe's parametrization cannot use is an error.
Each recipe is a choice of parts for the one loop, :func:`lecture_utils.optimize.optimize_image`
(notebook 01 writes that loop out by hand first), and the scores come from the one
scorer, :func:`lecture_utils.targets.score_pass`. Results are
:class:`~lecture_utils.optimize.OptimizationResult` dataclasses holding the images, the
loss history, the final scores and the settings used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from . import priors
from .optimize import (
    OptimizationResult,
    OptimizerName,
    Parametrization,
    check_settings,
    optimize_image,
)
from .parametrization import make_image
from .targets import Channel, ClassTarget, Neuron, resolve_targets, score_pass

__all__ = ["Recipe", "RECIPES", "visualize_class", "visualize_neuron", "synthesize", "blur_robustness"]

PIXELS_ONLY = ("blur_every", "clamp")  # act on pixels: a Fourier image has none to blur or clamp


@dataclass(frozen=True)
class Recipe:
    """Every setting of a synthesis run (the defaults of one recipe, or a user's overrides)."""

    parametrization: Parametrization = "pixel"
    optimizer: OptimizerName = "sgd"
    steps: int = field(default=100, metadata={"min": 1})
    lr: float = 1.0  # step size
    l2: float = 1e-3  # λ of the λ‖x‖² penalty on the image (normalised input space)
    jitter: int = 0  # pixels of random shift per step
    scale: float = 0.0  # random rescaling by up to ±scale
    rotate: float = 0.0  # random rotation by up to ±rotate degrees
    blur_every: int = 0  # blur the image every k steps (0: never); pixels only
    blur_sigma: float = 0.5
    clamp: bool = False  # clamp pixels to [0, 1] after each step; pixels only
    size: int | None = field(default=None, metadata={  # image size (None: the model's)
        "min": 8, "hint": " Give a whole number of pixels >= 8, or None for the model's input size."})

    def validated(self) -> Recipe:
        check_settings(self)
        if self.parametrization == "fourier":
            used = [name for name in PIXELS_ONLY if getattr(self, name)]
            if used:
                raise ValueError(
                    f"{' and '.join(used)} act on pixels, but this recipe optimises a Fourier "
                    "spectrum (parametrization='fourier'), where they would be ignored. Use "
                    "recipe='blur' (pixels, blurred and clamped) or leave them out."
                )
        return self


RECIPES: dict[str, Recipe] = {
    "plain": Recipe(steps=100, lr=1.0, l2=1e-3),
    "blur": Recipe(steps=100, lr=1.0, l2=1e-3, jitter=8, blur_every=4, blur_sigma=0.5, clamp=True),
    "fourier": Recipe(
        parametrization="fourier", optimizer="adam", steps=128, lr=0.05, l2=0.0,
        jitter=8, scale=0.1, rotate=10.0,
    ),
}


def _resolve_recipe(recipe: str | Recipe, overrides: dict) -> Recipe:
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
        recipe = RECIPES[recipe]
    unknown = set(overrides) - set(Recipe.__dataclass_fields__)
    if unknown:
        raise TypeError(
            f"Unknown setting(s) {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(Recipe.__dataclass_fields__)}."
        )
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None}).validated()


def _transform(x: torch.Tensor, r: Recipe, generator: torch.Generator) -> torch.Tensor:
    x = priors.jitter(x, r.jitter, generator)
    x = priors.random_scale(x, r.scale, generator)
    return priors.random_rotate(x, r.rotate, generator)


def synthesize(
    clf, targets, recipe: str | Recipe = "fourier", *, seed: int = 0,
    callback: Callable[[int, np.ndarray, dict], None] | None = None, callback_every: int = 10,
    progress: bool = True, **overrides,
) -> OptimizationResult:
    """Gradient ascent on the image for one target or a list of targets (one image each):
    maximise score − λ‖x‖² (see :func:`lecture_utils.optimize.optimize_image` for
    ``callback``)."""
    r = _resolve_recipe(recipe, overrides)
    targets = resolve_targets(clf, targets)
    size = r.size or clf.input_size
    generator = torch.Generator().manual_seed(seed)
    image = make_image(r.parametrization, clf, len(targets), size, generator)
    clf.ensure_eval()

    def score(x: torch.Tensor) -> torch.Tensor:
        return score_pass(clf, x, targets)[1]

    def l2(x: torch.Tensor) -> torch.Tensor:  # λ‖x‖²
        return r.l2 * priors.l2(x) if r.l2 else x.new_zeros(len(targets))

    def project(step: int) -> None:
        if r.blur_every and (step + 1) % r.blur_every == 0:
            image.x.copy_(priors.blur(image.x, r.blur_sigma))
        if r.clamp:
            image.x.copy_(priors.clamp_pixels(image.x, clf))

    result = optimize_image(
        clf, image, score, name="score", maximize=True, steps=r.steps, lr=r.lr,
        optimizer=r.optimizer, transform=lambda x: _transform(x, r, generator),
        penalties={"penalty": l2}, project=project if r.parametrization == "pixel" else None,
        callback=callback, callback_every=callback_every, progress=progress, desc="synthesis",
    )
    return _finish(clf, result, targets, r)


@torch.no_grad()
def _finish(clf, result: OptimizationResult, targets, r: Recipe) -> OptimizationResult:
    x = result.inputs.to(clf.device)
    logits, final = score_pass(clf, x, targets)  # one pass for the scores and the probabilities
    probs = [float("nan")] * len(targets)
    if logits is not None:
        p = torch.softmax(logits, dim=1)
        probs = [float(p[i, t.index]) if isinstance(t, ClassTarget) else float("nan")
                 for i, t in enumerate(targets)]
    return replace(result, targets=targets, scores=[float(s) for s in final],
                   probabilities=probs, settings=asdict(r))


def visualize_class(clf, target, recipe: str | Recipe = "fourier", **kwargs) -> OptimizationResult:
    """A class model: the image maximising the raw score S_c − λ‖I‖² of class ``target``.

    ``target``: a class index, a label, or a list of them (one image each).
    See :func:`synthesize` for the keyword arguments and ``RECIPES`` for settings.
    Notebook 01 defines the idea (the bare loop first); exercise 01 asks students to write
    the ``"plain"`` recipe as ``class_model``.
    """
    resolved = resolve_targets(clf, target)
    if not all(isinstance(t, ClassTarget) for t in resolved):
        raise ValueError("visualize_class takes classes; use visualize_neuron for 'layer:channel'.")
    return synthesize(clf, resolved, recipe, **kwargs)


def visualize_neuron(clf, neuron, recipe: str | Recipe = "fourier", **kwargs) -> OptimizationResult:
    """The image maximising a channel or a neuron: ``"layer:channel"`` (the channel's mean,
    as notebook 01 uses), a :class:`~lecture_utils.targets.Channel`, a
    :class:`~lecture_utils.targets.Neuron` at a position, or a list of them."""
    resolved = resolve_targets(clf, neuron)
    if not all(isinstance(t, (Channel, Neuron)) for t in resolved):
        raise ValueError(
            "visualize_neuron takes channels or neurons such as 'blocks.4:17', "
            "Channel('blocks.4', 17) or Neuron('blocks.4', 17, 3, 3); use visualize_class for classes."
        )
    return synthesize(clf, resolved, recipe, **kwargs)


@torch.no_grad()
def blur_robustness(clf, result: OptimizationResult, sigmas=(0.0, 1.0, 2.0)) -> np.ndarray:
    """Probability of each class model's class after a Gaussian blur of each ``sigma``.

    Returns ``(len(sigmas), N)``. A picture that only fools the network through
    pixel-level noise loses its class under a slight blur; a natural one keeps it.
    """
    if not all(isinstance(t, ClassTarget) for t in result.targets):
        raise ValueError("blur_robustness needs class models (from visualize_class).")
    x = result.inputs.to(clf.device)
    index = torch.tensor([t.index for t in result.targets], device=clf.device)
    rows = []
    for sigma in sigmas:
        probs = torch.softmax(clf(priors.blur(x, float(sigma))), dim=1)
        rows.append(probs.gather(1, index[:, None])[:, 0].cpu().numpy())
    return np.stack(rows)
