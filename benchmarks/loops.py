"""The optimisation loops against a bare PyTorch loop doing the same work.

``lu.visualize_class`` (recipes ``plain`` and ``fourier``) and ``lu.invert``
(an early and a deep layer) are timed against loops written here in plain
PyTorch: the same model, image size, parametrization, random transforms,
objective, optimiser and number of steps, and the same one-off work at the
ends (the target code before, the final probability or code error after).
What lecture_utils adds (target resolution, hooks, the loss history, input
checks) is the difference. Goal: ratio ≤ 1.05 per step. The per-step cost is
the marginal one: a long call minus a short call, over the steps between
them; the one-off cost of a call is reported beside it.
"""

from __future__ import annotations

import math
import time
from functools import partial

import torch
import torch.nn.functional as F

import lecture_utils as lu

from .common import (
    Timing,
    compare,
    fmt_bytes,
    fmt_seconds,
    paired_ratio,
    peak_memory,
    per_unit,
    progress,
    table,
    write_section,
)

SHORT, LONG = 2, 10  # steps per call: the difference is the per-step cost
CLASSES = [1, 9]  # goldfish, ostrich: a batch of two images
_COLOR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def bare_plain(clf, classes, steps, lr=1.0, l2=1e-3):
    """The slides' loop: pixels from zeros, S_c - λ‖x‖², SGD."""
    n, size, device = len(classes), clf.input_size, clf.device
    rows, cls = torch.arange(n, device=device), torch.tensor(classes, device=device)
    x = torch.zeros(n, 3, size, size, device=device, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        objective = clf.net(x)[rows, cls] - l2 * x.pow(2).flatten(1).sum(1)
        (-objective.sum()).backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(clf.net(x), 1)[rows, cls]


def bare_fourier(clf, classes, steps, lr=0.05, jitter=8, scale=0.1, degrees=10.0, seed=0):
    """Lucid's loop: 1/f Fourier spectrum, decorrelated colour, sigmoid; jitter, scale, rotate; Adam."""
    n, size, device = len(classes), clf.input_size, clf.device
    g = torch.Generator().manual_seed(seed)
    rows, cls = torch.arange(n, device=device), torch.tensor(classes, device=device)
    freqs = torch.sqrt(torch.fft.rfftfreq(size)[None, :] ** 2 + torch.fft.fftfreq(size)[:, None] ** 2)
    spectrum_scale = (1.0 / freqs.clamp(min=1.0 / size)).to(device)
    color = (_COLOR / _COLOR.norm(dim=0).max()).to(device)
    mean, std = clf.mean.to(device), clf.std.to(device)
    spectrum = (torch.randn(n, 3, size, size // 2 + 1, 2, generator=g) * 0.01).to(device)
    spectrum.requires_grad_(True)
    opt = torch.optim.Adam([spectrum], lr=lr)

    def image():
        pixels = torch.fft.irfft2(torch.view_as_complex(spectrum) * spectrum_scale, s=(size, size),
                                  norm="ortho") / 4.0
        return (torch.sigmoid(torch.einsum("nchw,dc->ndhw", pixels, color)) - mean) / std

    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        x = image()
        dy, dx = (int(torch.randint(-jitter, jitter + 1, (1,), generator=g)) for _ in range(2))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        factor = 1.0 + (2.0 * torch.rand(1, generator=g).item() - 1.0) * scale
        x = F.interpolate(x, size=[round(size * factor)] * 2, mode="bilinear", align_corners=False)
        angle = math.radians((2.0 * torch.rand(1, generator=g).item() - 1.0) * degrees)
        theta = x.new_tensor([[math.cos(angle), -math.sin(angle), 0.0],
                              [math.sin(angle), math.cos(angle), 0.0]]).expand(n, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        (-clf.net(x)[rows, cls].sum()).backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(clf.net(image()), 1)[rows, cls]


def _truncated(clf, layer):
    """Φ: the network up to ``layer`` (a forward hook that stops the pass there)."""
    module = clf.layer(layer)

    class Stop(Exception):
        pass

    def code(x):
        out = {}

        def hook(_m, _i, output):
            out["code"] = output
            raise Stop

        handle = module.register_forward_hook(hook)
        try:
            clf.net(x)
        except Stop:
            pass
        finally:
            handle.remove()
        return out["code"]

    return code


def bare_invert(clf, x0, layer, steps, lambda_tv, jitter, lr=0.1, lambda_alpha=1e-3, seed=0):
    """Mahendran & Vedaldi: ‖Φ(τ(x)) - Φ0‖²/‖Φ0‖² + λ_α R_α + λ_TV R_TV, Adam, cosine step size."""
    code = clf.net if layer == "logits" else _truncated(clf, layer)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        target = code(x0)
    norms = target.flatten(1).norm(dim=1)
    std = clf.std.to(clf.device)
    n, size = x0.shape[0], x0.shape[-1]
    x = torch.randn(n, 3, size, size, generator=g).to(clf.device) * 10.0 * (1.0 / (255.0 * std))
    x.requires_grad_(True)
    low, high = ((bound - clf.mean) / clf.std for bound in (0.0, 1.0))
    low, high = low.to(clf.device), high.to(clf.device)
    opt = torch.optim.Adam([x], lr=lr)
    for step in range(steps):
        opt.param_groups[0]["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
        opt.zero_grad(set_to_none=True)
        dy, dx = (int(torch.randint(-jitter, jitter + 1, (1,), generator=g)) for _ in range(2))
        shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3)) if jitter else x
        loss = (code(shifted) - target).flatten(1).pow(2).sum(1) / norms**2
        u = 255.0 * std * x
        loss = loss + lambda_alpha * (u.pow(2).sum(1) / 80.0**2 + 1e-12).pow(3).flatten(1).mean(1)
        d_x, d_y = u[:, :, :-1, 1:] - u[:, :, :-1, :-1], u[:, :, 1:, :-1] - u[:, :, :-1, :-1]
        tv = (d_x.pow(2) + d_y.pow(2)).sum(1) / (80.0 / 6.5) ** 2
        (loss + lambda_tv * tv.flatten(1).mean(1)).sum().backward()
        opt.step()
        with torch.no_grad():
            x.copy_(torch.max(torch.min(x, high), low))
    with torch.no_grad():
        return (code(x) - target).flatten(1).norm(dim=1) / norms


def _measure(name, ours, bare, device, repeats) -> list:
    """One row: per-step and one-off times, agreement and peak memory of ``ours(steps)`` and
    ``bare(steps)``."""
    progress(f"loops: {name}")
    result = ours(SHORT)
    mine = result.code_errors or result.probabilities  # reconstructions, else class models
    agreement = max(abs(a - b) for a, b in zip(mine, bare(SHORT).tolist()))
    calls = {"ours": ours, "bare": bare}
    t = compare({f"{who}, {n}": partial(fn, n) for who, fn in calls.items() for n in (SHORT, LONG)},
                device, repeats=repeats, warmup=0)  # the two calls above were the warm-up
    step = {who: per_unit(t[f"{who}, {LONG}"], t[f"{who}, {SHORT}"], LONG - SHORT) for who in calls}
    once = {who: Timing([short - SHORT * each for short, each in zip(t[f"{who}, {SHORT}"].rounds,
                                                                       step[who].rounds)]).median
            for who in calls}
    return [
        name, step["ours"], step["bare"], paired_ratio(step["ours"], step["bare"]),
        fmt_seconds(once["ours"]), fmt_seconds(once["bare"]), f"{agreement:.1e}",
        fmt_bytes(peak_memory(partial(ours, SHORT), device)),
        fmt_bytes(peak_memory(partial(bare, SHORT), device)),
    ]


def run(device: torch.device, repeats: int = 5) -> None:
    started = time.perf_counter()
    clf = lu.load_model(device=device)
    x0 = clf.preprocess(lu.sample_image("chelsea"))
    cases = {
        "visualize_class, plain": (
            lambda n: lu.visualize_class(clf, CLASSES, "plain", steps=n, progress=False),
            lambda n: bare_plain(clf, CLASSES, n),
        ),
        "visualize_class, fourier": (
            lambda n: lu.visualize_class(clf, CLASSES, "fourier", steps=n, progress=False),
            lambda n: bare_fourier(clf, CLASSES, n),
        ),
    }
    for layer in ("blocks.2", "logits"):
        s = lu.inversion.suggested_settings(clf, layer)
        cases[f"invert, {layer}"] = (
            lambda n, layer=layer: lu.invert(clf, x0, layer, steps=n, progress=False),
            lambda n, layer=layer, s=s: bare_invert(clf, x0, layer, n, s["lambda_tv"], s["jitter"]),
        )
    rows = [_measure(name, ours, bare, device, repeats) for name, (ours, bare) in cases.items()]
    body = (
        f"{clf.name}, {clf.input_size} px; class models: a batch of {len(CLASSES)}, reconstructions: "
        f"chelsea. *Per step*: the extra time of a {LONG}-step call over a {SHORT}-step call, divided "
        f"by {LONG - SHORT} (goal: ratio ≤ 1.05). *One-off*: the rest of a call (setting up, the "
        "final scores; `invert` of an input tensor also checks its shape with one pass and "
        "reports the starting error with another). *Same result*: the largest difference of "
        "the final probabilities (class models) or code errors (reconstructions) of the two "
        "loops, which draw the same random numbers in the same order. Peak memory of a short "
        "call.\n\n"
        + table(["loop", "per step, lecture_utils", "per step, bare PyTorch", "ratio", "one-off, ours",
                 "one-off, bare", "same result (largest Δ)", "peak mem. ours", "peak mem. bare"], rows)
    )
    write_section("loops", device, "Optimisation loops against a bare PyTorch loop", body,
                  time.perf_counter() - started)
