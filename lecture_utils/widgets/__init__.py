"""Interactive panels for the notebooks: one function per panel, each returning an ipywidgets box.

Panels only gather settings and draw; every computation is a call into the
rest of ``lecture_utils``, exactly as the notebook's own cells make it.
"""

from .guided import guided_panel
from .inversion import inversion_panel
from .saliency import grabcut_panel, saliency_panel
from .still import panel_still as panel_still  # a panel as a still, for make lecture
from .synthesis import class_model_panel, neuron_panel

__all__ = [
    "class_model_panel", "grabcut_panel", "guided_panel", "inversion_panel", "neuron_panel",
    "saliency_panel",
]
