"""Shared fixtures: the default pretrained model (loaded once) and a tiny linear classifier
whose gradients have closed forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lecture_utils as lu


@pytest.fixture(scope="session")
def clf():
    """The offline default model on the test device (``LECTURE_DEVICE`` or automatic)."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return lu.load_model()


def make_linear_classifier(size: int = 8, seed: int = 0) -> lu.Classifier:
    """S(x) = W · vec(x) + b over (1, 3, size, size) inputs, 1000 classes, mean 0, std 1."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 1000))
    return lu.Classifier("linear", net, "cpu", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                         input_size=size, resize_size=size, interpolation="bilinear")


@pytest.fixture
def linear_clf():
    return make_linear_classifier()


def hooks_left(net: nn.Module) -> list[str]:
    """Names of modules that still carry a hook of any kind."""
    left = []
    for name, module in net.named_modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks"):
            if getattr(module, attr, None):
                left.append(f"{name or '<root>'}.{attr}")
        if "forward" in vars(module):
            left.append(f"{name or '<root>'}.forward patched")
    return left


def find_widgets(widget, cls, description=None) -> list:
    """All widgets of type ``cls`` inside ``widget`` (depth first), optionally by description."""
    found = []

    def walk(w):
        if isinstance(w, cls) and (description is None or getattr(w, "description", None) == description):
            found.append(w)
        for child in getattr(w, "children", ()):
            walk(child)

    walk(widget)
    return found
