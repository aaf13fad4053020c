import pytest
import torch

import lecture_utils as lu


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv("LECTURE_DEVICE", "cpu")
    assert lu.pick_device() == torch.device("cpu")


def test_explicit_choice_wins_over_environment(monkeypatch):
    monkeypatch.setenv("LECTURE_DEVICE", "not-a-device")
    assert lu.pick_device("cpu") == torch.device("cpu")


def test_unknown_device_names_the_choices(monkeypatch):
    monkeypatch.setenv("LECTURE_DEVICE", "tpu9")
    with pytest.raises(ValueError, match="'cpu', 'cuda'"):
        lu.pick_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_an_error_not_a_silent_fallback():
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        lu.pick_device("cuda")


def test_automatic_choice_without_override(monkeypatch):
    monkeypatch.delenv("LECTURE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    device = lu.pick_device()
    if expected:
        assert device.type == expected
    else:
        assert device.type in ("mps", "cpu")


def test_seed_everything_repeats_random_draws():
    lu.seed_everything(3)
    a = torch.rand(5)
    g = lu.seed_everything(3)
    assert torch.equal(a, torch.rand(5))
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=lu.seed_everything(3)))


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_seed_must_be_a_non_negative_integer(seed):
    with pytest.raises(ValueError, match="non-negative integer"):
        lu.seed_everything(seed)
