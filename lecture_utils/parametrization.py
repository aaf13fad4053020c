"""How a synthesised image is parametrised: raw pixels, or a decorrelated Fourier spectrum.

The slides optimise the pixels directly, starting from zeros (the mean
image). Every pixel is then a free parameter, and gradient ascent happily
builds high-frequency patterns that fool this network and no other.

Lucid (Olah et al. 2017, "Feature Visualization") changes the variables
instead: the image is the inverse FFT of a spectrum scaled by 1/f, so low
frequencies are cheap and high ones expensive; its colours are mixed through
the square root of ImageNet's colour covariance, so the optimiser works on
decorrelated colours; and a sigmoid keeps every pixel in [0, 1]. Same
objective, same optimiser, a much more natural picture.

Each parametrisation is a ``torch.nn.Module`` whose ``forward()`` returns pixels
in [0, 1], ``(N, 3, H, W)``; the synthesis loop normalises them for the network.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PixelImage", "FourierImage", "make_image"]

# Square root of ImageNet's colour covariance (from Lucid), columns normalised below.
_COLOR_CORRELATION_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
)


class PixelImage(nn.Module):
    """Pixels as free parameters, starting at ``init`` (default: the mean image, i.e. zeros
    in the network's normalised input space)."""

    def __init__(self, clf, n: int, size: int, init: torch.Tensor | None = None) -> None:
        super().__init__()
        self.clf = clf
        if init is None:
            init = torch.zeros(n, 3, size, size, device=clf.device)  # zeros = the mean image
        self.x = nn.Parameter(init.detach().clone().to(clf.device))

    def input(self) -> torch.Tensor:
        """The network input ``(N, 3, H, W)`` (normalised space)."""
        return self.x

    def forward(self) -> torch.Tensor:
        return self.clf.denormalize(self.x)


class FourierImage(nn.Module):
    """Lucid's image parametrisation: 1/f-scaled Fourier spectrum, decorrelated colour, sigmoid."""

    def __init__(
        self, clf, n: int, size: int, generator: torch.Generator | None = None,
        sd: float = 0.01, decay_power: float = 1.0,
    ) -> None:
        super().__init__()
        self.clf = clf
        self.size = size
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        freqs = torch.sqrt(fx**2 + fy**2)
        scale = 1.0 / freqs.clamp(min=1.0 / size) ** decay_power
        self.register_buffer("scale", scale.to(clf.device))
        spectrum = torch.randn(n, 3, size, size // 2 + 1, 2, generator=generator) * sd
        self.spectrum = nn.Parameter(spectrum.to(clf.device))
        color = _COLOR_CORRELATION_SQRT / _COLOR_CORRELATION_SQRT.norm(dim=0).max()
        self.register_buffer("color", color.to(clf.device))

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        image = torch.einsum("nchw,dc->ndhw", image, self.color)
        return torch.sigmoid(image)

    def input(self) -> torch.Tensor:
        return self.clf.normalize(self())


def make_image(kind: str, clf, n: int, size: int, generator=None) -> PixelImage | FourierImage:
    """A parametrised batch of ``n`` images of ``size`` x ``size``: ``"pixel"`` or ``"fourier"``."""
    if kind == "pixel":
        return PixelImage(clf, n, size)
    if kind == "fourier":
        return FourierImage(clf, n, size, generator=generator)
    raise ValueError(f"Unknown parametrization {kind!r}: use 'pixel' or 'fourier'.")
