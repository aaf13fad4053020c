"""The record step, run inside the grading sandbox: execute a student notebook, call its
functions on the probes' inputs, and write what came back as plain data.

    python record.py NOTEBOOK PROBES OUT_FOLDER [SECONDS]

SECONDS (default 60) bounds each cell and each call, so that one endless loop costs only its
own question; the caller's wall clock bounds the whole run.

Everything here runs next to student code, so nothing here is trusted: the judge
(:mod:`grading.judge`) reads only the data this writes, checks its form, and compares it with
what the master solution gives. Patching anything (torch, numpy, this module) can only spoil
the student's own answers. The probes file holds the test *inputs* only, never a hidden test,
an expected value or a solution.

For every call the results hold: the returned value (or the exception's type, or "missing"
when the function was never defined, or "timeout"), the state of each argument afterwards
(tensor values, ``requires_grad`` and ``.grad``; a module's training flags, parameters and
simple attributes), and, when the value has autograd history, the gradient of ``value.sum()``
with respect to every argument that requires a gradient.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import signal
import sys
import traceback

import numpy as np
import torch

try:
    from . import plain
except ImportError:  # run as a script in the sandbox, next to plain.py
    import plain

CALL_SECONDS = 60
BUILTIN_ERRORS = {name for name, obj in vars(builtins).items()
                  if isinstance(obj, type) and issubclass(obj, BaseException)}


class CallTimeout(BaseException):
    pass


class _NoIPython:
    """``get_ipython()`` for magics in student cells: they do nothing while grading."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def error_name(err: BaseException) -> str:
    """A builtin exception's name, else "Exception" (a student class name is student text)."""
    for cls in type(err).__mro__:
        if cls.__module__ == "builtins" and cls.__name__ in BUILTIN_ERRORS:
            return cls.__name__
    return "Exception"


def cells_to_run(notebook: dict, skip: set[str]) -> list[tuple[int, str]]:
    """The code cells to execute: all but the picture cells and otter's own cells."""
    cells = []
    for i, cell in enumerate(notebook.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "picture" in tags or source.strip() in skip or "otter.Notebook(" in source \
                or source.lstrip().startswith("grader."):
            continue
        cells.append((i, source))
    return cells


def run_cells(cells: list[tuple[int, str]], namespace: dict) -> list[dict]:
    """Execute cells in order (an error does not stop the next cell); report each one."""
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    report = []
    for index, source in cells:
        entry = {"cell": index, "status": "ok"}
        try:
            code = compile(transform(source), f"<cell {index}>", "exec")
        except SyntaxError as err:
            entry.update(status="syntax", error=error_name(err), line=int(err.lineno or 0))
            traceback.print_exc()
        else:
            try:
                signal.alarm(CALL_SECONDS)
                exec(code, namespace)
            except CallTimeout:
                entry.update(status="timeout", seconds=CALL_SECONDS)
            except BaseException as err:  # noqa: BLE001 - student code may raise anything
                entry.update(status="error", error=error_name(err), line=_student_line(err, index))
                traceback.print_exc()
            finally:
                signal.alarm(0)
        report.append(entry)
    return report


def _student_line(err: BaseException, index: int) -> int:
    line = 0
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        if frame.f_code.co_filename == f"<cell {index}>":
            line = lineno
    return int(line)


def state_of(value, arrays: plain.Arrays) -> dict:
    """What a test may look at in an argument after a call."""
    if isinstance(value, torch.Tensor):
        grad = value.grad
        return {"t": "tensor_state", "value": arrays.add(plain._tensor_array(value)),
                "requires_grad": bool(value.requires_grad),
                "grad": None if grad is None else arrays.add(plain._tensor_array(grad))}
    if isinstance(value, np.ndarray) and value.dtype != object:
        return {"t": "ndarray_state", "value": arrays.add(np.array(value))}
    if isinstance(value, torch.nn.Module):
        modules = dict(value.named_modules())
        attrs = {name: {k: plain.encode(v, arrays) for k, v in vars(m).items()
                        if not k.startswith("_") and k != "training"
                        and (v is None or type(v) in (bool, int, float, str))}
                 for name, m in modules.items()}
        return {"t": "module_state", "training": {n: bool(m.training) for n, m in modules.items()},
                "params": {k: arrays.add(plain._tensor_array(v)) for k, v in value.state_dict().items()},
                "attrs": attrs}
    return {"t": "none"}


def gradients(value, arguments: list, arrays: plain.Arrays) -> dict:
    """d value.sum() / d argument, for each tensor argument that requires a gradient."""
    if not (isinstance(value, torch.Tensor) and value.grad_fn is not None and value.is_floating_point()):
        return {}
    wanted = {i: a for i, a in enumerate(arguments) if isinstance(a, torch.Tensor) and a.requires_grad}
    if not wanted:
        return {}
    grads = torch.autograd.grad(value.sum(), list(wanted.values()), allow_unused=True)
    return {str(i): arrays.add(plain._tensor_array(g)) for i, g in zip(wanted, grads) if g is not None}


def call(function, probe: dict, arrays: plain.Arrays, quiet: bool = False) -> dict:
    """Call a student function on one probe's inputs and describe what happened."""
    args, kwargs = list(probe["args"]), dict(probe["kwargs"])
    torch.set_rng_state(probe["torch_rng"])
    np.random.set_state(probe["numpy_rng"])
    entry: dict = {"function": probe["function"]}
    value = None
    try:
        signal.alarm(CALL_SECONDS)
        value = function(*args, **kwargs)
        signal.alarm(0)
        entry.update(status="returned", value=plain.encode(value, arrays))
    except CallTimeout:
        entry.update(status="timeout")
    except BaseException as err:  # noqa: BLE001 - student code may raise anything
        signal.alarm(0)
        entry.update(status="raised", error=error_name(err))
        if not quiet:
            traceback.print_exc()
    arguments = args + list(kwargs.values())
    entry["state"] = [state_of(a, arrays) for a in arguments]
    try:
        entry["gradients"] = gradients(value, arguments, arrays)
    except BaseException:  # noqa: BLE001
        entry["gradients"] = {}
        traceback.print_exc()
    return entry


def record(notebook_path: str, probes_path: str, out: str) -> None:
    with open(probes_path, "rb") as f:
        probes = pickle.load(f)  # the instructor's file, loaded before any student code runs
    signal.signal(signal.SIGALRM, _timeout)
    results: dict = {"version": 1, "exercise": probes["exercise"], "cells": [], "cases": {}}
    arrays = plain.Arrays()
    try:
        with open(notebook_path, encoding="utf-8") as f:
            notebook = json.load(f)
    except (OSError, ValueError):
        results["notebook"] = "unreadable"
        plain.dump(results, arrays, out)
        return
    namespace = {"__name__": "__main__", "get_ipython": _NoIPython}
    results["cells"] = run_cells(cells_to_run(notebook, set(probes["skip"])), namespace)
    plain.dump(results, arrays, out)
    for case in probes["cases"]:
        entries = []
        for probe in case["calls"]:
            function = namespace.get(probe["function"])
            if not callable(function):
                entries.append({"function": probe["function"], "status": "missing", "state": []})
                continue
            entries.append(call(function, probe, arrays))
        results["cases"][case["key"]] = entries
        plain.dump(results, arrays, out)  # after each case: a later hang keeps what was done


def _timeout(signum, frame):
    raise CallTimeout()


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.set_num_threads(1)
    if len(sys.argv) > 4:
        CALL_SECONDS = max(1, int(float(sys.argv[4])))
    record(*sys.argv[1:4])
    sys.stdout.flush()
    os._exit(0)  # do not wait for threads or atexit handlers that student code left behind
