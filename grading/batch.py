"""Grade a folder of submissions into ``grades.csv`` (``make grade SUBMISSIONS=folder``).

Layout: ``SUBMISSIONS/<student>/<exercise>.ipynb`` (one folder per student) or
``SUBMISSIONS/<student>.ipynb``. Which exercise a notebook is comes from its otter metadata
(``otter.assignment_name``), else from an exercise name in its file name.

Each notebook goes through the two steps of :mod:`grading`: the record step in its own
sandbox (:mod:`grading.sandbox`) with a wall-clock timeout, then the judge in this process.
Every notebook gets a row, whatever it does; the ``reason`` column holds only the judge's
words, and the student's own output goes to ``grading-logs/``, marked as untrusted.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import judge as judging
from . import plain, probes, sandbox
from .masters import EXERCISES, SOLUTIONS, exercise_names, function_sources, questions, read_master

HERE = Path(__file__).resolve().parent
LOG_CHARS = 20_000
MAX_NOTEBOOK_BYTES = 50 * 2**20
JUDGE = threading.Lock()  # tests seed torch's global generator: one judge at a time
REASON_CHARS = 600
UNTRUSTED = ("# UNTRUSTED: everything below was printed by the student's notebook while it was "
             "graded (truncated). Do not run or open what it says.\n")


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


class Exercise:
    """What grading one exercise needs: its master, probes, and the sandbox's files."""

    def __init__(self, name: str, solutions: Path, exercises: Path, workdir: Path) -> None:
        self.name = name
        self.master = read_master(solutions / f"{name}.ipynb")
        self.probes = probes.build(self.master, exercises)
        self.version = version_of(exercises / f"{name}.ipynb")
        self.grader = workdir / f"grader-{name}"
        self.grader.mkdir(mode=0o755)
        for module in ("record.py", "plain.py"):
            shutil.copy(HERE / module, self.grader / module)
        (self.grader / "probes.pkl").write_bytes(self.probes.sandbox_bytes())
        for f in self.grader.iterdir():
            f.chmod(0o644)


def _collect(stream, keep: int = LOG_CHARS // 2) -> tuple[list, threading.Thread]:
    """Read a pipe to its end, keeping only its first and last ``keep`` bytes."""
    box = [b"", b"", 0]

    def run():
        for chunk in iter(lambda: stream.read(65536), b""):
            if len(box[0]) < keep:
                box[0] += chunk[: keep - len(box[0])]
            box[1] = (box[1] + chunk)[-keep:]
            box[2] += len(chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return box, thread


def call_seconds(timeout: float) -> int:
    """The time limit of one cell or call: a tenth of the notebook's, at least 10 s."""
    return int(max(10, timeout / 10))


def run_sandboxed(sub: Submission, ex: Exercise, work: Path, timeout: float, memory: int | None,
                  uid: int) -> tuple[str, bytes]:
    """The record step of one notebook; returns (status, its output)."""
    (work / "submission").mkdir()
    shutil.copy(sub.path, work / "submission" / f"{ex.name}.ipynb")
    sandbox.prepare(work, uid)
    seconds = str(call_seconds(timeout))
    argv = ["python", "/grader/record.py", f"/submission/{ex.name}.ipynb", "/grader/probes.pkl", "/results",
            seconds]
    if sandbox.mode() == "none":
        import sys

        argv = sandbox.limits(memory) + [sys.executable, str(ex.grader / "record.py"),
                                          str(work / "submission" / f"{ex.name}.ipynb"),
                                          str(ex.grader / "probes.pkl"), str(work / "results"), seconds]
        env = {**os.environ, **sandbox.ENV, "HOME": str(work / "submission"), "TMPDIR": str(work)}
        proc = subprocess.Popen(argv, cwd=work / "submission", env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    else:
        import sys

        argv[0] = sys.executable
        command = sandbox.wrap(argv, work, ex.grader, memory, uid=uid)
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    box, reader = _collect(proc.stdout)
    status = "ok"
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                status = "timeout"
                break
            if _size(work / "results") > sandbox.RESULTS_BYTES:
                status = "wrote too much"
                break
            time.sleep(0.2)
    finally:
        _kill(proc)
    reader.join(timeout=5)
    head, tail, total = box
    output = head + (b"\n[... truncated ...]\n" + tail[-(total - len(head)):] if total > len(head) else b"")
    if status == "ok" and proc.returncode not in (0, None):
        status = f"exit {proc.returncode}"
    return status, output


def _size(folder: Path, most: int = 10_000) -> int:
    """Bytes under ``folder`` (counting at most ``most`` entries; more counts as too much)."""
    total, seen = 0, 0
    for root, dirs, files in os.walk(folder):
        for name in files:
            seen += 1
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
        seen += len(dirs)
        if seen > most:
            return sandbox.RESULTS_BYTES + 1
    return total


def _kill(proc: subprocess.Popen) -> None:
    """End the sandbox and everything in it (its PID namespace dies with bwrap)."""
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def grade_one(sub: Submission, ex: Exercise, timeout: float, memory: int | None, uid: int,
              log_dir: Path | None) -> Submission:
    """Record in the sandbox, then judge. Never raises."""
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    output = b""
    try:
        status, output = run_sandboxed(sub, ex, work, timeout, memory, uid)
        try:
            tree, arrays = plain.load(work / "results")
        except plain.BadData:
            tree, arrays = {}, plain.Arrays()
        with JUDGE:
            verdict = judging.judge(ex.master, ex.probes, tree, arrays, notebook_functions(sub.path))
        sub.scores, sub.possible = verdict.scores, verdict.possible
        notes = []
        if status == "timeout":
            notes.append(f"timed out after {timeout:.0f} s (an endless loop or very slow code?); "
                         "the tests it did not reach score zero")
        elif status == "wrote too much":
            notes.append("stopped: the notebook wrote too much into the results folder; "
                         "the tests it did not reach score zero")
        elif status != "ok" or not tree:
            notes.append(f"the notebook's grading process ended early ({status}; out of memory "
                         f"or killed?): the tests it did not reach score zero")
        if tree.get("notebook") == "unreadable":
            notes.append("the notebook could not be read")
        if ex.version and sub.path.exists():
            try:
                got = str(((json.loads(sub.path.read_text("utf-8")).get("metadata") or {})
                           .get("lecture") or {}).get("exercise_version", ""))
            except (ValueError, AttributeError):
                got = ""
            if got != ex.version:
                notes.append("this notebook comes from an older version of the exercise: graded "
                             "against the current tests")
        verdict.notes = notes + verdict.notes
        sub.reason = _short(verdict.reason())
    except Exception as err:  # noqa: BLE001 - one bad notebook must not stop the batch
        import traceback

        traceback.print_exc()  # the grader's own error, for the instructor
        sub.reason = _short(f"grading failed, graded zero: {type(err).__name__} in the grader")
    finally:
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sub.student}__{sub.exercise}")
            (log_dir / f"{name}.log").write_bytes(UNTRUSTED.encode() + output)
        shutil.rmtree(work, ignore_errors=True)
        sub.seconds = time.monotonic() - start
    return sub


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


def _short(text: str, limit: int = REASON_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade(folder: Path, out: Path, *, timeout: float = 600, jobs: int = 2, log_dir: Path | None = None,
          memory: int | None = None, solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> list[dict]:
    """Grade every notebook under ``folder`` into the CSV ``out``; return its rows."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"SUBMISSIONS={folder}: no such folder. Give the folder that holds one "
                         "notebook per student, or one folder per student.")
    if sandbox.mode() == "none":
        print("WARNING: " + sandbox.UNSAFE)
    elif (why := sandbox.problem()) is not None:
        raise SystemExit(f"Cannot grade safely: {why}")
    known = exercise_names(solutions)
    subs, notes = find_submissions(folder, known)
    if not subs:
        raise SystemExit(f"SUBMISSIONS={folder} holds no notebooks (*.ipynb)" +
                         (f"; found only: {'; '.join(notes[:5])}" if notes else ": it is empty") + ".")
    for note in notes:
        print(f"skipped {note}")
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        os.chmod(tmp, 0o755)
        needed = sorted({s.exercise for s in subs if s.exercise and s.graded})
        prepared = {name: Exercise(name, solutions, exercises, Path(tmp)) for name in needed}
        slots: queue.Queue = queue.Queue()
        for k in range(max(1, jobs)):
            slots.put(sandbox.FIRST_UID + k)

        def one(sub: Submission) -> Submission:
            if not sub.graded:
                return sub
            uid = slots.get()
            try:
                return grade_one(sub, prepared[sub.exercise], timeout, memory, uid, log_dir)
            finally:
                slots.put(uid)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            subs = list(pool.map(one, subs))
    rows = _rows(subs, solutions)
    write_csv(rows, out)
    for s in subs:
        got, total = sum(s.scores.values()), sum(s.possible.values())
        print(f"{s.student:20s} {s.exercise or '?':28s} {got:5.1f}/{total:5.1f}  {s.seconds:5.1f} s  "
              f"{s.reason}")
    print(f"wrote {out} ({len(rows)} students)")
    return rows


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


def _rows(subs: list[Submission], solutions: Path) -> list[dict]:
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
