"""``make exercises``: the student notebooks (and otter's Gradescope zips) from the masters.

``otter assign`` turns each master ``solutions/NN_*.ipynb`` into ``build/otter/NN_*/``; the
student notebook is copied to ``exercises/`` normalised (no outputs, stable cell ids) and
stamped with the exercise's version (a hash of the master's set-up and test cases), so the
grader can tell a notebook from an older release.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
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
    return nb


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
           autograder: Path = AUTOGRADER, jobs: int = 2) -> None:
    names = names or exercise_names()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        folders = dict(zip(names, pool.map(lambda n: assign_one(n, build, run_tests), names)))
    exercises.mkdir(exist_ok=True)
    autograder.mkdir(exist_ok=True)
    for name, folder in folders.items():
        nbformat.write(student_notebook(folder, name), exercises / f"{name}.ipynb")
        (zipfile,) = (folder / "autograder").glob(f"{name}-autograder_*.zip")
        shutil.copy(zipfile, autograder / f"{name}.zip")
        print(f"{name}: exercises/{name}.ipynb, autograder/{name}.zip")
