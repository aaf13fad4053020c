"""The judge: the master's own tests, run on answers the student's code gave in the sandbox.

Nothing here executes student code. Each test function of the master runs in this process
with the student's functions replaced by *replays*: a replay checks that the test passes the
same inputs the probes recorded, puts back what the student's call did to them (values,
``requires_grad``, ``.grad``, a module's training flags, parameters and simple attributes),
and returns the recorded value (or raises the recorded builtin exception). A returned tensor
that had autograd history gets the recorded gradient of its sum, so a test may call
``value.sum().backward()``; other uses of the graph are not replayed.

Failure reasons are the judge's words only: the test's ``failure_message``, its assertion
message (with any unknown string shown as ``"<text>"``), a short expected-versus-got, and the
cell errors of the notebook by type and line.
"""

from __future__ import annotations

import builtins
import inspect
from dataclasses import dataclass, field

import numpy as np
import torch

from . import plain
from .masters import Master, test_function
from .probes import Probes, student_functions


class ReplayError(Exception):
    """The recorded answers cannot stand in for this call (never the student's text)."""


@dataclass
class Verdict:
    scores: dict[str, float] = field(default_factory=dict)  # question -> points
    possible: dict[str, float] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # question -> reasons
    notes: list[str] = field(default_factory=list)

    def reason(self) -> str:
        parts = []
        for question, reasons in self.failures.items():
            more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
            parts.append(f"{question}: {reasons[0]}{more}")
        return "; ".join(self.notes + parts)


def _same(live, recorded) -> bool:
    if isinstance(recorded, torch.Tensor):
        return (isinstance(live, torch.Tensor) and live.shape == recorded.shape
                and live.dtype == recorded.dtype and torch.equal(live.detach(), recorded.detach()))
    if isinstance(recorded, np.ndarray):
        return (isinstance(live, np.ndarray) and live.shape == recorded.shape
                and np.array_equal(live, recorded))
    if isinstance(recorded, torch.nn.Module):
        if type(live) is not type(recorded):
            return False
        a, b = live.state_dict(), recorded.state_dict()
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a) and \
            [m.training for m in live.modules()] == [m.training for m in recorded.modules()]
    if isinstance(recorded, (list, tuple)):
        return type(live) is type(recorded) and len(live) == len(recorded) and \
            all(_same(x, y) for x, y in zip(live, recorded))
    if isinstance(recorded, (int, float, str, bool, type(None))):
        return type(live) is type(recorded) and live == recorded
    return type(live) is type(recorded)


def _restore(live, state: dict, arrays: plain.Arrays, strings: frozenset) -> None:
    """Put back on ``live`` what the student's call did to that argument."""
    kind = state.get("t") if isinstance(state, dict) else None
    if kind == "tensor_state" and isinstance(live, torch.Tensor):
        value = torch.from_numpy(np.array(arrays.get(state["value"])))
        if value.shape != live.shape:
            raise ReplayError("an argument changed shape")
        with torch.no_grad():
            live.copy_(value.to(live.dtype))
        if live.is_leaf and live.is_floating_point():
            live.requires_grad_(bool(state.get("requires_grad")))
        grad = state.get("grad")
        live.grad = None if grad is None else torch.from_numpy(np.array(arrays.get(grad))).to(live.dtype)
    elif kind == "ndarray_state" and isinstance(live, np.ndarray):
        value = arrays.get(state["value"])
        if value.shape != live.shape:
            raise ReplayError("an argument changed shape")
        live[...] = value
    elif kind == "module_state" and isinstance(live, torch.nn.Module):
        modules = dict(live.named_modules())
        for name, flag in (state.get("training") or {}).items():
            if name in modules and isinstance(flag, bool):
                modules[name].training = flag
        params = {k: torch.from_numpy(np.array(arrays.get(v)))
                  for k, v in (state.get("params") or {}).items()}
        own = live.state_dict()
        if params.keys() != own.keys() or any(params[k].shape != own[k].shape for k in own):
            raise ReplayError("the model's parameters changed shape")
        live.load_state_dict(params)
        for name, attrs in (state.get("attrs") or {}).items():
            module = modules.get(name)
            for key, node in (attrs.items() if module is not None and isinstance(attrs, dict) else ()):
                if not key.startswith("_") and type(vars(module).get(key, 0)) in (bool, int, float, str):
                    if key in vars(module):
                        setattr(module, key, plain.decode(node, arrays, strings))


def _value(entry: dict, arguments: list, arrays: plain.Arrays, strings: frozenset):
    node = entry.get("value")
    value = plain.decode(node, arrays, strings)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        grads = entry.get("gradients") or {}
        if node.get("grad_fn") and grads:
            extra = sum(((arguments[int(i)] - arguments[int(i)].detach())
                         * torch.from_numpy(np.array(arrays.get(g)))).sum()
                        for i, g in grads.items() if int(i) < len(arguments))
            value = value + extra / max(1, value.numel())
        elif node.get("grad_fn"):
            value = value.requires_grad_(True) * 1
        elif node.get("requires_grad"):
            value = value.requires_grad_(True)
    return value


def _raise(name: str, entry: dict):
    status = entry.get("status")
    if status == "missing":
        raise ReplayError(f"{name} is not defined")
    if status == "timeout":
        raise ReplayError("the function did not return in time (an endless loop?)")
    cls = getattr(builtins, str(entry.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = RuntimeError
    raise cls("raised by the submitted function")


class _Replay:
    """Stands in for one student function inside one test case."""

    def __init__(self, name: str, cursor: list, probes: list, entries: list, arrays, strings,
                 source: str | None = None) -> None:
        self.name, self.cursor, self.probes, self.entries = name, cursor, probes, entries
        self.arrays, self.strings, self._source = arrays, strings, source

    @property
    def __source__(self) -> str:
        """The function's text in the notebook, for static checks (never executed)."""
        if self._source is None:
            raise ReplayError(f"{self.name} is not defined")
        return self._source

    def __call__(self, *args, **kwargs):
        i = self.cursor[0]
        self.cursor[0] += 1
        if i >= len(self.probes) or self.probes[i]["function"] != self.name:
            raise ReplayError("the test made a call that was not recorded")
        probe = self.probes[i]
        if not (_same(list(args), list(probe["args"])) and kwargs.keys() == probe["kwargs"].keys()
                and all(_same(kwargs[k], probe["kwargs"][k]) for k in kwargs)):
            raise ReplayError("the test's inputs differ from the recorded ones")
        if i >= len(self.entries) or not isinstance(self.entries[i], dict):
            raise ReplayError("not recorded (did the notebook stop early?)")
        entry = self.entries[i]
        arguments = list(args) + list(kwargs.values())
        states = entry.get("state") or []
        for live, state in zip(arguments, states if isinstance(states, list) else []):
            _restore(live, state, self.arrays, self.strings)
        if entry.get("status") != "returned":
            _raise(self.name, entry)
        return _value(entry, arguments, self.arrays, self.strings)


def run_case(master: Master, probes: Probes, index: int, entries: list, arrays: plain.Arrays,
             sources: dict | None = None) -> str | None:
    """Run test case ``index`` on recorded entries: None if it passes, else the judge's reason.
    ``sources`` maps function names to their text in the notebook (read, never run)."""
    case, probe_case = master.tests[index], probes.cases[index]
    cursor = [0]
    env = dict(probes.setup)
    for name in student_functions(master):
        env[name] = _Replay(name, cursor, probe_case["calls"], entries, arrays, probes.strings,
                            (sources or {}).get(name))
    func = test_function(case)
    kwargs = {a: (env if a == "env" else env.get(a)) for a in inspect.signature(func).parameters}
    torch.manual_seed(0)
    try:
        func(**kwargs)
    except ReplayError as err:
        return f"{case.message} ({err})"
    except AssertionError as err:
        detail = str(err).strip()[:160] or difference(probes.expected.get(case.key, []), entries,
                                                      probes.expected_arrays, arrays)
        return f"{case.message}" + (f" ({detail})" if detail else "")
    except plain.BadData as err:
        return f"unreadable answer ({err})"
    except Exception as err:  # noqa: BLE001 - e.g. a wrong type returned; the words are the judge's
        return f"{case.message} (the test could not use the returned value: {type(err).__name__})"
    return None


def judge(master: Master, probes: Probes, tree: dict, arrays: plain.Arrays,
          sources: dict | None = None) -> Verdict:
    """Score one notebook's recorded answers (``sources``: see :func:`run_case`)."""
    verdict = Verdict()
    cases = tree.get("cases") if isinstance(tree, dict) else None
    cases = cases if isinstance(cases, dict) else {}
    for q in master.solutions:
        verdict.scores[q] = 0.0
        verdict.possible[q] = sum(c.points for c in master.tests if c.question == q)
    for index, case in enumerate(master.tests):
        entries = cases.get(case.key)
        if not isinstance(entries, list):
            why = "not recorded (the notebook stopped, crashed or timed out before this test)"
        else:
            try:
                why = run_case(master, probes, index, entries, arrays, sources)
            except plain.BadData as err:
                why = f"unreadable answer ({err})"
        if why is None:
            verdict.scores[case.question] += case.points
        else:
            verdict.failures.setdefault(case.question, []).append(f"{case.name}: {why}")
    verdict.notes += cell_notes(master, tree)
    return verdict


def cell_notes(master: Master, tree: dict) -> list[str]:
    """Say which cells failed (by type and line), and which answers were never defined."""
    notes = []
    cells = tree.get("cells") if isinstance(tree, dict) else None
    for cell in cells[:20] if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("status") == "timeout":
            index = cell.get("cell")
            where = f"code cell {index + 1} (counting all cells from 1)" if type(index) is int else "a cell"
            notes.append(f"{where} timed out (an endless loop or very slow code?)")
        if isinstance(cell, dict) and cell.get("status") in ("syntax", "error"):
            error = str(cell.get("error"))
            error = error if error in vars(builtins) or error == "Exception" else "an error"
            kind = "does not compile" if cell.get("status") == "syntax" else "raised"
            index, line = cell.get("cell"), cell.get("line")
            where = f"code cell {index + 1} (counting all cells from 1)" if type(index) is int else "a cell"
            at = f" at line {line}" if type(line) is int else ""
            notes.append(f"{where} {kind}: {error}{at}")
    return notes


def _describe(entry: dict, arrays: plain.Arrays):
    """(a short description, the value or None) of one recorded call."""
    status = entry.get("status") if isinstance(entry, dict) else None
    if status == "raised":
        error = str(entry.get("error"))
        return (error if error in vars(builtins) else "an exception") + " raised", None
    if status != "returned":
        return {"missing": "no function", "timeout": "a time-out"}.get(status, "nothing"), None
    try:
        value = plain.decode(entry.get("value"), arrays)
    except plain.BadData:
        return "unreadable data", None
    if isinstance(value, (torch.Tensor, np.ndarray)):
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        return f"a {kind} of shape {tuple(value.shape)} and dtype {str(value.dtype).split('.')[-1]}", value
    if isinstance(value, plain.Unsupported):
        return "a value of another type", None
    return f"{type(value).__name__} {value!r}"[:60], value


def difference(expected: list, got: list, expected_arrays: plain.Arrays, arrays: plain.Arrays) -> str:
    """A short expected-versus-got for the first call whose answer differs from the master's."""
    for want, have in zip(expected, got):
        (w, wv), (h, hv) = _describe(want, expected_arrays), _describe(have, arrays)
        if w != h:
            return f"expected {w}, got {h}"
        if isinstance(wv, (torch.Tensor, np.ndarray)) and isinstance(hv, (torch.Tensor, np.ndarray)):
            a = torch.as_tensor(np.asarray(wv, dtype=np.float64))
            b = torch.as_tensor(np.asarray(hv, dtype=np.float64))
            gap = (a - b).abs().nan_to_num(nan=float("inf")).max().item() if a.numel() else 0.0
            if gap > 0:
                if a.numel() <= 6:
                    return f"expected {_round(a)}, got {_round(b)}"
                return f"values differ from the expected ones by up to {gap:.3g}"
    return ""


def _round(t: torch.Tensor) -> str:
    return str([round(v, 4) for v in t.flatten().tolist()])
