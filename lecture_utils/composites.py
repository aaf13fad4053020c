r"""Images with a known answer: an object pasted at a known place, and the pointing game.

Why. To check that a saliency map *localises*, we need images where we know
where the object is. Photographs rarely say so (no boxes ship with the
samples), and in most of them the object sits in the middle, where a map that
ignores the image would also point. So we make the images ourselves: a crop of
a sample photograph (the cat's face, the coffee cup, the rocket) is scaled to
a known size and pasted at a random place on a plain or textured background.
The composite comes with the object's box and mask.

The pointing game (Zhang et al. 2016, "Top-down Neural Attention by
Excitation Backprop") asks one question per image: does the maximum of the
map fall inside the object? Its hit rate is compared with a baseline that
needs no network at all, always pointing at the centre of the image:

.. math::

    \text{hit rate} = \frac{1}{N}\sum_n \big[\arg\max_{ij} M^{(n)}_{ij} \in \text{object}_n\big].

A map that beats the centre baseline on composites whose objects are placed
anywhere has found the object, not the photographer's habit. The same
composites serve every attribution method (``methods`` maps a name to a
function ``(clf, x, targets) -> (N, 3, H, W)`` gradient, e.g.
:func:`~lecture_utils.attribution.input_gradient`, ``guided_backprop``,
``deconvnet``), so they can be compared on equal terms.

Example::

    clf = lu.load_model()
    comps = lu.make_composites(clf.input_size, n=24, seed=0)
    lu.pointing_game(clf, comps)      # {'saliency': 0.8..., 'centre': 0.2...}
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .attribution import TargetNotPredictedWarning, input_gradient, saliency_map
from .display import draw_box
from .images import sample_image

__all__ = [
    "OBJECTS", "BACKGROUNDS", "Composite", "compose", "make_composites", "pointing_game",
    "show_localization",
]

#: Objects to paste: name -> (sample image, crop box ``(x0, y0, x1, y1)`` in it, ImageNet label).
OBJECTS: dict[str, tuple[str, tuple[int, int, int, int], str]] = {
    "cat": ("chelsea", (30, 0, 400, 300), "Egyptian cat"),
    "coffee": ("coffee", (75, 15, 480, 390), "espresso"),
    "rocket": ("rocket", (280, 110, 370, 410), "missile"),
}
BACKGROUNDS = ("plain", "texture")


@dataclass(frozen=True, eq=False)
class Composite:
    """One composed image and where its object is.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB, ready for ``clf.preprocess`` (no resizing at S).
        mask: ``(S, S)`` bool, the pasted object's pixels.
        box: ``(x0, y0, x1, y1)``, x1 and y1 exclusive (as in :mod:`lecture_utils.localization`).
        label: ImageNet label of the object, the target to explain.
        name: the object's key in :data:`OBJECTS`; ``background``: ``"plain"`` or ``"texture"``.
    """

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    label: str
    name: str
    background: str


def _crop(name: str) -> tuple[np.ndarray, str]:
    if name not in OBJECTS:
        raise ValueError(f"Unknown object {name!r}: choose one of {', '.join(OBJECTS)}.")
    sample, (x0, y0, x1, y1), label = OBJECTS[name]
    return sample_image(sample)[y0:y1, x0:x1], label


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A plain colour (a muted random hue) or smooth coloured noise, ``(size, size, 3)`` uint8."""
    if kind == "plain":
        colour = rng.uniform(60, 200, size=3)
        return np.broadcast_to(colour, (size, size, 3)).round().astype(np.uint8).copy()
    if kind == "texture":
        import cv2

        noise = rng.uniform(0, 1, size=(size // 8 + 2, size // 8 + 2, 3)).astype(np.float32)
        smooth = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        fine = rng.normal(0, 0.08, size=(size, size, 3))
        return np.clip((0.2 + 0.6 * smooth + fine) * 255, 0, 255).round().astype(np.uint8)
    raise ValueError(f"Unknown background {kind!r}: choose one of {', '.join(BACKGROUNDS)}.")


def compose(name: str = "coffee", size: int = 224, scale: float = 0.4,
            position: tuple[int, int] | None = None, background: str = "plain",
            seed: int = 0) -> Composite:
    """Paste object ``name`` onto a ``size``×``size`` background.

    ``scale``: the object's longer side as a fraction of ``size`` (0 < scale <= 1);
    ``position``: its top-left corner ``(x, y)`` in pixels, random (uniform over
    all places where it fits) when None; ``background``: ``"plain"`` or ``"texture"``.
    """
    from PIL import Image

    if not 0 < scale <= 1:
        raise ValueError(f"scale must lie in (0, 1] (a fraction of the image side), got {scale}.")
    rng = np.random.default_rng(seed)
    crop, label = _crop(name)
    h, w = crop.shape[:2]
    factor = scale * size / max(h, w)
    ow, oh = max(1, round(w * factor)), max(1, round(h * factor))
    obj = np.asarray(Image.fromarray(crop).resize((ow, oh), Image.BICUBIC))
    if position is None:
        position = (int(rng.integers(0, size - ow + 1)), int(rng.integers(0, size - oh + 1)))
    x, y = position
    if not (0 <= x <= size - ow and 0 <= y <= size - oh):
        raise ValueError(
            f"position {position} puts the {ow}x{oh} object outside the {size}x{size} image: "
            f"x must lie in 0..{size - ow} and y in 0..{size - oh}."
        )
    image = _background(background, size, rng)
    image[y : y + oh, x : x + ow] = obj
    mask = np.zeros((size, size), dtype=bool)
    mask[y : y + oh, x : x + ow] = True
    return Composite(image, mask, (x, y, x + ow, y + oh), label, name, background)


def make_composites(size: int = 224, n: int = 24, names: Sequence[str] = tuple(OBJECTS),
                    backgrounds: Sequence[str] = BACKGROUNDS,
                    scale: tuple[float, float] = (0.35, 0.5), seed: int = 0) -> list[Composite]:
    """``n`` composites cycling through ``names`` × ``backgrounds``, random scale and place."""
    rng = np.random.default_rng(seed)
    combos = [(o, b) for b in backgrounds for o in names]
    return [
        compose(o, size, float(rng.uniform(*scale)), None, b, seed=int(rng.integers(2**31)))
        for o, b in (combos[i % len(combos)] for i in range(n))
    ]


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` with every pixel within ``pixels`` (Euclidean) of it added."""
    if pixels == 0:
        return mask
    import cv2

    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= pixels


def _hits(maps: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """Whether each ``(H, W)`` map's maximum lies in its mask; ``(N,)`` bool."""
    flat = maps.flatten(1).argmax(1).cpu().numpy()
    ys, xs = np.unravel_index(flat, maps.shape[1:])
    return masks[np.arange(len(flat)), ys, xs]


def pointing_game(clf, composites: Sequence[Composite],
                  methods: Mapping[str, Callable] | None = None, reduce: str = "max",
                  tolerance: int = 0, batch_size: int = 8,
                  details: bool = False) -> dict[str, float] | dict:
    """Hit rate of each method's saliency maximum, and of the image centre, on ``composites``.

    ``methods``: ``{name: fn(clf, x, targets) -> (N, 3, H, W)}``; default
    ``{"saliency": input_gradient}``. Each gradient is folded with
    :func:`~lecture_utils.attribution.saliency_map` (``reduce``). The composites
    must be ``clf.input_size`` square, so that pixels and mask line up. The target
    is each object's label, also where the model predicts another class (no warning).
    ``tolerance``: a point within this many pixels of the object also counts
    (Zhang et al. use 15 at 224 px); 0 asks for the object itself.
    Returns ``{name: rate, ..., "centre": rate}``; with ``details=True`` also
    ``{"hits": {name: (N,) bool}, "n": N}``.
    """
    if not composites:
        raise ValueError("pointing_game needs at least one composite: use make_composites.")
    size = clf.input_size
    for c in composites:
        if c.image.shape[:2] != (size, size):
            raise ValueError(
                f"composite {c.name!r} is {c.image.shape[1]}x{c.image.shape[0]} but the model "
                f"takes {size}x{size}: make composites with size=clf.input_size."
            )
    if int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance must be a whole number of pixels >= 0, got {tolerance}.")
    methods = dict(methods or {"saliency": input_gradient})
    masks = np.stack([_grow(c.mask, int(tolerance)) for c in composites])
    hits: dict[str, np.ndarray] = {}
    for name, fn in methods.items():
        parts = []
        for start in range(0, len(composites), batch_size):
            chunk = composites[start : start + batch_size]
            x = torch.cat([clf.preprocess(c.image) for c in chunk])
            with warnings.catch_warnings():  # the label is the target even when not top-1
                warnings.simplefilter("ignore", TargetNotPredictedWarning)
                grad = fn(clf, x, [c.label for c in chunk])
            parts.append(_hits(saliency_map(grad, reduce), masks[start : start + len(chunk)]))
        hits[name] = np.concatenate(parts)
    hits["centre"] = masks[:, size // 2, size // 2]
    rates = {name: float(h.mean()) for name, h in hits.items()}
    return {**rates, "hits": hits, "n": len(composites)} if details else rates


def show_localization(image, result, title: str | None = None, ax=None,
                      point: tuple[int, int] | None = None, true_box=None):
    """Draw a GrabCut result: the image dimmed outside ``result.mask``, the foreground seeds
    outlined in red, the box in green and, optionally, a ``point`` ``(x, y)`` as a cyan star
    and the right answer ``true_box`` ``(x0, y0, x1, y1)`` dashed in white.

    ``image``: ``(H, W, 3)`` float in [0, 1] or uint8; ``result``: a
    :class:`~lecture_utils.localization.GrabCutResult` of that image. Returns the axes.
    """
    import matplotlib.pyplot as plt

    image = np.asarray(image)
    image = image / 255.0 if image.dtype == np.uint8 else image
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(np.clip(image * (0.35 + 0.65 * result.mask[..., None]), 0, 1))
    ax.contour(result.seeds == 1, levels=[0.5], colors="red", linewidths=0.5)
    for box, style in ((result.box, {"edgecolor": "lime"}),
                       (true_box, {"edgecolor": "white", "linestyle": "--"})):
        if box is not None:
            draw_box(ax, box, **style)
    if point is not None:
        ax.plot(*point, "c*", markersize=12)
    if title:
        ax.set_title(title, fontsize=10)
    ax.axis("off")
    return ax
