import numpy as np
import pytest
import torch
from PIL import Image

import lecture_utils as lu


@pytest.mark.parametrize("name", lu.SAMPLE_NAMES)
def test_samples_are_rgb_uint8(name):
    image = lu.sample_image(name)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[0] >= 200 and image.shape[1] >= 200


def test_unknown_sample_lists_the_names():
    with pytest.raises(ValueError, match="chelsea"):
        lu.sample_image("lena")


def test_greyscale_is_repeated_over_channels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = lu.load_image(grey)
    assert rgb.shape == (3, 4, 3)
    assert all(np.array_equal(rgb[:, :, c], grey) for c in range(3))


def test_rgba_is_composited_over_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[1, 1] = (0, 0, 0, 0)  # fully transparent black
    rgb = lu.load_image(rgba)
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[1, 1]) == (255, 255, 255)


def test_float_image_in_unit_range_becomes_uint8():
    image = np.full((4, 4, 3), 0.5)
    assert lu.load_image(image).dtype == np.uint8
    assert lu.load_image(image)[0, 0, 0] == 128


def test_pil_and_path(tmp_path):
    array = (np.random.default_rng(0).random((8, 9, 3)) * 255).astype(np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(array).save(path)
    assert np.array_equal(lu.load_image(path), array)
    assert np.array_equal(lu.load_image(Image.fromarray(array).convert("RGBA")), array)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 8, 8), dtype=np.uint8), "channels-first"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), "batch"),
        (np.zeros((8, 8, 5), dtype=np.uint8), r"\(H, W, 3\)"),
        (np.full((4, 4, 3), 2.0), "Divide by 255"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.full((4, 4, 3), 300, dtype=np.int32), "0..255"),
        (np.zeros((4, 4, 3), dtype=np.complex64), "dtype"),
    ],
)
def test_bad_arrays_are_refused_with_a_fix(bad, match):
    with pytest.raises(ValueError, match=match):
        lu.load_image(bad)


def test_tensors_and_other_objects_are_refused():
    with pytest.raises(TypeError, match="deprocess"):
        lu.load_image(torch.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="file path"):
        lu.load_image(42)
    with pytest.raises(FileNotFoundError):
        lu.load_image("/no/such/image.png")
