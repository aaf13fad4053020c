"""What to explain: a class score S_c or a neuron inside the network.

The lecture maximises (and differentiates) two kinds of quantity:

* a **class score** S_c(I), the raw logit of class ``c`` *before* the softmax
  (Simonyan et al. 2014): the softmax could grow by pushing the other classes
  down instead of making the image look more like ``c``;
* a **neuron**: the slides' "set activations in a layer of interest to all
  zero, except 1.0 for a neuron of interest", i.e. the activation of one
  channel of one layer, at a position ``(y, x)`` or averaged over positions.

A target is written as a class index (``1``), a label (``"goldfish"``), a
string ``"layer:channel"`` (``"blocks.4:17"``) or a :class:`Neuron`.
:func:`resolve_target` turns any of them into a :class:`ClassTarget` or a
:class:`Neuron`, and :func:`target_scores` computes one score per image.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .layers import activations

__all__ = ["ClassTarget", "Neuron", "resolve_target", "resolve_targets", "target_scores",
           "score_pass", "scores_from", "channel_count"]


@dataclass(frozen=True)
class ClassTarget:
    """The raw score (logit) of ImageNet class ``index``."""

    index: int
    label: str

    def __str__(self) -> str:
        return f"class {self.index} ({self.label})"


@dataclass(frozen=True)
class Neuron:
    """Channel ``channel`` of layer ``layer``, at ``(y, x)`` or, if those are None, averaged over
    all positions of the feature map (a "channel" objective)."""

    layer: str
    channel: int
    y: int | None = None
    x: int | None = None

    @classmethod
    def parse(cls, text: str) -> Neuron:
        """``"layer:channel"`` or ``"layer:channel:y:x"`` to a :class:`Neuron`."""
        parts = text.split(":")
        try:
            if len(parts) == 2:
                return cls(parts[0], int(parts[1]))
            if len(parts) == 4:
                return cls(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))
        except ValueError:
            pass
        raise ValueError(
            f"Cannot read a neuron from {text!r}: write 'layer:channel' (e.g. 'blocks.4:17') "
            "or 'layer:channel:y:x'."
        )

    def __str__(self) -> str:
        where = "" if self.y is None else f" at (y={self.y}, x={self.x})"
        return f"{self.layer}:{self.channel}{where}"


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


def resolve_target(clf, target) -> ClassTarget | Neuron:
    """Any way of naming a target (index, label, ``"layer:channel"``, Neuron) to a target object.

    Raises ``ValueError`` for an index outside 0..999, an unknown label or a
    negative channel, and ``KeyError`` for an unknown layer.
    """
    if isinstance(target, (ClassTarget, Neuron)):
        resolved = target
    elif isinstance(target, numbers.Integral) and not isinstance(target, bool):
        index = int(target)
        if not 0 <= index < len(clf.labels):
            raise ValueError(
                f"Class index {index} is out of range: ImageNet classes are 0..{len(clf.labels) - 1}."
            )
        return ClassTarget(index, clf.labels[index])
    elif isinstance(target, str) and ":" in target:
        resolved = Neuron.parse(target)
    elif isinstance(target, str):
        index = _label_index(clf.labels, target)
        return ClassTarget(index, clf.labels[index])
    else:
        raise TypeError(
            f"Cannot use {target!r} as a target: pass a class index, a label, "
            "'layer:channel' or a Neuron."
        )
    if isinstance(resolved, ClassTarget):
        return resolve_target(clf, resolved.index)
    clf.layer(resolved.layer)  # raises KeyError with close names
    if resolved.channel < 0:
        raise ValueError(f"Channel must be >= 0, got {resolved.channel}.")
    if (resolved.y is None) != (resolved.x is None):
        raise ValueError("Give both y and x for a neuron position, or neither.")
    return resolved


def resolve_targets(clf, targets, n: int | None = None) -> list[ClassTarget | Neuron]:
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


def _neuron_score(act: torch.Tensor, neuron: Neuron, row: int) -> torch.Tensor:
    if act.dim() == 2:  # a fully connected layer: (N, C)
        act = act[:, :, None, None]
    if act.dim() != 4:
        raise ValueError(
            f"Layer {neuron.layer!r} outputs shape {tuple(act.shape)}; pick a conv or linear layer."
        )
    channels, height, width = act.shape[1:]
    if neuron.channel >= channels:
        raise ValueError(
            f"Channel {neuron.channel} is out of range: layer {neuron.layer!r} has "
            f"{channels} channels (0..{channels - 1})."
        )
    if neuron.y is None:
        return act[row, neuron.channel].mean()
    if not (0 <= neuron.y < height and 0 <= neuron.x < width):
        raise ValueError(
            f"Position (y={neuron.y}, x={neuron.x}) is outside layer {neuron.layer!r}'s "
            f"{height}x{width} feature map."
        )
    return act[row, neuron.channel, neuron.y, neuron.x]


def target_scores(clf, x: torch.Tensor, targets: Sequence[ClassTarget | Neuron]) -> torch.Tensor:
    """The score of each image's target, ``(N,)``: raw logit or neuron activation.

    ``targets`` has one resolved target per image of ``x`` ``(N, 3, H, W)``. Only
    the layers needed are computed when all targets are neurons.
    """
    if len(targets) != x.shape[0]:
        raise ValueError(f"Got {len(targets)} targets for a batch of {x.shape[0]} images.")
    clf.ensure_eval()
    return score_pass(clf, x, targets)[1]


def score_pass(clf, x: torch.Tensor, targets: Sequence[ClassTarget | Neuron]):
    """One forward pass: the logits ``(N, 1000)`` (None if every target is a neuron) and each
    image's target score ``(N,)``. For loops that checked eval mode once before starting."""
    layers = [t.layer for t in targets if isinstance(t, Neuron)]
    need_logits = any(isinstance(t, ClassTarget) for t in targets)
    logits, acts = activations(clf.net, x, layers, logits=need_logits)
    return logits, scores_from(logits, acts, targets)


def scores_from(
    logits: torch.Tensor | None, acts: dict, targets: Sequence[ClassTarget | Neuron]
) -> torch.Tensor:
    """Each image's target score ``(N,)`` from a forward pass already made: the logits
    ``(N, 1000)`` (None if no target is a class) and ``{layer: activation}``."""
    scores = [
        logits[i, t.index] if isinstance(t, ClassTarget) else _neuron_score(acts[t.layer], t, i)
        for i, t in enumerate(targets)
    ]
    return torch.stack(scores)


@torch.no_grad()
def channel_count(clf, layer: str) -> int:
    """How many channels layer ``layer`` has (runs the network once on a blank image)."""
    blank = torch.zeros(1, 3, clf.input_size, clf.input_size, device=clf.device)
    _, acts = activations(clf.net, blank, [layer])
    return int(acts[layer].shape[1])
