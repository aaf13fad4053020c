"""Panel for notebook 05: one neuron's map under the three backward rules."""

from __future__ import annotations

import warnings

import ipywidgets as W

from ..attribution import TargetNotPredictedWarning, input_gradient
from ..display import normalize_gradient, to_png
from ..images import SAMPLE_NAMES, sample_image
from ..relu_rules import RULES
from ..targets import Channel, channel_count
from .common import LAYOUT, STYLE, RunArea


def guided_panel(clf, image: str = "chelsea", layer: str | None = None, channel: int = 0,
                 rule: str = "guided") -> W.Widget:
    """Pick an image, a layer, a channel and a backward rule; the map is drawn for the
    channel's strongest position (the slides' step b), then backpropagated (step c)."""
    layers = clf.feature_layers or clf.layer_names()
    layer = layer or layers[len(layers) // 2]
    image_w = W.Dropdown(options=list(SAMPLE_NAMES), value=image, description="image",
                         style=STYLE, layout=LAYOUT)
    layer_w = W.Dropdown(options=layers, value=layer, description="layer", style=STYLE,
                         layout=LAYOUT)
    channel_w = W.IntSlider(value=channel, min=0, max=channel_count(clf, layer) - 1,
                            description="channel", style=STYLE, layout=LAYOUT,
                            continuous_update=False)
    rule_w = W.ToggleButtons(options=list(RULES), value=rule, description="rule", style=STYLE)
    area = RunArea("Show", clf.input_size, curve=False)
    photo = W.Image(format="png", width=clf.input_size, height=clf.input_size)

    def resize(change):
        channel_w.max = channel_count(clf, change["new"]) - 1

    layer_w.observe(resize, names="value")

    def run():
        x = clf.preprocess(sample_image(image_w.value))
        photo.value = to_png(clf.deprocess(x))
        neuron = Channel(layer_w.value, channel_w.value, reduce="max")  # strongest position
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TargetNotPredictedWarning)
            grad = input_gradient(clf, x, neuron, rule=rule_w.value)[0]
        area.show(normalize_gradient(grad, signed=True),
                  f"{rule_w.value}: channel {neuron.layer}:{neuron.channel} at its strongest position")

    area.on_run(run)
    for w in (image_w, layer_w, channel_w, rule_w):
        w.observe(lambda _change: run(), names="value")
    box = area.box([image_w, layer_w, channel_w, rule_w])
    return W.HBox([box, photo])
