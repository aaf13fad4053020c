"""Tests for lecture_utils.relu_rules: closed forms, interception, restoring."""

from __future__ import annotations

import doctest
import gc
import weakref
from collections.abc import Callable

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from lecture_utils import relu_rules
from lecture_utils.relu_rules import RULES, count_relu_calls, relu_rule


def current_functions() -> dict[str, object]:
    return {
        "F.relu": F.relu,
        "F.relu_": F.relu_,
        "F.relu6": F.relu6,
        "F.hardtanh": F.hardtanh,
        "torch.relu": torch.relu,
        "torch.relu_": torch.relu_,
        "Tensor.relu": torch.Tensor.relu,
        "Tensor.relu_": torch.Tensor.relu_,
    }


ORIGINALS = current_functions()  # as imported, before any context was opened


# --- a two-layer network with hand-set weights -----------------------------
# x = (2, -1); rows of W1: (1, 0), (0, 1), (1, -1), (3, -1), so the
# pre-activations are z = W1 x = (2, -1, 3, 7): one negative, one above 6.
# w2 = (1, 2, -3, 4): the backward signal R^{l+1} = w2 has a negative entry.
X = torch.tensor([[2.0, -1.0]])
W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [3.0, -1.0]])
W2 = torch.tensor([[1.0, 2.0, -3.0, 4.0]])
MASK_RELU = torch.tensor([1.0, 0.0, 1.0, 1.0])  # z > 0
MASK_RELU6 = torch.tensor([1.0, 0.0, 1.0, 0.0])  # 0 < z < 6


def closed_form(rule: str, mask: torch.Tensor) -> torch.Tensor:
    """dy/dx through one ReLU, by hand: W1^T diag(.) w2 with the rule's factor."""
    w2 = W2[0]
    factor = {
        "backprop": mask * w2,  # (f > 0) * R
        "deconvnet": w2.clamp(min=0),  # (R > 0) * R
        "guided": mask * w2.clamp(min=0),  # (f > 0) * (R > 0) * R
    }[rule]
    return (W1.T @ factor)[None]


# The same numbers written out: W1^T (1, 0, -3, 4) = (1,0) - 3(1,-1) + 4(3,-1).
HAND = {
    ("relu", "backprop"): [[10.0, -1.0]],
    ("relu", "deconvnet"): [[13.0, -2.0]],
    ("relu", "guided"): [[13.0, -4.0]],
    ("relu6", "backprop"): [[-2.0, 3.0]],
    ("relu6", "deconvnet"): [[13.0, -2.0]],
    ("relu6", "guided"): [[1.0, 0.0]],
}

# Each style applies its activation twice: relu(relu(z)) = relu(z), and each
# rule is idempotent too, so the closed form holds and count must be 2.
STYLES: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "nn.ReLU": ("relu", nn.ReLU()),
    "nn.ReLU(inplace)": ("relu", nn.ReLU(inplace=True)),
    "nn.ReLU6": ("relu6", nn.ReLU6()),
    "nn.ReLU6(inplace)": ("relu6", nn.ReLU6(inplace=True)),
    "F.relu": ("relu", F.relu),
    "F.relu(inplace)": ("relu", lambda t: F.relu(t, inplace=True)),
    "F.relu_": ("relu", F.relu_),
    "torch.relu": ("relu", torch.relu),
    "torch.relu_": ("relu", torch.relu_),
    "Tensor.relu": ("relu", lambda t: t.relu()),
    "Tensor.relu_": ("relu", lambda t: t.relu_()),
    "F.relu6": ("relu6", F.relu6),
    "F.relu6(inplace)": ("relu6", lambda t: F.relu6(t, inplace=True)),
    "F.hardtanh(0, 6)": ("relu6", lambda t: F.hardtanh(t, 0.0, 6.0)),
}


class TwoLayer(nn.Module):
    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 4, bias=False)
        self.fc2 = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(W1)
            self.fc2.weight.copy_(W2)
        self.act = act  # a module is registered, a function is just stored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # `* 1.0`: an in-place style must not overwrite the first activation's output,
        # which its backward reads (plain autograd needs that too)
        return self.fc2(self.act(self.act(self.fc1(x)) * 1.0))


def input_gradient(model: nn.Module, x: torch.Tensor, rule: str | None = None) -> torch.Tensor:
    """d out[0, 0] / d x, plain or inside relu_rule(model, rule); (N, ...) like x."""
    x = x.clone().requires_grad_(True)
    if rule is None:
        model(x)[0, 0].backward()
    else:
        with relu_rule(model, rule):
            model(x)[0, 0].backward()
    return x.grad


@pytest.mark.parametrize("kind", ["relu", "relu6"])
@pytest.mark.parametrize("rule", RULES)
def test_closed_form_two_layer(kind: str, rule: str) -> None:
    act = nn.ReLU() if kind == "relu" else nn.ReLU6()
    got = input_gradient(TwoLayer(act), X, rule)
    mask = MASK_RELU if kind == "relu" else MASK_RELU6
    assert torch.equal(got, closed_form(rule, mask))
    assert torch.equal(got, torch.tensor(HAND[kind, rule]))


def test_rules_differ_and_backprop_is_gradient() -> None:
    net = TwoLayer(nn.ReLU())
    plain = input_gradient(net, X)
    assert torch.equal(plain, input_gradient(net, X, "backprop"))
    assert not torch.equal(plain, input_gradient(net, X, "guided"))
    assert not torch.equal(plain, input_gradient(net, X, "deconvnet"))


@pytest.mark.parametrize("style", list(STYLES))
def test_each_style_is_intercepted(style: str) -> None:
    kind, act = STYLES[style]
    net = TwoLayer(act)
    mask = MASK_RELU if kind == "relu" else MASK_RELU6
    x = X.clone().requires_grad_(True)
    with relu_rule(net, "guided") as ctx:
        out = net(x)
        assert ctx.count == 2
        out.backward()
    assert ctx.rule == "guided" and ctx.count == 2 and not ctx.active
    assert torch.equal(out.detach(), TwoLayer(nn.ReLU() if kind == "relu" else nn.ReLU6())(X))
    assert torch.equal(x.grad, closed_form("guided", mask))
    assert not torch.equal(x.grad, closed_form("backprop", mask))
    assert torch.equal(input_gradient(net, X), closed_form("backprop", mask))  # plain autograd
    for rule in ("backprop", "deconvnet"):
        assert torch.equal(input_gradient(net, X, rule), closed_form(rule, mask))


def test_inplace_call_still_modifies_its_input() -> None:
    class InPlace(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            y = t * 1.0
            F.relu(y, inplace=True)  # result ignored: the caller relies on y changing
            z = t * 1.0
            z.relu_()
            return y + z

    x = torch.tensor([[-1.0, 2.0]], requires_grad=True)
    net = InPlace()
    with relu_rule(net, "deconvnet") as ctx:
        out = net(x)
        out.sum().backward()
    assert ctx.count == 2
    assert torch.equal(out, torch.tensor([[0.0, 4.0]]))
    assert torch.equal(x.grad, torch.tensor([[2.0, 2.0]]))  # deconvnet ignores f < 0


@pytest.mark.parametrize("rule", ["backprop", "guided"])
def test_overwriting_a_relu_output_raises_as_autograd_does(rule: str) -> None:
    # the forward mask is read off the ReLU's output in the backward pass (no extra
    # memory); a later in-place change of that output would falsify the mask, so it
    # must raise, exactly as plain autograd does, rather than give a wrong map
    class Overwrite(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            y = F.relu(t * 1.0)
            y.add_(1.0)
            return y

    net, x = Overwrite(), torch.tensor([[-1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        net(x).sum().backward()
    with relu_rule(net, rule) as ctx, pytest.raises(RuntimeError, match="modified by an inplace"):
        net(x).sum().backward()
    assert ctx.count == 1


def _saved_bytes(net: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors the forward pass keeps for the backward pass."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x.clone().requires_grad_(True))
    return sum(storages.values())


@pytest.mark.parametrize("rule", RULES)
def test_rules_keep_no_more_for_the_backward_than_autograd(rule: str) -> None:
    torch.manual_seed(0)
    # (ReLU6 is left out: plain autograd keeps its input, so it is no yardstick)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(inplace=True),
                        nn.Flatten(), nn.Linear(8 * 4 * 4, 2))
    x = torch.randn(2, 3, 8, 8)
    plain = _saved_bytes(net, x)
    with relu_rule(net, rule):
        assert _saved_bytes(net, x) <= plain


# --- the lecture's networks, random weights --------------------------------
def _effnet() -> nn.Module:
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


# ReLU calls per forward pass, derived from each architecture:
# AlexNet: 5 conv ReLUs + 2 classifier ReLUs = 7.
# VGG16: 13 conv ReLUs + 2 classifier ReLUs = 15.
# ResNet18: stem 1 + 8 BasicBlocks x 2 (one nn.ReLU module called twice) = 17.
# DenseNet121: relu0 1 + dense layers (6+12+24+16) x 2 + 3 transitions
#   + F.relu(..., inplace=True) in DenseNet.forward 1 = 121.
# tf_efficientnet_lite0: stem 1 + DepthwiseSeparable 1 + 15 InvertedResidual
#   x 2 + head 1 = 33 nn.ReLU6 modules.
MODELS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "alexnet": (lambda: torchvision.models.alexnet(weights=None), 7),
    "vgg16": (lambda: torchvision.models.vgg16(weights=None), 15),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), 17),
    "densenet121": (lambda: torchvision.models.densenet121(weights=None), 121),
    "tf_efficientnet_lite0": (_effnet, 33),
}


class CountReLUOps(TorchDispatchMode):
    """Counts relu / hardtanh kernels below autograd: independent of relu_rule."""

    OPS = {
        torch.ops.aten.relu.default,
        torch.ops.aten.relu_.default,
        torch.ops.aten.hardtanh.default,
        torch.ops.aten.hardtanh_.default,
    }

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func in self.OPS
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", list(MODELS))
def test_lecture_networks(name: str) -> None:
    make, expected = MODELS[name]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(1, 3, 64, 64)

    with torch.no_grad(), CountReLUOps() as ops:
        model(x)
    assert ops.count == expected

    plain = input_gradient(model, x)
    xg = x.clone().requires_grad_(True)
    with relu_rule(model, "backprop") as ctx:
        model(xg)[0, 0].backward()
    assert ctx.count == expected
    assert torch.equal(xg.grad, plain)
    assert count_relu_calls(model, x) == expected

    if name == "tf_efficientnet_lite0":  # count the nn.ReLU6 modules that run
        calls = []
        handles = [
            m.register_forward_hook(lambda *_: calls.append(1))
            for m in model.modules()
            if isinstance(m, nn.ReLU6)
        ]
        with torch.no_grad():
            model(x)
        for h in handles:
            h.remove()
        assert len(calls) == expected


def test_linear_network_every_rule_is_gradient() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.randn(1, 3, 8, 8)
    plain = input_gradient(net, x)
    for rule in RULES:
        assert torch.equal(input_gradient(net, x, rule), plain)
    assert count_relu_calls(net, x) == 0


def test_functional_only_model_is_not_refused() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(2, 4), nn.Linear(4, 1)

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.relu(self.fc1(t)))

    assert count_relu_calls(Functional(), X) == 1


# --- errors ----------------------------------------------------------------
@pytest.mark.parametrize("act", [nn.GELU, nn.SiLU, nn.Hardswish, nn.Tanh])
def test_refuses_networks_without_relu(act: type[nn.Module]) -> None:
    net = nn.Sequential(nn.Linear(2, 4), act(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="ReLU networks") as err:
        with relu_rule(net, "guided"):
            pass
    assert act.__name__ in str(err.value) and "plain gradient" in str(err.value)


def test_relu_network_with_a_final_sigmoid_is_allowed() -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid())
    assert count_relu_calls(net, X) == 1


def test_unknown_rule_lists_the_three() -> None:
    with pytest.raises(ValueError) as err:
        with relu_rule(TwoLayer(nn.ReLU()), "guided_backprop"):
            pass
    assert all(rule in str(err.value) for rule in RULES)


def test_model_must_be_a_module() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        with relu_rule(lambda t: t, "guided"):  # type: ignore[arg-type]
            pass


def test_nesting() -> None:
    net = TwoLayer(nn.ReLU())
    with relu_rule(net, "guided") as outer:
        with pytest.raises(RuntimeError, match="already active"):
            with relu_rule(net, "deconvnet"):
                pass
        with pytest.raises(RuntimeError, match="already active"):
            with relu_rule(net.fc1, "guided"):  # a part of the model
                pass
        with relu_rule(net, "guided") as inner:  # same rule: re-entrant
            assert inner is outer
        assert outer.active  # the inner exit restored nothing
        assert torch.equal(input_gradient(net, X), closed_form("guided", MASK_RELU))
    assert torch.equal(input_gradient(net, X), closed_form("backprop", MASK_RELU))


def test_uninterceptable_relu_module_raises() -> None:
    class ClampReLU(nn.ReLU):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return t.clamp(min=0)

    net = TwoLayer(ClampReLU())
    with pytest.raises(RuntimeError, match="ran without"):
        input_gradient(net, X, "guided")


# --- scope: only this model's forward ---------------------------------------
def test_only_this_models_forward_is_intercepted() -> None:
    net, other = TwoLayer(nn.ReLU()), TwoLayer(nn.ReLU())
    t = torch.randn(3, requires_grad=True)
    with relu_rule(net, "guided") as ctx:
        net(X)
        assert type(F.relu(t * 1).grad_fn).__name__ == "ReluBackward0"
        assert torch.equal(input_gradient(other, X), closed_form("backprop", MASK_RELU))
        assert ctx.count == 2
        x = X.clone().requires_grad_(True)
        net.fc2(net.act(net.act(net.fc1(x)))).backward()  # submodules called directly
        assert ctx.count == 4  # reset only by net's own forward
        net(X)
        assert ctx.count == 2
        assert torch.equal(x.grad, closed_form("guided", MASK_RELU))


def test_two_models_with_different_rules_at_once() -> None:
    a, b = TwoLayer(nn.ReLU()), TwoLayer(F.relu)
    with relu_rule(a, "guided"), relu_rule(b, "deconvnet"):
        assert torch.equal(input_gradient(a, X), closed_form("guided", MASK_RELU))
        assert torch.equal(input_gradient(b, X), closed_form("deconvnet", MASK_RELU))
    assert all(current_functions()[k] is v for k, v in ORIGINALS.items())


# --- restoring --------------------------------------------------------------
def snapshot(model: nn.Module) -> list:
    """Every hook dict and attribute name of every module, and torch's globals."""
    modules = [
        (
            sorted(vars(m)),
            {k: list(v) for k, v in vars(m).items() if "hook" in k and isinstance(v, dict)},
        )
        for m in model.modules()
    ]
    globals_ = [
        {k: id(v) for k, v in vars(F).items()},
        {k: id(v) for k, v in vars(torch).items()},
        {k: id(v) for k, v in vars(torch.Tensor).items()},
        torch._C._len_torch_function_stack(),  # no torch function mode left
        {k: list(d) for k, d in vars(torch.nn.modules.module).items() if isinstance(d, dict)},
    ]
    return modules + globals_


class Boom(nn.Module):
    def __init__(self, error: type[BaseException]) -> None:
        super().__init__()
        self.error, self.armed = error, False

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.armed:
            raise self.error("mid-forward")
        return t


@pytest.mark.parametrize(
    "how", ["normal", "exception", "keyboard", "exception mid-forward", "keyboard mid-forward"]
)
def test_everything_restored_on_exit(how: str) -> None:
    torch.manual_seed(0)
    error = KeyboardInterrupt if "keyboard" in how else ValueError
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(inplace=True),
        Boom(error),
        nn.Conv2d(4, 4, 3),
        nn.ReLU6(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    )
    x = torch.randn(1, 3, 8, 8)
    before, out0, grad0 = snapshot(net), net(x), input_gradient(net, x)
    if how == "normal":
        with relu_rule(net, "guided"):
            input_gradient(net, x)
    elif how in ("exception", "keyboard"):
        with pytest.raises(error):
            with relu_rule(net, "deconvnet"):
                input_gradient(net, x)
                raise error("inside")
    else:
        with pytest.raises(error):
            with relu_rule(net, "guided"):
                net[2].armed = True
                net(x)
        net[2].armed = False
    assert snapshot(net) == before
    assert all(current_functions()[k] is v for k, v in ORIGINALS.items())
    assert torch.equal(net(x), out0)
    assert torch.equal(input_gradient(net, x), grad0)


# --- memory ----------------------------------------------------------------
def test_no_memory_growth() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    params = {id(p) for p in net.parameters()}
    saved: list[weakref.ref] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in params:
            saved.append(weakref.ref(t))
        return t

    def live_tensors() -> int:
        gc.collect()
        return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())

    counts = {}
    for i in range(30):
        x = torch.randn(1, 3, 16, 16, requires_grad=True)
        with relu_rule(net, "guided"), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)[0, 1].backward()
        del x
        if i in (4, 29):
            counts[i] = live_tensors()
    assert len(saved) > 30  # the masks and activations were seen
    assert all(ref() is None for ref in saved)  # and none is alive
    assert counts[29] == counts[4]


def test_docstring_example_runs() -> None:
    result = doctest.testmod(relu_rules)
    assert result.attempted > 0 and result.failed == 0
