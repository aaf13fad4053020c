"""The submissions folder: which notebooks there are, which exercise each is, what is wrong
with the ones that cannot be graded; and the grades table written from them.

Layout: ``SUBMISSIONS/<student>/<exercise>.ipynb`` (one folder per student) or
``SUBMISSIONS/<student>.ipynb``. Which exercise a notebook is comes from its otter metadata
(``otter.assignment_name``), else from an exercise name in its file name. Everything here reads
files as text or JSON; nothing runs. Every CSV cell is kept from being read as a spreadsheet
formula (student and file names reach the table).
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .masters import function_sources, questions

MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass
class Submission:
    student: str
    path: Path
    exercise: str | None
    scores: dict[str, float] = field(default_factory=dict)
    possible: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    graded: bool = True
    seconds: float = 0.0


def version_of(exercise: Path) -> str:
    """The exercise's version, stamped into its metadata by ``make exercises``."""
    meta = json.loads(exercise.read_text(encoding="utf-8")).get("metadata", {})
    return str(meta.get("lecture", {}).get("exercise_version", ""))


def _exercise_of(meta: dict, path: Path, known: list[str]) -> str | None:
    name = (meta.get("otter") or {}).get("assignment_name") if isinstance(meta, dict) else None
    if name in known:
        return name
    matches = [k for k in known if k in path.name]
    return max(matches, key=len) if matches else None


def find_submissions(folder: Path, known: list[str]) -> tuple[list[Submission], list[str]]:
    """Every notebook under ``folder``, and notes on the files that are not graded."""
    subs, notes = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):  # .ipynb_checkpoints and the like
            continue
        student = _clean(rel.parts[0] if len(rel.parts) > 1 else path.stem)
        if path.suffix != ".ipynb":
            notes.append(f"{rel}: not a notebook (.ipynb), not graded")
            continue
        sub = Submission(student, path, None)
        subs.append(sub)
        if path.is_symlink():
            sub.reason, sub.graded = "a symbolic link, not a notebook file: not graded", False
            continue
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            sub.reason = (f"{path.stat().st_size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB "
                          "a notebook may have (clear its outputs and submit again): not graded")
            sub.graded = False
            continue
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            line = getattr(err, "lineno", None)
            sub.reason = ("not valid JSON" + (f" (line {line})" if line else "") +
                          ": the file is damaged or not a notebook; ask for the .ipynb again")
            sub.graded = False
            continue
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            sub.reason, sub.graded = "JSON but not a Jupyter notebook (no cells): not graded", False
            continue
        sub.exercise = _exercise_of(data.get("metadata") or {}, path, known)
        if sub.exercise is None:
            sub.reason = ("cannot tell which exercise this is (no otter metadata, no exercise name "
                          f"in the file name; known: {', '.join(known)}): not graded")
            sub.graded = False
    seen: dict[tuple, list[Submission]] = {}
    for sub in subs:
        if sub.exercise:
            seen.setdefault((sub.student, sub.exercise), []).append(sub)
    for (student, exercise), same in seen.items():
        if len(same) > 1:
            names = ", ".join(str(s.path.relative_to(folder)) for s in same)
            for sub in same:
                sub.reason = f"{len(same)} notebooks of {exercise} from {student} ({names}): keep one " \
                             "and grade again; none graded"
                sub.graded = False
    return subs, notes


def _cell(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    value = re.sub(r"[\x00-\x08\x0b-\x1f]", "", str(value))
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _clean(name: str) -> str:
    """A student name safe in a CSV cell opened by a spreadsheet, and in a file name."""
    name = re.sub(r"[\x00-\x1f]", "", name)[:100]
    return "'" + name if name[:1] in ("=", "+", "-", "@") else name


def notebook_functions(path: Path) -> dict[str, str]:
    """The text of each function the notebook defines (for the static checks), read, never run."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}
    sources = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code" \
                and "picture" not in ((cell.get("metadata") or {}).get("tags") or []):
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return function_sources(sources)


def write_csv(rows: list[dict], out: Path) -> None:
    columns = ["student"]
    for row in rows:
        columns += [c for c in row if c not in columns and c != "reason"]
    columns.append("reason")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, out)


def rows(subs: list[Submission], solutions: Path) -> list[dict]:
    exercises = sorted({s.exercise for s in subs if s.exercise})
    layout = {ex: questions(solutions / f"{ex}.ipynb") for ex in exercises}
    rows: dict[str, dict] = {}
    for s in sorted(subs, key=lambda s: (s.student, s.exercise or "", str(s.path))):
        row = rows.setdefault(s.student, {"student": s.student})
        for ex in exercises:
            for q in layout[ex]:
                row.setdefault(f"{ex}:{q.name}", "")
            row.setdefault(f"{ex}:auto_total", "")
        if s.exercise and s.graded:
            for q in layout[s.exercise]:
                if not q.manual:  # manual questions stay empty, for the instructor to fill in
                    row[f"{s.exercise}:{q.name}"] = f"{s.scores.get(q.name, 0.0):g}"
            row[f"{s.exercise}:auto_total"] = f"{sum(s.scores.values()):g}"
        reason = f"{s.exercise or s.path.name}: {s.reason}" if s.reason else ""
        row["reason"] = " | ".join(r for r in (row.get("reason", ""), reason) if r)
    return list(rows.values())
