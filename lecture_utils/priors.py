"""Image priors: what makes a synthesised image look like a photograph.

Maximising a score over raw pixels finds high-frequency patterns that no
photograph contains. A *prior* steers the optimisation towards natural
images, either as a penalty added to the objective or as an operation on the
image between steps:

* penalties (the λ R(x) term):
  ``l2`` — ‖x‖², the slides' λ‖I‖² (Simonyan et al. 2014);
* operations (the CS231n recipe, and Lucid's "transformation robustness"):
  ``jitter`` — a random shift, so the picture must work wherever it sits;
  ``random_scale`` and ``random_rotate`` — the same for size and angle;
  ``blur`` — a Gaussian blur every few steps, removing high frequencies;
  ``clamp_pixels`` — keep every pixel inside the valid range [0, 1].

All functions take and return ``(N, 3, H, W)`` tensors in the network's input
space and work on any device. Random operations take a ``torch.Generator``
so runs are repeatable.

Priors for reconstruction (Mahendran & Vedaldi, CVPR 2015 and IJCV 2016)
------------------------------------------------------------------------
Write x(v) ∈ R³ for the colour of pixel v = (i, j) of an H × W image. The two
penalties of the papers are

* the **α-norm** (bounded range), default α = 6::

      R_α(x) = 1/(H W) Σ_v ( ‖x(v)‖ / B )^α

* the **total variation** TV^β (few, sharp edges), default β = 2, on the
  image's *height and width* axes (never the channel axis)::

      R_TV(x) = 1/((H-1)(W-1)) Σ_{i<H, j<W}
                ( ‖x(i, j+1) - x(i, j)‖² + ‖x(i+1, j) - x(i, j)‖² )^{β/2} / V^β

``‖·‖`` is the Euclidean norm over the three colour channels. Dividing by
B^α and V^β is the IJCV normalisation λ_α = (1/B)^α, λ_β = (1/V)^β, and
averaging over pixels makes the value independent of the image size, so one
weight means the same at any size and pixel range.

**Units.** The papers work on mean-subtracted pixels in 0..255, where
B = 80 is the typical pixel norm and V = B/6.5 the typical difference of
neighbours. Our networks take normalised inputs x = (p - mean)/std with
pixels p in [0, 1]; :func:`pixel_units` maps them back to the papers' units,
u = 255 (p - mean) = 255 · std · x, and the penalties are computed on u with
``B = PIXEL_RANGE = 80`` and ``V = TV_RANGE = 80/6.5``. So the papers' λ
values transfer to any model, whatever its mean and std.

:func:`clip_pixel_norm` is the hard version of the bounded range: it scales
every pixel whose colour norm exceeds a bound back onto it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "l2", "jitter", "random_scale", "random_rotate", "blur", "clamp_pixels",
    "PIXEL_RANGE", "TV_RANGE", "pixel_units", "alpha_norm", "image_differences", "total_variation",
    "clip_pixel_norm",
]

PIXEL_RANGE = 80.0  # B: typical colour norm of a mean-subtracted pixel in 0..255 (IJCV 2016)
TV_RANGE = PIXEL_RANGE / 6.5  # V = B / 6.5: typical difference of neighbouring pixels


def l2(x: torch.Tensor) -> torch.Tensor:
    """The squared L2 norm of each image, ``(N,)``: sum over channels and pixels of x²."""
    return x.pow(2).flatten(1).sum(dim=1)


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def jitter(x: torch.Tensor, pixels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift the images by a random offset of up to ``pixels`` in each direction (wrapping)."""
    if pixels < 0:
        raise ValueError(f"jitter must be >= 0 pixels, got {pixels}.")
    if pixels == 0:
        return x
    dy, dx = _randint(-pixels, pixels, generator), _randint(-pixels, pixels, generator)
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def random_scale(
    x: torch.Tensor, amount: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Resize by a random factor in ``[1 - amount, 1 + amount]`` (bilinear)."""
    if amount <= 0:
        return x
    factor = 1.0 + (2.0 * torch.rand(1, generator=generator).item() - 1.0) * amount
    size = [max(8, round(s * factor)) for s in x.shape[2:]]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def random_rotate(
    x: torch.Tensor, degrees: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate by a random angle in ``[-degrees, degrees]`` about the centre (edges reflect)."""
    if degrees <= 0:
        return x
    angle = math.radians((2.0 * torch.rand(1, generator=generator).item() - 1.0) * degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = x.new_tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gaussian_kernel(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels, each channel on its own."""
    if sigma < 0 or not math.isfinite(sigma):
        raise ValueError(f"blur sigma must be a finite number >= 0, got {sigma}.")
    if sigma == 0:
        return x
    k = _gaussian_kernel(sigma, x.device, x.dtype)
    c, r = x.shape[1], k.numel() // 2
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def clamp_pixels(x: torch.Tensor, clf) -> torch.Tensor:
    """Clamp an input-space tensor so each pixel lies in [0, 1] once denormalised."""
    low, high = clf.pixel_bounds()
    return torch.max(torch.min(x, high.to(x)), low.to(x))


# -- priors for reconstruction (Mahendran & Vedaldi) ------------------------------------
def pixel_units(x: torch.Tensor, clf) -> torch.Tensor:
    """Network input ``(N, 3, H, W)`` in the papers' units: mean-subtracted pixels in 0..255."""
    return 255.0 * clf.std.to(x) * x


def _check_image(u: torch.Tensor, what: str) -> None:
    if not isinstance(u, torch.Tensor) or u.dim() != 4:
        shape = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
        raise ValueError(f"{what} takes images (N, C, H, W), got {shape}; add a batch axis with x[None].")


def _check_positive(name: str, value: float, minimum: float, rule: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= minimum:
        raise ValueError(f"{name} must be a finite number {rule}, got {value!r}.")


def alpha_norm(u: torch.Tensor, alpha: float = 6.0, bound: float = PIXEL_RANGE) -> torch.Tensor:
    """The normalised α-norm ``(N,)``: the mean over pixels of (‖u(v)‖ / bound)^α.

    ``u``: ``(N, C, H, W)`` (see :func:`pixel_units`); ‖u(v)‖ is the colour norm of
    pixel v. Needs α > 1 (for α ≤ 1 the penalty is not smooth and not a range bound).
    """
    _check_image(u, "alpha_norm")
    _check_positive("alpha", alpha, 1.0, "> 1 (the papers use 6)")
    _check_positive("bound", bound, 0.0, "> 0 (B = 80 for pixels in 0..255)")
    squared = u.pow(2).sum(dim=1) / bound**2  # (N, H, W): (‖u(v)‖/B)²
    # (s + tiny)^(α/2) keeps the gradient finite at 0 for any α > 1
    return (squared + 1e-12).pow(alpha / 2).flatten(1).mean(dim=1)


def image_differences(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along width and height, each ``(N, C, H-1, W-1)``: (d_x, d_y).

    d_x = u(i, j+1) - u(i, j) (across a vertical edge); d_y = u(i+1, j) - u(i, j).
    Axes 2 and 3 are height and width; the channel axis 1 is never differenced.
    """
    _check_image(u, "image_differences")
    if u.shape[2] < 2 or u.shape[3] < 2:
        raise ValueError(f"Total variation needs at least 2x2 pixels, got {tuple(u.shape[2:])}.")
    base = u[:, :, :-1, :-1]
    return u[:, :, :-1, 1:] - base, u[:, :, 1:, :-1] - base


def total_variation(u: torch.Tensor, beta: float = 2.0, scale: float = TV_RANGE) -> torch.Tensor:
    """The normalised TV^β ``(N,)``: mean over pixels of (‖d_x‖² + ‖d_y‖²)^{β/2} / scale^β.

    ``u``: ``(N, C, H, W)``; see :func:`image_differences`. Needs β > 0; β = 1 is
    the classical total variation, β = 2 (the default) penalises every edge
    smoothly, β < 1 allows a few sharp edges.
    """
    _check_positive("beta", beta, 0.0, "> 0 (the papers use 2)")
    _check_positive("scale", scale, 0.0, "> 0 (V = B/6.5 for pixels in 0..255)")
    dx, dy = image_differences(u)
    squared = (dx.pow(2) + dy.pow(2)).sum(dim=1) / scale**2  # (N, H-1, W-1)
    if beta == 2:
        return squared.flatten(1).mean(dim=1)
    return (squared + 1e-12).pow(beta / 2).flatten(1).mean(dim=1)


def clip_pixel_norm(u: torch.Tensor, bound: float) -> torch.Tensor:
    """Scale each pixel whose colour norm exceeds ``bound`` back onto it, ``(N, C, H, W)``."""
    _check_image(u, "clip_pixel_norm")
    _check_positive("bound", bound, 0.0, "> 0")
    norm = u.pow(2).sum(dim=1, keepdim=True).sqrt()
    return u * (bound / norm.clamp_min(bound))
