"""Execute a notebook for the lecture build, with every widget output made static.

Pages and slides have no kernel behind them, so a widget there is dead: a panel shows a grey
box, "Press run." and a button that does nothing. Here each widget output becomes something
that needs no kernel:

- a *panel* (a cell whose result is a widget, e.g. ``lu.widgets.guided_panel(clf)``) is run
  once at its defaults right after its cell, in the same kernel: a helper, executed without
  entering the history (``store_history=False``: ``_``, ``Out`` and the cells' numbers stay as
  a plain run has them), passes ``Out[n]`` to ``lecture_utils.widgets.still.panel_still``, which
  clicks the panel's run button and returns a still (its pictures, its settings, its status
  and the line "Live under `make present`: page «…», panel «…»"). The still replaces the
  panel's widget output in the cell;
- any other widget output (tqdm's progress bars) becomes its text, e.g.
  ``synthesis: 100%|██████████| 128/128 [00:06<00:00, 19.9it/s]``, read from the widget
  state that nbclient records; a widget with controls there fails the build (only a cell's
  result can be run as a panel).

Nothing renders from the widget state afterwards, so the executed copy does not keep it
(smaller pages, no widget JavaScript to load).
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PANEL_CALL = re.compile(r"\b(\w+?)_panel\s*\(")
# Widget models that only show something; any other model in a non-panel output is a control.
SHOWN_MODELS = {"HBoxModel", "VBoxModel", "BoxModel", "GridBoxModel", "HTMLModel", "HTMLMathModel",
                "LabelModel", "FloatProgressModel", "IntProgressModel"}
HELPER = """\
__import__("IPython").display.display(
    __import__("lecture_utils.widgets.still", fromlist=["panel_still"]).panel_still(
        Out[{count}], page={page!r}, name={name!r}))
"""


class CellError(RuntimeError):
    """Cell ``index`` failed, or its widget output could not be made static: ``message`` says
    how ("failed with ValueError: ...")."""

    def __init__(self, index: int | None, message: str) -> None:
        super().__init__(f"cell {index} {message}")
        self.index, self.message = index, message


def page_name(path: Path, title: str) -> str:
    """How the presenter finds the notebook under ``make present``: its title, numbered as the
    file is ("5 · Guided backpropagation…" as it stands, "05 Guided…" for an unnumbered one)."""
    number = path.stem.split("_", 1)[0]
    if title[:1].isdigit() or not number.isdigit():
        return title
    return f"{number} {title}"


def panel_name(source: str) -> str:
    """The panel's name from its call: ``lu.widgets.class_model_panel(...)`` → "class model"."""
    calls = PANEL_CALL.findall(source)
    return calls[-1].replace("_", " ") if calls else "panel"


def execute_with_stills(nb: nbformat.NotebookNode, folder: Path, page: str,
                        timeout: int) -> nbformat.NotebookNode:
    """Run ``nb`` (in place) with ``folder`` as its working folder and make every widget output
    static; ``page`` names the notebook in the panels' "Live under `make present`" line.

    Raises CellError for a failing cell or a panel that could not be run."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(folder)}})
    helpers: set[int] = set()
    current: dict[str, int | None] = {"index": None}

    def started(cell_index, **_):
        current["index"] = cell_index

    async def still_after(cell, cell_index, execute_reply, **_):
        if id(cell) in helpers:
            return
        reply = execute_reply.get("content", {})
        if reply.get("execution_count"):
            # The kernel counts the helpers' requests too (In [n] would run ahead); IPython's
            # own count, as in Out[n], does not: keep that one, as a run without helpers has.
            cell.execution_count = reply["execution_count"]
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = reply["execution_count"]
        if reply.get("status") != "ok":
            return
        for at, output in enumerate(cell.get("outputs", [])):
            if output.output_type == "execute_result" and WIDGET_VIEW in output.data:
                name = panel_name(cell.source)
                source = HELPER.format(count=cell.execution_count, page=page, name=name)
                helper = nbformat.v4.new_code_cell(source)
                helpers.add(id(helper))
                start = time.perf_counter()
                try:
                    await client.async_execute_cell(helper, cell_index, store_history=False)
                except CellExecutionError as err:
                    raise CellError(cell_index, f"(panel «{name}») could not be run by the build: "
                                    f"{err.ename}: {err.evalue}") from None
                cell.outputs[at] = _still_output(helper, cell, cell_index, name)
                print(f"  cell {cell_index}: panel «{name}» run for its still in "
                      f"{time.perf_counter() - start:.1f} s", flush=True)

    client.on_cell_start = started
    client.on_cell_executed = still_after
    try:
        client.execute()
    except CellExecutionError as err:
        raise CellError(current["index"], f"failed with {err.ename}: {err.evalue}") from None
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for index, cell in enumerate(nb.cells):
        for at, output in enumerate(cell.get("outputs", [])):
            if WIDGET_VIEW in output.get("data", {}):
                text = widget_text(state, output.data[WIDGET_VIEW]["model_id"], index)
                cell.outputs[at] = nbformat.v4.new_output(
                    "display_data", data={"text/plain": text}, metadata={})
    return nb


def _still_output(helper, cell, cell_index: int, name: str) -> nbformat.NotebookNode:
    errors = [o for o in helper.outputs if o.output_type == "error"]
    shown = [o for o in helper.outputs if o.output_type == "display_data" and "text/html" in o.data]
    if errors or len(shown) != 1:
        said = f"{errors[0].ename}: {errors[0].evalue}" if errors else f"{len(shown)} stills shown"
        raise CellError(cell_index, f"(panel «{name}») could not be run by the build: {said}")
    data = {k: v for k, v in shown[0].data.items() if k in {"text/html", "text/plain"}}
    return nbformat.v4.new_output("execute_result", data=data, metadata={},
                                  execution_count=cell.execution_count)


def widget_text(state: dict, model_id: str, cell_index: int) -> str:
    """The text a widget showed, from the recorded widget state: its HTML and labels, a
    progress bar as ``|███▌      |``."""
    parts: list[str] = []

    def walk(mid: str) -> None:
        model = state.get(mid)
        if model is None:
            raise CellError(cell_index, f"shows widget {mid}, which has no recorded state")
        kind, values = model["model_name"], model["state"]
        if kind not in SHOWN_MODELS:
            raise CellError(
                cell_index, f"shows a widget with a control ({kind}) that pages cannot run; make "
                "the panel the cell's last expression (the build runs it and shows its still) "
                "or show a picture instead")
        if kind.endswith("ProgressModel"):
            span = (values.get("max", 100) - values.get("min", 0)) or 1
            filled = 10 * (values.get("value", 0) - values.get("min", 0)) / span
            parts.append("|" + _bar(filled) + "|")
        elif "value" in values:
            parts.append(html.unescape(re.sub(r"<[^>]+>", "", values["value"])))
        for child in values.get("children", []):
            walk(child.removeprefix("IPY_MODEL_"))

    walk(model_id)
    return "".join(parts).replace("\u2007", " ").strip()


def _bar(filled: float, width: int = 10) -> str:
    whole = int(max(0.0, min(filled, width)))
    eighths = int((filled - whole) * 8) if whole < width else 0
    tail = " ▏▎▍▌▋▊▉"[eighths] if eighths else ""
    return ("█" * whole + tail).ljust(width)
