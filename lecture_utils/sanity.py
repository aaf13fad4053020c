"""Sanity checks for saliency methods (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

An explanation should depend on what the network has learnt. Adebayo et al.
test that directly with **cascading randomisation**: re-initialise the
network's layers one group at a time, from the classifier down to the first
convolution, and after each step compare the new map with the map of the
trained network. A method that explains the *model* should change as soon as
the top layers are random; a method whose maps stay the same is showing the
*image* (its edges) rather than the model's reasons.

The comparison is the Spearman rank correlation between two maps (the
Pearson correlation of their pixel ranks), which ignores the overall scale,
so it is fair across methods with very different magnitudes.

The trained classifier is never changed: the randomised networks are copies.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .attribution import TargetNotPredictedWarning, input_gradient, saliency_map

__all__ = ["rank_correlation", "layer_groups", "randomized_copy", "cascading_randomization",
           "CascadeResult"]


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps of the same shape (ties broken by position)."""
    if a.shape != b.shape:
        raise ValueError(f"Maps differ in shape: {tuple(a.shape)} and {tuple(b.shape)}.")
    ra = a.flatten().double().argsort().argsort().double()
    rb = b.flatten().double().argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.norm() * rb.norm()).item()
    return float((ra @ rb).item() / denominator) if denominator > 0 else float("nan")


def layer_groups(net: nn.Module) -> list[str]:
    """Top-level children of ``net`` that hold parameters, from the output down to the input.

    A ``Sequential`` or ``ModuleList`` child (EfficientNet's ``blocks``, AlexNet's
    ``features``) is split into its own children, so each block is one step.
    """
    groups = []
    for name, child in net.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
            groups += [f"{name}.{sub}" for sub, m in child.named_children()
                       if any(True for _ in m.parameters())]
        elif any(True for _ in child.parameters()):
            groups.append(name)
    return groups[::-1]


def _reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()  # unit scale, zero shift, fresh running statistics
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                w = torch.randn(m.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
                m.weight.copy_(w.to(m.weight))
                if m.bias is not None:
                    m.bias.zero_()


def randomized_copy(clf, groups: list[str], seed: int = 0):
    """A copy of ``clf`` whose layer groups ``groups`` have random (He-normal) weights."""
    net = copy.deepcopy(clf.net)
    generator = torch.Generator().manual_seed(seed)
    modules = dict(net.named_modules())
    for name in groups:
        if name not in modules:
            raise KeyError(f"Unknown layer group {name!r}; valid: {', '.join(layer_groups(clf.net))}.")
        _reinitialise(modules[name], generator)
    twin = copy.copy(clf)
    twin.net = net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return twin


@dataclass
class CascadeResult:
    """Maps after each step of cascading randomisation.

    ``steps``: ``"trained"``, then the name of each group re-initialised so far
    (cumulative, from the top); ``maps[rule]``: ``(len(steps), H, W)`` saliency
    maps (max over channels of the absolute value); ``correlation[rule]``: the
    rank correlation of each map with the trained one.
    """

    steps: list[str]
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    correlation: dict[str, list[float]] = field(default_factory=dict)


def cascading_randomization(clf, x: torch.Tensor, target, rules=("backprop", "guided"),
                            groups: list[str] | None = None, seed: int = 0) -> CascadeResult:
    """Re-initialise the layer groups of ``clf`` from the top, one more at each step, and
    record each rule's saliency map for image ``x`` ``(1, 3, H, W)`` and ``target``."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"cascading_randomization takes one image (1, 3, H, W), got {tuple(x.shape)}.")
    groups = layer_groups(clf.net) if groups is None else list(groups)
    result = CascadeResult(steps=["trained", *groups])
    maps = {rule: [] for rule in rules}
    for k in range(len(groups) + 1):
        model = clf if k == 0 else randomized_copy(clf, groups[:k], seed=seed)
        for rule in rules:
            with warnings.catch_warnings():
                if k > 0:  # a randomised network predicts anything: that is the point
                    warnings.simplefilter("ignore", TargetNotPredictedWarning)
                grad = input_gradient(model, x, target, rule=rule)
            maps[rule].append(saliency_map(grad)[0].cpu())
    for rule in rules:
        result.maps[rule] = torch.stack(maps[rule]).numpy()
        result.correlation[rule] = [rank_correlation(m, maps[rule][0]) for m in maps[rule]]
    return result
