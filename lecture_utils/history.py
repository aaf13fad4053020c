"""The loss history of an optimisation loop, recorded without making the GPU wait.

Reading a number off a GPU tensor (``float(t)``) makes the CPU wait until every
queued kernel has run, so a loop that logs its loss as a float at every step
cannot queue the next step while the GPU works on this one. :class:`History`
keeps each step's values as tensors and reads them all at once when they are
asked for: at a live-display callback, and at the end of the run. On the CPU
the two ways cost the same.
"""

from __future__ import annotations

import torch

__all__ = ["History"]


class History:
    """Per-step means of named loss terms; ``values()`` gives ``{name: [float per step]}``."""

    def __init__(self, *names: str) -> None:
        self._pending: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        self._values: dict[str, list[float]] = {name: [] for name in names}

    def add(self, **terms: torch.Tensor) -> None:
        """Record one step: each term's mean over the batch (kept on its device)."""
        for name, term in terms.items():
            self._pending[name].append(term.detach().mean())

    def values(self) -> dict[str, list[float]]:
        """Every step so far as floats (one transfer per term); the same dict grows with later calls."""
        for name, pending in self._pending.items():
            if pending:
                self._values[name].extend(torch.stack(pending).tolist())
                pending.clear()
        return self._values
