"""``python -m benchmarks [NAME ...]``: run the benchmarks and update ``benchmarks/RESULTS.md``.

NAME is any of ``loops``, ``attribution``, ``quality``, ``notebooks``, ``grading``,
``panels`` (default: all, in that order). The device is the package's choice (``LECTURE_DEVICE``,
else CUDA, MPS, CPU). Run on a quiet machine: anything else running shifts
the timings (the ranges in the tables show how much).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import lecture_utils as lu

from . import attribution, grading, loops, notebooks, panels, quality
from .common import RESULTS, device_description, progress

BENCHMARKS = {"loops": loops, "attribution": attribution, "quality": quality, "notebooks": notebooks,
              "grading": grading, "panels": panels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"one or more of: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per comparison (default: 5 for loops, 4 for attribution)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    device = lu.pick_device()
    progress(f"benchmarks {', '.join(names)} on {device_description(device)}")
    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")  # Captum's notice
    started, ok = time.perf_counter(), True
    for name in names:
        module = BENCHMARKS[name]
        if name in ("loops", "attribution"):
            module.run(device, **({"repeats": args.repeats} if args.repeats else {}))
        else:
            ok &= module.run(device) is not False
    progress(f"done in {time.perf_counter() - started:.0f} s; results in {RESULTS}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
