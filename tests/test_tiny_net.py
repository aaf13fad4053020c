"""lu.TinyNet: scores = W2 relu(W1 x) with a backward rule by name (exercise 05), in closed form."""

from __future__ import annotations

import pytest
import torch

import lecture_utils as lu

W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
W2 = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 1.0]])


def _signal(net, x, c=0):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x)[:, c].sum(), x)
    return grad


@pytest.mark.parametrize("rule, expected", [
    ("backprop", [[1.0, 0.0]]),  # f = [1, -1.5, -0.5]: R = (f > 0) * W2[0] = [1, 0, 0]; R @ W1
    ("deconvnet", [[1.0, 2.0]]),  # R = relu(W2[0]) = [1, 2, 0], whatever f is
    ("guided", [[1.0, 0.0]]),  # both masks: [1, 0, 0]
])
def test_rules_in_closed_form(rule, expected):
    net = lu.TinyNet(W1, W2)
    net.rule = rule
    assert torch.allclose(_signal(net, torch.tensor([[1.0, -1.5]])), torch.tensor(expected))


def test_forward_is_the_relu_network():
    net = lu.TinyNet(W1, W2)
    x = torch.tensor([[1.0, -1.5], [0.3, 2.0]])
    assert torch.allclose(net(x), (W1 @ x.T).clamp(min=0).T @ W2.T)


def test_own_backward_rule_is_used():
    calls = []

    def relu_backward(f, r, rule):
        calls.append(rule)
        return torch.zeros_like(r)

    net = lu.TinyNet(W1, W2, relu_backward=relu_backward)
    net.rule = "guided"
    assert torch.equal(_signal(net, torch.ones(1, 2)), torch.zeros(1, 2)) and calls == ["guided"]


def test_bad_input_is_a_clear_error():
    net = lu.TinyNet(W1, W2)
    net.rule = "gradient"
    with pytest.raises(ValueError, match="unknown rule 'gradient'.*backprop"):
        _signal(net, torch.ones(1, 2))
    with pytest.raises(ValueError, match="w1 \\(hidden, D\\) and w2"):
        lu.TinyNet(W1, W2.T)
