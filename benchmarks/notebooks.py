"""Wall time of executing every lecture notebook at its defaults, top to bottom.

Each notebook runs once, as a student's "Run all" would, in a fresh kernel of
this Python (started in ``notebooks/``; the committed files are not
touched). The kernel picks its device as the notebooks do (``LECTURE_DEVICE``,
else CUDA, MPS, CPU), so ``LECTURE_DEVICE=cuda`` times a GPU. The time
includes starting the kernel, importing torch and loading the model: what a
lecture waits for. A notebook that fails is reported as failed, with the
cell, and the benchmark exits non-zero at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from .common import fmt_seconds, progress, table, write_section

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 900


def execute(path: Path) -> tuple[float, str]:
    """Run one notebook; ``(seconds, "ok" or the error)``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as err:
        status = "failed: " + str(err).strip().splitlines()[-1][:200]
    return time.perf_counter() - start, status


def run(device: torch.device, paths: list[Path] | None = None) -> bool:
    started = time.perf_counter()
    paths = paths or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    rows, total, ok = [], 0.0, True
    for path in paths:
        progress(f"notebooks: {path.name}")
        seconds, status = execute(path)
        total += seconds
        ok &= status == "ok"
        rows.append([path.name, fmt_seconds(seconds), status])
    rows.append(["**all**", f"**{fmt_seconds(total)}**", "ok" if ok else "**failures**"])
    body = (
        "Each notebook executed once in a fresh kernel (kernel start, imports and model loading "
        "included), at its committed defaults.\n\n" + table(["notebook", "wall time", "status"], rows)
    )
    write_section("notebooks", device, "Executing every notebook", body, time.perf_counter() - started)
    if not ok:
        print("notebooks: some notebooks failed (see the table)", file=sys.stderr)
    return ok
