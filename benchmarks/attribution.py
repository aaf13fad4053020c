"""The data gradient, guided backprop and the deconvnet against Captum.

For a batch of 32 images, each library computes the same map with the same
model object: ``lu.input_gradient(clf, x, targets, rule)`` against Captum's
``Saliency`` (``abs=False``, the raw gradient), ``GuidedBackprop`` and
``Deconvolution``. Reported: the median time of each, their ratio (goal
≤ 1.0), the peak tensor memory, and the largest absolute difference of the
two maps relative to the largest value of the map (goal: float rounding,
about 1e-6).

Models: AlexNet and ResNet18 with random weights (no download; their ReLUs
made out-of-place, which Captum's module hooks need). Not the default
EfficientNet-Lite0: its activations are ReLU6, which Captum's guided backprop
and deconvnet do not recognise (they return the plain gradient without a
warning); that its plain gradient is autograd's is a unit test. Targets are
each image's predicted class, as when explaining a prediction.
"""

from __future__ import annotations

import time

import torch

import lecture_utils as lu

from .common import compare, fmt_bytes, paired_ratio, peak_memory, progress, table, write_section

BATCH = 32
MODELS = ("alexnet", "resnet18")
RULES = ("backprop", "guided", "deconvnet")


def _batch(clf, n: int = BATCH) -> torch.Tensor:
    """``n`` different photographs: the bundled samples, shifted and flipped."""
    images = [clf.preprocess(image) for image in lu.sample_images().values()]
    batch = []
    for i in range(n):
        x = images[i % len(images)]
        x = torch.roll(x, shifts=(7 * (i // len(images)), 0), dims=(2, 3))
        batch.append(x.flip(3) if (i // len(images)) % 2 else x)
    return torch.cat(batch).to(clf.device)


def _captum_method(rule: str, net):
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    if rule == "backprop":
        method = Saliency(net)
        return lambda x, t: method.attribute(x, target=t, abs=False)
    method = (GuidedBackprop if rule == "guided" else Deconvolution)(net)
    return lambda x, t: method.attribute(x, target=t)


def _measure(clf, x, targets, rule, device, repeats) -> list:
    """One row: times, peak memory and the difference of the two maps."""
    captum = _captum_method(rule, clf.net)

    def ours():
        return lu.input_gradient(clf, x, targets, rule=rule)

    def theirs():
        return captum(x.detach().clone().requires_grad_(True), targets).detach()

    ref, got = theirs(), ours()  # also the warm-up
    difference = float((got - ref).abs().max() / ref.abs().max().clamp(min=1e-30))
    t = compare({"ours": ours, "captum": theirs}, device, repeats=repeats, warmup=0)
    return [
        clf.name, rule, t["ours"], t["captum"], paired_ratio(t["ours"], t["captum"]),
        fmt_bytes(peak_memory(ours, device)), fmt_bytes(peak_memory(theirs, device)), f"{difference:.1e}",
    ]


def run(device: torch.device, repeats: int = 4) -> None:
    started = time.perf_counter()
    rows = []
    for name in MODELS:
        progress(f"attribution: {name}")
        clf = lu.load_model(name, device=device, pretrained=False)
        for module in clf.net.modules():
            if hasattr(module, "inplace"):
                module.inplace = False  # Captum's hooks cannot follow in-place ReLUs
        x = _batch(clf)
        with torch.no_grad():
            targets = clf(x).argmax(1).tolist()
        rows += [_measure(clf, x, targets, rule, device, repeats) for rule in RULES]
    body = (
        f"Batch of {BATCH} images at 224 px; `input_gradient(clf, x, targets, rule)` against Captum "
        "`Saliency(abs=False)` / `GuidedBackprop` / `Deconvolution` on the same model object. "
        "Goals: time ratio ≤ 1.0; maps equal to float rounding (largest |difference| relative to "
        "the largest |value| of Captum's map).\n\n"
        + table(["model", "rule", "lecture_utils", "Captum", "ratio", "peak mem. ours",
                 "peak mem. Captum", "max. rel. difference"], rows)
    )
    write_section("attribution", device, "Data gradient, guided backprop and deconvnet against Captum",
                  body, time.perf_counter() - started)
