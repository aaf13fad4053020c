"""Grading in two steps (the package grading/, `make grade`): a sandboxed record step and a
judge that never runs student code.

Fast tests check the pieces on trusted data: the probes carry no test, answer or solution;
the judge gives the masters' own recorded answers full marks and replays what a call did to
its arguments; forged results files are refused; bad submission folders get clear messages.
The slow test grades a batch of real notebooks in the sandbox: correct, wrong, crashing,
looping forever, deleting files, flooding output, with a syntax error. The attacks of a
hostile student are in tests/test_grading_attacks.py.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from grading import batch, judge, masters, plain, probes, sandbox, submissions

ROOT = Path(__file__).resolve().parents[1]
NAME = "02_data_gradient"  # the smallest exercise
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def submission(folder: Path, student: str, answers: dict[int, str], name: str = NAME) -> Path:
    """The student notebook of ``name`` with its answer cells (numbered from 0) replaced."""
    nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    cells = [c for c in nb.cells
             if c.cell_type == "code" and "otter_answer_cell" in c.metadata.get("tags", [])]
    for i, source in answers.items():
        cells[i].source = source
    path = folder / student / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def require_sandbox() -> None:
    why = sandbox.problem()
    if why is not None:
        if IN_CI:
            pytest.fail(f"{why} (CI=true: the grading sandbox is required)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def built():
    master = masters.read_master(ROOT / "solutions" / f"{NAME}.ipynb")
    return master, probes.build(master)


# -- the probes ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", masters.exercise_names())
def test_probes_hold_inputs_only(name):
    master = masters.read_master(ROOT / "solutions" / f"{name}.ipynb")
    sent = probes.build(master).sandbox_bytes()
    for case in master.tests:
        body = [ln.strip() for ln in case.source.splitlines() if "assert" in ln]
        assert not any(ln.encode() in sent for ln in body), f"{case.name}'s source is in the probes"
        assert case.message.encode() not in sent
    for sources in master.solutions.values():
        lines = [ln.strip() for ln in sources[0].split('"""')[-1].splitlines() if len(ln.strip()) > 12]
        assert not any(ln.encode() in sent for ln in lines), "a solution line is in the probes"


@pytest.mark.parametrize("name", masters.exercise_names())
def test_judge_gives_the_masters_answers_full_marks(name):
    master = masters.read_master(ROOT / "solutions" / f"{name}.ipynb")
    built = probes.build(master)
    verdict = judge.judge(master, built, {"cells": [], "cases": built.expected}, built.expected_arrays,
                          _sources(master))
    assert verdict.scores == verdict.possible and verdict.reason() == ""


def _sources(master):
    """The master's functions as text, as the judge reads them from a notebook."""
    return masters.function_sources([c for cells in master.solutions.values() for c in cells])


def test_nothing_recorded_scores_zero_and_says_why(built):
    master, p = built
    verdict = judge.judge(master, p, {}, plain.Arrays())
    assert sum(verdict.scores.values()) == 0
    assert "not recorded" in verdict.reason()


def _answers(p, key, change):
    """The master's recorded answers with the entries of test ``key`` changed by ``change``."""
    cases = json.loads(json.dumps(p.expected))
    for entry in cases[key]:
        change(entry)
    return {"cells": [], "cases": cases}


def test_replay_puts_back_what_a_call_did_to_its_arguments(built):
    master, p = built

    def left_in_training_mode(entry):
        for state in entry["state"]:
            if state["t"] == "module_state":
                state["training"] = {k: True for k in state["training"]}

    verdict = judge.judge(master, p, _answers(p, "q1:test_eval_mode", left_in_training_mode),
                          p.expected_arrays, _sources(master))
    assert verdict.scores["q1"] == verdict.possible["q1"] - 1
    assert "still in training mode" in verdict.reason()


def test_replay_raises_the_recorded_builtin_exception_only(built):
    master, p = built

    def raised(entry):
        entry.update(status="raised", error="SecretStudentError: hello")

    verdict = judge.judge(master, p, _answers(p, "q2:test_shape", raised), p.expected_arrays,
                          _sources(master))
    assert verdict.scores["q2"] == verdict.possible["q2"] - 1
    assert "hello" not in verdict.reason() and "SecretStudentError" not in verdict.reason()


def test_student_strings_never_reach_the_reason():
    arrays = plain.Arrays()
    node = plain.encode({"rule": "guided", "note": "=HYPERLINK(evil)"}, arrays)
    value = plain.decode(node, arrays, frozenset({"rule", "guided", "note"}))
    assert value == {"rule": "guided", "note": plain.OTHER_TEXT}


@pytest.mark.parametrize("node", [
    {"t": "pickle", "v": "x"}, {"t": "tensor", "a": "a9", "dtype": "torch.float32"},
    {"t": "tensor", "a": "a0", "dtype": "os.system"}, {"t": "int", "v": "1"}, ["not", "a", "node"],
    {"t": "list", "items": [{"t": "eval", "v": "1+1"}]},
])
def test_forged_nodes_are_refused(node):
    arrays = plain.Arrays({"a0": np.zeros(2)})
    with pytest.raises(plain.BadData):
        plain.decode(node, arrays)


def test_results_files_never_unpickle(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    np.save(tmp_path / "x.npy", np.array([object()], dtype=object), allow_pickle=True)
    import zipfile

    with zipfile.ZipFile(tmp_path / "arrays.npz", "w") as z:
        z.write(tmp_path / "x.npy", "a0.npy")
    with pytest.raises(plain.BadData):
        plain.load(tmp_path)


def test_encode_keeps_what_tests_need():
    arrays = plain.Arrays()
    x = torch.ones(2, requires_grad=True) * 2
    node = plain.encode((x, np.arange(3, dtype=np.uint8), 3, None, object()), arrays)
    t, a, n, none, other = plain.decode(node, arrays)
    assert node["items"][0]["grad_fn"] and torch.equal(t, torch.full((2,), 2.0))
    assert a.dtype == np.uint8 and n == 3 and none is None and isinstance(other, plain.Unsupported)


# -- the submissions folder ---------------------------------------------------------------
def test_find_submissions_sorts_out_bad_files(tmp_path):
    submission(tmp_path, "ann", {})
    (tmp_path / "bob_02_data_gradient.ipynb").write_text(
        (ROOT / "exercises" / f"{NAME}.ipynb").read_text())
    (tmp_path / "carl.ipynb").write_text("not a notebook {")
    (tmp_path / "dora.ipynb").write_text('{"hello": 1}')
    nb = json.loads((ROOT / "exercises" / f"{NAME}.ipynb").read_text())
    nb["metadata"] = {}
    (tmp_path / "emil_homework.ipynb").write_text(json.dumps(nb))
    submission(tmp_path, "fay", {})
    (tmp_path / "fay" / "copy_02_data_gradient.ipynb").write_text(
        (tmp_path / "fay" / f"{NAME}.ipynb").read_text())
    (tmp_path / "fay" / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "gus").mkdir()  # renamed and moved: the metadata still says which exercise
    shutil.copy(ROOT / "exercises" / f"{NAME}.ipynb", tmp_path / "gus" / "final version (1).ipynb")
    (tmp_path / "ann" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "ann" / ".ipynb_checkpoints" / f"{NAME}.ipynb").write_text("{}")
    subs, notes = submissions.find_submissions(tmp_path, masters.exercise_names())
    got = {(s.student, s.exercise, s.graded) for s in subs}
    assert got == {("ann", NAME, True), ("bob_02_data_gradient", NAME, True), ("carl", None, False),
                   ("dora", None, False), ("emil_homework", None, False), ("fay", NAME, False),
                   ("gus", NAME, True)}
    reasons = {s.student: s.reason for s in subs}
    assert "not valid JSON" in reasons["carl"] and "not a Jupyter notebook" in reasons["dora"]
    assert "which exercise" in reasons["emil_homework"] and "keep one" in reasons["fay"]
    assert any("notes.pdf" in n and "not a notebook" in n for n in notes)


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no such folder"):
        batch.grade(tmp_path / "nope", tmp_path / "g.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="empty"):
        batch.grade(tmp_path / "empty", tmp_path / "g.csv")


def test_no_csv_cell_can_inject_a_spreadsheet_formula(tmp_path):
    assert submissions._clean("=cmd|' /C calc'!A0").startswith("'=")
    assert submissions._clean("alice") == "alice"
    out = tmp_path / "grades.csv"
    submissions.write_csv([{"student": "alice", "reason": "=HYPERLINK(\"http://x\")"},
                     {"student": "bob", "reason": "+1", "ex:q1": "4"}], out)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["reason"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'+1"] and rows[1]["ex:q1"] == "4"


def test_deeply_nested_results_are_refused(tmp_path):
    (tmp_path / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "arrays.npz")
    with pytest.raises(plain.BadData):
        plain.load(tmp_path)


def test_results_that_are_symlinks_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('{"cases": {}}')
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").symlink_to(secret)
    np.savez(tmp_path / "results" / "arrays.npz")
    with pytest.raises(plain.BadData):
        plain.load(tmp_path / "results")


def test_without_bubblewrap_grading_stops_unless_told_unsafe(monkeypatch, tmp_path):
    submission(tmp_path, "ann", {})
    monkeypatch.setattr(sandbox, "problem", lambda: "the grading sandbox needs `bwrap`: install bubblewrap")
    with pytest.raises(SystemExit, match="bubblewrap"):
        batch.grade(tmp_path, tmp_path / "g.csv")
    monkeypatch.setenv("GRADE_SANDBOX", "maybe")
    with pytest.raises(SystemExit, match="GRADE_SANDBOX"):
        sandbox.mode()


def test_sandbox_is_available_in_ci():
    require_sandbox()


# -- a real batch in the sandbox ----------------------------------------------------------
@pytest.mark.slow
def test_batch_grades_each_submission_and_survives_bad_ones(tmp_path, built):
    require_sandbox()
    master, _ = built
    q1, q2 = master.solutions["q1"][0], master.solutions["q2"][0]
    subs = tmp_path / "submissions"
    submission(subs, "alice", {0: q1, 1: q2})  # correct
    submission(subs, "bob", {0: q1, 1: q2.replace(".amax(dim=1)", ".sum(dim=1)")})  # sum over channels
    submission(subs, "carol", {0: "import a_module_that_does_not_exist\n" + q1, 1: q2})  # raises
    submission(subs, "dave", {0: "while True:\n    pass", 1: q2})  # loops forever
    submission(subs, "erin", {0: q1, 1: "import shutil\nshutil.rmtree('/', ignore_errors=True)\n" + q2})
    submission(subs, "frank", {0: "for _ in range(20000):\n    print('spam' * 100)\n" + q1, 1: q2})
    submission(subs, "gina", {0: q1.replace("):", ")", 1), 1: q2})  # a syntax error
    fill = ("try:\n    open('big', 'wb').write(b'0' * 600_000_000)\nexcept OSError:\n    pass\n"
            "for i in range(8):\n    open(f'/results/junk{i}', 'wb').write(b'0' * 60_000_000)\n")
    submission(subs, "ivan", {0: fill + q1, 1: q2})  # tries to fill the disk
    old = submission(subs, "hank", {0: q1, 1: q2})  # correct, from an older release: other cell ids
    nb = nbformat.read(old, as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"old-{i}"
    nb.metadata["lecture"]["exercise_version"] = "0ld"
    nbformat.write(nb, old)
    points = {q: sum(c.points for c in master.tests if c.question == q) for q in ("q1", "q2")}
    full = f"{points['q1']:g}", f"{points['q2']:g}", "", f"{points['q1'] + points['q2']:g}"

    start = time.monotonic()
    out = tmp_path / "grades.csv"
    batch.grade(subs, out, timeout=60, jobs=2, log_dir=tmp_path / "logs")
    assert time.monotonic() - start < 150

    with open(out, newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert list(next(iter(rows.values()))) == [
        "student", f"{NAME}:q1", f"{NAME}:q2", f"{NAME}:q3", f"{NAME}:auto_total", "reason"]

    def scores(student):
        r = rows[student]
        return r[f"{NAME}:q1"], r[f"{NAME}:q2"], r[f"{NAME}:q3"], r[f"{NAME}:auto_total"]

    assert scores("alice") == full and rows["alice"]["reason"] == ""
    assert scores("frank") == full  # a flood of output costs nothing by itself
    assert scores("erin") == full  # it could delete nothing it was not given
    assert scores("bob")[0] == full[0] and scores("bob")[1] != full[1]
    assert "maximum over the channels" in rows["bob"]["reason"]
    assert scores("carol")[:2] == ("0", full[1])
    assert "ModuleNotFoundError" in rows["carol"]["reason"] and "not defined" in rows["carol"]["reason"]
    assert scores("dave")[:2] == ("0", full[1]) and "timed out" in rows["dave"]["reason"]
    assert scores("gina")[:2] == ("0", full[1]) and "SyntaxError" in rows["gina"]["reason"]
    assert "NoneType" not in rows["gina"]["reason"]
    assert scores("hank") == full and "older version" in rows["hank"]["reason"]
    assert scores("ivan")[3] == "0" and "wrote too much" in rows["ivan"]["reason"]
    assert all((subs / s / f"{NAME}.ipynb").exists() for s in rows)  # submissions are never touched
    for log in (tmp_path / "logs").glob("*.log"):
        assert log.read_text().startswith("# UNTRUSTED")
        assert log.stat().st_size <= batch.LOG_CHARS + 1000
