"""The committed notebooks are small and stable: within the size budget, with nothing that
changes on every run (timestamps, kernel temp paths, home folders) and widget state only for the
widgets their outputs display. `make notebooks` (tools/notebooks.py) re-executes and normalises
them; these tests read the files only, they execute nothing."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BUDGET = 1_500_000  # bytes, as tools/notebooks.py
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# A bare progress bar (tqdm's), layouts and styles aside: it is for someone waiting, not kept.
PROGRESS_PARTS = {"FloatProgressModel", "IntProgressModel", "HBoxModel", "HTMLModel"}
FIX = "run `make notebooks` to re-execute and normalise the notebooks"
# /tmp/ipykernel_123/456.py, /home/alice/..., /Users/alice/..., /root/..., C:\Users\alice\...
MACHINE_PATHS = re.compile(r"ipykernel_\d+|/home/[\w.-]+/|/Users/[\w.-]+/|(?<![\w.~])/root/|"
                           r"[A-Za-z]:\\Users\\")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _texts(node, key: str = "") -> list[str]:
    """Every string in ``node`` (outputs, widget state) except pictures and widget buffers."""
    if key.startswith("image/") or key == "buffers":
        return []
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    if isinstance(node, dict):
        return [t for k, v in node.items() for t in _texts(v, k)]
    return []


def _refs(node) -> set[str]:
    """Model ids that ``node`` displays (widget views) or refers to ("IPY_MODEL_<id>")."""
    if isinstance(node, str):
        return {node[len("IPY_MODEL_"):]} if node.startswith("IPY_MODEL_") else set()
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if isinstance(node, dict):
        found = {node[WIDGET_VIEW]["model_id"]} if isinstance(node.get(WIDGET_VIEW), dict) else set()
        return found.union(*(_refs(v) for k, v in node.items() if k != "buffers"))
    return set()


def test_there_are_notebooks():
    assert len(NOTEBOOKS) == 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_within_the_size_budget(path):
    size = path.stat().st_size
    assert size <= BUDGET, (f"{path.name} is {size / 1e6:.2f} MB, over the {BUDGET / 1e6:.1f} MB budget: "
                            "`python tools/notebooks.py --check` names its biggest outputs")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_execution_timestamps(path):
    cells = _load(path)["cells"]
    stamped = [i for i, c in enumerate(cells) if {"execution", "ExecuteTime"} & set(c["metadata"])]
    assert not stamped, f"{path.name}: cells {stamped} carry execution timestamps; {FIX}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_machine_paths_in_outputs(path):
    nb = _load(path)
    texts = _texts([c.get("outputs", []) for c in nb["cells"]]) + _texts(nb["metadata"].get("widgets", {}))
    home = str(Path.home())
    found = sorted({m.group(0) for t in texts for m in MACHINE_PATHS.finditer(t)}
                   | ({home} if len(home) > 1 and any(home + "/" in t for t in texts) else set()))
    assert not found, f"{path.name}: machine-specific paths in outputs {found}; {FIX}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widget_state_only_for_displayed_widgets(path):
    nb = _load(path)
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    shown = _refs([c.get("outputs", []) for c in nb["cells"]])
    missing = sorted(shown - set(state))
    assert not missing, f"{path.name}: outputs display widgets without state {missing}; {FIX}"
    reached = _reachable(shown, state)
    extra = sorted(state[m]["model_name"] for m in set(state) - reached)
    assert not extra, f"{path.name}: state of {len(extra)} widgets that nothing displays {extra[:8]}; {FIX}"
    bars = [m for m in shown if {state[r]["model_name"] for r in _reachable({m}, state)
                                 if r in state and state[r]["model_name"] != "LayoutModel"
                                 and not state[r]["model_name"].endswith("StyleModel")} <= PROGRESS_PARTS]
    assert not bars, f"{path.name}: {len(bars)} progress bars kept (view and state); {FIX}"


def _reachable(shown: set[str], state: dict) -> set[str]:
    reached, todo = set(), list(shown)
    while todo:
        model = todo.pop()
        if model not in reached and model in state:
            reached.add(model)
            todo += _refs(state[model]["state"]) - reached
    return reached


def test_the_tool_finds_them_normalised():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "notebooks.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _tool():
    spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tool_normalises_a_run():
    """What nbclient leaves (timestamps, temp paths, split prints, a progress bar, a widget no
    output shows, random ids) comes out as the tests above want it, and twice is once."""
    tool, nbformat = _tool(), pytest.importorskip("nbformat")

    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls",
                "model_module_version": "2.0.0", "state": {"_model_name": name, **state}}

    def view(model_id):
        return nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": model_id}})

    warning = f"/tmp/ipykernel_4242/123.py:2: UserWarning: careful\n{Path.home()}/x.py:1\n"
    cells = [nbformat.v4.new_code_cell("print(1); print(2)", execution_count=7, outputs=[
                 nbformat.v4.new_output("stream", name="stdout", text="1\n"),
                 nbformat.v4.new_output("stream", name="stdout", text="2\n"),
                 nbformat.v4.new_output("stream", name="stderr", text=warning)]),
             nbformat.v4.new_code_cell("for _ in tqdm(...): ...", execution_count=9, outputs=[view("bar")]),
             nbformat.v4.new_code_cell("panel", execution_count=12, outputs=[view("panel")])]
    cells[0].metadata["execution"] = {"iopub.status.busy": "2026-11-26T14:23:57.489986Z"}
    state = {"bar": model("HBoxModel", children=["IPY_MODEL_progress", "IPY_MODEL_label"]),
             "progress": model("FloatProgressModel"), "label": model("HTMLModel", value="100%"),
             "panel": model("VBoxModel", children=["IPY_MODEL_button"]),
             "button": model("ButtonModel", description="Run"), "hidden": model("ButtonModel")}
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "widgets": {WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}},
        "language_info": {"name": "python", "version": "3.11.7"}})

    changes = tool.normalise(nb, "demo")
    assert len(changes) == 9, changes
    assert tool.normalise(nb, "demo") == []  # a normalised notebook stays as it is
    assert [c.execution_count for c in nb.cells] == [1, 2, 3]
    assert not nb.cells[1].outputs, "the progress bar's view is kept"
    assert "".join(nb.cells[0].outputs[0].text) == "1\n2\n"
    assert "".join(nb.cells[0].outputs[1].text) == "<cell>:2: UserWarning: careful\n~/x.py:1\n"
    kept = nb.metadata.widgets[WIDGET_STATE]["state"]
    assert sorted(m["model_name"] for m in kept.values()) == ["ButtonModel", "VBoxModel"]
    panel = nb.cells[2].outputs[0].data[WIDGET_VIEW]["model_id"]
    assert kept[panel]["state"]["children"] == [f"IPY_MODEL_{next(m for m in kept if m != panel)}"]
    assert "version" not in nb.metadata.language_info and "execution" not in nb.cells[0].metadata
