import urllib.error

import numpy as np
import pytest
import torch

import lecture_utils as lu
from lecture_utils.models import check_input

CATS = {"Egyptian cat", "tabby", "tiger cat"}


def test_default_weights_load_with_weights_only(monkeypatch):
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    lu.load_model(device="cpu")
    assert calls == [True]


def test_chelsea_is_a_cat_and_coffee_is_espresso(clf):
    cat = clf.predict(lu.sample_image("chelsea"), k=3)
    assert cat[0].label in CATS
    assert sum(p.probability for p in cat if p.label in CATS) > 0.8
    coffee = clf.predict(lu.sample_image("coffee"), k=1)[0]
    assert coffee.label == "espresso" and coffee.probability > 0.8


def test_batch_prediction_gives_one_list_per_image(clf):
    x = clf.preprocess_batch([lu.sample_image("chelsea"), lu.sample_image("coffee")])
    out = clf.predict(x, k=2)
    assert len(out) == 2 and out[1][0].label == "espresso"
    with pytest.raises(ValueError, match="k must be"):
        clf.predict(x, k=0)


def test_preprocess_then_deprocess_round_trips(clf):
    x = clf.preprocess(lu.sample_image("astronaut"))
    assert x.shape == (1, 3, clf.input_size, clf.input_size) and x.device == clf.device
    image = clf.deprocess(x)
    assert image.shape == (clf.input_size, clf.input_size, 3)
    assert 0.0 <= image.min() and image.max() <= 1.0
    again = clf.normalize(torch.from_numpy(image).permute(2, 0, 1)[None].to(clf.device))
    assert torch.allclose(again, x, atol=1e-6)
    low, high = clf.pixel_bounds()
    assert torch.allclose(clf.denormalize(low), torch.zeros(1, 3, 1, 1, device=clf.device))
    assert torch.allclose(clf.denormalize(high), torch.ones(1, 3, 1, 1, device=clf.device))


def test_preprocessing_comes_from_timm_config(clf):
    assert clf.input_size == 224 and clf.resize_size == 256
    assert torch.allclose(clf.mean.flatten().cpu(), torch.tensor([0.5, 0.5, 0.5]))
    assert all(not p.requires_grad for p in clf.net.parameters())
    assert not clf.net.training


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet18", "squeezenet1_1"])
def test_torchvision_models_build_with_random_weights(name):
    model = lu.load_model(name, device="cpu", pretrained=False)
    assert model.net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    assert model.feature_layers and all(model.layer(n) is not None for n in model.feature_layers)
    assert tuple(model.mean.flatten().tolist()) == pytest.approx((0.485, 0.456, 0.406))


def test_offline_failure_names_the_cache_and_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("LECTURE_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(RuntimeError) as err:
        lu.load_model("alexnet", device="cpu")
    message = str(err.value)
    assert str(tmp_path) in message and "efficientnet_lite0" in message


def test_offline_flag_fails_before_any_download(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("LECTURE_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(RuntimeError, match="LECTURE_OFFLINE"):
        lu.load_model("vgg16", device="cpu")


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ValueError, match="alexnet.*vgg16"):
        lu.load_model("inception_v3")
    assert "efficientnet_lite0" in lu.available_models()


def test_training_mode_is_put_back_to_eval_with_a_note(clf):
    clf.net.train()
    try:
        with pytest.warns(UserWarning, match="training mode"):
            clf.predict(lu.sample_image("coffee"))
        assert not any(m.training for m in clf.net.modules())
    finally:
        clf.net.eval()


def test_unknown_layer_lists_close_names(clf):
    assert "blocks.3" in clf.layer_names()
    with pytest.raises(KeyError, match="blocks.3"):
        clf.layer("block.3")


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.zeros((1, 3, 8, 8)), TypeError, "preprocess"),
        (torch.zeros(1, 1, 8, 8), ValueError, r"\(N, 3, H, W\)"),
        (torch.zeros(8, 8), ValueError, r"\(N, 3, H, W\)"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "float"),
    ],
)
def test_wrong_inputs_are_refused(bad, error, match):
    with pytest.raises(error, match=match):
        check_input(bad)


def test_preprocess_refuses_a_tensor(clf):
    with pytest.raises(TypeError, match="already the model's input"):
        clf.preprocess(torch.zeros(3, 8, 8))
