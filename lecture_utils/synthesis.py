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
  (:mod:`lecture_utils.parametrisation`) with random jitter, scale and
  rotation, optimised with Adam. The most natural pictures; the default.

Any setting of a recipe can be overridden by keyword (``steps``, ``lr``, ``l2``,
``jitter``, ...). Results are :class:`SynthesisResult` dataclasses holding the
images, the loss history and the settings used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from . import priors
from .history import History
from .parametrisation import make_image
from .targets import ClassTarget, Neuron, resolve_targets, score_pass

__all__ = [
    "Recipe", "RECIPES", "SynthesisResult", "visualize_class", "visualize_neuron", "synthesize",
    "blur_robustness",
]


@dataclass(frozen=True)
class Recipe:
    """Every setting of a synthesis run (the defaults of one recipe, or a user's overrides)."""

    parametrisation: str = "pixel"  # "pixel" or "fourier"
    optimizer: str = "sgd"  # "sgd" or "adam"
    steps: int = 100
    lr: float = 1.0  # step size
    l2: float = 1e-3  # λ of the λ‖x‖² penalty on the image (normalised input space)
    jitter: int = 0  # pixels of random shift per step
    scale: float = 0.0  # random rescaling by up to ±scale
    rotate: float = 0.0  # random rotation by up to ±rotate degrees
    blur_every: int = 0  # blur the image every k steps (0: never)
    blur_sigma: float = 0.5
    clamp: bool = False  # clamp pixels to [0, 1] after each step
    size: int | None = None  # image size (default: the model's input size)

    def validated(self) -> Recipe:
        for name in ("lr", "l2", "blur_sigma", "scale", "rotate"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value < 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
        for name in ("steps", "jitter", "blur_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}.")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}.")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int)
                                      or self.size < 8):
            raise ValueError(
                f"size must be a whole number of pixels >= 8, or None for the model's input "
                f"size, got {self.size!r}."
            )
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}.")
        if self.parametrisation not in ("pixel", "fourier"):
            raise ValueError(f"parametrisation must be 'pixel' or 'fourier', got {self.parametrisation!r}.")
        return self


RECIPES: dict[str, Recipe] = {
    "plain": Recipe(steps=100, lr=1.0, l2=1e-3),
    "blur": Recipe(steps=100, lr=1.0, l2=1e-3, jitter=8, blur_every=4, blur_sigma=0.5, clamp=True),
    "fourier": Recipe(
        parametrisation="fourier", optimizer="adam", steps=128, lr=0.05, l2=0.0,
        jitter=8, scale=0.1, rotate=10.0,
    ),
}


@dataclass
class SynthesisResult:
    """The outcome of a synthesis run.

    ``images``: ``(N, H, W, 3)`` floats in [0, 1]; ``inputs``: the network inputs
    ``(N, 3, H, W)`` on the CPU; ``history``: per step, the mean over the batch of
    ``"score"``, ``"penalty"`` (λ‖x‖²) and ``"objective"`` (score − penalty);
    ``scores``: each target's final score; ``probabilities``: for class
    targets, the softmax probability of the class for the final image (NaN for
    neurons); ``settings``: the recipe actually used.
    """

    images: np.ndarray
    inputs: torch.Tensor
    targets: list
    history: dict[str, list[float]] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        """The first image, ``(H, W, 3)``."""
        return self.images[0]


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
) -> SynthesisResult:
    """Gradient ascent on the image for one target or a list of targets (one image each).

    ``callback(step, images, history)`` is called after the first step (so a live panel
    shows a picture at once), every ``callback_every`` steps and at the end, with the
    current images ``(N, H, W, 3)``, for live display.
    """
    r = _resolve_recipe(recipe, overrides)
    targets = resolve_targets(clf, targets)
    size = r.size or clf.input_size
    generator = torch.Generator().manual_seed(seed)
    image = make_image(r.parametrisation, clf, len(targets), size, generator)
    opt_cls = torch.optim.Adam if r.optimizer == "adam" else torch.optim.SGD
    optimizer = opt_cls(image.parameters(), lr=r.lr)
    history = History("score", "penalty", "objective")
    clf.ensure_eval()
    steps = range(r.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="synthesis")
    for step in steps:
        optimizer.zero_grad(set_to_none=True)
        x = image.input()
        _, scores = score_pass(clf, _transform(x, r, generator), targets)
        penalty = r.l2 * priors.l2(x) if r.l2 else x.new_zeros(len(targets))  # λ‖x‖²
        objective = scores - penalty
        (-objective.sum()).backward()  # ascend the objective
        optimizer.step()
        with torch.no_grad():
            if r.parametrisation == "pixel":
                if r.blur_every and (step + 1) % r.blur_every == 0:
                    image.x.copy_(priors.blur(image.x, r.blur_sigma))
                if r.clamp:
                    image.x.copy_(priors.clamp_pixels(image.x, clf))
        history.add(score=scores, penalty=penalty, objective=objective)
        if callback is not None and (step == 0 or (step + 1) % callback_every == 0 or step + 1 == r.steps):
            with torch.no_grad():
                images = clf.deprocess(image.input()).reshape(len(targets), size, size, 3)
                callback(step + 1, images, history.values())
    return _finish(clf, image, targets, history.values(), r)


@torch.no_grad()
def _finish(clf, image, targets, history, r: Recipe) -> SynthesisResult:
    x = image.input().detach()
    logits, final = score_pass(clf, x, targets)  # one pass for the scores and the probabilities
    probs = [float("nan")] * len(targets)
    if logits is not None:
        p = torch.softmax(logits, dim=1)
        probs = [float(p[i, t.index]) if isinstance(t, ClassTarget) else float("nan")
                 for i, t in enumerate(targets)]
    images = clf.deprocess(x).reshape(len(targets), x.shape[2], x.shape[3], 3)
    return SynthesisResult(
        images=images, inputs=x.cpu(), targets=targets, history=history,
        scores=[float(s) for s in final], probabilities=probs, settings=asdict(r),
    )


def visualize_class(clf, target, recipe: str | Recipe = "fourier", **kwargs) -> SynthesisResult:
    """A class model: the image maximising the raw score S_c − λ‖I‖² of class ``target``.

    ``target``: a class index, a label, or a list of them (one image each).
    See :func:`synthesize` for the keyword arguments and ``RECIPES`` for settings.
    """
    resolved = resolve_targets(clf, target)
    if not all(isinstance(t, ClassTarget) for t in resolved):
        raise ValueError("visualize_class takes classes; use visualize_neuron for 'layer:channel'.")
    return synthesize(clf, resolved, recipe, **kwargs)


def visualize_neuron(clf, neuron, recipe: str | Recipe = "fourier", **kwargs) -> SynthesisResult:
    """The image maximising one neuron: ``"layer:channel"``, a :class:`Neuron`, or a list."""
    resolved = resolve_targets(clf, neuron)
    if not all(isinstance(t, Neuron) for t in resolved):
        raise ValueError(
            "visualize_neuron takes neurons such as 'blocks.4:17' or Neuron('blocks.4', 17); "
            "use visualize_class for classes."
        )
    return synthesize(clf, resolved, recipe, **kwargs)


@torch.no_grad()
def blur_robustness(clf, result: SynthesisResult, sigmas=(0.0, 1.0, 2.0)) -> np.ndarray:
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
