"""Offline batch grading (tools/grading.py grade, `make grade`): real `otter run`s.

A batch of submissions of the smallest exercise: correct, wrong (one known mistake), crashing,
looping forever, deleting files, printing a flood. Each gets its row of grades.csv, within a
bounded time, and a bad one never changes the others' results.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lecture_grading", ROOT / "tools" / "grading.py")
grading = sys.modules.get("lecture_grading") or importlib.util.module_from_spec(_spec)
if "lecture_grading" not in sys.modules:
    sys.modules["lecture_grading"] = grading
    _spec.loader.exec_module(grading)

NAME = "02_data_gradient"  # the smallest exercise: one backward pass for its picture
TIMEOUT = 90  # seconds per notebook; a correct one takes ~30-40 s on a busy 2-core CPU


def _submission(folder: Path, student: str, answers: dict[int, str]) -> Path:
    """The student notebook with its answer cells (numbered from 0) replaced."""
    nb = nbformat.read(ROOT / "exercises" / f"{NAME}.ipynb", as_version=4)
    cells = [c for c in nb.cells
             if c.cell_type == "code" and "otter_answer_cell" in c.metadata.get("tags", [])]
    for i, source in answers.items():
        cells[i].source = source
    path = folder / student / f"{NAME}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_find_submissions_reads_the_exercise_from_metadata(tmp_path):
    _submission(tmp_path, "ann", {})
    shutil.copy(ROOT / "exercises" / f"{NAME}.ipynb", tmp_path / "bob_homework.ipynb")
    (tmp_path / "carl.ipynb").write_text("not a notebook")
    (tmp_path / "ann" / ".ipynb_checkpoints").mkdir()
    shutil.copy(ROOT / "exercises" / f"{NAME}.ipynb", tmp_path / "ann" / ".ipynb_checkpoints")
    found = {(s.student, s.exercise) for s in grading.find_submissions(tmp_path, grading.exercise_names())}
    assert found == {("ann", NAME), ("bob_homework", NAME), ("carl", None)}


@pytest.mark.slow
def test_batch_grades_each_submission_and_survives_bad_ones(tmp_path):
    master = grading.read_master(ROOT / "solutions" / f"{NAME}.ipynb")
    q1, q2 = master.solutions["q1"][0], master.solutions["q2"][0]
    subs = tmp_path / "submissions"
    _submission(subs, "alice", {0: q1, 1: q2})  # correct
    _submission(subs, "bob", {0: q1, 1: q2.replace(".amax(dim=1)", ".sum(dim=1)")})  # sum over channels
    _submission(subs, "carol", {0: "import a_module_that_does_not_exist\n" + q1, 1: q2})  # raises
    _submission(subs, "dave", {0: "while True:\n    pass", 1: q2})  # loops forever
    _submission(subs, "erin", {0: q1, 1: "import shutil\nshutil.rmtree('..', ignore_errors=True)\n" + q2})
    _submission(subs, "frank", {0: "for _ in range(20000):\n    print('spam' * 100)\n" + q1, 1: q2})
    (tmp_path / "autograder").mkdir()
    folder = grading.assign_one(NAME, tmp_path / "build", run_tests=False)
    (zip_path,) = (folder / "autograder").glob("*.zip")
    shutil.copy(zip_path, tmp_path / "autograder" / f"{NAME}.zip")
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("still here")

    start = time.monotonic()
    out = tmp_path / "grades.csv"
    grading.grade(subs, out, autograder=tmp_path / "autograder", timeout=TIMEOUT, jobs=2,
                  log_dir=tmp_path / "logs")
    elapsed = time.monotonic() - start
    assert elapsed < 4 * TIMEOUT

    with open(out, newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    header = list(next(iter(rows.values())))
    assert header == ["student", f"{NAME}:q1", f"{NAME}:q2", f"{NAME}:q3", f"{NAME}:auto_total", "reason"]
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "erin", "frank"]

    def scores(student):
        r = rows[student]
        return r[f"{NAME}:q1"], r[f"{NAME}:q2"], r[f"{NAME}:q3"], r[f"{NAME}:auto_total"]

    assert scores("alice") == ("4", "4", "", "8") and rows["alice"]["reason"] == ""
    assert scores("frank") == ("4", "4", "", "8")  # a flood of output costs nothing by itself
    assert scores("bob") == ("4", "1", "", "5")  # the sum fails 3 of q2's 4 cases
    assert "maximum over the channels" in rows["bob"]["reason"]
    assert scores("carol") == ("0", "4", "", "4") and "q1" in rows["carol"]["reason"]
    assert scores("dave") == ("0", "0", "", "0") and "timed out" in rows["dave"]["reason"]
    assert rows["erin"][f"{NAME}:auto_total"] in ("0", "8")  # it broke its own grading folder only
    assert sentinel.read_text() == "still here"
    assert all((subs / s / f"{NAME}.ipynb").exists() for s in rows)  # submissions are never touched
    for log in (tmp_path / "logs").glob("*.log"):
        assert log.stat().st_size <= grading.LOG_CHARS + 100
