import math

import pytest
import torch

import lecture_utils as lu
from lecture_utils import priors


def test_l2_is_the_sum_of_squares_per_image():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(2, 1, 1, 2).expand(2, 3, 1, 2)
    assert torch.allclose(priors.l2(x), torch.tensor([3 * 5.0, 3 * 25.0]))


def test_jitter_is_a_bounded_wrapping_shift():
    x = torch.arange(3 * 10 * 10, dtype=torch.float32).view(1, 3, 10, 10)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        y = priors.jitter(x, 2, g)
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                  if torch.equal(torch.roll(x, (dy, dx), (2, 3)), y)]
        assert len(shifts) == 1
    assert priors.jitter(x, 0, g) is x
    with pytest.raises(ValueError, match=">= 0"):
        priors.jitter(x, -1, g)


def test_blur_keeps_constants_and_smooths_noise():
    constant = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(priors.blur(constant, 1.0), constant, atol=1e-6)
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    blurred = priors.blur(noise, 1.0)
    assert blurred.shape == noise.shape
    assert blurred.std() < 0.5 * noise.std()
    assert torch.allclose(blurred.mean(), noise.mean(), atol=0.05)
    assert priors.blur(noise, 0) is noise
    with pytest.raises(ValueError, match="sigma"):
        priors.blur(noise, -1.0)


def test_clamp_keeps_pixels_in_unit_range(clf):
    x = torch.randn(2, 3, 8, 8, device=clf.device) * 10
    pixels = clf.denormalize(priors.clamp_pixels(x, clf))
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


def test_rotation_and_scale():
    x = torch.rand(1, 3, 20, 20)
    g = torch.Generator().manual_seed(0)
    assert priors.random_rotate(x, 0, g) is x
    assert priors.random_scale(x, 0, g) is x
    rotated = priors.random_rotate(x, 30, g)
    assert rotated.shape == x.shape and not torch.allclose(rotated, x)
    scaled = priors.random_scale(x, 0.5, g)
    assert 10 <= scaled.shape[-1] <= 30


def test_fourier_image_is_a_valid_picture(clf):
    image = lu.FourierImage(clf, 2, 32, generator=torch.Generator().manual_seed(0))
    pixels = image()
    assert pixels.shape == (2, 3, 32, 32)
    assert 0 < pixels.min() and pixels.max() < 1
    # the 1/f scaling makes low frequencies dominate: neighbouring pixels are correlated
    p = pixels - pixels.mean()
    corr = (p[..., 1:] * p[..., :-1]).mean() / p.pow(2).mean()
    assert corr > 0.3
    assert math.isclose(image.input().mean().item(), clf.normalize(pixels).mean().item(), rel_tol=1e-5)
