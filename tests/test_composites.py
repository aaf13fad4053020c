"""Tests for lecture_utils.composites: images with an object at a known place; the pointing game."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lecture_utils as lu
from lecture_utils.composites import OBJECTS, compose, make_composites, pointing_game


@pytest.mark.parametrize("background", ["plain", "texture"])
def test_compose_places_the_object_where_it_says(background):
    c = compose("coffee", size=224, scale=0.4, position=(10, 120), background=background)
    assert c.image.shape == (224, 224, 3) and c.image.dtype == np.uint8
    x0, y0, x1, y1 = c.box
    assert (x0, y0) == (10, 120) and max(x1 - x0, y1 - y0) == round(0.4 * 224)
    assert c.mask.sum() == (x1 - x0) * (y1 - y0) and c.mask[y0:y1, x0:x1].all()
    assert lu.box_iou(c.box, lu.localization.mask_to_box(c.mask)) == 1.0
    assert c.label == "espresso" and c.background == background


def test_backgrounds_differ_and_are_repeatable():
    plain = compose("cat", background="plain", seed=1).image
    texture = compose("cat", background="texture", seed=1).image
    outside = ~compose("cat", seed=1).mask
    assert plain[outside].std(axis=0).max() == 0  # one colour
    assert texture[outside].std(axis=0).min() > 10  # a texture
    np.testing.assert_array_equal(texture, compose("cat", background="texture", seed=1).image)


def test_make_composites_cycles_objects_and_backgrounds():
    comps = make_composites(size=64, n=len(OBJECTS) * 2, seed=0)
    assert [c.name for c in comps] == list(OBJECTS) * 2
    assert [c.background for c in comps] == ["plain"] * 3 + ["texture"] * 3
    assert len({c.box for c in comps}) == len(comps)  # random places


def test_bad_settings_say_what_to_fix():
    with pytest.raises(ValueError, match="Unknown object"):
        compose("goldfish")
    with pytest.raises(ValueError, match="Unknown background"):
        compose("cat", background="stripes")
    with pytest.raises(ValueError, match="scale"):
        compose("cat", scale=1.5)
    with pytest.raises(ValueError, match="outside"):
        compose("cat", size=100, scale=0.5, position=(80, 0))


def test_pointing_game_with_a_map_that_knows_the_answer(linear_clf):
    comps = make_composites(size=8, n=6, scale=(0.4, 0.6), seed=2)
    masks = torch.from_numpy(np.stack([c.mask for c in comps]))

    def oracle(clf, x, targets):  # a gradient that is large exactly on the object
        assert len(targets) == x.shape[0]
        return masks.float()[:, None].repeat(1, 3, 1, 1)

    rates = pointing_game(linear_clf, comps, {"oracle": oracle}, batch_size=6, details=True)
    assert rates["oracle"] == 1.0 and rates["n"] == 6
    assert rates["centre"] == np.mean([c.mask[4, 4] for c in comps])


def test_tolerance_counts_points_near_the_object(linear_clf):
    c = compose("cat", size=8, scale=0.25, position=(0, 0))  # object = 2x2 top-left corner
    assert c.box == (0, 0, 2, 2)

    def corner(clf, x, targets):  # maximum at (3, 3): sqrt(8) = 2.83 pixels from (1, 1)
        g = torch.zeros_like(x)
        g[:, :, 3, 3] = 1.0
        return g

    assert pointing_game(linear_clf, [c], {"m": corner})["m"] == 0.0
    assert pointing_game(linear_clf, [c], {"m": corner}, tolerance=2)["m"] == 0.0
    assert pointing_game(linear_clf, [c], {"m": corner}, tolerance=3)["m"] == 1.0
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(linear_clf, [c], tolerance=-1)


def test_pointing_game_checks_sizes(linear_clf):
    with pytest.raises(ValueError, match="size=clf.input_size"):
        pointing_game(linear_clf, make_composites(size=16, n=1))
    with pytest.raises(ValueError, match="at least one"):
        pointing_game(linear_clf, [])


def test_default_model_saliency_beats_the_centre_baseline(clf):
    comps = make_composites(clf.input_size, n=12, seed=0)
    rates = pointing_game(clf, comps)
    assert rates["saliency"] > rates["centre"]
    assert rates["saliency"] >= 0.5


def test_show_localization_draws_mask_box_and_point():
    import matplotlib

    matplotlib.use("Agg")
    c = compose("coffee", size=64, position=(5, 5), background="texture")
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 17) ** 2 + (xx - 17) ** 2) / 50.0)
    result = lu.grabcut_from_saliency(c.image, blob)
    ax = lu.show_localization(c.image, result, "t", point=(17, 17))
    assert ax.get_title() == "t" and len(ax.patches) == 1 and len(ax.lines) == 1
    ax = lu.show_localization(c.image / 255, result, true_box=c.box)
    assert len(ax.patches) == 2
