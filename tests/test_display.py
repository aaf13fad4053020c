import io

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import lecture_utils as lu

matplotlib.use("Agg")


def test_normalize_gradient_clips_at_the_percentile():
    grad = np.linspace(-1, 1, 101)[None, :].repeat(3, axis=0)  # (3, 101): an (H, W) map
    out = lu.normalize_gradient(grad, percentile=50)
    assert out.shape == grad.shape and out.min() == 0.0 and out.max() == 1.0
    assert np.mean(out == 1.0) == pytest.approx(0.5, abs=0.03)  # the upper half saturates
    signed = lu.normalize_gradient(grad, percentile=100, signed=True)
    assert signed[0, 50] == pytest.approx(0.5) and signed[0, 0] == 0.0 and signed[0, -1] == 1.0


def test_normalize_gradient_moves_channels_last_and_handles_zeros():
    grad = torch.zeros(1, 3, 4, 5)
    out = lu.normalize_gradient(grad)
    assert out.shape == (4, 5, 3) and np.all(out == 0)
    with pytest.raises(ValueError, match="percentile"):
        lu.normalize_gradient(grad, percentile=0)


def test_to_png_round_trips():
    image = np.random.default_rng(0).random((6, 7, 3))
    decoded = np.asarray(Image.open(io.BytesIO(lu.to_png(image))))
    assert decoded.shape == (6, 7, 3)
    assert np.abs(decoded / 255.0 - image).max() <= 0.5 / 255 + 1e-9


def test_show_grid_makes_one_axis_per_image():
    fig = lu.show_grid([np.zeros((4, 4, 3))] * 3, titles=["a", "b", "c"], ncols=2)
    visible = [ax for ax in fig.axes if ax.images]
    assert len(visible) == 3 and visible[2].get_title() == "c"
    with pytest.raises(ValueError, match="at least one"):
        lu.show_grid([])


def test_show_refuses_a_batch():
    with pytest.raises(ValueError, match="show_grid"):
        lu.show(torch.zeros(2, 3, 4, 4))
