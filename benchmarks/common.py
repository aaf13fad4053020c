"""Shared measuring tools: timing, peak memory, machine description, the results file.

Timing: each comparison runs every case once to warm up (oneDNN / cuDNN pick
their kernels, caches fill), then ``repeats`` rounds in which the cases
alternate (forward order, then reversed), so a slow spell of the machine
hits every case alike. The figure is the median of the rounds, with the
spread (min–max) beside it so a reader can see how noisy the machine was.

Peak memory: on CUDA the allocator's own high-water mark; on the CPU the
PyTorch profiler's record of every tensor allocation and release, summed in
time order (tensor memory only, per operator: the same yardstick for both
sides of a comparison).

Results: every benchmark writes one section of ``benchmarks/RESULTS.md`` per
device type, between ``<!-- begin NAME DEVICE -->`` / ``<!-- end ... -->``
markers, so a CPU run and a GPU run of the same benchmark sit side by side
and a rerun replaces only its own section.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = """# Benchmark results

Written by `make bench` (one section per benchmark and device type; `make gpu-check`
adds the CUDA sections). Timings are medians of alternating rounds after a warm-up;
the range in brackets is the fastest and slowest round. Do not edit by hand.
"""


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the computation and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass
class Timing:
    """Seconds per call of one case: median and range over the rounds."""

    rounds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    def __str__(self) -> str:
        return f"{fmt_seconds(self.median)} [{fmt_seconds(min(self.rounds))}–{fmt_seconds(max(self.rounds))}]"


def compare(cases: dict[str, Callable[[], object]], device: torch.device, repeats: int = 5,
            warmup: int = 1, per_call: int = 1) -> dict[str, Timing]:
    """Time each case (a function of no arguments), alternating, after ``warmup`` calls.

    ``per_call``: how many units one call does (steps of a loop), so the result
    is seconds per unit.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    timings = {name: Timing() for name in cases}
    names = list(cases)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            sync(device)
            start = time.perf_counter()
            cases[name]()
            sync(device)
            timings[name].rounds.append((time.perf_counter() - start) / per_call)
    return timings


def paired_ratio(a: Timing, b: Timing) -> str:
    """Median over rounds of a's time / b's time in the same round, with the range: the two ran
    back to back, so a slow spell of the machine cancels out."""
    ratios = sorted(x / y for x, y in zip(a.rounds, b.rounds))
    return f"{statistics.median(ratios):.3f} [{ratios[0]:.2f}–{ratios[-1]:.2f}]"


def per_unit(long: Timing, short: Timing, units: int) -> Timing:
    """Seconds per unit from calls doing ``units`` more units (round by round): the marginal
    cost, without the one-off work both calls share."""
    return Timing([(a - b) / units for a, b in zip(long.rounds, short.rounds)])


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Bytes of tensor memory held at the worst moment of one call of ``fn``, above what was
    held before it (inputs and weights already allocated do not count)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    held = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        held += event.self_cpu_memory_usage  # allocations minus releases inside this operator
        peak = max(peak, held)
    return peak


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({_cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return device.type


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> str:
    import timm
    import torchvision

    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}",
             f"torchvision {torchvision.__version__}", f"timm {timm.__version__}"]
    try:
        import captum

        parts.append(f"captum {captum.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (also readable as plain text in a terminal)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, device: torch.device, title: str, body: str, seconds: float) -> None:
    """Print the section and put it into RESULTS.md, replacing the previous one for this device."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    text = (
        f"## {title} ({device.type})\n\n"
        f"{stamp} UTC on {platform.node() or 'this machine'}: {device_description(device)}; "
        f"{platform.platform()}; {versions()}. This benchmark took {seconds:.0f} s.\n\n{body.strip()}\n"
    )
    print(text, flush=True)
    begin, end = f"<!-- begin {name} {device.type} -->", f"<!-- end {name} {device.type} -->"
    block = f"{begin}\n{text}{end}\n"
    old = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(new)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
