"""Tests for lecture_utils.localization: saliency -> GrabCut seeds -> mask -> box."""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest

from lecture_utils import localization
from lecture_utils.localization import (
    GrabCutResult,
    box_iou,
    grabcut_from_saliency,
    largest_component,
    mask_iou,
    mask_to_box,
)

H, W = 160, 200
CY, CX, R = 55, 130, 30  # red disc, off-centre (upper right)


def _disc_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 image of a red disc on a textured blue-green background,
    an (H, W) saliency blob on the disc plus noise, and the (H, W) bool disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - CY) ** 2 + (xx - CX) ** 2 <= R**2
    background = np.stack(
        [
            40 + 30 * np.sin(xx / 5),
            120 + 60 * np.sin(yy / 7) * np.cos(xx / 9),
            180 + 40 * np.cos(yy / 4),
        ],
        axis=-1,
    )
    image = np.where(disc[..., None], [210.0, 30.0, 30.0], background)
    image = np.clip(image + rng.normal(0, 8, (H, W, 3)), 0, 255).astype(np.uint8)
    saliency = np.exp(-((yy - CY) ** 2 + (xx - CX) ** 2) / (2 * 15.0**2))
    saliency = saliency + 0.02 * rng.random((H, W))
    return image, saliency, disc


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _disc_scene()


@pytest.fixture(scope="module")
def result(scene) -> GrabCutResult:
    image, saliency, _ = scene
    return grabcut_from_saliency(image, saliency)


# --- the recipe on a synthetic scene -------------------------------------------------------


def test_finds_the_disc(scene, result):
    _, _, disc = scene
    assert result.mask.shape == (H, W) and result.mask.dtype == bool
    assert mask_iou(result.mask, disc) >= 0.9
    assert box_iou(result.box, mask_to_box(disc)) >= 0.9
    assert result.area == int(result.mask.sum())


def test_box_is_the_mask_box_and_exclusive(result):
    x0, y0, x1, y1 = result.box
    assert all(isinstance(v, int) for v in result.box)
    inside = np.zeros((H, W), bool)
    inside[y0:y1, x0:x1] = True
    assert result.mask[inside].sum() == result.area  # every mask pixel is in the box
    # each edge row/column of the box touches the mask (tight box)
    assert result.mask[y0, x0:x1].any() and result.mask[y1 - 1, x0:x1].any()
    assert result.mask[y0:y1, x0].any() and result.mask[y0:y1, x1 - 1].any()
    assert result.box_area == (x1 - x0) * (y1 - y0)


@pytest.mark.parametrize("fg_q, bg_q", [(0.95, 0.30), (0.9, 0.5), (0.8, 0.1)])
def test_quantile_semantics(scene, fg_q, bg_q):
    image, saliency, _ = scene
    res = grabcut_from_saliency(image, saliency, fg_quantile=fg_q, bg_quantile=bg_q, iterations=1)
    n = H * W
    assert res.seeds.dtype == np.uint8 and res.seeds.shape == (H, W)
    assert abs((res.seeds == cv2.GC_FGD).sum() / n - (1 - fg_q)) < 2 / 1000 + 1 / n
    assert abs((res.seeds == cv2.GC_BGD).sum() / n - bg_q) < 2 / 1000 + 1 / n
    # the rest start as probable background, none as probable foreground
    assert (res.seeds == cv2.GC_PR_BGD).sum() / n == pytest.approx(fg_q - bg_q, abs=0.003)
    assert not (res.seeds == cv2.GC_PR_FGD).any()
    # foreground seeds are the most salient pixels, background seeds the least
    assert saliency[res.seeds == cv2.GC_FGD].min() > saliency[res.seeds != cv2.GC_FGD].max()
    assert saliency[res.seeds == cv2.GC_BGD].max() < saliency[res.seeds != cv2.GC_BGD].min()
    s = res.settings
    assert (s["fg_quantile"], s["bg_quantile"], s["iterations"]) == (fg_q, bg_q, 1)
    assert s["fg_threshold"] == pytest.approx(np.quantile(saliency, fg_q))
    assert s["bg_threshold"] == pytest.approx(np.quantile(saliency, bg_q))
    assert sum(res.seed_fractions.values()) == pytest.approx(1.0)


def test_seeds_are_hard_constraints(result):
    assert result.segmentation is not None
    assert result.segmentation[result.seeds == cv2.GC_FGD].all()
    assert not result.segmentation[result.seeds == cv2.GC_BGD].any()
    assert not (result.mask & ~result.segmentation).any()  # the mask is part of the segmentation


def test_unlabelled_probable_foreground(scene):
    image, saliency, disc = scene
    res = grabcut_from_saliency(image, saliency, unlabelled="probable_foreground")
    assert (res.seeds == cv2.GC_PR_FGD).any() and not (res.seeds == cv2.GC_PR_BGD).any()
    assert mask_iou(res.mask, disc) >= 0.9


def test_smoothing_removes_background_seeds_inside_the_object(scene):
    image, _, disc = scene
    rng = np.random.default_rng(3)
    speckled = np.where(disc, 1.0, 0.3) * rng.random((H, W))  # pixel noise, brighter on the disc
    raw = grabcut_from_saliency(image, speckled)
    assert (raw.seeds[disc] == cv2.GC_BGD).sum() > 100  # the object is dotted with bg seeds
    res = grabcut_from_saliency(image, speckled, smooth_sigma=3)
    assert (res.seeds[disc] == cv2.GC_BGD).sum() == 0
    assert (res.seeds[~disc] == cv2.GC_FGD).sum() == 0
    assert res.settings["smooth_sigma"] == 3.0
    assert mask_iou(res.mask, disc) >= 0.9


def test_deterministic(scene):
    image, saliency, _ = scene
    a = grabcut_from_saliency(image, saliency)
    cv2.setRNGSeed(12345)  # disturb OpenCV's global generator in between
    cv2.randu(np.zeros((10, 10)), 0, 1)
    b = grabcut_from_saliency(image, saliency)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    assert a.box == b.box


def test_float_and_uint8_images_agree(scene):
    image, saliency, _ = scene
    a = grabcut_from_saliency(image, saliency)
    b = grabcut_from_saliency(image.astype(np.float32) / 255.0, saliency)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.box == b.box


def test_torch_tensors_are_accepted(scene, result):
    torch = pytest.importorskip("torch")
    image, saliency, _ = scene
    res = grabcut_from_saliency(
        torch.from_numpy(image.astype(np.float32) / 255), torch.from_numpy(saliency)
    )
    np.testing.assert_array_equal(res.mask, result.mask)


def test_module_docstring_example_runs():
    failures, tried = doctest.testmod(localization, verbose=False)
    assert tried > 0 and failures == 0


# --- helpers in closed form -----------------------------------------------------------------


def test_largest_component_keeps_the_larger_blob():
    mask = np.zeros((50, 60), bool)
    mask[5:15, 5:15] = True  # 100 pixels
    mask[20:45, 30:55] = True  # 625 pixels
    kept = largest_component(mask)
    expected = np.zeros_like(mask)
    expected[20:45, 30:55] = True
    np.testing.assert_array_equal(kept, expected)
    assert not largest_component(np.zeros((4, 4), bool)).any()


def test_largest_component_uses_8_connectivity():
    mask = np.eye(5, dtype=bool)  # a diagonal line: one component under 8-connectivity
    mask[0, 4] = True  # an isolated pixel
    kept = largest_component(mask)
    np.testing.assert_array_equal(kept, np.eye(5, dtype=bool))


def test_mask_to_box_known_rectangle():
    mask = np.zeros((100, 120), bool)
    mask[20:40, 30:70] = True
    assert mask_to_box(mask) == (30, 20, 70, 40)
    single = np.zeros((10, 10), bool)
    single[3, 7] = True
    assert mask_to_box(single) == (7, 3, 8, 4)
    with pytest.raises(ValueError, match="empty"):
        mask_to_box(np.zeros((5, 5), bool))


def test_box_iou_closed_form():
    a = (0, 0, 10, 10)
    assert box_iou(a, a) == 1.0
    assert box_iou(a, (20, 20, 30, 30)) == 0.0
    assert box_iou(a, (10, 0, 20, 10)) == 0.0  # touching edges: exclusive x1 means no overlap
    # overlap 5x5 = 25, union 100 + 100 - 25 = 175
    assert box_iou(a, (5, 5, 15, 15)) == pytest.approx(25 / 175)
    assert box_iou((5, 5, 15, 15), a) == pytest.approx(25 / 175)
    assert box_iou(a, (0, 0, 5, 10)) == pytest.approx(0.5)  # contained half
    assert box_iou((3, 3, 3, 8), (3, 3, 3, 8)) == 0.0  # zero area: empty union
    with pytest.raises(ValueError, match="x1 >= x0"):
        box_iou((10, 0, 0, 10), a)


def test_box_iou_matches_mask_iou_for_rectangles():
    a = np.zeros((40, 50), bool)
    b = np.zeros((40, 50), bool)
    a[5:25, 3:30] = True
    b[12:38, 20:47] = True
    assert box_iou(mask_to_box(a), mask_to_box(b)) == pytest.approx(mask_iou(a, b))


def test_mask_iou_closed_form():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :6] = True  # 60
    b[:, 4:] = True  # 60, overlap 20, union 100
    assert mask_iou(a, b) == pytest.approx(0.2)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        mask_iou(a, np.zeros((5, 5), bool))


# --- errors name the problem and the fix ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fg_quantile": 0.3, "bg_quantile": 0.3}, r"fg_quantile .* greater than bg_quantile"),
        ({"fg_quantile": 0.2, "bg_quantile": 0.5}, r"greater than bg_quantile"),
        ({"fg_quantile": 1.0}, r"strictly between 0 and 1"),
        ({"bg_quantile": 0.0}, r"strictly between 0 and 1"),
        ({"fg_quantile": 95}, r"strictly between 0 and 1"),
        ({"iterations": 0}, r"iterations must be an integer >= 1"),
        ({"iterations": 2.5}, r"iterations must be an integer >= 1"),
        ({"unlabelled": "maybe"}, r"unlabelled must be"),
        ({"smooth_sigma": -1.0}, r"smooth_sigma must be >= 0"),
    ],
)
def test_bad_settings(scene, kwargs, match):
    image, saliency, _ = scene
    with pytest.raises(ValueError, match=match):
        grabcut_from_saliency(image, saliency, **kwargs)


def test_saliency_shape_mismatch_names_both_shapes_and_the_fix(scene):
    image, saliency, _ = scene
    with pytest.raises(ValueError, match=r"\(224, 224\).*\(160, 200\).*deprocess"):
        grabcut_from_saliency(image, np.ones((224, 224)))


@pytest.mark.parametrize("shape", [(3, H, W), (H, W), (H, W, 4), (1, H, W, 3)])
def test_image_not_hw3(scene, shape):
    _, saliency, _ = scene
    with pytest.raises(ValueError, match=r"image must be an RGB image of shape \(H, W, 3\)"):
        grabcut_from_saliency(np.zeros(shape, np.uint8), saliency)


def test_float_image_out_of_range(scene):
    image, saliency, _ = scene
    with pytest.raises(ValueError, match=r"\[0, 1\].*divide 0..255 images by 255"):
        grabcut_from_saliency(image.astype(np.float32), saliency)


@pytest.mark.parametrize("shape", [(3, H, W), (1, H, W), (H * W,)])
def test_saliency_not_2d(scene, shape):
    image, _, _ = scene
    with pytest.raises(ValueError, match=r"2-D \(H, W\).*reduced with the saliency map"):
        grabcut_from_saliency(image, np.ones(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_saliency(scene, bad):
    image, saliency, _ = scene
    saliency = saliency.copy()
    saliency[10, 10] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        grabcut_from_saliency(image, saliency)


@pytest.mark.parametrize("value", [0.0, 0.7])
def test_constant_saliency(scene, value):
    image, _, _ = scene
    with pytest.raises(ValueError, match=r"constant.*no foreground or background seeds"):
        grabcut_from_saliency(image, np.full((H, W), value))


def test_zero_saliency_message_says_all_zero(scene):
    image, _, _ = scene
    with pytest.raises(ValueError, match="all zero"):
        grabcut_from_saliency(image, np.zeros((H, W)))


def test_too_many_ties(scene):
    image, _, _ = scene
    saliency = np.zeros((H, W))
    saliency[:5, :5] = 1.0  # 25 pixels: the 30% and 95% quantiles are both 0
    with pytest.raises(ValueError, match=r"too many equal values.*raise fg_quantile"):
        grabcut_from_saliency(image, saliency)


def test_too_few_foreground_seeds():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"at least 5.*lower fg_quantile"):
        grabcut_from_saliency(image, rng.random((6, 6)))  # 5% of 36 pixels: 2 seeds


def test_empty_grabcut_foreground(scene, monkeypatch):
    # Seeds are hard constraints, so OpenCV never returns an empty foreground by itself;
    # stand in a GrabCut that labels everything background to reach the check.
    def all_background(img, mask, rect, bgd, fgd, iterations, mode):
        mask[:] = cv2.GC_BGD
        return mask, bgd, fgd

    monkeypatch.setattr(localization.cv2, "grabCut", all_background)
    image, saliency, _ = scene
    with pytest.raises(ValueError, match=r"empty foreground.*lower fg_quantile"):
        grabcut_from_saliency(image, saliency)
