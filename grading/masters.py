"""The master notebooks taken apart: questions, solution cells, test cases.

A master ``solutions/NN_name.ipynb`` is in otter-grader's assign format: ``# BEGIN QUESTION``
raw cells with a YAML header, the solution between ``# BEGIN SOLUTION`` / ``# END SOLUTION``,
and test functions between ``# BEGIN TESTS`` / ``# END TESTS``, each with a YAML config
(``hidden``, ``points``, ``failure_message``). Only trusted code reads these files: they never
enter the grading sandbox.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


def exercise_names(solutions: Path = SOLUTIONS) -> list[str]:
    """The exercise names, from the master notebooks ``solutions/NN_name.ipynb``."""
    return sorted(p.stem for p in solutions.glob("*.ipynb") if NAME.match(p.stem))


@dataclass
class Question:
    name: str
    manual: bool = False
    points: float | None = None


def questions(master: Path) -> list[Question]:
    """The questions of a master notebook in order, from its ``# BEGIN QUESTION`` cells."""
    import yaml

    found = []
    for cell in nbformat.read(master, as_version=4).cells:
        source = cell.source.lstrip()
        if cell.cell_type == "raw" and source.startswith("# BEGIN QUESTION"):
            config = yaml.safe_load(source.split("\n", 1)[1]) or {}
            manual = bool(config.get("manual", False))
            found.append(Question(str(config["name"]), manual, config.get("points")))
    return found


@dataclass
class TestCase:
    question: str
    name: str
    hidden: bool
    points: float
    source: str
    message: str = ""

    @property
    def key(self) -> str:
        return f"{self.question}:{self.name}"


@dataclass
class Master:
    """A master notebook taken apart: set-up code, each question's solution cells, its tests."""

    name: str
    setup: list[str]
    solutions: dict[str, list[str]]
    tests: list[TestCase]

    def functions(self, question: str) -> list[str]:
        """The names of the functions a question's solution defines (what students write)."""
        return [m.group(1) for source in self.solutions.get(question, [])
                for m in re.finditer(r"^def (\w+)\(", source, re.M)]


def read_master(path: Path) -> Master:
    import yaml

    setup, solutions, tests = [], {}, []
    question, block = None, None
    for cell in nbformat.read(path, as_version=4).cells:
        source = cell.source
        if cell.cell_type == "raw":
            head = source.strip().split("\n", 1)[0].strip()
            if head == "# BEGIN QUESTION":
                question = str((yaml.safe_load(source.split("\n", 1)[1]) or {})["name"])
            elif head == "# END QUESTION":
                question = None
            elif head in ("# BEGIN SOLUTION", "# BEGIN TESTS"):
                block = head.split()[-1].lower()
            elif head in ("# END SOLUTION", "# END TESTS"):
                block = None
            continue
        if cell.cell_type != "code":
            continue
        if "setup" in cell.metadata.get("tags", []):
            setup.append(source)
        elif block == "solution" and question:
            solutions.setdefault(question, []).append(source)
        elif block == "tests" and question:
            config = {}
            match = re.match(r'\s*""" # BEGIN TEST CONFIG\n(.*?)""" # END TEST CONFIG\n', source, re.S)
            if match:
                config = yaml.safe_load(match.group(1)) or {}
            name = re.search(r"^def (\w+)\(", source, re.M).group(1)
            tests.append(TestCase(question, name, bool(config.get("hidden", False)),
                                  float(config.get("points", 1)), source, config.get("failure_message", "")))
    return Master(path.stem, setup, solutions, tests)


def student_answers(path: Path) -> tuple[list[str], list[str]]:
    """A student notebook's set-up cells and answer cells (``otter_answer_cell`` code cells)."""
    setup, answers = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "setup" in tags:
            setup.append(cell.source)
        elif cell.cell_type == "code" and "otter_answer_cell" in tags:
            answers.append(cell.source)
    return setup, answers


def function_sources(cells: list[str]) -> dict[str, str]:
    """The source of every top-level ``def`` in ``cells`` (the last one of a name wins), read
    with ``ast`` only: safe on student text. Static tests read it as ``f.__source__``."""
    import ast

    found: dict[str, str] = {}
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[node.name] = ast.get_source_segment(cell, node) or ""
    return found


def test_function(case: TestCase):
    """The test function of a case, compiled from the master (trusted code)."""
    scope: dict = {}
    exec(compile(case.source, f"<{case.question}:{case.name}>", "exec"), scope)
    return scope[case.name]


def run_test_case(case: TestCase, env: dict) -> str | None:
    """Run one test case against a namespace like otter does; None if it passes, else why not."""
    try:
        func = test_function(case)
        kwargs = {a: (env if a == "env" else env.get(a)) for a in inspect.signature(func).parameters}
        func(**kwargs)
    except Exception as err:  # noqa: BLE001 - a failing student function may raise anything
        return f"{type(err).__name__}: {err}"
    return None


def check(master: Master, cells: list[str]) -> dict[str, str | None]:
    """Execute trusted ``cells`` (set-up and answers) in-process and run every test case.

    For the masters and for tests of the exercises only: student code is graded by
    :mod:`grading.batch`, never like this."""
    env: dict = {"__name__": "__main__"}
    for source in cells:
        exec(compile(source, f"<{master.name}>", "exec"), env)
    for name, source in function_sources(cells).items():
        if callable(env.get(name)):
            env[name].__source__ = source
    return {case.key: run_test_case(case, env) for case in master.tests}


def score(master: Master, results: dict[str, str | None]) -> tuple[float, float]:
    """Points earned and points possible for the results of :func:`check`."""
    got = sum(c.points for c in master.tests if results[c.key] is None)
    return got, sum(c.points for c in master.tests)
