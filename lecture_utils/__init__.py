"""lecture_utils: the computation behind the lecture "Explaining CNNs: Early Methods".

Import it as ``import lecture_utils as lu``; every notebook does. One module per idea:

=================== ==========================================================
``device``          where to compute (CUDA, MPS, CPU) and seeding
``models``          pretrained classifiers with matching preprocessing
``images``          sample photographs and image loading
``layers``          layers by dotted name; reading activations
``targets``         what to explain: a class score or a neuron
``attribution``     the data gradient, saliency maps, SmoothGrad, guided backprop
``priors``          image priors (L2, jitter, blur, clamp, ...)
``parametrisation`` pixels or a decorrelated Fourier spectrum
``relu_rules``      the backward rule through ReLU: backprop, deconvnet, guided
``synthesis``       backprop to the image: class models, neuron pictures
``inversion``       reconstruction of an image from its code (Mahendran & Vedaldi)
``localisation``    GrabCut object masks from saliency
``sanity``          cascading randomisation (Adebayo et al. 2018)
``composites``      objects pasted at known places; the pointing game
``display``         images, heat maps, grids, curves
``widgets``         the notebooks' interactive panels
``tiny_net``        a two-layer ReLU network with a chosen backward rule (exercise 05)
=================== ==========================================================
"""

from . import (
    priors,
    widgets,  # noqa: E402  (imports ipywidgets; after the computation modules)
)
from .attribution import (
    TargetNotPredictedWarning,
    deconvnet,
    guided_backprop,
    input_gradient,
    saliency_map,
    smooth_grad,
)
from .composites import Composite, compose, make_composites, pointing_game, show_localisation
from .device import pick_device, seed_everything
from .display import normalize_gradient, plot_history, show, show_grid, to_png
from .images import SAMPLE_NAMES, load_image, sample_image, sample_images
from .inversion import LOGITS, InversionResult, InversionSettings, code_of, invert
from .layers import activations, get_layer, record
from .localisation import GrabCutResult, box_iou, grabcut_from_saliency, mask_iou
from .models import DEFAULT_MODEL, Classifier, Prediction, available_models, load_model
from .parametrisation import FourierImage, PixelImage
from .relu_rules import RULES, count_relu_calls, relu_rule
from .sanity import cascading_randomization, rank_correlation
from .synthesis import (
    RECIPES,
    Recipe,
    SynthesisResult,
    blur_robustness,
    synthesize,
    visualize_class,
    visualize_neuron,
)
from .targets import ClassTarget, Neuron, channel_count, resolve_target, resolve_targets
from .tiny_net import TinyNet

__version__ = "0.1.0"
