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

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from . import priors
from .history import History
from .layers import activations, get_layer
from .models import check_input

__all__ = ["LOGITS", "InversionSettings", "InversionResult", "invert", "code_of", "resolve_layer",
           "suggested_settings"]

LOGITS = "logits"  # the layer name of the network's output (pass None for it too)


@dataclass(frozen=True)
class InversionSettings:
    """Every setting of a reconstruction (λ are weights of the *normalised* priors)."""

    steps: int = 200
    optimizer: str = "adam"  # "adam" or "sgd" (with momentum, as the papers)
    lr: float = 0.1  # step size, in the network's input space
    momentum: float = 0.9  # SGD only
    schedule: str = "cosine"  # "constant", "step" (÷10 for the last quarter), "cosine"
    lambda_alpha: float = 1e-3  # weight of R_α (bounded range)
    lambda_tv: float | None = None  # weight of R_TV (smoothness); None: by depth
    alpha: float = 6.0
    beta: float = 2.0
    jitter: int | None = None  # pixels of random shift per step; None: by depth
    clamp: bool = True  # keep pixels in [0, 1]
    pixel_bound: float | None = None  # clip each pixel's colour norm (0..255 units), None: off
    size: int | None = None  # image size when inverting a code (default: the model's)

    def validated(self) -> InversionSettings:
        for name in ("lr", "lambda_alpha", "lambda_tv", "momentum"):
            value = getattr(self, name)
            if value is None and name == "lambda_tv":
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
        if not isinstance(self.alpha, (int, float)) or not self.alpha > 1:
            raise ValueError(f"alpha must be > 1 (the papers use 6), got {self.alpha!r}.")
        if not isinstance(self.beta, (int, float)) or not self.beta > 0:
            raise ValueError(f"beta must be > 0 (the papers use 2), got {self.beta!r}.")
        for name in ("steps", "jitter"):
            value = getattr(self, name)
            if value is None and name == "jitter":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}.")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}.")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}.")
        if self.schedule not in ("constant", "step", "cosine"):
            raise ValueError(f"schedule must be 'constant', 'step' or 'cosine', got {self.schedule!r}.")
        if self.pixel_bound is not None and not self.pixel_bound > 0:
            raise ValueError(
                f"pixel_bound must be > 0 (pixel units, B = 80) or None, got {self.pixel_bound!r}."
            )
        if self.size is not None and (not isinstance(self.size, int) or self.size < 8):
            raise ValueError(f"size must be a whole number of pixels >= 8 or None, got {self.size!r}.")
        return self


@dataclass
class InversionResult:
    """The outcome of a reconstruction.

    ``images``: ``(N, H, W, 3)`` floats in [0, 1]; ``inputs``: the network inputs
    ``(N, 3, H, W)`` on the CPU; ``layer``: the inverted layer; ``history``: per
    step, the mean over the batch of ``"code"`` (‖Φ(x̃) - Φ0‖²/‖Φ0‖²), ``"alpha"``
    (λ_α R_α), ``"tv"`` (λ_TV R_TV) and ``"objective"`` (their sum);
    ``code_errors``: per image, the final ‖Φ(x*) - Φ0‖/‖Φ0‖; ``initial_code_errors``:
    the same at the starting noise; ``settings``: the settings used.
    """

    images: np.ndarray
    inputs: torch.Tensor
    layer: str
    history: dict[str, list[float]] = field(default_factory=dict)
    code_errors: list[float] = field(default_factory=list)
    initial_code_errors: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        """The first reconstruction, ``(H, W, 3)``."""
        return self.images[0]

    @property
    def code_error(self) -> float:
        """The first image's normalised code error ‖Φ(x*) - Φ0‖/‖Φ0‖."""
        return self.code_errors[0]


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


def _lr_factor(schedule: str, step: int, steps: int) -> float:
    if schedule == "step":
        return 0.1 if step >= 0.75 * steps else 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return 1.0


def _errors(clf, x: torch.Tensor, target: torch.Tensor, layer: str, norms: torch.Tensor) -> list[float]:
    with torch.no_grad():
        diff = (code_of(clf, x, layer) - target).flatten(1).norm(dim=1)
    return [float(e) for e in (diff / norms)]


def invert(
    clf, image_or_code, layer: str | None, *, seed: int = 0,
    callback: Callable[[int, np.ndarray, dict], None] | None = None, callback_every: int = 10,
    progress: bool = True, **settings,
) -> InversionResult:
    """Reconstruct images from the code of ``layer`` (``"logits"`` or None: the class scores).

    ``image_or_code``: a photograph (path, PIL image, ``(H, W, 3)`` array), an input
    tensor ``(N, 3, H, W)``, or a code Φ0 ``(N, ...)`` of that layer. Keyword
    settings: see :class:`InversionSettings`. ``callback(step, images, history)``
    is called after the first step (a live panel's first picture), every ``callback_every``
    steps and at the end, with ``(N, H, W, 3)`` images.
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
    x = noise.requires_grad_(True)  # i.i.d. noise of 10 grey levels around the mean image
    initial = _errors(clf, x.detach(), target, layer, norms)
    if s.optimizer == "adam":
        optimizer = torch.optim.Adam([x], lr=s.lr)
    else:
        optimizer = torch.optim.SGD([x], lr=s.lr, momentum=s.momentum)
    history = History("code", "alpha", "tv", "objective")
    steps = range(s.steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"inverting {layer}")
    for step in steps:
        for group in optimizer.param_groups:
            group["lr"] = s.lr * _lr_factor(s.schedule, step, s.steps)
        optimizer.zero_grad(set_to_none=True)
        code = code_of(clf, priors.jitter(x, s.jitter, generator), layer)
        code_loss = (code - target).flatten(1).pow(2).sum(dim=1) / norms**2
        u = priors.pixel_units(x, clf)
        r_alpha = s.lambda_alpha * priors.alpha_norm(u, s.alpha)
        r_tv = s.lambda_tv * priors.total_variation(u, s.beta)
        objective = code_loss + r_alpha + r_tv
        objective.sum().backward()
        optimizer.step()
        with torch.no_grad():
            if s.pixel_bound is not None:
                x.copy_(priors.clip_pixel_norm(priors.pixel_units(x, clf), s.pixel_bound) * to_input)
            if s.clamp:
                x.copy_(priors.clamp_pixels(x, clf))
        history.add(code=code_loss, alpha=r_alpha, tv=r_tv, objective=objective)
        if callback is not None and (step == 0 or (step + 1) % callback_every == 0 or step + 1 == s.steps):
            callback(step + 1, clf.deprocess(x.detach()).reshape(n, size, size, 3), history.values())
    final = x.detach()
    return InversionResult(
        images=clf.deprocess(final).reshape(n, size, size, 3), inputs=final.cpu(), layer=layer,
        history=history.values(), code_errors=_errors(clf, final, target, layer, norms),
        initial_code_errors=initial, settings=asdict(s),
    )
