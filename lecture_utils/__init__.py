"""lecture_utils: the computation behind the lecture "Explaining CNNs: Early Methods".

Import it as ``import lecture_utils as lu``; every notebook does. One module per idea:

=================== ==========================================================
``device``          where to compute (CUDA, MPS, CPU) and seeding
``models``          pretrained classifiers with matching preprocessing
``images``          sample photographs and image loading
``layers``          layers by dotted name; reading activations
``targets``         what to explain: a class score, a neuron or a channel; the one scorer
``attribution``     the data gradient, saliency maps, SmoothGrad, guided backprop (02, 05)
``priors``          image priors (L2, α-norm, TV, jitter, blur, clamp, ...)
``parametrization`` pixels or a decorrelated Fourier spectrum
``optimize``        the one image-optimisation loop and its result; settings checks
``relu_rules``      the backward rule through ReLU: backprop, deconvnet, guided (05)
``synthesis``       backprop to the image: class models, neuron pictures (01)
``inversion``       reconstruction of an image from its code (04, Mahendran & Vedaldi)
``localization``    GrabCut object masks from saliency (03)
``sanity``          cascading randomization (Adebayo et al. 2018)
``composites``      objects pasted at known places; the pointing game
``display``         images, heat maps, grids, curves
``widgets``         the notebooks' interactive panels
``tiny_net``        a two-layer ReLU network with a chosen backward rule (exercise 05)
=================== ==========================================================

The public API is ``__all__`` below; the numbers are the notebooks that define each idea.
Option strings are typed with ``Literal`` aliases (``Rule``, ``SaliencyReduction``,
``ChannelReduction``, ``Parametrization``, ``OptimizerName``, ``Schedule``). Public names
use one spelling (American: ``visualize``, ``normalize``, ``localization``); prose is British.
"""

from . import (
    priors,
    widgets,  # noqa: E402  (imports ipywidgets; after the computation modules)
)
from .attribution import (
    REDUCTIONS,
    SaliencyReduction,
    TargetNotPredictedWarning,
    deconvnet,
    guided_backprop,
    input_gradient,
    saliency_map,
    smooth_grad,
)
from .composites import Composite, compose, make_composites, pointing_game, show_localization
from .device import pick_device, seed_everything
from .display import normalize_gradient, plot_history, show, show_grid, to_png
from .images import SAMPLE_NAMES, load_image, sample_image, sample_images
from .inversion import LOGITS, InversionSettings, code_of, invert, suggested_settings
from .layers import activations, get_layer, record
from .localization import GrabCutResult, box_iou, grabcut_from_saliency, mask_iou
from .models import DEFAULT_MODEL, Classifier, Prediction, available_models, load_model
from .optimize import OptimizationResult, OptimizerName, Parametrization, Schedule, optimize_image
from .parametrization import FourierImage, PixelImage
from .relu_rules import RULES, Rule, count_relu_calls, relu_rule
from .sanity import cascading_randomization, rank_correlation
from .synthesis import RECIPES, Recipe, blur_robustness, synthesize, visualize_class, visualize_neuron
from .targets import (
    Channel,
    ChannelReduction,
    ClassTarget,
    Neuron,
    Target,
    channel_count,
    resolve_target,
    resolve_targets,
)
from .tiny_net import TinyNet

__version__ = "0.1.0"

__all__ = [
    # models, devices, images
    "DEFAULT_MODEL", "Classifier", "Prediction", "available_models", "load_model",
    "pick_device", "seed_everything", "SAMPLE_NAMES", "load_image", "sample_image", "sample_images",
    "activations", "get_layer", "record",
    # what to explain: the one scorer's targets
    "ClassTarget", "Neuron", "Channel", "ChannelReduction", "Target", "resolve_target",
    "resolve_targets", "channel_count",
    # the data gradient and its relatives (02, 05)
    "input_gradient", "saliency_map", "smooth_grad", "guided_backprop", "deconvnet",
    "REDUCTIONS", "SaliencyReduction", "TargetNotPredictedWarning", "RULES", "Rule",
    "relu_rule", "count_relu_calls", "TinyNet",
    # backprop to the image and reconstruction: one loop (01, 04)
    "optimize_image", "OptimizationResult", "Parametrization", "OptimizerName", "Schedule",
    "PixelImage", "FourierImage", "priors",
    "RECIPES", "Recipe", "synthesize", "visualize_class", "visualize_neuron", "blur_robustness",
    "LOGITS", "InversionSettings", "invert", "code_of", "suggested_settings",
    # GrabCut (03), sanity checks, composites
    "GrabCutResult", "grabcut_from_saliency", "box_iou", "mask_iou",
    "cascading_randomization", "rank_correlation",
    "Composite", "compose", "make_composites", "pointing_game", "show_localization",
    # pictures and panels
    "show", "show_grid", "normalize_gradient", "plot_history", "to_png", "widgets",
]
