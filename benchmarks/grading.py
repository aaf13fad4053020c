"""Grading throughput: notebooks per minute through ``make grade``'s two steps.

A class of correct submissions (every exercise, answers from the masters) is graded in the
bubblewrap sandbox with ``GRADE_JOBS`` notebooks at once (default 2, this machine's cores).
The time includes building the probes, starting each sandbox, importing torch in it, running
the answer cells and the calls, and judging. Goal: at most 5 s per notebook on a 2-core CPU,
so a class of 300 students x 5 exercises grades in about an hour on 16 cores.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import nbformat
import torch

from .common import progress, table, write_section

ROOT = Path(__file__).resolve().parent.parent
STUDENTS = int(os.environ.get("GRADE_BENCH_STUDENTS", "4"))


def make_class(folder: Path, students: int) -> int:
    from grading import masters

    count = 0
    for name in masters.exercise_names():
        master = masters.read_master(masters.SOLUTIONS / f"{name}.ipynb")
        answers = [source for sources in master.solutions.values() for source in sources]
        for k in range(students):
            nb = nbformat.read(masters.EXERCISES / f"{name}.ipynb", as_version=4)
            cells = [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
            for cell, source in zip(cells, answers):
                cell.source = source
            path = folder / f"student{k:03d}" / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            count += 1
    return count


def run(device: torch.device) -> bool:
    from grading import batch, sandbox

    if sandbox.mode() == "bwrap" and (why := sandbox.problem()):
        progress(f"grading: skipped ({why})")
        return False
    jobs = int(os.environ.get("GRADE_JOBS", "2"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        count = make_class(subs, STUDENTS)
        progress(f"grading: {count} notebooks, {jobs} at once")
        start = time.perf_counter()
        rows = batch.grade(subs, Path(tmp) / "grades.csv", timeout=600, jobs=jobs)
        wall = time.perf_counter() - start
    full = all(r["reason"] == "" for r in rows)
    per = wall / count
    body = (
        f"{STUDENTS} students x 5 exercises = {count} correct notebooks, graded with "
        f"`GRADE_JOBS={jobs}` in the bubblewrap sandbox (sandbox: {sandbox.mode()}); every one "
        f"{'got full marks' if full else '**did not get full marks**'}.\n\n"
        + table(["notebooks", "wall time", "seconds per notebook", "notebooks per minute",
                 "goal (s per notebook)"],
                [[count, f"{wall:.1f} s", f"{per:.2f}", f"{60 / per:.1f}", "≤ 5"]])
        + f"\n\nAt this rate 300 students x 5 exercises take {300 * 5 * per / 3600:.1f} h here; "
        f"on 16 cores (`GRADE_JOBS=16`) about {300 * 5 * per * jobs / 16 / 3600:.1f} h."
    )
    write_section("grading", device, "Grading throughput", body, time.perf_counter() - started)
    return full
