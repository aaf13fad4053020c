"""Teaching-quality figures: do the pictures show what the lecture says they show?

* **Class models** (notebook 01): the default recipe's probability of the
  target class after N steps, for 10 classes, and after a slight blur (a
  picture that only fools the network through pixel noise loses its class).
* **Pointing game** (notebooks 03 and 05): on composed images with an object
  pasted away from the centre, how often the maximum of the saliency map,
  the guided backprop map and the deconvnet map falls on the object, against
  always pointing at the centre; exactly on the object and within 15 px
  (Zhang et al. 2016).
* **Reconstruction** (notebook 04): the normalised code error
  ‖Φ(x*) − Φ0‖/‖Φ0‖ of a reconstruction of the cat photograph from each
  layer, at the start (noise) and after the default 200 steps.

All runs are seeded; on the CPU the figures repeat exactly.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import lecture_utils as lu

from .common import progress, table, write_section

CLASSES = ["goldfish", "ostrich", "dumbbell", "lemon", "bell pepper", "tarantula", "volcano",
           "pizza", "school bus", "monarch"]
CHECKPOINTS = (8, 16, 32)  # steps; the default recipe runs 128, these are its first 32
LAYERS = ("blocks.1", "blocks.3", "blocks.5", "global_pool", "logits")


def class_models(clf) -> str:
    probabilities: dict[int, np.ndarray] = {}

    def record(step, images, _history):
        x = clf.normalize(torch.from_numpy(images).permute(0, 3, 1, 2).to(clf.device))
        index = torch.tensor([t.index for t in targets], device=clf.device)
        probabilities[step] = torch.softmax(clf(x), 1).gather(1, index[:, None])[:, 0].cpu().numpy()

    targets = lu.targets.resolve_targets(clf, CLASSES)
    result = lu.visualize_class(clf, targets, steps=max(CHECKPOINTS), callback=record,
                                callback_every=min(CHECKPOINTS), progress=False)
    blurred = lu.blur_robustness(clf, result, sigmas=(1.0, 2.0))
    rows = [[t.label] + [f"{probabilities[n][i]:.2f}" for n in CHECKPOINTS]
            + [f"{blurred[0, i]:.2f}", f"{blurred[1, i]:.2f}"] for i, t in enumerate(targets)]
    means = [np.mean(probabilities[n]) for n in CHECKPOINTS] + list(blurred.mean(1))
    rows.append(["**mean**"] + [f"**{m:.2f}**" for m in means])
    return (
        f"### Class models\n\n{clf.name}, default recipe ({result.settings['parametrization']}, "
        f"{result.settings['optimizer']}, lr {result.settings['lr']}), one batch of {len(CLASSES)}. "
        "Probability of the target class after N steps, and of the final picture after a Gaussian "
        "blur of 1 and 2 px.\n\n"
        + table(["class"] + [f"{n} steps" for n in CHECKPOINTS] + ["blur 1 px", "blur 2 px"], rows)
    )


def pointing(clf) -> str:
    composites = lu.make_composites(size=clf.input_size)
    methods = {"saliency (gradient)": lu.input_gradient, "guided backprop": lu.guided_backprop,
               "deconvnet": lu.deconvnet}
    rates = {tol: lu.pointing_game(clf, composites, methods, tolerance=tol) for tol in (0, 15)}
    rows = [[name, f"{rates[0][name]:.0%}", f"{rates[15][name]:.0%}"] for name in [*methods, "centre"]]
    return (
        f"### Pointing game\n\n{len(composites)} composites (cat, cup, rocket on plain and textured "
        "backgrounds, random place and size); the target is the pasted object's class. Hit: the "
        "map's maximum (max over colour channels of |map|) lies on the object, or within 15 px. "
        "EfficientNet has no max pooling, so its deconvnet map does not depend on the image "
        "(notebook 05): it points to the same place, off the object, every time.\n\n"
        + table(["method", "hit rate", "within 15 px"], rows)
    )


def reconstructions(clf) -> str:
    photo = lu.sample_image("chelsea")
    rows = []
    for layer in LAYERS:
        result = lu.invert(clf, photo, layer, progress=False)
        s = result.settings
        rows.append([layer, f"{result.initial_code_errors[0]:.2f}", f"{result.code_error:.2f}",
                     f"{s['lambda_tv']}", f"{s['jitter']}"])
    return (
        f"### Reconstruction\n\n{clf.name}, chelsea, default settings ({lu.InversionSettings().steps} steps, "
        "λ_TV and jitter by depth). Normalised code error ‖Φ(x) − Φ0‖/‖Φ0‖.\n\n"
        + table(["layer", "at the start", "after the run", "λ_TV", "jitter (px)"], rows)
    )


def run(device: torch.device) -> None:
    started = time.perf_counter()
    lu.seed_everything(0)
    clf = lu.load_model(device=device)
    parts = []
    for name, fn in (("class models", class_models), ("pointing game", pointing),
                     ("reconstruction", reconstructions)):
        progress(f"quality: {name}")
        t = time.perf_counter()
        parts.append(fn(clf) + f"\n\n({time.perf_counter() - t:.0f} s)")
    write_section("quality", device, "Teaching-quality figures", "\n\n".join(parts),
                  time.perf_counter() - started)
