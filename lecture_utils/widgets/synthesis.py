"""Panels for notebook 01: class models and neuron visualisations."""

from __future__ import annotations

import ipywidgets as W

from ..synthesis import RECIPES, visualize_class, visualize_neuron
from ..targets import Channel, channel_count
from .common import LAYOUT, STYLE, RunArea, lambda_slider, step_size_slider, steps_slider


def _recipe_controls(default: str):
    recipe = W.Dropdown(options=list(RECIPES), value=default, description="recipe",
                        style=STYLE, layout=LAYOUT)
    lam = lambda_slider(RECIPES[default].l2)
    lr = step_size_slider(RECIPES[default].lr)
    steps = steps_slider(RECIPES[default].steps)

    def reset(change):  # each recipe has its own sensible λ, step size and steps
        r = RECIPES[change["new"]]
        lam.value, lr.value, steps.value = max(r.l2, 1e-7), r.lr, r.steps

    recipe.observe(reset, names="value")
    return recipe, lam, lr, steps


def class_model_panel(clf, label: str = "goldfish", recipe: str = "fourier", seed: int = 0) -> W.Widget:
    """Class model visualisation: pick a class (type to search), λ, step size and steps, run."""
    cls = W.Combobox(value=label, options=list(clf.labels), ensure_option=True,
                     description="class", placeholder="type to search", style=STYLE, layout=LAYOUT)
    recipe_w, lam, lr, steps = _recipe_controls(recipe)
    area = RunArea("Run", clf.input_size)

    def run():
        result = visualize_class(
            clf, cls.value, recipe_w.value, l2=lam.value, lr=lr.value, steps=steps.value,
            seed=seed, callback=area.live, progress=False,
        )
        top = clf.predict(result.inputs, k=1)[0]
        area.finish(result, f"P({cls.value}) = <b>{result.probabilities[0]:.3f}</b>; "
                            f"top-1: {top.label}")

    area.on_run(run)
    return area.box([cls, recipe_w, lam, lr, steps])


def neuron_panel(clf, layer: str | None = None, channel: int = 0, recipe: str = "fourier",
                 seed: int = 0) -> W.Widget:
    """Channel visualisation (the mean of one channel's feature map): a layer dropdown, a
    channel slider (sized to the layer), run."""
    layers = clf.feature_layers or clf.layer_names()
    layer = layer or layers[len(layers) // 2]
    layer_w = W.Dropdown(options=layers, value=layer, description="layer", style=STYLE, layout=LAYOUT)
    channel_w = W.IntSlider(value=channel, min=0, max=channel_count(clf, layer) - 1,
                            description="channel", style=STYLE, layout=LAYOUT,
                            continuous_update=False)
    recipe_w, lam, lr, steps = _recipe_controls(recipe)
    area = RunArea("Run", clf.input_size)

    def resize(change):
        channel_w.max = channel_count(clf, change["new"]) - 1

    layer_w.observe(resize, names="value")

    def run():
        neuron = Channel(layer_w.value, channel_w.value)  # the channel's mean, as in notebook 01
        result = visualize_neuron(
            clf, neuron, recipe_w.value, l2=lam.value, lr=lr.value, steps=steps.value,
            seed=seed, callback=area.live, progress=False,
        )
        area.finish(result, f"{neuron}: mean activation <b>{result.scores[0]:.2f}</b>")

    area.on_run(run)
    return area.box([layer_w, channel_w, recipe_w, lam, lr, steps])
