"""Pictures: images, heat maps, overlays, grids and loss curves.

Every function accepts what the rest of the package produces: an ``(H, W, 3)``
float image in [0, 1] (``clf.deprocess``), a ``uint8`` array, a ``(3, H, W)``
or ``(1, 3, H, W)`` tensor of pixels, or an ``(H, W)`` map. Gradients are not
pictures: :func:`normalize_gradient` turns one into something showable by
clipping at a percentile first, so one extreme pixel cannot wash out the rest.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from .images import to_uint8

__all__ = ["show", "show_grid", "normalize_gradient", "plot_history", "to_png", "draw_box",
           "setup_figures"]


def _as_array(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float()
        if image.dim() == 4:
            if image.shape[0] != 1:
                raise ValueError(f"Show one image at a time, got a batch of {image.shape[0]}; use show_grid.")
            image = image[0]
        if image.dim() == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"Cannot show an array of shape {image.shape}: expected (H, W) or (H, W, 3).")
    return image


def normalize_gradient(grad, percentile: float = 99.0, signed: bool = False) -> np.ndarray:
    """Scale a gradient or saliency map into [0, 1] for display, clipping at ``percentile``.

    Unsigned (default): ``|g|`` divided by its ``percentile``-th value, clipped to
    [0, 1]. Signed: ``0.5 + g / (2 p)`` so zero is grey, clipped to [0, 1]. Works
    on ``(H, W)``, ``(H, W, 3)`` or ``(3, H, W)`` input; channels-first is moved last.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}.")
    g = _as_array(grad).astype(np.float64)
    scale = np.percentile(np.abs(g), percentile)
    if scale <= 0:
        return np.full(g.shape, 0.5 if signed else 0.0)
    if signed:
        return np.clip(0.5 + g / (2.0 * scale), 0.0, 1.0)
    return np.clip(np.abs(g) / scale, 0.0, 1.0)


def show(image, title: str | None = None, ax=None, cmap: str | None = None, overlay=None,
         alpha: float = 0.5):
    """Show one image (or a map, in ``cmap``, default ``"hot"``); ``overlay`` draws a map on top."""
    import matplotlib.pyplot as plt

    array = _as_array(image)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if array.ndim == 2:
        ax.imshow(array, cmap=cmap or "hot")
    else:
        ax.imshow(np.clip(array, 0, 255 if array.dtype == np.uint8 else 1))
    if overlay is not None:
        ax.imshow(_as_array(overlay), cmap=cmap or "jet", alpha=alpha)
    if title:
        ax.set_title(title, fontsize=10)
    ax.axis("off")
    return ax


def show_grid(images: Sequence, titles: Sequence[str] | None = None, ncols: int = 5,
              size: float = 2.6, cmap: str | None = None, suptitle: str | None = None):
    """Show several images in a grid; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    images = list(images)
    if not images:
        raise ValueError("show_grid needs at least one image.")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(images):
            show(images[i], titles[i] if titles else None, ax=ax, cmap=cmap)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_history(history: dict, ax=None, title: str = "objective"):
    """Plot each curve of a result's ``history`` dict against the step number."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for name, values in history.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    if history:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def draw_box(ax, box, **style) -> None:
    """Outline ``box`` ``(x0, y0, x1, y1)`` (x1, y1 exclusive, as GrabCut results give it) on
    ``ax`` around the pixels it covers; ``style``: matplotlib patch options (``edgecolor``...)."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    style = {"fill": False, "lw": 2, "edgecolor": "lime", **style}
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, **style))


def to_png(image) -> bytes:
    """PNG bytes of an image (for ``ipywidgets.Image``), ``(H, W, 3)`` floats or uint8."""
    from PIL import Image

    array = to_uint8(_as_array(image))
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def setup_figures(quality: int = 85) -> None:
    """Show figures that hold pictures as JPEG and the others (curves, bars) as PNG.

    PNG is lossless and poor at photographs and gradient maps: a row of five 224-pixel pictures
    is about 800 KB as PNG and about 130 KB as JPEG at ``quality`` 85 with full colour
    resolution (no chroma subsampling), which looks the same. Lines and text stay sharp in PNG.
    A figure holds pictures when one of its axes has an ``imshow`` image. Call it once, after
    ``%matplotlib inline``; outside IPython it does nothing.
    """
    from IPython import get_ipython
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        return

    def has_pictures(fig: Figure) -> bool:
        return any(ax.images for ax in fig.axes)

    def as_png(fig: Figure):
        return None if has_pictures(fig) else print_figure(fig, "png", base64=True)

    def as_jpeg(fig: Figure):
        if not has_pictures(fig):
            return None
        return print_figure(fig, "jpeg", base64=True, pil_kwargs={"quality": quality, "subsampling": 0})

    formatters = shell.display_formatter.formatters
    formatters["image/png"].for_type(Figure, as_png)
    formatters["image/jpeg"].for_type(Figure, as_jpeg)
