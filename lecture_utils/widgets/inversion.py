"""Panel for notebook 04: reconstruction from the code of a chosen layer."""

from __future__ import annotations

import ipywidgets as W

from ..display import to_png
from ..images import SAMPLE_NAMES, sample_image
from ..inversion import LOGITS, InversionSettings, invert, suggested_settings
from .common import (
    LAYOUT,
    STYLE,
    RunArea,
    lambda_slider,
    step_size_slider,
    steps_slider,
)


def inversion_panel(clf, image: str = "chelsea", layer: str = "blocks.3", seed: int = 0,
                    size: int | None = None) -> W.Widget:
    """Reconstruction: pick a photograph and a layer, the weights λ_TV and λ_α, step size, steps.

    Changing the layer resets λ_TV to that depth's suggestion. ``size`` shrinks the
    photograph (pixels, square) for quick runs; the default is the model's input size.
    """
    defaults = InversionSettings()
    layers = [*(clf.feature_layers or clf.layer_names()), "global_pool", LOGITS]
    layers = [name for name in dict.fromkeys(layers) if name == LOGITS or name in clf.layer_names()]
    picture = W.Dropdown(options=list(SAMPLE_NAMES), value=image, description="image",
                         style=STYLE, layout=LAYOUT)
    layer_w = W.Dropdown(options=layers, value=layer, description="layer", style=STYLE, layout=LAYOUT)
    lam_tv = lambda_slider(suggested_settings(clf, layer)["lambda_tv"], "λ_TV (smoothness)")
    lam_alpha = lambda_slider(defaults.lambda_alpha, "λ_α (range)")
    lr = step_size_slider(defaults.lr)
    steps = steps_slider(defaults.steps)
    side = size or clf.input_size
    area = RunArea("Reconstruct", side, curve_title="objective and its terms")
    original = W.Image(format="png", width=side, height=side)

    def show_original(_change=None):
        x = clf.preprocess(sample_image(picture.value))
        original.value = to_png(clf.deprocess(_resize(x, size)))

    def reset(change):
        lam_tv.value = suggested_settings(clf, change["new"])["lambda_tv"]

    picture.observe(show_original, names="value")
    layer_w.observe(reset, names="value")
    show_original()

    def run():
        x = _resize(clf.preprocess(sample_image(picture.value)), size)
        result = invert(
            clf, x, layer_w.value, lambda_tv=lam_tv.value, lambda_alpha=lam_alpha.value,
            lr=lr.value, steps=steps.value, seed=seed, callback=area.live, progress=False,
        )
        area.finish(result, f"{result.layer}: normalised code error <b>{result.code_error:.3f}</b> "
                            f"(from {result.initial_code_errors[0]:.2f})")

    area.on_run(run)
    return W.VBox([
        area.box([picture, layer_w, lam_tv, lam_alpha, lr, steps]),
        W.HBox([W.HTML("<b>original</b>"), original]),
    ])


def _resize(x, size: int | None):
    if size is None or x.shape[-1] == size:
        return x
    import torch.nn.functional as F

    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
