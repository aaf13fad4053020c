"""Where the computation runs, and how to make it repeatable.

The lecture runs on whatever the student has: a CUDA GPU, an Apple-silicon
GPU (MPS) or the CPU, in that order of preference. The environment variable
``LECTURE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the
choice, for example to compare a GPU run with the CPU reference.

Nothing here runs at import time: the device is an argument everywhere else.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``preferred``, else ``$LECTURE_DEVICE``, else CUDA, MPS, CPU.

    Raises ``RuntimeError`` when an explicitly requested device is not available
    (rather than silently falling back to a slower one).
    """
    choice = preferred if preferred is not None else os.environ.get("LECTURE_DEVICE", "").strip()
    if not choice:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"Unknown device {choice!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps' "
            "(or unset LECTURE_DEVICE to choose automatically)."
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Device {choice!r} was requested but this PyTorch sees no CUDA GPU. "
            "Unset LECTURE_DEVICE (or set it to 'cpu') to run on the CPU."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"Device {choice!r} was requested but only {torch.cuda.device_count()} CUDA "
            "device(s) exist."
        )
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(
            "Device 'mps' was requested but Apple's MPS backend is not available here. "
            "Unset LECTURE_DEVICE (or set it to 'cpu')."
        )
    return device


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator seeded alike.

    With ``deterministic=True`` PyTorch is asked for deterministic kernels where
    that costs nothing on the CPU (cuDNN benchmark off). Results are then
    repeatable bit for bit on the CPU; GPUs may still differ in the last digits.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)
