"""``make exercises``: the student notebooks (and otter's Gradescope zips) from the masters.

``otter assign`` turns each master ``solutions/NN_*.ipynb`` into ``build/otter/NN_*/``; its
Gradescope zip goes to ``autograder/`` made self-contained (:mod:`grading.gradescope`), and the
student notebook is copied to ``exercises/`` normalised (no outputs, stable cell ids) and
stamped with the exercise's version (a hash of the master's set-up and test cases), so the
grader can tell a notebook from an older release, and with a hash of its own cells.

A student's work is never overwritten: a notebook in ``exercises/`` whose cells no longer
match the hash it was written with has been edited, and ``assign`` leaves it alone, says
which file and how to keep it, and fails. With ``force`` (``make exercises FORCE=1``) it
first copies it to ``exercises/backups/NAME.YYYYmmdd-HHMMSS.ipynb`` and says where.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from .masters import EXERCISES, ROOT, SOLUTIONS, exercise_names, read_master

AUTOGRADER = ROOT / "autograder"
BUILD = ROOT / "build" / "otter"


def exercise_version(master: Path) -> str:
    """A short hash of what grading depends on: set-up cells, answer names, test cases."""
    m = read_master(master)
    text = "\n".join(m.setup + [f"{q}:{','.join(m.functions(q))}" for q in m.solutions]
                     + [c.source for c in m.tests])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def normalise_student_notebook(nb: nbformat.NotebookNode, name: str,
                               version: str = "") -> nbformat.NotebookNode:
    """Drop what changes from run to run: outputs, execution counts and otter's random cell ids."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:03d}"
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    if version:
        nb.metadata["lecture"] = {"exercise": name, "exercise_version": version}
    nb.metadata.setdefault("lecture", {})["cells_sha"] = cells_hash(nb)
    return nb


def cells_hash(nb) -> str:
    """A hash of a notebook's cell types and sources (outputs and metadata do not count)."""
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    text = json.dumps([[c.get("cell_type"), "".join(c.get("source", ""))] for c in cells])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def edited(path: Path) -> bool:
    """Whether the notebook at ``path`` differs from what ``make exercises`` wrote there."""
    if not path.exists():
        return False
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        stamp = nb.get("metadata", {}).get("lecture", {}).get("cells_sha")
    except (ValueError, AttributeError):
        return True
    return stamp is None or stamp != cells_hash(nb)


def keep_copy(path: Path) -> Path:
    """Copy ``path`` to ``backups/`` beside it, with a time stamp; return the copy's path."""
    backups = path.parent / "backups"
    backups.mkdir(exist_ok=True)
    copy = backups / f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    shutil.copy2(path, copy)
    return copy


def assign_one(name: str, build: Path, run_tests: bool = True, solutions: Path = SOLUTIONS) -> Path:
    """``otter assign`` one master into ``build/name``; return that folder."""
    out = build / name
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs", str(solutions / f"{name}.ipynb"), str(out)]
    if not run_tests:
        cmd.insert(4, "--no-run-tests")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:  # with run_tests, otter fails unless the solutions score 100%
        raise RuntimeError(f"otter assign {name} failed (exit {proc.returncode}):\n{log[-4000:]}")
    return out


def student_notebook(assigned: Path, name: str, solutions: Path = SOLUTIONS) -> nbformat.NotebookNode:
    nb = nbformat.read(assigned / "student" / f"{name}.ipynb", as_version=4)
    return normalise_student_notebook(nb, name, exercise_version(solutions / f"{name}.ipynb"))


def assign(names=None, run_tests: bool = True, build: Path = BUILD, exercises: Path = EXERCISES,
           autograder: Path = AUTOGRADER, jobs: int = 2, force: bool = False,
           solutions: Path = SOLUTIONS) -> None:
    names = names or exercise_names(solutions)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        folders = dict(zip(names, pool.map(lambda n: assign_one(n, build, run_tests, solutions), names)))
    exercises.mkdir(exist_ok=True)
    autograder.mkdir(exist_ok=True)
    from .gradescope import build_wheel, make_self_contained

    wheel = build_wheel(build.parent / "wheels")
    kept = []
    for name, folder in folders.items():
        target = exercises / f"{name}.ipynb"
        fresh = student_notebook(folder, name, solutions)
        if edited(target) and cells_hash(json.loads(target.read_text(encoding="utf-8"))) != \
                fresh.metadata["lecture"]["cells_sha"]:
            if not force:
                kept.append(target)
                continue
            print(f"{target} had your work in it: kept a copy in {keep_copy(target)}")
        nbformat.write(fresh, target)
        (zipfile,) = (folder / "autograder").glob(f"{name}-autograder_*.zip")
        shutil.copy(zipfile, autograder / f"{name}.zip")
        make_self_contained(autograder / f"{name}.zip", wheel)
        print(f"{name}: {target}, {autograder / (name + '.zip')}")
    if kept:
        files = "\n  ".join(str(p) for p in kept)
        raise SystemExit(
            f"Not overwritten, because they hold work that `make exercises` did not write:\n  {files}\n"
            "To keep that work, move the notebook out of exercises/ (e.g. into my-work/) before "
            "running `make exercises` again, or run `make exercises FORCE=1`, which first keeps a "
            "time-stamped copy in exercises/backups/ and says where.")
