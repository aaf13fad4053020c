"""Layers by dotted name, and reading their activations during a forward pass.

Every method in the lecture looks inside the network: a neuron to maximise,
a code Φ(x) to invert, a layer where the backward pass starts. This module
finds a layer by the dotted name PyTorch gives it (``"blocks.3"``,
``"features.8"``) and records its output with forward hooks that are always
removed, also when the forward pass raises or is interrupted.

When only activations are wanted the forward pass stops as soon as the last
of the requested layers has run: deeper layers cannot change them, so there
is no need to compute them (inverting an early layer is then several times
cheaper than a full forward pass).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["layer_names", "get_layer", "record", "activations"]


def layer_names(net: nn.Module) -> list[str]:
    """Dotted names of every sub-module, in order of definition."""
    return [name for name, _ in net.named_modules() if name]


def get_layer(net: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name``; an unknown name raises ``KeyError`` listing close ones."""
    if not isinstance(name, str):
        raise TypeError(f"A layer name is a string such as 'blocks.3', got {type(name).__name__}.")
    if name:
        try:  # follows the dotted path: cheap enough for every step of a loop
            return net.get_submodule(name)
        except AttributeError:
            pass
    names = layer_names(net)
    close = difflib.get_close_matches(name, names, n=6, cutoff=0.5)
    tops = [n for n in names if "." not in n]
    hint = f"Close names: {', '.join(close)}." if close else f"Top-level layers: {', '.join(tops)}."
    raise KeyError(f"Unknown layer {name!r}. {hint} clf.layer_names() lists all of them.")


class _Stop(Exception):
    """Raised by a hook to end the forward pass once every layer of interest has run."""


@contextmanager
def record(net: nn.Module, names: Sequence[str], stop: bool = False) -> Iterator[dict]:
    """Record the outputs of the layers ``names`` while inside the ``with`` block.

    Yields a dict ``{name: tensor}`` filled by each forward pass. With
    ``stop=True`` the forward pass is cut short once all of them have run (the
    network call then raises an internal exception: use :func:`activations`).
    Hooks are removed on exit, whatever ends the block.
    """
    modules = {name: get_layer(net, name) for name in names}
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name):
        def hook(_module, _inputs, output):
            output = output[0] if isinstance(output, (tuple, list)) else output
            # a later in-place op (ReLU(inplace=True)) would overwrite what we keep: copy it
            outputs[name] = output.clone()
            if stop and len(outputs) == len(modules):
                raise _Stop

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def activations(
    net: nn.Module, x: torch.Tensor, names: Sequence[str], logits: bool = False
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Outputs of the layers ``names`` for input ``x``; with ``logits=True`` also the output.

    Without ``logits`` only the layers up to the deepest requested one run.
    Returns ``(logits or None, {name: activation})``.
    """
    out = None
    with record(net, list(dict.fromkeys(names)), stop=not logits) as outputs:
        try:
            out = net(x)
        except _Stop:
            pass
        found = dict(outputs)
    missing = [name for name in names if name not in found]
    if missing:
        raise RuntimeError(
            f"Layer(s) {', '.join(missing)} did not run in the forward pass "
            "(they may be unused by this network); pick another layer."
        )
    return out, found
