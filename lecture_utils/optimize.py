"""The one image-optimisation loop behind class models, neuron pictures and reconstructions.

Backprop to the image (notebook 01) and reconstruction from a code (notebook 04) are the
same loop with different parts, as in Lucid's ``render``::

    for each step:
        x = image.input()                        # parametrisation: pixels or Fourier
        value = objective(transform(x))          # transforms: jitter, scale, rotate
        total = value -/+ Σ penalties(x)         # priors: λ‖x‖², λ_α R_α, λ_TV R_TV
        ascend (or descend) total with the optimiser, step size from the schedule
        project(x)                               # blur, clamp, bound the pixels

:func:`optimize_image` runs it and returns an :class:`OptimizationResult`;
:func:`lecture_utils.synthesis.visualize_class`, ``visualize_neuron`` and
:func:`lecture_utils.inversion.invert` are short recipes that choose the parts.
:func:`check_settings` validates any settings dataclass by its field types, in one place.
Notebook 01 shows the bare loop in ten lines before handing over to this one.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal, get_args, get_origin

import numpy as np
import torch

from .history import History

__all__ = ["OptimizationResult", "optimize_image", "check_settings", "Parametrization",
           "OptimizerName", "Schedule"]

Parametrization = Literal["pixel", "fourier"]
OptimizerName = Literal["sgd", "adam"]
Schedule = Literal["constant", "step", "cosine"]


@dataclass
class OptimizationResult:
    """The outcome of a class model, neuron picture or reconstruction.

    ``images``: ``(N, H, W, 3)`` floats in [0, 1]; ``inputs``: the network inputs
    ``(N, 3, H, W)`` on the CPU; ``history``: per step, the mean over the batch of each
    term of the objective (class models: ``"score"``, ``"penalty"``, ``"objective"``;
    reconstructions: ``"code"``, ``"alpha"``, ``"tv"``, ``"objective"``); ``settings``:
    every setting used. Class models and neuron pictures also give ``targets``,
    ``scores`` (each target's final score) and ``probabilities`` (the class's softmax
    probability, NaN for neurons); reconstructions give ``layer``, ``code_errors``
    (per image, the final ‖Φ(x*) - Φ0‖/‖Φ0‖) and ``initial_code_errors`` (at the start).
    """

    images: np.ndarray
    inputs: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    layer: str | None = None
    code_errors: list[float] = field(default_factory=list)
    initial_code_errors: list[float] = field(default_factory=list)

    @property
    def image(self) -> np.ndarray:
        """The first image, ``(H, W, 3)``."""
        return self.images[0]

    @property
    def code_error(self) -> float:
        """The first reconstruction's normalised code error ‖Φ(x*) - Φ0‖/‖Φ0‖."""
        if not self.code_errors:
            raise AttributeError("code_error: this result is not a reconstruction (lu.invert).")
        return self.code_errors[0]


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The step size's multiplier at ``step``: 1 (constant), ÷10 for the last quarter
    (step), or a half cosine from 1 to 0 (cosine)."""
    if schedule == "step":
        return 0.1 if step >= 0.75 * steps else 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return 1.0


def optimize_image(
    clf, image: torch.nn.Module, objective: Callable[[torch.Tensor], torch.Tensor], *,
    name: str, maximize: bool, steps: int, lr: float, optimizer: OptimizerName = "adam",
    momentum: float = 0.0, schedule: Schedule = "constant",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    penalties: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    penalty_space: Callable[[torch.Tensor], torch.Tensor] | None = None,
    project: Callable[[int], None] | None = None,
    callback: Callable[[int, np.ndarray, dict], None] | None = None, callback_every: int = 10,
    progress: bool = True, desc: str = "optimising",
) -> OptimizationResult:
    """Optimise ``image`` (a :class:`~lecture_utils.parametrization.PixelImage` or
    ``FourierImage`` of N images) so that ``objective(transform(x))``, one value per image
    recorded as ``name``, is as large (``maximize``) or as small as possible, with the
    weighted ``penalties`` (name → function of the untransformed input, ``(N,)``) pulling the
    other way. ``penalty_space(x)``, if given, is computed once per step and is what the
    penalties see (e.g. pixel units). ``project(step)`` runs after each update, without
    gradients.

    ``callback(step, images, history)`` is called after the first step (so a live panel
    shows a picture at once), every ``callback_every`` steps and at the end, with the
    current images ``(N, H, W, 3)``. Returns the images, inputs and history; the recipes add
    their own final figures.
    """
    params = list(image.parameters())
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    penalties = penalties or {}
    history = History(name, *penalties, "objective")
    transform = transform or (lambda x: x)
    loop = range(steps)
    if progress:
        from tqdm.auto import tqdm

        loop = tqdm(loop, desc=desc)
    for step in loop:
        if schedule != "constant":
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(schedule, step, steps)
        opt.zero_grad(set_to_none=True)
        x = image.input()
        value = objective(transform(x))
        total, terms = value, {}
        space = penalty_space(x) if penalty_space is not None and penalties else x
        for term, penalty in penalties.items():
            terms[term] = penalty(space)
            total = total - terms[term] if maximize else total + terms[term]
        (-total.sum() if maximize else total.sum()).backward()
        opt.step()
        if project is not None:
            with torch.no_grad():
                project(step)
        history.add(**{name: value}, **terms, objective=total)
        if callback is not None and (step == 0 or (step + 1) % callback_every == 0 or step + 1 == steps):
            callback(step + 1, _pictures(clf, image), history.values())
    x = image.input().detach()
    return OptimizationResult(images=_pictures(clf, image), inputs=x.cpu(), history=history.values())


@torch.no_grad()
def _pictures(clf, image: torch.nn.Module) -> np.ndarray:
    x = image.input()
    return clf.deprocess(x).reshape(x.shape[0], x.shape[2], x.shape[3], 3)


# ------------------------------------------------------------------------------ settings
def check_settings(settings) -> None:
    """Check every field of a settings dataclass against its type, and its field metadata:
    ``Literal`` options, whole numbers (not bool) >= 0, finite numbers >= 0, ``bool``,
    ``None`` where the type allows it; ``metadata={"min": m}`` or ``{"above": m}`` for a
    tighter bound, ``{"hint": text}`` for the fix. Raises ``ValueError`` naming the field."""
    hints = typing.get_type_hints(type(settings))
    for f in fields(settings):
        value, kind = getattr(settings, f.name), hints[f.name]
        options = get_args(kind) if get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
        if value is None and type(None) in options:
            continue
        kind = next(k for k in options if k is not type(None))
        hint = f.metadata.get("hint", "")
        if get_origin(kind) is Literal:
            if value not in get_args(kind):
                choices = " or ".join(repr(c) for c in get_args(kind))
                raise ValueError(f"{f.name} must be {choices}, got {value!r}.")
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{f.name} must be True or False, got {value!r}.")
            continue
        whole = kind is int
        low, strict = f.metadata.get("above", f.metadata.get("min", 0)), "above" in f.metadata
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (not number or (whole and not isinstance(value, int)) or not math.isfinite(value)
                or value < low or (strict and value == low)):
            what = "a whole number" if whole else "a finite number"
            raise ValueError(f"{f.name} must be {what} {'>' if strict else '>='} {low}, "
                             f"got {value!r}.{hint}")
