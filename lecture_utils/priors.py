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
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["l2", "jitter", "random_scale", "random_rotate", "blur", "clamp_pixels"]


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
