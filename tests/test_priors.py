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


# -- priors for reconstruction: α-norm and total variation (Mahendran & Vedaldi) ---------
def test_pixel_units_are_mean_subtracted_0_to_255(clf):
    x = clf.normalize(torch.ones(1, 3, 2, 2, device=clf.device))  # white
    assert torch.allclose(priors.pixel_units(x, clf), 255 * (1 - clf.mean), atol=1e-4)


def test_total_variation_of_a_constant_image_is_zero():
    constant = torch.full((2, 3, 9, 7), 40.0)
    assert torch.allclose(priors.total_variation(constant), torch.zeros(2))
    # a different constant per channel: still no edge (the channel axis is never differenced)
    per_channel = torch.tensor([0.0, 50.0, -90.0]).view(1, 3, 1, 1).expand(1, 3, 9, 7)
    assert torch.allclose(priors.total_variation(per_channel), torch.zeros(1), atol=1e-6)
    assert torch.allclose(priors.total_variation(per_channel, beta=1.0), torch.zeros(1), atol=1e-5)


def test_total_variation_of_a_vertical_step_edge():
    h, w, a, b = 6, 10, 10.0, 30.0
    u = torch.full((1, 3, h, w), a)
    u[..., w // 2:] = b  # a vertical edge: the value changes along the width only
    dx, dy = priors.image_differences(u)
    assert torch.count_nonzero(dy) == 0  # no term across rows
    assert torch.count_nonzero(dx) == 3 * (h - 1)  # one column of the (H-1) x (W-1) grid
    v = priors.TV_RANGE
    expected = 3 * (b - a) ** 2 / v**2 / (w - 1)  # (H-1) edge pixels among (H-1)(W-1)
    assert torch.allclose(priors.total_variation(u), torch.tensor([expected]))
    expected_beta1 = math.sqrt(3) * (b - a) / v / (w - 1)
    assert torch.allclose(priors.total_variation(u, beta=1.0), torch.tensor([expected_beta1]), rtol=1e-5)
    # the same edge turned horizontal gives the same value (height and width treated alike)
    t = u.transpose(2, 3)
    assert torch.allclose(priors.total_variation(t), torch.tensor([3 * (b - a) ** 2 / v**2 / (w - 1)]))


def test_alpha_norm_of_a_known_tensor():
    u = torch.zeros(1, 3, 2, 2)
    u[0, :2, 0, 0] = torch.tensor([30.0, 40.0])  # colour norm 50
    u[0, :2, 1, 1] = torch.tensor([60.0, 80.0])  # colour norm 100
    value = priors.alpha_norm(u, alpha=6, bound=50.0)
    assert torch.allclose(value, torch.tensor([(1 + 2**6) / 4]), rtol=1e-5)
    assert torch.allclose(priors.alpha_norm(u, alpha=2, bound=50.0), torch.tensor([(1 + 4) / 4]), rtol=1e-5)


@pytest.mark.parametrize("alpha", [2.0, 6.0])
def test_alpha_norm_gradient_matches_finite_differences(alpha):
    u = (torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 60).double()
    assert torch.autograd.gradcheck(lambda t: priors.alpha_norm(t, alpha), (u.requires_grad_(),))


@pytest.mark.parametrize("beta", [1.5, 2.0])
def test_total_variation_gradient_matches_finite_differences(beta):
    u = (torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(1)) * 20).double()
    assert torch.autograd.gradcheck(lambda t: priors.total_variation(t, beta), (u.requires_grad_(),))


def test_clip_pixel_norm_bounds_each_pixel_and_keeps_small_ones():
    u = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0)) * 100
    clipped = priors.clip_pixel_norm(u, 80.0)
    norms = clipped.pow(2).sum(dim=1).sqrt()
    assert norms.max() <= 80.0 + 1e-3
    small = u.pow(2).sum(dim=1, keepdim=True).sqrt() <= 80.0
    assert torch.equal(torch.where(small, clipped, u), u)


@pytest.mark.parametrize("call, match", [
    (lambda u: priors.alpha_norm(u, alpha=1.0), "alpha must be"),
    (lambda u: priors.alpha_norm(u, alpha=0.5), "alpha must be"),
    (lambda u: priors.total_variation(u, beta=0.0), "beta must be"),
    (lambda u: priors.total_variation(u, beta=-1.0), "beta must be"),
    (lambda u: priors.total_variation(u[0]), "batch axis"),
    (lambda u: priors.clip_pixel_norm(u, 0.0), "bound must be"),
])
def test_bad_prior_settings_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.ones(1, 3, 4, 4))
