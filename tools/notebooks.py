"""Re-execute the committed lecture notebooks and normalise them, or check that they are.

Usage (``make notebooks`` runs the first)::

    python tools/notebooks.py [notebooks/NN_name.ipynb ...]          # execute, normalise, write
    python tools/notebooks.py --check [notebooks/NN_name.ipynb ...]  # execute nothing

Why: the notebooks are committed with their outputs, so that they read on GitHub and in slides,
and git keeps every version. A run should change only what the notebook shows, and what it shows
should be small. Default: ``notebooks/[0-9][0-9]_*.ipynb``, in order.

Without ``--check``, each notebook runs top to bottom in a fresh kernel (nbclient, working
folder ``notebooks/``, one torch thread: ``THREADS``) and is written back normalised:

- widget state: only the models reachable from a widget view in an output (the panels: their
  controls and last pictures). Progress bars (tqdm's: a bar and its labels, no control) are
  removed, view and state: they are for someone waiting, not for the record. Closed widgets
  are dropped, and so is a view whose model is gone;
- no ``execution`` timestamps in cell metadata; execution counts 1, 2, 3, ... in cell order;
- in outputs, kernel temp files (``/tmp/ipykernel_123/456.py``) become ``<cell>``, this
  project's folder is left out of paths, site-packages folders become ``<site-packages>`` and
  the home folder ``~``;
- kernelspec and language_info: Python 3 without the interpreter's version.

A cell that fails leaves its notebook as it was and makes the exit status 1. ``--check`` reports
each notebook's size against ``BUDGET`` and what normalising would still change; exit 1 if
anything. Figures are kept small by the notebooks themselves (``lu.display.setup_figures()``:
pictures as JPEG).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks"
BUDGET = 1_500_000  # bytes per committed notebook (tests/test_notebooks_size.py checks it too)
CELL_TIMEOUT = 900  # seconds per cell, as nbval's --nbval-cell-timeout
# One thread for torch unless OMP_NUM_THREADS is set: the same numbers (to the last pixel) on any
# number of cores, and no threads spinning against each other on a busy machine (on a loaded
# 2-core CPU notebook 05 took 86 s with two threads and 12 s with one).
THREADS = os.environ.get("OMP_NUM_THREADS", "1")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MODEL_REF = re.compile(r"^IPY_MODEL_([\w-]+)$")
PROGRESS = {"FloatProgressModel", "IntProgressModel"}
# What a progress bar is made of, besides its bar (layouts and styles aside).
PROGRESS_PARTS = PROGRESS | {"HBoxModel", "VBoxModel", "BoxModel", "HTMLModel", "LabelModel"}
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
TIMING_KEYS = ("execution", "ExecuteTime")  # nbclient's and jupyterlab-execute-time's


def _path_rules() -> list[tuple[re.Pattern, str]]:
    """(pattern, replacement) for machine-specific paths in outputs, the most specific first."""
    home = str(Path.home())
    return [
        (re.compile(r"(?:[A-Za-z]:)?[\w./\\~-]*?[/\\]ipykernel_\d+[/\\]\d+\.py"), "<cell>"),
        (re.compile(r"[\w./\\:~-]*[/\\]site-packages(?=[/\\])"), "<site-packages>"),
        (re.compile(re.escape(str(ROOT)) + r"[/\\]"), ""),
        *([(re.compile(re.escape(home) + r"(?=[/\\]|\b)"), "~")] if len(home) > 1 else []),
    ]


PATH_RULES = _path_rules()


def _clean(node):
    """``node`` (JSON) with machine-specific paths replaced in every string, pictures and widget
    buffers aside."""
    if isinstance(node, str):
        for pattern, replacement in PATH_RULES:
            node = pattern.sub(replacement, node)
        return node
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if isinstance(node, dict):
        return {k: v if k.startswith("image/") or k == "buffers" else _clean(v) for k, v in node.items()}
    return node


def _refs(node) -> list[str]:
    """Model ids that ``node`` (outputs, widget state) shows or refers to, in order of appearance
    (dict keys sorted, as nbformat writes them), each once."""
    found: dict[str, None] = {}
    if isinstance(node, dict):
        view = node.get(WIDGET_VIEW)
        if isinstance(view, dict) and "model_id" in view:
            found[view["model_id"]] = None
        for key in sorted(node):
            if key != "buffers":
                found.update(dict.fromkeys(_refs(node[key])))
    elif isinstance(node, list):
        for item in node:
            found.update(dict.fromkeys(_refs(item)))
    elif isinstance(node, str) and (ref := MODEL_REF.match(node)):
        found[ref.group(1)] = None
    return list(found)


def reachable(shown: list[str], state: dict) -> list[str]:
    """The model ids in ``state`` reachable from ``shown`` through references in their state,
    depth first in order of appearance."""
    seen: dict[str, None] = {}

    def visit(model: str) -> None:
        if model in state and model not in seen:
            seen[model] = None
            for ref in _refs(state[model].get("state", {})):
                visit(ref)

    for model in shown:
        visit(model)
    return list(seen)


def _rename(node, ids: dict[str, str]):
    """``node`` with every model id (a widget view's, or ``IPY_MODEL_<id>``) renamed by ``ids``."""
    if isinstance(node, str):
        if node in ids:
            return ids[node]
        ref = MODEL_REF.match(node)
        return f"IPY_MODEL_{ids[ref.group(1)]}" if ref and ref.group(1) in ids else node
    if isinstance(node, list):
        return [_rename(item, ids) for item in node]
    if isinstance(node, dict):
        return {k: v if k == "buffers" else _rename(v, ids) for k, v in node.items()}
    return node


def is_progress_bar(model: str, state: dict) -> bool:
    """Whether the widget ``model`` shows only a progress bar and its labels (tqdm's)."""
    names = {state[m].get("model_name", "") for m in reachable([model], state)}
    parts = {n for n in names if n != "LayoutModel" and not n.endswith("StyleModel")}
    return bool(parts & PROGRESS) and parts <= PROGRESS_PARTS


def normalise(nb: nbformat.NotebookNode, name: str, closed: frozenset[str] = frozenset()) -> list[str]:
    """Normalise ``nb`` in place (see the module docstring); returns what was changed, in words.
    ``name`` (the file's stem) seeds the widget ids; ``closed``: model ids of widgets closed
    during the run (their state is dropped)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    changes = []

    stamped = [c for c in nb.cells if any(k in c.metadata for k in TIMING_KEYS)]
    for cell in stamped:
        for key in TIMING_KEYS:
            cell.metadata.pop(key, None)
    if stamped:
        changes.append(f"execution timestamps in {len(stamped)} cells")

    if _renumber(code):
        changes.append("execution counts not 1, 2, 3, ... in cell order")

    bars, dropped, gone = _prune_widgets(nb, code, closed)
    if bars:
        changes.append(f"{bars} progress bars")
    if dropped:
        changes.append(f"state of {dropped} widgets that no output displays (progress bars' included)")
    if gone:
        changes.append(f"{gone} widget views whose widget is gone")
    if _stable_ids(nb, code, name):
        changes.append("widget ids not numbered in the order the outputs show them")
    if _merge_streams(code):
        changes.append("printed text split across several outputs")

    before = json.dumps([c.outputs for c in code]), json.dumps(nb.metadata.get("widgets"))
    for cell in code:
        cell.outputs = [nbformat.from_dict(_clean(o)) for o in cell.outputs]
    if "widgets" in nb.metadata:
        nb.metadata.widgets = nbformat.from_dict(_clean(nb.metadata.widgets))
    if (json.dumps([c.outputs for c in code]), json.dumps(nb.metadata.get("widgets"))) != before:
        changes.append("machine-specific paths in outputs (kernel temp files, home, site-packages)")

    if nb.metadata.get("kernelspec") != KERNELSPEC or nb.metadata.get("language_info") != LANGUAGE_INFO:
        changes.append("kernelspec or language_info not the plain Python 3 ones")
    nb.metadata["kernelspec"] = nbformat.from_dict(KERNELSPEC)
    nb.metadata["language_info"] = nbformat.from_dict(LANGUAGE_INFO)
    return changes


def _renumber(code: list) -> bool:
    """Number the executed cells 1, 2, 3, ... (their results too); True if anything changed."""
    changed, count = False, 0
    for cell in code:
        if cell.execution_count is None:
            continue
        count += 1
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        changed |= cell.execution_count != count or any(o.execution_count != count for o in results)
        cell.execution_count = count
        for output in results:
            output.execution_count = count
    return changed


def _prune_widgets(nb, code: list, closed: frozenset[str]) -> tuple[int, int, int]:
    """Keep the state of the widgets that outputs display (and what they refer to), nothing else;
    remove progress bars and views of widgets without state.
    Returns (progress bars, models dropped, views removed)."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    state = {k: v for k, v in widgets.get("state", {}).items() if k not in closed}
    shown = [m for m in _refs([c.outputs for c in code]) if m in state]
    bars = {m for m in shown if is_progress_bar(m, state)}
    keep = set(reachable([m for m in shown if m not in bars], state))
    gone = 0
    for cell in code:
        kept = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})
                or o.data[WIDGET_VIEW].get("model_id") in keep]
        gone += len(cell.outputs) - len(kept)
        cell.outputs = kept
    dropped = len(widgets.get("state", {})) - len(keep)
    if keep:
        widgets["state"] = {k: state[k] for k in keep}
    else:
        nb.metadata.pop("widgets", None)
    return len(bars), dropped, gone


def _stable_ids(nb, code: list, name: str) -> bool:
    """Rename the widget models after ``name`` and the order in which the outputs reach them
    (nbclient's are random, new on every run); True if any changed."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    if not widgets:
        return False
    order = reachable(_refs([c.outputs for c in code]), widgets["state"])
    ids = {old: hashlib.md5(f"{name}/{i}".encode()).hexdigest() for i, old in enumerate(order)}
    if all(old == new for old, new in ids.items()):
        return False
    widgets["state"] = nbformat.from_dict({ids[m]: _rename(widgets["state"][m], ids) for m in order})
    for cell in code:
        cell.outputs = [nbformat.from_dict(_rename(o, ids)) for o in cell.outputs]
    return True


def _merge_streams(code: list) -> bool:
    """Join consecutive prints to the same stream into one output (how a run splits them
    depends on timing); True if any were joined."""
    merged = False
    for cell in code:
        outputs = []
        for output in cell.outputs:
            last = outputs[-1] if outputs else None
            if (output.output_type == "stream" and last is not None and last.output_type == "stream"
                    and last.name == output.name):
                last.text = "".join(last.text) + "".join(output.text)
                merged = True
            else:
                outputs.append(output)
        cell.outputs = outputs
    return merged


class _Client(NotebookClient):
    """nbclient's client that also notes the widgets closed during the run (nbclient keeps the
    last state of every widget it has seen, closed or not) and the cell that runs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.closed: set[str] = set()
        self.cell_index: int | None = None
        self.on_cell_start = self._started

    def _started(self, cell, cell_index, **_) -> None:
        self.cell_index = cell_index

    def handle_comm_msg(self, outs, msg, cell_index) -> None:
        if msg["msg_type"] == "comm_close":
            self.closed.add(msg["content"]["comm_id"])
        super().handle_comm_msg(outs, msg, cell_index)


class CellFailed(RuntimeError):
    """A cell raised: the message names the cell and the error."""


def execute(path: Path, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` in a fresh kernel in its folder; returns it, normalised.
    Raises CellFailed when a cell fails, runs over ``timeout`` seconds or kills the kernel."""
    nb = nbformat.read(path, as_version=4)
    client = _Client(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                     record_timing=False, resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env={**os.environ, "OMP_NUM_THREADS": THREADS})
    except CellExecutionError as err:
        raise CellFailed(f"cell {client.cell_index} failed with {err.ename}: {err.evalue}") from None
    except (CellTimeoutError, DeadKernelError) as err:
        raise CellFailed(f"cell {client.cell_index}: {type(err).__name__}: {str(err).splitlines()[0]}"
                         ) from None
    normalise(nb, path.stem, frozenset(client.closed))
    return nb


def size_report(path: Path) -> str:
    """The file's size and, when over budget, its biggest parts."""
    size = path.stat().st_size
    line = f"{size / 1e6:.2f} MB of {BUDGET / 1e6:.2f} MB"
    if size <= BUDGET:
        return line
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = [(len(json.dumps(nb["metadata"].get("widgets", {}))), "widget state")]
    for i, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            for kind, data in output.get("data", {}).items():
                parts.append((len(json.dumps(data)), f"cell {i} {kind}"))
    biggest = ", ".join(f"{what} {n / 1e3:.0f} KB" for n, what in sorted(parts, reverse=True)[:3])
    return f"{line}: over budget; biggest: {biggest}"


def check(paths: list[Path]) -> int:
    failures = 0
    for path in paths:
        problems = []
        if path.stat().st_size > BUDGET:
            problems.append(size_report(path))
        nb = nbformat.read(path, as_version=4)
        problems += [f"not normalised: {what}" for what in normalise(nb, path.stem)]
        failures += bool(problems)
        print(f"{_name(path)}: {size_report(path) if not problems else 'FAIL'}")
        for problem in problems:
            print(f"  {problem}")
    if failures:
        print(f"{failures} notebook(s) to fix: `make notebooks` re-executes and normalises them; "
              "make the figures smaller if one is over budget.")
    return int(failures > 0)


def run(paths: list[Path], timeout: int = CELL_TIMEOUT) -> int:
    failures = 0
    start = time.perf_counter()
    for path in paths:
        began, original = time.perf_counter(), path.read_bytes()
        print(f"{_name(path)}: executing ...", flush=True)
        try:
            nb = execute(path, timeout)
        except CellFailed as err:
            failures += 1
            print(f"{_name(path)}: {err}; the notebook is left as it was", flush=True)
            continue
        if path.read_bytes() != original:  # edited while it ran: never overwrite someone's work
            failures += 1
            print(f"{_name(path)}: changed while it ran, left as it is now; run it again", flush=True)
            continue
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(path)
        print(f"{_name(path)}: {time.perf_counter() - began:.0f} s, {len(original) / 1e6:.2f} MB -> "
              f"{size_report(path)}", flush=True)
    print(f"{len(paths) - failures} of {len(paths)} notebooks written in "
          f"{time.perf_counter() - start:.0f} s")
    return int(failures > 0) or check(paths)


def _name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="execute nothing: check the size budget and the normalisation")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: notebooks/[0-9][0-9]_*.ipynb, in order")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT,
                        help=f"seconds a cell may run (default {CELL_TIMEOUT}; more on a busy machine)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(FOLDER.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    return check(paths) if args.check else run(paths, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
