r"""The data gradient: which pixels the score depends on most.

Simonyan, Vedaldi & Zisserman (2014), section 3. Near an image :math:`I_0` the
class score is, to first order, linear in the image:

.. math:: S_c(I) \approx w^\top I + b, \qquad w = \left.\frac{\partial S_c}{\partial I}\right|_{I_0}

so the magnitude of :math:`w` (the *data gradient*) says how much each pixel
can change the score. Its three colour channels are folded into one saliency
map by taking, at each pixel, the absolute value and then the maximum over
channels:

.. math:: M_{ij} = \max_c \lvert w_{h(i,j,c)} \rvert .

One backward pass gives the map for a whole batch. The same function sends
the backward pass through ReLUs by another rule (``rule="deconvnet"`` or
``"guided"``, see :mod:`lecture_utils.relu_rules`), which gives the
deconvnet and guided backpropagation pictures with the same call.

A target is a class (index or label: the gradient of the raw score S_c), a
:class:`~lecture_utils.targets.Neuron` at a position (the slides' "set the gradient
to zero except for the neuron of interest") or a
:class:`~lecture_utils.targets.Channel` with its reduction (notebook 05 uses
``reduce="max"``: the channel's strongest position in each image). The score comes
from the one scorer, :func:`lecture_utils.targets.score_pass`, that synthesis uses too.

Example::

    clf = lu.load_model()
    x = clf.preprocess(lu.sample_image("coffee"))
    grad = lu.input_gradient(clf, x, "espresso")        # (1, 3, 224, 224)
    saliency = lu.saliency_map(grad)                      # (1, 224, 224)
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Literal, get_args

import torch

from .models import check_input
from .relu_rules import RULES, Rule, relu_rule
from .targets import ClassTarget, resolve_targets, score_pass

__all__ = [
    "TargetNotPredictedWarning", "input_gradient", "saliency_map", "smooth_grad",
    "guided_backprop", "deconvnet", "REDUCTIONS", "SaliencyReduction",
]

SaliencyReduction = Literal["max", "sum", "signed"]  # over the colour channels
REDUCTIONS: tuple[str, ...] = get_args(SaliencyReduction)


class TargetNotPredictedWarning(UserWarning):
    """The class explained is not the class the model predicts for the image."""


def _as_input(clf, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = clf.preprocess(x)
    return check_input(x, clf, finite=True)


def _warn_if_not_predicted(clf, logits: torch.Tensor, targets, stacklevel: int) -> None:
    """One :class:`TargetNotPredictedWarning` per call (naming the first such image), if any
    class target is not the top-1 class of its image."""
    predicted = logits.argmax(dim=1).tolist()
    wrong = [i for i, t in enumerate(targets)
             if isinstance(t, ClassTarget) and predicted[i] != t.index]
    if wrong:
        i = wrong[0]
        others = f" (and {len(wrong) - 1} more images)" if len(wrong) > 1 else ""
        warnings.warn(
            f"Explaining {targets[i].label!r} for image {i}{others}, but the model predicts "
            f"{clf.labels[predicted[i]]!r}: the map shows evidence for a class the model "
            "did not choose (fine for class-specificity comparisons).",
            TargetNotPredictedWarning, stacklevel=stacklevel,
        )


def input_gradient(clf, x, target, rule: Rule = "backprop") -> torch.Tensor:
    """The gradient of each image's target score w.r.t. the input, ``(N, 3, H, W)``.

    ``x``: an input batch ``(N, 3, H, W)`` (or a photograph); ``target``: one
    target for all images or a list with one per image; ``rule``: how the
    backward pass crosses ReLUs (``"backprop"`` is the true gradient). One
    forward and one backward pass for the whole batch.

    This is the slides' *data gradient* (notebook 02 defines it, with the bare autograd call
    first); exercise 02 asks students to write it as ``data_gradient``.
    """
    if rule not in RULES:
        raise ValueError(f"Unknown rule {rule!r}: choose one of {', '.join(RULES)}.")
    x = _as_input(clf, x)
    targets = resolve_targets(clf, target, n=x.shape[0])
    clf.ensure_eval()
    x = x.detach().clone().requires_grad_(True)
    context = contextlib.nullcontext() if rule == "backprop" else relu_rule(clf.net, rule)
    with context, torch.enable_grad():
        logits, scores = score_pass(clf, x, targets)
        if logits is not None:
            _warn_if_not_predicted(clf, logits, targets, stacklevel=3)
        (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad.detach()


def guided_backprop(clf, x, target) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): ``input_gradient(..., rule="guided")``."""
    return input_gradient(clf, x, target, rule="guided")


def deconvnet(clf, x, target) -> torch.Tensor:
    """The deconvnet (Zeiler & Fergus 2014): ``input_gradient(..., rule="deconvnet")``."""
    return input_gradient(clf, x, target, rule="deconvnet")


def saliency_map(grad: torch.Tensor, reduce: SaliencyReduction = "max") -> torch.Tensor:
    """Fold a gradient's colour channels into one map per image.

    ``grad``: ``(N, 3, H, W)`` → ``(N, H, W)``, or ``(3, H, W)`` → ``(H, W)``.
    ``reduce="max"``: max over channels of ``|grad|`` (the paper's M_ij);
    ``"sum"``: sum over channels of ``|grad|``; ``"signed"``: the channel value
    of largest magnitude, with its sign.
    """
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"saliency_map takes a gradient tensor, got {type(grad).__name__}.")
    if grad.dim() not in (3, 4) or grad.shape[-3] != 3:
        raise ValueError(
            f"saliency_map expects a gradient of shape (N, 3, H, W) or (3, H, W), got "
            f"{tuple(grad.shape)}: pass the output of input_gradient, not a map or an image."
        )
    if not bool(torch.isfinite(grad).all()):
        raise ValueError(
            "The gradient holds NaN or infinite values, so its map would too: check the input "
            "it came from (torch.isfinite(x).all()) and the model's output for it."
        )
    if reduce == "max":
        out = grad.abs().amax(dim=-3)
    elif reduce == "sum":
        out = grad.abs().sum(dim=-3)
    elif reduce == "signed":
        index = grad.abs().argmax(dim=-3, keepdim=True)
        out = grad.gather(-3, index).squeeze(-3)
    else:
        raise ValueError(f"Unknown reduce {reduce!r}: choose one of {', '.join(REDUCTIONS)}.")
    return out


def smooth_grad(clf, x, target, noise: float = 0.15, samples: int = 16, rule: Rule = "backprop",
                seed: int = 0, batch_size: int = 8) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the input.

    ``noise`` is the noise's standard deviation as a fraction of each image's
    value range (max − min); ``samples`` copies per image, computed
    ``batch_size`` at a time. ``noise=0`` gives the plain gradient. Returns
    ``(N, 3, H, W)``.
    """
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite fraction >= 0 of the input range, got {noise!r}.")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a whole number >= 1, got {samples!r}.")
    x = _as_input(clf, x)
    targets = resolve_targets(clf, target, n=x.shape[0])
    if any(isinstance(t, ClassTarget) for t in targets):  # warn once, for the clean input
        with torch.no_grad():
            _warn_if_not_predicted(clf, clf(x), targets, stacklevel=3)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(x)
    span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
    for i in range(x.shape[0]):
        done = 0
        while done < samples:
            k = min(batch_size, samples - done)
            eps = torch.randn((k, *x.shape[1:]), generator=generator).to(x.device)
            noisy = x[i : i + 1] + noise * span[i] * eps
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TargetNotPredictedWarning)
                total[i] += input_gradient(clf, noisy, [targets[i]] * k, rule=rule).sum(0)
            done += k
    return total / samples
