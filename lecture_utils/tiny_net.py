"""A two-layer ReLU network with hand-set weights, whose backward rule is chosen by name.

    scores = W2 relu(W1 x)

Exercise 05 explains its classes under the three rules of the lecture (Springenberg et al.
2015), where every answer has a closed form:

    backprop:   R^l = (f^l > 0) * R^{l+1}
    deconvnet:  R^l = (R^{l+1} > 0) * R^{l+1}
    guided:     R^l = (f^l > 0) * (R^{l+1} > 0) * R^{l+1}

``net.rule`` picks the rule for the next backward pass. The rules are those of
:mod:`lecture_utils.relu_rules`, unless you pass your own ``relu_backward(f, r, rule)``
(exercise 05, question 1). The class lives in the library, not in the notebook, so that a
grader can rebuild the same network without any student code.

Example::

    net = TinyNet(torch.eye(2), torch.eye(2))
    net.rule = "guided"
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .relu_rules import _BACKWARD, RULES


def reference_relu_backward(f: Tensor, r: Tensor, rule: str) -> Tensor:
    """R^l from R^{l+1} = ``r`` through relu(``f``) under ``rule`` (the library's rules)."""
    if rule not in _BACKWARD:
        raise ValueError(f"unknown rule {rule!r}: use one of {', '.join(RULES)}")
    return _BACKWARD[rule](r, f.clamp(min=0), None)


class _RuleReLU(torch.autograd.Function):
    """relu forward; ``relu_backward(f, r, rule)`` backward."""

    @staticmethod
    def forward(ctx, f: Tensor, rule: str, relu_backward: Callable) -> Tensor:
        ctx.save_for_backward(f)
        ctx.rule, ctx.relu_backward = rule, relu_backward
        return f.clamp(min=0)

    @staticmethod
    def backward(ctx, r: Tensor):
        (f,) = ctx.saved_tensors
        return ctx.relu_backward(f, r, ctx.rule), None, None


class TinyNet(nn.Module):
    """scores = W2 relu(W1 x), no biases; the ReLU's backward follows ``self.rule``.

    Args:
        w1: (hidden, D) weights of the first layer.
        w2: (classes, hidden) weights of the second layer.
        relu_backward: ``(f, r, rule) -> R`` for the ReLU's backward pass; None for the
            library's rules (:func:`reference_relu_backward`).
    """

    def __init__(self, w1: Tensor, w2: Tensor, relu_backward: Callable | None = None) -> None:
        super().__init__()
        if w1.ndim != 2 or w2.ndim != 2 or w2.shape[1] != w1.shape[0]:
            raise ValueError(f"TinyNet needs w1 (hidden, D) and w2 (classes, hidden); got "
                             f"{tuple(w1.shape)} and {tuple(w2.shape)}")
        self.fc1 = nn.Linear(w1.shape[1], w1.shape[0], bias=False)
        self.fc2 = nn.Linear(w2.shape[1], w2.shape[0], bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(w1)
            self.fc2.weight.copy_(w2)
        self.rule = "backprop"
        self.relu_backward = relu_backward

    def forward(self, x: Tensor) -> Tensor:
        backward = self.relu_backward or reference_relu_backward
        return self.fc2(_RuleReLU.apply(self.fc1(x), self.rule, backward))
