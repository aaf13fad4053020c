"""Exercises and solutions from one source (otter-grader's assign format, the package grading/).

- every solution scores full marks; every untouched exercise runs and scores zero;
- each known mistake, made in a copy of a solution, fails the hidden case written for it;
- exercises/ is what `make exercises` generates from solutions/ (regenerated here and compared).

The score checks run the notebooks' own test cases in-process (fast); tests/test_grading.py
grades real notebooks with `otter run`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from grading import assign
from grading import masters as grading

ROOT = Path(__file__).resolve().parents[1]
NAMES = grading.exercise_names()


def _master(name: str) -> grading.Master:
    return grading.read_master(ROOT / "solutions" / f"{name}.ipynb")


def _solution_cells(master: grading.Master, replace: tuple[str, str, str] | None = None) -> list[str]:
    """Set-up and solution cells; ``replace=(question, old, new)`` makes a mistake in one answer."""
    cells = []
    for question, sources in master.solutions.items():
        for source in sources:
            if replace and replace[0] == question:
                count = sum(s.count(replace[1]) for s in sources)
                assert count == 1, f"{replace[1]!r} occurs {count} times in {master.name} {question}"
                source = source.replace(replace[1], replace[2])
            cells.append(source)
    return master.setup + cells


def test_one_exercise_per_lecture_notebook():
    lecture = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert NAMES == lecture
    assert sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_solution_scores_full_marks(name):
    master = _master(name)
    assert master.tests and all(master.solutions.values())
    results = grading.check(master, _solution_cells(master))
    assert {case: why for case, why in results.items() if why} == {}


@pytest.mark.parametrize("name", NAMES)
def test_untouched_exercise_scores_zero(name):
    master = _master(name)
    setup, answers = grading.student_answers(ROOT / "exercises" / f"{name}.ipynb")
    assert len(answers) == len(master.solutions)
    results = grading.check(master, setup + answers)
    passed = [case for case, why in results.items() if why is None]
    assert passed == [], f"untouched stubs pass {passed}: make those tests check the answer"
    assert grading.score(master, results)[0] == 0


@pytest.mark.parametrize("name", NAMES)
def test_every_question_has_public_and_hidden_cases(name):
    master = _master(name)
    for question in master.solutions:
        cases = [c for c in master.tests if c.question == question]
        assert any(not c.hidden for c in cases), f"{name} {question}: no public test"
        assert any(c.hidden for c in cases), f"{name} {question}: no hidden test"
        assert all(c.message for c in cases), f"{name} {question}: a test case without failure_message"
    manual = [q for q in grading.questions(ROOT / "solutions" / f"{name}.ipynb") if q.manual]
    assert manual, f"{name}: no written question graded by hand"


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_has_no_solutions_outputs_or_hidden_tests(name):
    master = _master(name)
    nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    text = json.dumps(nb)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata["otter"]["assignment_name"] == name  # otter finds the notebook by name
    assert f'otter.Notebook("{name}.ipynb")' in nb.cells[0].source
    stored = "\n".join(nb.metadata["otter"]["tests"].values())
    for case in master.tests:
        assert (f"def {case.name}(" in stored) == (not case.hidden), case.name
    # the solutions' bodies are gone: no line of a solution (beyond its def line and
    # docstring) is left in any answer cell
    _, answers = grading.student_answers(ROOT / "exercises" / f"{name}.ipynb")
    for sources in master.solutions.values():
        solution = sources[0]
        body = solution.split('"""')[-1] if '"""' in solution else solution
        lines = [ln.strip() for ln in body.splitlines() if ln.strip() and "SOLUTION" not in ln]
        for answer in answers:
            assert not any(ln in answer for ln in lines if len(ln) > 12), f"solution left in {name}"


# (exercise, question, text in the solution, the mistake, the hidden case that must catch it)
MISTAKES = [
    ("01_backprop_to_image", "q1", "objective = model(x)[0, c] - l2 * x.pow(2).sum()",
     "scores = model(x)\n    objective = scores[0, c] - l2 * scores.pow(2).sum()",
     "test_l2_penalty_on_image"),
    ("01_backprop_to_image", "q1", "objective = model(x)[0, c]",
     "objective = torch.softmax(model(x), dim=1)[0, c]", "test_raw_score_not_softmax"),
    ("01_backprop_to_image", "q2", "model.eval()", "pass", "test_eval_mode"),
    ("01_backprop_to_image", "q2", "optimizer.zero_grad()", "pass", "test_two_steps_zero_grad"),
    ("02_data_gradient", "q1", "scores = model(x)[:, c]",
     "scores = torch.softmax(model(x), dim=1)[:, c]", "test_raw_score_not_softmax"),
    ("02_data_gradient", "q1", "model.eval()", "pass", "test_eval_mode"),
    ("02_data_gradient", "q1", "scores = model(x)[:, c]", "scores = model(x)[:1, c]", "test_batch"),
    ("02_data_gradient", "q2", "grad.abs().amax(dim=1)", "grad.abs().sum(dim=1)", "test_max_not_sum"),
    ("02_data_gradient", "q2", "grad.abs().amax(dim=1)", "grad.amax(dim=1)", "test_absolute_value"),
    ("02_data_gradient", "q2", "grad.abs().amax(dim=1)", "grad.abs().amax(dim=-1)", "test_channel_axis"),
    ("03_grabcut_localisation", "q1", "high, low = np.quantile(s, fg_quantile), np.quantile(s, bg_quantile)",
     "high, low = fg_quantile * s.max(), bg_quantile * s.max()", "test_quantiles_not_fraction_of_max"),
    ("03_grabcut_localisation", "q2", "mask = seeds.copy()", "mask = seeds", "test_seeds_not_modified"),
    ("03_grabcut_localisation", "q2", "return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)",
     "return mask == cv2.GC_FGD", "test_probable_foreground_included"),
    ("03_grabcut_localisation", "q3", "int(xs.max()) + 1, int(ys.max()) + 1",
     "int(xs.max()), int(ys.max())", "test_exclusive_end"),
    ("04_reconstruction", "q1",
     "base = x[:, :, :-1, :-1]\n    dx = x[:, :, :-1, 1:] - base\n    dy = x[:, :, 1:, :-1] - base",
     "base = x[:, :-1, :-1]\n    dx = x[:, :-1, 1:] - base\n    dy = x[:, 1:, :-1] - base",
     "test_axes_vertical_edges"),
    ("04_reconstruction", "q1", "squared.pow(beta / 2)", "squared", "test_beta"),
    ("04_reconstruction", "q2", " / target.flatten(1).pow(2).sum(1)", "", "test_normalised"),
    ("05_guided_backprop", "q1", "return r * (f > 0) * (r > 0)", "return r * (r > 0)",
     "test_guided_forward_mask"),
    ("05_guided_backprop", "q1", "return r * (f > 0) * (r > 0)", "return r * (f > 0)",
     "test_guided_backward_mask"),
    ("05_guided_backprop", "q1", "return r * (r > 0)\n", "return r * (f > 0) * (r > 0)\n", "test_deconvnet"),
    ("05_guided_backprop", "q2", "net.rule = previous", "pass", "test_rule_restored"),
]


@pytest.mark.parametrize(
    "name, question, old, new, case", MISTAKES, ids=[f"{m[0][:2]}-{m[1]}-{m[4]}" for m in MISTAKES]
)
def test_known_mistake_fails_its_hidden_case(name, question, old, new, case):
    master = _master(name)
    assert any(c.name == case and c.question == question and c.hidden for c in master.tests), case
    results = grading.check(master, _solution_cells(master, (question, old, new)))
    assert results[f"{question}:{case}"] is not None, f"the mistake passes {case}"
    got, total = grading.score(master, results)
    assert got < total
    others = [c for c, why in results.items() if why and c.split(":")[0] != question]
    assert others == [], f"a mistake in {question} broke other questions: {others}"


@pytest.mark.slow
def test_exercises_are_up_to_date(tmp_path):
    """`make exercises` would not change exercises/: regenerate with otter assign and compare."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        folders = dict(zip(NAMES, pool.map(
            lambda n: assign.assign_one(n, tmp_path, run_tests=False), NAMES)))
    stale = []
    for name, folder in folders.items():
        fresh = assign.student_notebook(folder, name)
        committed = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
        if json.loads(nbformat.writes(fresh)) != json.loads(nbformat.writes(committed)):
            stale.append(name)
    assert stale == [], f"exercises/ is out of date for {stale}: run `make exercises` and commit exercises/"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_untouched_exercise_runs_without_errors(name, tmp_path):
    """A student who runs the untouched notebook top to bottom sees no exception."""
    from nbclient import NotebookClient

    shutil.copy(ROOT / "exercises" / f"{name}.ipynb", tmp_path)
    nb = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check(")]
    assert checks
    for cell in checks:  # each check gives the student a message, not a traceback
        text = json.dumps(cell.outputs)
        assert "Traceback" not in text and ("failed" in text.lower() or "❌" in text), text[:500]


# Mistakes that each cost exactly one point, in their own question, with a reason that names
# that mistake. Each is judged the way `make grade` judges a notebook: the answers recorded
# on the probes (grading/record.py, here in-process on trusted code), replayed into the
# master's tests by grading/judge.py.
# (exercise, question, text in the solution, the mistake, the hidden case, words of the reason)
NAMED_MISTAKES = [
    ("01_backprop_to_image", "q2", "optimizer = torch.optim.SGD([x], lr=lr)",
     "optimizer = torch.optim.SGD([x], lr=lr, momentum=0.9)", "test_two_steps_zero_grad", "momentum"),
    ("01_backprop_to_image", "q2", "optimizer.zero_grad()", "pass", "test_two_steps_zero_grad",
     "clear it every step"),
    ("01_backprop_to_image", "q2", "objective = model(x)[0, c] - l2 * x.pow(2).sum()",
     "objective = model(x)[0, c]", "test_two_steps_zero_grad", "penalty is missing"),
    ("02_data_gradient", "q1", "(grad,) = torch.autograd.grad(scores.sum(), x)",
     "(grad,) = torch.autograd.grad(scores.mean(), x)", "test_batch", "not their mean"),
    ("02_data_gradient", "q1",
     "x = x.detach().clone().requires_grad_(True)\n    scores = model(x)[:, c]\n"
     "    (grad,) = torch.autograd.grad(scores.sum(), x)\n    return grad.detach()",
     "x.requires_grad_(True)\n    model(x)[:, c].sum().backward()\n    return x.grad",
     "test_caller_tensor_untouched", "second call doubles"),
    ("02_data_gradient", "q1", "(grad,) = torch.autograd.grad(scores.sum(), x)\n    return grad.detach()",
     "(grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)\n    return grad",
     "test_no_autograd_history", "autograd history"),
    ("02_data_gradient", "q2", "return grad.abs().amax(dim=1)", "return lu.saliency_map(grad)",
     "test_written_by_hand", "not to call lu.saliency_map"),
    ("03_grabcut_localisation", "q2", "cv2.GC_INIT_WITH_MASK)",
     "cv2.GC_INIT_WITH_RECT) if False else cv2.grabCut(np.ascontiguousarray(image), mask, "
     "(1, 1, mask.shape[1] - 2, mask.shape[0] - 2), background, foreground, iterations, "
     "cv2.GC_INIT_WITH_RECT)", "test_starts_from_the_seeds", "not from a rectangle"),
    ("03_grabcut_localisation", "q3",
     "ys, xs = np.nonzero(mask)\n    if len(xs) == 0:\n"
     "        raise ValueError(\"the mask is empty: there is no object to box\")\n"
     "    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1",
     "return lu.localization.mask_to_box(mask)", "test_written_by_hand", "not to call lu.localization"),
    ("04_reconstruction", "q1",
     "squared = (dx.pow(2) + dy.pow(2)).sum(dim=1)\n    return squared.pow(beta / 2).flatten(1).mean(dim=1)",
     "with torch.no_grad():\n        squared = (dx.pow(2) + dy.pow(2)).sum(dim=1)\n"
     "        return squared.pow(beta / 2).flatten(1).mean(dim=1)", "test_differentiable", "differentiable"),
    ("04_reconstruction", "q1", "squared.pow(beta / 2)", "squared", "test_beta", "exponent"),
    ("04_reconstruction", "q1", "squared = (dx.pow(2) + dy.pow(2)).sum(dim=1)\n"
     "    return squared.pow(beta / 2).flatten(1).mean(dim=1)",
     "return (dx.pow(2) + dy.pow(2)).pow(beta / 2).sum(dim=1).flatten(1).mean(dim=1)",
     "test_channels_summed", "inside the power"),
    ("05_guided_backprop", "q2", "(grad,) = torch.autograd.grad(net(x)[:, c].sum(), x)",
     "(grad,) = torch.autograd.grad(net(x)[0, c], x)", "test_batch_rows", "every row"),
]


def _judged(master: grading.Master, cells: list[str]):
    """Judge in-process answers exactly as `make grade` judges a sandboxed notebook."""
    import pickle

    from grading import judge, plain, record

    built = _built(master.name)
    env: dict = {"__name__": "__main__"}
    for source in cells:
        exec(compile(source, "<answers>", "exec"), env)
    arrays, cases = plain.Arrays(), {}
    for case in pickle.loads(built.sandbox_bytes())["cases"]:
        cases[case["key"]] = [record.call(env[c["function"]], c, arrays, quiet=True) for c in case["calls"]]
    tree = json.loads(json.dumps({"cells": [], "cases": cases}))  # as written to results.json
    return judge.judge(master, built, tree, arrays, grading.function_sources(cells))


_BUILT: dict = {}


def _built(name: str):
    from grading import probes

    if name not in _BUILT:
        _BUILT[name] = probes.build(_master(name))
    return _BUILT[name]


@pytest.mark.parametrize("name, question, old, new, case, words", NAMED_MISTAKES,
                         ids=[f"{m[0][:2]}-{m[1]}-{m[5].split()[-1]}" for m in NAMED_MISTAKES])
def test_named_mistake_costs_one_point_with_its_own_reason(name, question, old, new, case, words):
    master = _master(name)
    cells = _solution_cells(master, (question, old, new))
    failed = [c for c, why in grading.check(master, cells).items() if why]
    assert failed == [f"{question}:{case}"], f"the mistake fails {failed}, not only {case}"
    verdict = _judged(master, cells)
    lost = {q: verdict.possible[q] - verdict.scores[q] for q in verdict.possible}
    case_points = next(c.points for c in master.tests if c.name == case and c.question == question)
    assert lost == {q: (case_points if q == question else 0.0) for q in lost}
    assert words in verdict.reason() and case in verdict.reason(), verdict.reason()


def test_the_judge_gives_the_solutions_full_marks_through_replay():
    for name in NAMES:
        master = _master(name)
        verdict = _judged(master, _solution_cells(master))
        assert verdict.scores == verdict.possible, (name, verdict.reason())


def test_a_notebook_run_but_not_edited_counts_as_untouched(tmp_path):
    path = tmp_path / "02_data_gradient.ipynb"
    nb = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="ran")]
    nbformat.write(nb, path)
    assert not assign.edited(path)
    nb.cells[2].source += "\n# my note"
    nbformat.write(nb, path)
    assert assign.edited(path)


@pytest.mark.slow
def test_students_work_survives_make_exercises_autograder_and_grade(tmp_path):
    name = "02_data_gradient"
    exercises = tmp_path / "exercises"
    exercises.mkdir()
    nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    answer = next(c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", []))
    answer.source = "def data_gradient(model, x, c):\n    return 'my own work'"
    nbformat.write(nb, exercises / f"{name}.ipynb")
    work = (exercises / f"{name}.ipynb").read_bytes()
    folders = {"build": tmp_path / "build", "exercises": exercises, "autograder": tmp_path / "autograder"}

    # make exercises / make autograder: refused, the work untouched, the message says how to keep it
    with pytest.raises(SystemExit, match=r"(?s)Not overwritten.*02_data_gradient.ipynb.*FORCE=1"):
        assign.assign([name], run_tests=False, **folders)
    assert (exercises / f"{name}.ipynb").read_bytes() == work
    # make exercises FORCE=1: a time-stamped copy first, then the fresh notebook
    assign.assign([name], run_tests=False, force=True, **folders)
    (copy,) = (exercises / "backups").glob(f"{name}.*.ipynb")
    assert copy.read_bytes() == work and not assign.edited(exercises / f"{name}.ipynb")
    # make grade writes nothing into exercises/ or autograder/
    dry = subprocess.run(["make", "-n", "grade", "SUBMISSIONS=submissions"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "grading grade" in dry and "assign" not in dry and "autograder" not in dry
