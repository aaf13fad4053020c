r"""The backward rule through ReLU: backprop, deconvnet and guided backprop.

Three early explanation methods differ only in how a signal is sent back
through a ReLU. With the forward pass :math:`f^{l+1} = \mathrm{relu}(f^l)`
and :math:`R^{l+1}` the signal arriving from above, the signal sent below is

- ``"backprop"``, the gradient (Simonyan et al. 2014, the data gradient):
  :math:`R^l = (f^l > 0) \cdot R^{l+1}`;
- ``"deconvnet"`` (Zeiler & Fergus 2014): :math:`R^l = (R^{l+1} > 0) \cdot
  R^{l+1}`, the ReLU applied to the backward signal, ignoring the forward
  pass (Simonyan et al. 2014, section 4, show that this is the only place
  where a deconvnet differs from the gradient);
- ``"guided"`` (Springenberg et al. 2015, "Striving for simplicity"):
  :math:`R^l = (f^l > 0) \cdot (R^{l+1} > 0) \cdot R^{l+1}`, that is

  .. math::
      R^l_i = \begin{cases} R^{l+1}_i & \text{if } f^l_i > 0
      \text{ and } R^{l+1}_i > 0, \\ 0 & \text{otherwise.} \end{cases}

For ReLU6, :math:`\min(\max(x, 0), 6)`, the forward mask is
:math:`0 < f^l < 6` (it also masks where :math:`f^l \ge 6`); the deconvnet
uses no forward mask. Every other layer (convolution, pooling, batch norm,
linear) keeps its usual backward, so with no ReLU at all every rule equals
the gradient.

:func:`relu_rule` is one mechanism for the three rules; a rule supplies only
its backward (``_BACKWARD`` below). Inside the context every ReLU-like
activation that the forward pass of ``model`` runs is replaced by an
autograd function with the rule's backward: ``nn.ReLU`` and ``nn.ReLU6``
modules (also ``inplace=True``), and the functional calls ``F.relu``,
``F.relu_``, ``torch.relu``, ``torch.relu_``, ``F.relu6``, ``Tensor.relu``,
``Tensor.relu_`` and ``F.hardtanh(x, 0, c)`` (a clipped ReLU). In-place
calls still modify their input, as the callers expect.

Example:

>>> import torch
>>> from torch import nn
>>> from lecture_utils.relu_rules import relu_rule
>>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
>>> x = torch.randn(1, 2, requires_grad=True)
>>> with relu_rule(net, "guided") as ctx:
...     net(x).sum().backward()
>>> ctx.rule, ctx.count, tuple(x.grad.shape)
('guided', 1, (1, 2))

How calls are caught (nothing global is patched): while the context is open
a ``torch.overrides.TorchFunctionMode`` sees every torch API call, including
the ``F.relu``/``F.hardtanh`` inside ``nn.ReLU``/``nn.ReLU6`` and references
to ``F.relu`` stored earlier; no attribute of ``torch``, ``F``,
``torch.Tensor`` or of a module is replaced. A call is intercepted only
while a module of ``model`` runs in the calling thread: a forward pre-hook
and an always-called forward hook on each module keep a depth counter, so
``model(x)`` and ``model.features(x)`` are covered and ``F.relu`` in your own
code between passes is not. ``count`` restarts when ``model`` starts a
forward pass. A ReLU module that runs without being intercepted (a subclass
with its own ``forward``) raises ``RuntimeError`` rather than silently giving
the gradient. Not seen: ``torch.jit.script`` code, ``x.clamp(min=0)``.

Nesting: the same model with the same rule is re-entrant (the inner context
yields the open handle, the outer one restores); any other overlap (another
rule, or a context open on a part or a parent of ``model``) raises
``RuntimeError``. Contexts on separate models may be open together; close
them in reverse order, as ``with`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

__all__ = ["RULES", "Rule", "ReLURuleHandle", "count_relu_calls", "relu_rule"]


# --- the three rules: only the backward differs --------------------------
# ``grad`` is R^{l+1}; ``out`` is the forward output, relu(f^l) or min(max(f^l, 0), upper)
# for ReLU6. The forward mask f^l > 0 (0 < f^l < upper) is read off ``out`` (out > 0 exactly
# where f^l > 0), as PyTorch's own ReLU backward does: the output is kept by the next layer
# anyway, so the rules cost no memory beyond the plain gradient. The fused aten backward
# kernels apply the mask: threshold_backward(g, out, 0) = g where out > 0, else 0;
# hardtanh_backward(g, out, 0, upper) = g where 0 < out < upper, else 0.
def _forward_mask(grad: Tensor, out: Tensor, upper: float | None) -> Tensor:
    aten = torch.ops.aten
    if upper is None:
        return aten.threshold_backward(grad, out, 0.0)
    return aten.hardtanh_backward(grad, out, 0.0, upper)


def _backprop(grad: Tensor, out: Tensor, upper: float | None) -> Tensor:
    return _forward_mask(grad, out, upper)  # (f > 0) * R


def _deconvnet(grad: Tensor, out: Tensor | None, upper: float | None) -> Tensor:
    return grad.clamp(min=0.0)  # (R > 0) * R


def _guided(grad: Tensor, out: Tensor, upper: float | None) -> Tensor:
    return _forward_mask(grad.clamp(min=0.0), out, upper)  # (f > 0) * (R > 0) * R


_BACKWARD: dict[str, Callable[[Tensor, Tensor | None, float | None], Tensor]] = {
    "backprop": _backprop,
    "deconvnet": _deconvnet,
    "guided": _guided,
}
_USES_FORWARD_MASK = {"backprop": True, "deconvnet": False, "guided": True}
RULES: tuple[str, ...] = tuple(_BACKWARD)
Rule = Literal["backprop", "deconvnet", "guided"]  # the names in RULES


class _ReLUWithRule(torch.autograd.Function):
    """relu (``upper=None``) or min(max(x, 0), upper) forward; rule backward."""

    @staticmethod
    def forward(ctx, x: Tensor, rule: str, upper: float | None, inplace: bool) -> Tensor:
        aten = torch.ops.aten  # never intercepted, so no recursion
        if upper is None:
            out = aten.relu_(x) if inplace else aten.relu(x)
        else:
            out = aten.hardtanh_(x, 0.0, upper) if inplace else aten.hardtanh(x, 0.0, upper)
        if inplace:
            ctx.mark_dirty(x)
        ctx.rule, ctx.upper = rule, upper
        if _USES_FORWARD_MASK[rule]:
            ctx.save_for_backward(out)  # shared with the next layer: no extra memory
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        out = ctx.saved_tensors[0] if _USES_FORWARD_MASK[ctx.rule] else None
        return _BACKWARD[ctx.rule](grad, out, ctx.upper), None, None, None


def _as_relu_call(func: Any, args: tuple, kwargs: dict) -> tuple[Tensor, float | None, bool] | None:
    """``(input, upper, inplace)`` if ``func(*args, **kwargs)`` is a ReLU, else None."""

    def arg(i: int, name: str, default: Any) -> Any:
        return args[i] if len(args) > i else kwargs.get(name, default)

    x = arg(0, "input", None)
    if not isinstance(x, Tensor):
        return None
    if func is F.relu:
        return x, None, arg(1, "inplace", False)
    if func is torch.relu or func is torch.Tensor.relu:
        return x, None, False
    if func is torch.relu_ or func is torch.Tensor.relu_:  # F.relu_ is torch.relu_
        return x, None, True
    if func is F.relu6:
        return x, 6.0, arg(1, "inplace", False)
    if func is F.hardtanh and arg(1, "min_val", -1.0) == 0 and arg(2, "max_val", 1.0) > 0:
        return x, float(arg(2, "max_val", 1.0)), arg(3, "inplace", False)  # nn.ReLU6
    return None


def _is_relu_like(module: nn.Module) -> bool:
    return isinstance(module, nn.ReLU) or (
        isinstance(module, nn.Hardtanh) and module.min_val == 0 and module.max_val > 0
    )


# Class names (lower case, any class in the MRO) of activations that are not
# ReLUs: torch.nn's and timm's (GELUTanh, QuickGELU, SwishMe, ...).
_OTHER_ACTIVATIONS = frozenset(
    "gelu gelutanh quickgelu silu swish swishme mish mishme hardswish hardswishme "
    "hardsigmoid hardsigmoidme hardmish hardmishme sigmoid logsigmoid tanh tanhshrink "
    "softplus softsign elu selu celu leakyrelu prelu rrelu hardtanh threshold glu "
    "hardshrink softshrink".split()
)


def _is_other_activation(module: nn.Module) -> bool:
    return not _is_relu_like(module) and any(
        cls.__name__.lower() in _OTHER_ACTIVATIONS for cls in type(module).__mro__
    )


class ReLURuleHandle:
    """What :func:`relu_rule` yields.

    Attributes:
        rule: the backward rule, one of :data:`RULES`.
        count: ReLU-like activations intercepted in the last forward pass of
            the model (reset when ``model`` starts one; direct calls of its
            submodules add to it).
        active: True while the context is open.
    """

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.count = 0
        self.active = False
        self._model: nn.Module | None = None
        self._relu_names: dict[int, str] = {}  # id(module) -> name, ReLU-like modules
        self._depth = 0  # modules of the model now running
        self._thread = 0  # thread running the forward pass
        self._starts: list[int] = []  # count when each running ReLU module began

    def __repr__(self) -> str:
        state = "active" if self.active else "closed"
        return f"ReLURuleHandle(rule={self.rule!r}, count={self.count}, {state})"

    def _in_forward(self) -> bool:
        return self.active and self._depth > 0 and self._thread == threading.get_ident()

    def _pre_hook(self, module: nn.Module, args: tuple) -> None:
        if module is self._model:  # a forward pass of the model: count afresh
            self._depth, self.count, self._starts = 0, 0, []
        if self._depth == 0:
            self._thread = threading.get_ident()
        self._depth += 1
        if id(module) in self._relu_names:
            self._starts.append(self.count)

    def _post_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        self._depth = max(self._depth - 1, 0)
        if id(module) in self._relu_names and self._starts:
            start = self._starts.pop()
            if output is not None and self.count == start:  # None: forward raised
                name = self._relu_names[id(module)]
                raise RuntimeError(
                    f"relu_rule: the {type(module).__name__} module {name!r} ran without the "
                    f"{self.rule!r} rule: its forward does not call torch.nn.functional.relu, "
                    "relu6 or hardtanh. Replace it by nn.ReLU / nn.ReLU6, or make its forward "
                    "call F.relu."
                )

    def _install(self, model: nn.Module, undo: ExitStack) -> None:
        undo.callback(self._close)  # registered first, so it runs last
        self._model = model
        for name, module in model.named_modules():
            if _is_relu_like(module):
                self._relu_names[id(module)] = name or "<model>"
            undo.callback(module.register_forward_pre_hook(self._pre_hook).remove)
            handle = module.register_forward_hook(self._post_hook, always_call=True)
            undo.callback(handle.remove)
        self.active = True
        undo.enter_context(_ReLURuleMode(self))

    def _close(self) -> None:
        self.active = False
        self._model, self._relu_names, self._starts, self._depth = None, {}, [], 0


class _ReLURuleMode(TorchFunctionMode):
    """Sends the ReLU calls made inside the model's forward through the rule."""

    def __init__(self, handle: ReLURuleHandle) -> None:
        super().__init__()
        self.handle = handle

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        call = _as_relu_call(func, args, kwargs) if self.handle._in_forward() else None
        if call is None:
            return func(*args, **kwargs)
        x, upper, inplace = call
        self.handle.count += 1
        return _ReLUWithRule.apply(x, self.handle.rule, upper, bool(inplace))


def _open_handle(model: nn.Module) -> tuple[ReLURuleHandle, str] | None:
    """An open handle hooked on ``model`` or one of its submodules, with the module name."""
    for name, module in model.named_modules():
        for hook in module._forward_pre_hooks.values():
            owner = getattr(hook, "__self__", None)
            if isinstance(owner, ReLURuleHandle) and owner.active:
                return owner, name or "<model>"
    return None


def _check_activations(model: nn.Module) -> None:
    if any(_is_relu_like(m) for m in model.modules()):
        return
    others = {n: type(m).__name__ for n, m in model.named_modules() if _is_other_activation(m)}
    if others:
        kinds = ", ".join(sorted(set(others.values())))
        raise ValueError(
            f"relu_rule: the rules {RULES} are defined for ReLU networks, but this model has "
            f"no ReLU or ReLU6 module and its activations are {kinds} (e.g. module "
            f"{next(iter(others))!r}). Use the plain gradient for this model, or a ReLU "
            "network such as AlexNet, VGG16 or tf_efficientnet_lite0."
        )


@contextmanager
def relu_rule(model: nn.Module, rule: str) -> Iterator[ReLURuleHandle]:
    """Send the backward pass of ``model`` through ReLUs by ``rule``.

    Args:
        model: any ``nn.Module``; inputs and outputs of any shape, e.g.
            ``(N, 3, H, W) -> (N, 1000)``. Nothing in it is changed.
        rule: ``"backprop"``, ``"deconvnet"`` or ``"guided"`` (:data:`RULES`).

    Yields:
        A :class:`ReLURuleHandle` with ``.rule`` and ``.count``.

    Raises:
        ValueError: unknown rule, or a model whose activations are all
            non-ReLU (GELU, SiLU, ...). A model with no activation is fine.
        TypeError: ``model`` is not an ``nn.Module``.
        RuntimeError: another rule is already open on this model or on a
            part of it.

    On exit, also after an exception or KeyboardInterrupt, every hook is
    removed and the torch function mode is popped.
    """
    if rule not in RULES:
        raise ValueError(f"relu_rule: unknown rule {rule!r}; choose one of {RULES}.")
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"relu_rule: model must be a torch.nn.Module, got {type(model).__name__}; pass "
            "the network itself (for a lecture_utils Classifier, its .net)."
        )
    found = _open_handle(model)
    if found is not None:
        outer, where = found
        if outer._model is model and outer.rule == rule:
            yield outer  # re-entrant: the outer context restores everything
            return
        raise RuntimeError(
            f"relu_rule: rule {outer.rule!r} is already active on {where!r} of this model; "
            f"leave that `with relu_rule(...)` block before opening {rule!r} (contexts nest "
            "only on the same model with the same rule)."
        )
    _check_activations(model)
    handle = ReLURuleHandle(rule)
    with ExitStack() as undo:
        handle._install(model, undo)
        yield handle


def count_relu_calls(model: nn.Module, x: Tensor) -> int:
    """Number of ReLU-like activations one forward pass ``model(x)`` runs.

    ``x`` is the model's input, e.g. ``(1, 3, H, W)``; runs without gradients.
    """
    with torch.no_grad(), relu_rule(model, "backprop") as ctx:
        model(x)
    return ctx.count
