"""Panels for notebooks 02 and 03: the saliency map of a chosen class, and GrabCut from it.

Both panels take their image from the same picker: a bundled sample, or a
file uploaded with the upload button (which then becomes the picked image).
"""

from __future__ import annotations

import io
import warnings

import ipywidgets as W
import numpy as np
import torch

from ..attribution import (
    REDUCTIONS,
    TargetNotPredictedWarning,
    input_gradient,
    saliency_map,
    smooth_grad,
)
from ..display import draw_box, normalize_gradient
from ..images import SAMPLE_NAMES, load_image, sample_image
from ..localization import grabcut_from_saliency
from .common import LAYOUT, STYLE, RunArea

UPLOADED = "(uploaded file)"


def _figure_png(panels: list[tuple[np.ndarray, str, str | None]], box=None) -> bytes:
    """Panels side by side as PNG bytes: ``(array, title, cmap)``; ``box`` is drawn on the last."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0 * len(panels), 3.2), dpi=80)
    FigureCanvasAgg(fig)
    for i, (array, title, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(array, cmap=cmap, vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if box is not None:
        draw_box(ax, box)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


class ImagePicker:
    """A dropdown of the bundled samples plus an upload button; ``image()`` gives the pick."""

    def __init__(self, value: str = "coffee") -> None:
        self.dropdown = W.Dropdown(options=[*SAMPLE_NAMES, UPLOADED], value=value,
                                   description="image", style=STYLE, layout=LAYOUT)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.upload.observe(self._uploaded, names="value")
        self.uploaded: np.ndarray | None = None

    def _uploaded(self, change) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        from PIL import Image

        self.uploaded = load_image(Image.open(io.BytesIO(bytes(item["content"]))))
        if self.dropdown.value == UPLOADED:  # already picked: redraw through the observer
            self.dropdown.value = SAMPLE_NAMES[0]
        self.dropdown.value = UPLOADED

    def image(self) -> np.ndarray:
        if self.dropdown.value == UPLOADED:
            if self.uploaded is None:
                raise ValueError("No file uploaded yet: press 'upload' and choose an image.")
            return self.uploaded
        return sample_image(self.dropdown.value)

    @property
    def widgets(self) -> list[W.Widget]:
        return [self.dropdown, self.upload]


def _class_box(clf, label: str) -> W.Combobox:
    return W.Combobox(value=label, options=list(clf.labels), ensure_option=False,
                      description="class", placeholder="empty = predicted class",
                      style=STYLE, layout=LAYOUT)


def saliency_panel(clf, image: str = "coffee", label: str = "", reduce: str = "max",
                   noise: float = 0.0, samples: int = 8, show: bool = True) -> W.Widget:
    """Saliency of a class for an image: image picker, class (empty: the predicted class),
    channel reduction, and SmoothGrad's noise (0 = the plain gradient) and samples.
    ``show``: draw the first picture at once (else on the first click)."""
    picker = ImagePicker(image)
    cls = _class_box(clf, label)
    reduce_w = W.ToggleButtons(options=list(REDUCTIONS), value=reduce, description="reduce",
                               style=STYLE)
    noise_w = W.FloatSlider(value=noise, min=0.0, max=0.5, step=0.05, description="noise",
                            style=STYLE, layout=LAYOUT, continuous_update=False)
    samples_w = W.IntSlider(value=samples, min=1, max=32, description="samples",
                            style=STYLE, layout=LAYOUT, continuous_update=False)
    area = RunArea("Show", clf.input_size, curve=False)
    picture = W.Image(format="png")

    def run():
        x = clf.preprocess(picker.image())
        top = clf.predict(x, k=1)[0]
        target = cls.value or top.label
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TargetNotPredictedWarning)  # said in the status
            if noise_w.value > 0:
                grad = smooth_grad(clf, x, target, noise=noise_w.value, samples=samples_w.value)
            else:
                grad = input_gradient(clf, x, target)
        sal = saliency_map(grad, reduce_w.value)[0]
        signed = reduce_w.value == "signed"
        picture.value = _figure_png([
            (normalize_gradient(sal, signed=signed), f"M ({reduce_w.value})",
             "bwr" if signed else "hot"),
        ])
        note = "" if target == top.label else " (<b>not</b> the predicted class)"
        method = f"SmoothGrad, {samples_w.value} samples" if noise_w.value > 0 else "gradient"
        area.show(_figure_png([(clf.deprocess(x), f"top-1: {top.label}", None)]),
                  f"{target}{note}: {method}")

    area.preview.width = area.preview.height = ""
    area.on_run(run)
    for w in (picker.dropdown, reduce_w):
        w.observe(lambda _change: area.button.click(), names="value")
    box = area.box([*picker.widgets, cls, reduce_w, noise_w, samples_w])
    if show:
        area.button.click()
    return W.HBox([box, picture])


def grabcut_panel(clf, image: str = "coffee", fg_quantile: float = 0.95,
                  bg_quantile: float = 0.30, iterations: int = 5,
                  smooth_sigma: float = 0.0, show: bool = True) -> W.Widget:
    """GrabCut from the saliency of the predicted class: quantile sliders for the seeds,
    iterations, an optional blur of the map (pixels), image picker. ``show``: draw the
    first result at once (else on the first click)."""
    picker = ImagePicker(image)
    fg_w = W.FloatSlider(value=fg_quantile, min=0.5, max=0.99, step=0.01,
                         description="fg quantile", style=STYLE, layout=LAYOUT,
                         continuous_update=False)
    bg_w = W.FloatSlider(value=bg_quantile, min=0.01, max=0.9, step=0.01,
                         description="bg quantile", style=STYLE, layout=LAYOUT,
                         continuous_update=False)
    it_w = W.IntSlider(value=iterations, min=1, max=10, description="iterations",
                       style=STYLE, layout=LAYOUT, continuous_update=False)
    sigma_w = W.FloatSlider(value=smooth_sigma, min=0.0, max=6.0, step=0.5,
                            description="blur σ (px)", style=STYLE, layout=LAYOUT,
                            continuous_update=False)
    area = RunArea("Segment", clf.input_size, curve=False)
    picture = W.Image(format="png")
    cache: dict[int, tuple[np.ndarray, np.ndarray, str]] = {}

    def saliency_of(rgb: np.ndarray):
        key = hash(rgb.tobytes())
        if key not in cache:  # the gradient does not depend on the sliders
            x = clf.preprocess(rgb)
            top = clf.predict(x, k=1)[0].label
            sal = saliency_map(input_gradient(clf, x, top))[0]
            cache[key] = (clf.deprocess(x), sal.cpu().numpy(), top)
        return cache[key]

    def run():
        photo, sal, top = saliency_of(picker.image())
        area.show(_figure_png([(photo, f"top-1: {top}", None)]), "running GrabCut ...")
        result = grabcut_from_saliency(photo, sal, fg_w.value, bg_w.value, it_w.value,
                                       smooth_sigma=sigma_w.value)
        seeds = np.full(photo.shape, 0.5)
        seeds[result.seeds == 0] = (0.1, 0.2, 0.9)  # background: blue
        seeds[result.seeds == 1] = (1.0, 0.2, 0.1)  # foreground: red
        cut = photo * (0.35 + 0.65 * result.mask[..., None])
        picture.value = _figure_png([
            (normalize_gradient(torch.as_tensor(sal)), "saliency M", "hot"),
            (seeds, "seeds (red fg, blue bg)", None),
            (cut, "GrabCut mask and box", None),
        ], box=result.box)
        area.status.value = f"box {result.box}, object {result.mask.mean():.0%} of the image"

    area.preview.width = area.preview.height = ""
    area.on_run(run)
    picker.dropdown.observe(lambda _change: area.button.click(), names="value")
    box = area.box([*picker.widgets, fg_w, bg_w, it_w, sigma_w])
    if show:
        area.button.click()
    return W.VBox([box, picture])
