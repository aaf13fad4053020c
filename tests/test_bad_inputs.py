"""Bad input gets an error that names the problem and the fix, never a crash deep inside a
library (MKL, torch.stack, PIL) and never a silent NaN picture. One test per case that a
person tried (issue 15, item 5), on the tiny linear classifier where the model does not matter.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lecture_utils as lu
from lecture_utils.models import check_input


@pytest.mark.parametrize("call", [lu.visualize_class, lu.visualize_neuron])
def test_an_empty_list_of_targets(linear_clf, call):
    with pytest.raises(ValueError, match="empty list of targets.*Give a class"):
        call(linear_clf, [], steps=2, progress=False)


def test_an_empty_list_of_targets_for_a_gradient(linear_clf):
    with pytest.raises(ValueError, match="empty list of targets"):
        lu.input_gradient(linear_clf, torch.zeros(1, 3, 8, 8), [])


@pytest.mark.parametrize("call", [
    lambda clf, x: lu.input_gradient(clf, x, 1),
    lambda clf, x: lu.smooth_grad(clf, x, 1, samples=2),
    lambda clf, x: clf.predict(x),
    lambda clf, x: clf(x),
])
def test_an_empty_batch(linear_clf, call):
    with pytest.raises(ValueError, match=r"empty batch \(0, 3, 8, 8\).*at least one image"):
        call(linear_clf, torch.zeros(0, 3, 8, 8))


def test_an_input_without_pixels():
    with pytest.raises(ValueError, match="no pixels"):
        check_input(torch.zeros(1, 3, 0, 8))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_an_input_with_nan_or_inf_names_the_images(linear_clf, bad):
    x = torch.zeros(3, 3, 8, 8)
    x[2, 1, 4, 4] = bad
    for call in (lambda: lu.input_gradient(linear_clf, x, 1), lambda: linear_clf.predict(x)):
        with pytest.raises(ValueError, match=r"NaN or infinite values \(image\(s\) \[2\]\)"):
            call()


def test_a_nan_gradient_gives_no_map():
    grad = torch.zeros(1, 3, 4, 4)
    grad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="gradient holds NaN"):
        lu.saliency_map(grad)


@pytest.mark.parametrize("size", [0, -1, 7, 2.5, True])
def test_a_synthesis_size_that_is_not_a_picture(linear_clf, size):
    with pytest.raises(ValueError, match="size must be .*Give a whole number of pixels >= 8"):
        lu.visualize_class(linear_clf, 1, "plain", steps=1, size=size, progress=False)


@pytest.mark.parametrize("name, value", [("steps", True), ("jitter", False), ("lr", True)])
def test_bool_is_not_a_number_of_steps_or_a_step_size(linear_clf, name, value):
    with pytest.raises(ValueError, match=name):
        lu.visualize_class(linear_clf, 1, "plain", progress=False, **{name: value})


@pytest.mark.parametrize("content, match", [
    (b"", "is empty \\(0 bytes\\)"),
    (b"hello, this is text", "is not an image that can be read.*PNG or JPEG"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not an image that can be read"),  # cut short
])
def test_a_file_named_jpg_that_is_not_an_image(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        lu.load_image(path)
    assert "photo.jpg" in str(err.value)  # the message names the file


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5), (5, 0, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_an_array_without_pixels(shape, dtype):
    with pytest.raises(ValueError, match="no pixels"):
        lu.load_image(np.zeros(shape, dtype))


def test_a_float_image_with_nan_says_how_to_fix_it():
    with pytest.raises(ValueError, match="nan_to_num"):
        lu.load_image(np.full((4, 4, 3), np.nan, np.float32))


def test_invert_a_nan_code_or_image(clf):
    code = lu.code_of(clf, torch.zeros(1, 3, 64, 64), "blocks.1")
    code[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite values.*lu.code_of"):
        lu.invert(clf, code, "blocks.1", size=64, steps=1, progress=False)
    image = torch.full((1, 3, 64, 64), float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite values"):
        lu.invert(clf, image, "blocks.1", steps=1, progress=False)
