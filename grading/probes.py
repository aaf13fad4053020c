"""The probes: the inputs on which the hidden tests call the student's functions.

Built on the trusted side from a master notebook: every test function runs once against the
master solution, with each solution function wrapped in a recorder that keeps a copy of the
arguments of every call (and the random state before it). The probes file that enters the
sandbox holds these inputs and nothing else: no test source, no expected value, no solution.
Copies share a memo within a test, so a test that passes the same tensor twice passes the
same object twice in the sandbox too (a function that changes its input shows it).

:func:`build` also records what the master solution returns on the probes, in the same plain
form as the sandbox (:mod:`grading.record`), for the judge's expected-versus-got.
"""

from __future__ import annotations

import copy
import inspect
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import torch

from . import plain, record
from .masters import EXERCISES, Master, function_sources, test_function

PICTURE_TAG = "picture"


@dataclass
class Probes:
    """The inputs of every test case of one exercise, and what the master gives on them."""

    exercise: str
    cases: list[dict]  # [{"key": "q1:test_x", "calls": [{"function", "args", "kwargs", ...}]}]
    skip: list[str]  # code cells of the exercise that grading does not run (checks, pictures)
    setup: dict  # the master's set-up namespace (trusted names such as TinyNet)
    expected: dict = field(default_factory=dict)  # key -> record entries of the master
    expected_arrays: plain.Arrays = field(default_factory=plain.Arrays)
    strings: frozenset = frozenset()

    def sandbox_bytes(self) -> bytes:
        """The pickle that enters the sandbox: inputs only."""
        return pickle.dumps({"exercise": self.exercise, "cases": self.cases, "skip": self.skip})


class _Recorder:
    def __init__(self, name: str, function, calls: list, memo: dict, source: str | None = None) -> None:
        self.name, self.function, self.calls, self.memo = name, function, calls, memo
        self.__source__ = source

    def __call__(self, *args, **kwargs):
        args_copy, kwargs_copy = copy.deepcopy((args, kwargs), self.memo)
        self.calls.append({"function": self.name, "args": args_copy, "kwargs": kwargs_copy,
                           "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state()})
        return self.function(*args, **kwargs)


def skipped_cells(exercise: Path) -> list[str]:
    """Sources of the exercise's code cells that are neither set-up nor answers."""
    skip = []
    for cell in nbformat.read(exercise, as_version=4).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "setup" not in tags and "otter_answer_cell" not in tags:
            skip.append(cell.source.strip())
    return skip


def setup_namespace(master: Master) -> dict:
    """The master's set-up cells executed (trusted): the names tests take besides answers."""
    env: dict = {"__name__": "__main__"}
    for source in master.setup:
        exec(compile(source, f"<{master.name} setup>", "exec"), env)
    return env


def student_functions(master: Master) -> list[str]:
    return [f for q in master.solutions for f in master.functions(q)]


def build(master: Master, exercises: Path = EXERCISES) -> Probes:
    setup = setup_namespace(master)
    solved = dict(setup)
    for sources in master.solutions.values():
        for source in sources:
            exec(compile(source, f"<{master.name} solution>", "exec"), solved)
    names = student_functions(master)
    sources = function_sources([c for cells in master.solutions.values() for c in cells])
    cases = []
    for case in master.tests:
        calls: list = []
        memo: dict = {}
        env = {**setup, **{n: _Recorder(n, solved[n], calls, memo, sources.get(n)) for n in names}}
        func = test_function(case)
        kwargs = {a: (env if a == "env" else env.get(a)) for a in inspect.signature(func).parameters}
        torch.manual_seed(0)
        func(**kwargs)  # the master passes its own tests (checked by `make exercises`)
        cases.append({"key": case.key, "calls": calls})
    probes = Probes(master.name, cases, skipped_cells(exercises / f"{master.name}.ipynb"), setup)
    # what the master returns, recorded exactly as the sandbox records a student
    for case in pickle.loads(probes.sandbox_bytes())["cases"]:
        probes.expected[case["key"]] = [
            record.call(solved[c["function"]], c, probes.expected_arrays, quiet=True) for c in case["calls"]]
    probes.strings = frozenset(names) | _strings(cases) | _strings(probes.expected)
    return probes


def _strings(value, depth: int = 0) -> frozenset:
    """Every string inside the probes' inputs (the judge shows only those)."""
    found: set = set()
    if depth > 10:
        return frozenset()
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            found |= _strings(k, depth + 1) | _strings(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= _strings(v, depth + 1)
    elif isinstance(value, torch.nn.Module):
        for m in value.modules():
            found |= {v for k, v in vars(m).items() if isinstance(v, str) and not k.startswith("_")}
    return frozenset(found)
