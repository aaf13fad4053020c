"""Reconstruction from a CNN code: which images does a layer map to a given code?

The slides: *given a CNN code (the latent representation of a layer), is it
possible to reconstruct the original image?* Yes, by optimisation
(Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting
Them", CVPR 2015; "Visualizing deep convolutional neural networks using
natural pre-images", IJCV 2016)::

    x* = argmin_x  ‖Φ(x) - Φ0‖² / ‖Φ0‖²  +  λ_α R_α(x)  +  λ_TV R_TV(x)

* Φ(x) is the code of layer ``layer`` (any named layer, the last pooling layer
  ``"global_pool"``, or ``"logits"``: the class scores, the slides' "1000 log
  probabilities" up to a constant); Φ0 the code to invert.
* Dividing by ‖Φ0‖² makes the loss 1 for an image whose code is 0, and comparable across
  layers (the papers' loss weight C/‖Φ0‖² with C = 1; a larger C is a smaller λ).
* R_α and R_TV are the normalised α-norm and total variation of
  :mod:`lecture_utils.priors`, computed on mean-subtracted pixels in 0..255
  with B = 80 and V = B/6.5, so one λ means the same at any size and for any
  model's input normalisation.
* **Jitter** (IJCV): at every step Φ sees the image shifted by up to
  ``jitter`` pixels, x̃ = τ(x), so the reconstruction cannot rely on the exact
  pixel grid.
* λ_TV and the jitter default to values that grow with the depth of the layer
  (:func:`suggested_settings`): a deep code says little about single pixels,
  so the prior must say more (the papers tune their constant C per layer).
* Optimiser: ``"sgd"`` with momentum 0.9 (the papers) or ``"adam"`` (the
  default: robust with one step size for every layer), and a step-size
  schedule (``"constant"``, ``"step"``: ÷10 for the last quarter, ``"cosine"``).
  After each step the pixels are clamped to the valid range (``clamp``) and,
  optionally, each pixel's colour norm to ``pixel_bound`` (pixel units).

The result reports the **normalised code error** ‖Φ(x*) - Φ0‖ / ‖Φ0‖ (no
jitter): how well the reconstruction reproduces the code. Example::

    result = lu.invert(clf, lu.sample_image("chelsea"), "blocks.3")
    lu.show(result.image, f"error {result.code_error:.2f}")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from . import priors
from .layers import activations, get_layer
from .models import check_input
from .optimize import (
    OptimizationResult,
    OptimizerName,
    Schedule,
    check_settings,
    optimize_image,
)
from .parametrization import PixelImage

__all__ = ["LOGITS", "InversionSettings", "invert", "code_of", "resolve_layer", "suggested_settings"]

LOGITS = "logits"  # the layer name of the network's output (pass None for it too)


@dataclass(frozen=True)
class InversionSettings:
    """Every setting of a reconstruction (λ are weights of the *normalised* priors)."""

    steps: int = field(default=200, metadata={"min": 1})
    optimizer: OptimizerName = "adam"  # "adam" or "sgd" (with momentum, as the papers)
    lr: float = 0.1  # step size, in the network's input space
    momentum: float = 0.9  # SGD only
    schedule: Schedule = "cosine"  # "constant", "step" (÷10 for the last quarter), "cosine"
    lambda_alpha: float = 1e-3  # weight of R_α (bounded range)
    lambda_tv: float | None = None  # weight of R_TV (smoothness); None: by depth
    alpha: float = field(default=6.0, metadata={"above": 1, "hint": " The papers use 6."})
    beta: float = field(default=2.0, metadata={"above": 0, "hint": " The papers use 2."})
    jitter: int | None = None  # pixels of random shift per step; None: by depth
    clamp: bool = True  # keep pixels in [0, 1]
    pixel_bound: float | None = field(default=None, metadata={  # colour norm bound, 0..255 units
        "above": 0, "hint": " Pixel units (the papers' B = 80), or None for no bound."})
    size: int | None = field(default=None, metadata={  # image size when inverting a code
        "min": 8, "hint": " Give a whole number of pixels >= 8, or None for the model's input size."})

    def validated(self) -> InversionSettings:
        check_settings(self)
        if self.optimizer == "adam" and self.momentum != InversionSettings.momentum:
            raise ValueError(
                f"momentum={self.momentum} applies to optimizer='sgd' only; Adam keeps its own "
                "running averages and would ignore it. Pass optimizer='sgd' or leave momentum out."
            )
        return self


def resolve_layer(clf, layer: str | None) -> str:
    """The layer's name, ``LOGITS`` for ``None``/``"logits"``; unknown names list close ones."""
    if layer is None or layer == LOGITS:
        return LOGITS
    try:
        get_layer(clf.net, layer)
    except KeyError as err:
        raise KeyError(f"{err.args[0]} Use {LOGITS!r} (or None) for the class scores.") from None
    return layer


def code_of(clf, x: torch.Tensor, layer: str | None) -> torch.Tensor:
    """The code Φ(x) of ``layer`` for inputs ``(N, 3, H, W)``: ``(N, ...)``.

    Only the layers up to ``layer`` run, except for ``"logits"`` (the full network).
    """
    layer = resolve_layer(clf, layer)
    x = check_input(x, clf)
    if layer == LOGITS:
        return clf.net(x)
    return activations(clf.net, x, [layer])[1][layer]


# (largest stride, λ_TV, jitter): the deeper the code, the less it says about the pixels,
# so the prior has to say more (the papers' per-layer constant C plays the same role)
_BY_STRIDE = ((4, 0.01, 0), (16, 0.05, 1), (None, 0.3, 4))


def suggested_settings(clf, layer: str | None, size: int | None = None) -> dict:
    """Defaults for ``layer``: ``{"lambda_tv", "jitter"}``, larger for deeper (coarser) codes.

    The stride is the image size over the code's width; pooled codes and the
    logits count as the deepest.
    """
    layer = resolve_layer(clf, layer)
    size = size or clf.input_size
    with torch.no_grad():
        shape = code_of(clf, torch.zeros(1, 3, size, size, device=clf.device), layer).shape
    return _by_depth(shape, size)


def _by_depth(code_shape: tuple[int, ...], size: int) -> dict:
    """:func:`suggested_settings` from the shape of a code ``(N, ...)`` of a ``size`` px image."""
    stride = size / code_shape[-1] if len(code_shape) == 4 else float("inf")
    for largest, lambda_tv, jitter in _BY_STRIDE:
        if largest is None or stride <= largest:
            return {"lambda_tv": lambda_tv, "jitter": jitter}
    raise AssertionError("unreachable")


def _target_code(clf, image_or_code, layer: str, size: int) -> tuple[torch.Tensor, int]:
    """Φ0 ``(N, ...)`` and the image size, from a photograph, an input tensor or a code."""
    if not isinstance(image_or_code, torch.Tensor):  # a photograph: path, PIL image or array
        x = clf.preprocess(image_or_code)
        with torch.no_grad():
            return code_of(clf, x, layer).detach(), x.shape[-1]
    t = image_or_code.detach().to(clf.device).float()
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"The code or image passed to invert holds NaN or infinite values, shape "
            f"{tuple(t.shape)}: nothing can be reconstructed from it. Compute the code again "
            f"with lu.code_of(clf, x, {layer!r}) from a finite input, or pass the image itself."
        )
    with torch.no_grad():
        expected = tuple(code_of(clf, torch.zeros(1, 3, size, size, device=clf.device), layer).shape[1:])
    if tuple(t.shape[1:]) == expected:
        return t, size
    if tuple(t.shape) == expected:  # one code without its batch axis
        return t[None], size
    if t.dim() in (3, 4) and t.shape[-3] == 3:  # an input image
        x = check_input(t, clf, finite=True)
        with torch.no_grad():
            return code_of(clf, x, layer).detach(), x.shape[-1]
    raise ValueError(
        f"A code of layer {layer!r} at {size}x{size} pixels has shape (N, {', '.join(map(str, expected))}), "
        f"got {tuple(t.shape)}. Compute it with lu.code_of(clf, x, {layer!r}), pass the image "
        "itself, or set size= to the size of the image it came from."
    )


def _errors(clf, x: torch.Tensor, target: torch.Tensor, layer: str, norms: torch.Tensor) -> list[float]:
    with torch.no_grad():
        diff = (code_of(clf, x, layer) - target).flatten(1).norm(dim=1)
    return [float(e) for e in (diff / norms)]


def invert(
    clf, image_or_code, layer: str | None, *, seed: int = 0,
    callback: Callable[[int, np.ndarray, dict], None] | None = None, callback_every: int = 10,
    progress: bool = True, **settings,
) -> OptimizationResult:
    """Reconstruct images from the code of ``layer`` (``"logits"`` or None: the class scores).

    ``image_or_code``: a photograph (path, PIL image, ``(H, W, 3)`` array), an input
    tensor ``(N, 3, H, W)``, or a code Φ0 ``(N, ...)`` of that layer. Keyword
    settings: see :class:`InversionSettings`. The loop is
    :func:`lecture_utils.optimize.optimize_image` (see it for ``callback``), minimising the
    normalised code loss plus the two priors. Notebook 04 defines the idea; exercise 04 asks
    students to write a TV-only version as ``reconstruct``.
    """
    unknown = set(settings) - set(InversionSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(
            f"Unknown setting(s) {', '.join(sorted(unknown))}; valid: "
            f"{', '.join(InversionSettings.__dataclass_fields__)}."
        )
    s = replace(InversionSettings(), **settings).validated()
    layer = resolve_layer(clf, layer)
    clf.ensure_eval()
    target, size = _target_code(clf, image_or_code, layer, s.size or clf.input_size)
    if s.lambda_tv is None or s.jitter is None:
        by_depth = _by_depth(tuple(target.shape), size)
        s = replace(s, lambda_tv=by_depth["lambda_tv"] if s.lambda_tv is None else s.lambda_tv,
                    jitter=by_depth["jitter"] if s.jitter is None else s.jitter)
    norms = target.flatten(1).norm(dim=1)
    if not (norms > 0).all():
        raise ValueError(
            f"The code of layer {layer!r} is zero (‖Φ0‖ = 0) for image(s) "
            f"{[i for i, n in enumerate(norms.tolist()) if n == 0]}: the loss "
            "‖Φ(x) - Φ0‖²/‖Φ0‖² cannot be normalised, and every image whose code is 0 "
            "(e.g. all units switched off) reconstructs it equally well. Pick another layer or image."
        )
    generator = torch.Generator().manual_seed(seed)
    n = target.shape[0]
    to_input = 1.0 / (255.0 * clf.std)  # pixel units -> input space
    noise = torch.randn(n, 3, size, size, generator=generator).to(clf.device) * 10.0 * to_input
    image = PixelImage(clf, n, size, init=noise)  # i.i.d. noise of 10 grey levels around the mean
    initial = _errors(clf, image.x.detach(), target, layer, norms)

    def code_loss(x: torch.Tensor) -> torch.Tensor:  # ‖Φ(x̃) - Φ0‖² / ‖Φ0‖²
        return (code_of(clf, x, layer) - target).flatten(1).pow(2).sum(dim=1) / norms**2

    def project(_step: int) -> None:
        x = image.x
        if s.pixel_bound is not None:
            x.copy_(priors.clip_pixel_norm(priors.pixel_units(x, clf), s.pixel_bound) * to_input)
        if s.clamp:
            x.copy_(priors.clamp_pixels(x, clf))

    result = optimize_image(
        clf, image, code_loss, name="code", maximize=False, steps=s.steps, lr=s.lr,
        optimizer=s.optimizer, momentum=s.momentum, schedule=s.schedule,
        transform=lambda x: priors.jitter(x, s.jitter, generator),
        penalties={  # on mean-subtracted pixels in 0..255
            "alpha": lambda u: s.lambda_alpha * priors.alpha_norm(u, s.alpha),
            "tv": lambda u: s.lambda_tv * priors.total_variation(u, s.beta),
        },
        penalty_space=lambda x: priors.pixel_units(x, clf),
        project=project, callback=callback, callback_every=callback_every, progress=progress,
        desc=f"inverting {layer}",
    )
    final = image.x.detach()
    return replace(result, layer=layer, code_errors=_errors(clf, final, target, layer, norms),
                   initial_code_errors=initial, settings=asdict(s))
