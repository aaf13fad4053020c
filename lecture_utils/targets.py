"""What to explain: a class score S_c, one neuron, or a whole channel inside the network.

The lecture maximises (and differentiates) three kinds of quantity, and this module is
the one place that computes them (the *scorer*: synthesis, reconstruction and attribution
all call :func:`score_pass`):

* a **class score** S_c(I), the raw logit of class ``c`` *before* the softmax
  (Simonyan et al. 2014): the softmax could grow by pushing the other classes
  down instead of making the image look more like ``c``;
* a **neuron**: the slides' "set activations in a layer of interest to all
  zero, except 1.0 for a neuron of interest": one unit, channel ``channel`` of
  a layer at position ``(y, x)`` of its feature map (:class:`Neuron`);
* a **channel**: the whole feature map of one channel, reduced to one number by a
  named reduction (:class:`Channel`): ``"mean"`` over all positions (notebook 01
  visualises channels this way, as Lucid's channel objective does) or ``"max"``, the
  strongest position (notebook 05: the slides' "pick a single intermediate neuron"
  is the one that fires most for this image).

A target is written as a class index (``1``), a label (``"goldfish"``), a
:class:`Neuron`, a :class:`Channel`, or a string: ``"layer:channel"`` is the channel's
mean, ``"layer:channel:max"`` its maximum and ``"layer:channel:y:x"`` one neuron.
:func:`resolve_target` turns any of them into a :class:`ClassTarget`, :class:`Neuron` or
:class:`Channel`.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from .layers import activations

__all__ = ["ClassTarget", "Neuron", "Channel", "ChannelReduction", "Target", "resolve_target",
           "resolve_targets", "score_pass", "channel_count"]

ChannelReduction = Literal["mean", "max"]  # how a Channel becomes one number


@dataclass(frozen=True)
class ClassTarget:
    """The raw score (logit) of ImageNet class ``index``."""

    index: int
    label: str

    def __str__(self) -> str:
        return f"class {self.index} ({self.label})"


@dataclass(frozen=True)
class Neuron:
    """One unit: channel ``channel`` of layer ``layer`` at position ``(y, x)`` of its feature map.

    For a whole channel (no position) use :class:`Channel`, which says how the map is reduced.
    """

    layer: str
    channel: int
    y: int | None = None
    x: int | None = None

    def __post_init__(self) -> None:
        if self.y is None or self.x is None:
            raise ValueError(
                f"Neuron({self.layer!r}, {self.channel}) needs a position y and x: a neuron is one "
                f"unit of the feature map. For the whole channel write Channel({self.layer!r}, "
                f"{self.channel}) (its mean over positions, notebook 01) or Channel({self.layer!r}, "
                f"{self.channel}, reduce='max') (its strongest position, notebook 05)."
            )

    def __str__(self) -> str:
        return f"{self.layer}:{self.channel}:{self.y}:{self.x}"


@dataclass(frozen=True)
class Channel:
    """Channel ``channel`` of layer ``layer``, its whole feature map reduced to one number:
    ``reduce="mean"`` (over all positions) or ``"max"`` (the strongest position)."""

    layer: str
    channel: int
    reduce: ChannelReduction = "mean"

    def __post_init__(self) -> None:
        if self.reduce not in get_args(ChannelReduction):
            raise ValueError(
                f"Unknown reduce {self.reduce!r} for a channel: choose 'mean' (all positions) "
                "or 'max' (the strongest position)."
            )

    def __str__(self) -> str:
        return f"{self.layer}:{self.channel}" + (":max" if self.reduce == "max" else "")


Target = ClassTarget | Neuron | Channel


def parse_unit(text: str) -> Neuron | Channel:
    """``"layer:channel"``, ``"layer:channel:max"`` or ``"layer:channel:y:x"`` to a target."""
    parts = text.split(":")
    try:
        if len(parts) == 2:
            return Channel(parts[0], int(parts[1]))
        if len(parts) == 3 and parts[2] in get_args(ChannelReduction):
            return Channel(parts[0], int(parts[1]), parts[2])
        if len(parts) == 4:
            return Neuron(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        pass
    raise ValueError(
        f"Cannot read a channel or neuron from {text!r}: write 'layer:channel' (e.g. "
        "'blocks.4:17', the channel's mean), 'layer:channel:max' (its strongest position) or "
        "'layer:channel:y:x' (one neuron)."
    )


def _label_index(labels: Sequence[str], text: str) -> int:
    exact = [i for i, lab in enumerate(labels) if lab.lower() == text.strip().lower()]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise ValueError(
            f"The label {text!r} names several classes ({', '.join(map(str, exact))}); "
            "pass the class index instead."
        )
    lowered = [lab.lower() for lab in labels]
    near = difflib.get_close_matches(text.lower(), lowered, n=5, cutoff=0.6)
    near += [lab for lab in lowered if text.lower() in lab and lab not in near]
    hint = f" Did you mean: {', '.join(repr(n) for n in near[:8])}?" if near else ""
    raise ValueError(f"Unknown class label {text!r}.{hint} clf.labels lists all 1000.")


def resolve_target(clf, target) -> Target:
    """Any way of naming a target (index, label, ``"layer:channel"``, Neuron, Channel) to a
    target object.

    Raises ``ValueError`` for an index outside 0..999, an unknown label or a
    negative channel, and ``KeyError`` for an unknown layer.
    """
    if isinstance(target, (ClassTarget, Neuron, Channel)):
        resolved = target
    elif isinstance(target, numbers.Integral) and not isinstance(target, bool):
        index = int(target)
        if not 0 <= index < len(clf.labels):
            raise ValueError(
                f"Class index {index} is out of range: ImageNet classes are 0..{len(clf.labels) - 1}."
            )
        return ClassTarget(index, clf.labels[index])
    elif isinstance(target, str) and ":" in target:
        resolved = parse_unit(target)
    elif isinstance(target, str):
        index = _label_index(clf.labels, target)
        return ClassTarget(index, clf.labels[index])
    else:
        raise TypeError(
            f"Cannot use {target!r} as a target: pass a class index, a label, "
            "'layer:channel', a Channel or a Neuron."
        )
    if isinstance(resolved, ClassTarget):
        return resolve_target(clf, resolved.index)
    clf.layer(resolved.layer)  # raises KeyError with close names
    if resolved.channel < 0:
        raise ValueError(f"Channel must be >= 0, got {resolved.channel}.")
    return resolved


def resolve_targets(clf, targets, n: int | None = None) -> list[Target]:
    """One target or a list of them, as a list of length ``n`` (one target is repeated)."""
    if isinstance(targets, (list, tuple)):
        if not targets:
            raise ValueError(
                "Got an empty list of targets: there is nothing to visualise or explain. "
                "Give a class (index or label), a neuron ('layer:channel' or Neuron), or a "
                "non-empty list of them."
            )
        resolved = [resolve_target(clf, t) for t in targets]
        if n is not None and len(resolved) != n:
            raise ValueError(
                f"Got {len(resolved)} targets for a batch of {n} images: give one target "
                "per image, or a single target for all of them."
            )
        return resolved
    return [resolve_target(clf, targets)] * (1 if n is None else n)


def _unit_score(act: torch.Tensor, target: Neuron | Channel, row: int) -> torch.Tensor:
    if act.dim() == 2:  # a fully connected layer: (N, C)
        act = act[:, :, None, None]
    if act.dim() != 4:
        raise ValueError(
            f"Layer {target.layer!r} outputs shape {tuple(act.shape)}; pick a conv or linear layer."
        )
    channels, height, width = act.shape[1:]
    if target.channel >= channels:
        raise ValueError(
            f"Channel {target.channel} is out of range: layer {target.layer!r} has "
            f"{channels} channels (0..{channels - 1})."
        )
    if isinstance(target, Channel):
        fmap = act[row, target.channel]
        return fmap.mean() if target.reduce == "mean" else fmap.flatten().max()
    if not (0 <= target.y < height and 0 <= target.x < width):
        raise ValueError(
            f"Position (y={target.y}, x={target.x}) is outside layer {target.layer!r}'s "
            f"{height}x{width} feature map."
        )
    return act[row, target.channel, target.y, target.x]


def score_pass(clf, x: torch.Tensor, targets: Sequence[Target]):
    """The scorer: one forward pass of ``x`` ``(N, 3, H, W)``, with one resolved target per
    image. Returns the logits ``(N, 1000)`` (None if no target is a class: then the network
    stops at the deepest layer needed) and each image's score ``(N,)``: the raw logit, the
    neuron's activation or the channel's reduction. Callers check eval mode first."""
    if len(targets) != x.shape[0]:
        raise ValueError(f"Got {len(targets)} targets for a batch of {x.shape[0]} images.")
    layers = [t.layer for t in targets if not isinstance(t, ClassTarget)]
    need_logits = any(isinstance(t, ClassTarget) for t in targets)
    logits, acts = activations(clf.net, x, layers, logits=need_logits)
    return logits, _scores_from(logits, acts, targets)


def _scores_from(logits: torch.Tensor | None, acts: dict, targets: Sequence[Target]) -> torch.Tensor:
    """Each image's target score ``(N,)`` from a forward pass already made: the logits
    ``(N, 1000)`` (None if no target is a class) and ``{layer: activation}``."""
    scores = [
        logits[i, t.index] if isinstance(t, ClassTarget) else _unit_score(acts[t.layer], t, i)
        for i, t in enumerate(targets)
    ]
    return torch.stack(scores)


@torch.no_grad()
def channel_count(clf, layer: str) -> int:
    """How many channels layer ``layer`` has (runs the network once on a blank image)."""
    blank = torch.zeros(1, 3, clf.input_size, clf.input_size, device=clf.device)
    _, acts = activations(clf.net, blank, [layer])
    return int(acts[layer].shape[1])
