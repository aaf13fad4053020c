"""Exercises from one source, and offline batch grading with otter-grader (no Docker).

Two commands (the Makefile's ``exercises``, ``autograder`` and ``grade`` targets call them)::

    python tools/grading.py assign [--no-run-tests]
        otter assign every master notebook solutions/NN_*.ipynb into build/otter/NN_*/,
        then copy the student notebooks to exercises/ (normalised: no outputs, stable
        cell ids) and the autograder zips to autograder/NN_*.zip.

    python tools/grading.py check
        run every master's tests against its solutions in-process (seconds, no otter).

    python tools/grading.py grade SUBMISSIONS [--out grades.csv] [--timeout 600] [--jobs 2]
        grade every notebook under SUBMISSIONS with ``otter run`` into one CSV: one row per
        student, one column per question.

Submissions. ``SUBMISSIONS/<student>/<exercise>.ipynb`` (one folder per student) or
``SUBMISSIONS/<student>.ipynb``. Which exercise a notebook is comes from its otter
metadata (``otter.assignment_name``, kept in every exercise notebook), or else from an
exercise name inside the file name.

Isolation. Each notebook is graded by its own ``otter run`` process in its own fresh
temporary folder (HOME, TMPDIR and the working directory all point inside it), with a
wall-clock timeout; on timeout the whole process tree (including the Jupyter kernel)
is killed. Output is captured to a file and only its tail is kept. Whatever happens,
the notebook gets a row: zero for what did not run, and a readable reason. This is
*not* a sandbox: student code runs as you, with your file system and network.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
AUTOGRADER = ROOT / "autograder"
BUILD = ROOT / "build" / "otter"
NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
REASON_CHARS = 400
LOG_CHARS = 20_000


# -- the masters --------------------------------------------------------------------------
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


# -- otter assign --------------------------------------------------------------------------
def normalise_student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Drop what changes from run to run: outputs, execution counts and otter's random cell ids."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:03d}"
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def assign_one(name: str, build: Path, run_tests: bool = True, solutions: Path = SOLUTIONS) -> Path:
    """``otter assign`` one master into ``build/name``; return that folder."""
    out = build / name
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs", str(solutions / f"{name}.ipynb"), str(out)]
    if not run_tests:
        cmd.insert(4, "--no-run-tests")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:  # with run_tests, otter fails unless the solutions score 100%
        raise RuntimeError(f"otter assign {name} failed (exit {proc.returncode}):\n{log[-4000:]}")
    return out


def student_notebook(assigned: Path, name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(assigned / "student" / f"{name}.ipynb", as_version=4)
    return normalise_student_notebook(nb, name)


def assign(names=None, run_tests: bool = True, build: Path = BUILD, exercises: Path = EXERCISES,
           autograder: Path = AUTOGRADER, jobs: int = 2) -> None:
    names = names or exercise_names()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        folders = dict(zip(names, pool.map(lambda n: assign_one(n, build, run_tests), names)))
    exercises.mkdir(exist_ok=True)
    autograder.mkdir(exist_ok=True)
    for name, folder in folders.items():
        nbformat.write(student_notebook(folder, name), exercises / f"{name}.ipynb")
        (zipfile,) = (folder / "autograder").glob(f"{name}-autograder_*.zip")
        shutil.copy(zipfile, autograder / f"{name}.zip")
        print(f"{name}: exercises/{name}.ipynb, autograder/{name}.zip")


# -- checking a master in-process (fast: no kernel, no otter) ------------------------------
@dataclass
class TestCase:
    question: str
    name: str
    hidden: bool
    points: float
    source: str
    message: str = ""


@dataclass
class Master:
    """A master notebook taken apart: set-up code, each question's solution cells, its tests."""

    name: str
    setup: list[str]
    solutions: dict[str, list[str]]
    tests: list[TestCase]


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


def run_test_case(case: TestCase, env: dict) -> str | None:
    """Run one test case against a namespace like otter does; None if it passes, else why not."""
    import inspect

    scope: dict = {}
    try:
        exec(compile(case.source, f"<{case.question}:{case.name}>", "exec"), scope)
        func = scope[case.name]
        kwargs = {a: (env if a == "env" else env.get(a)) for a in inspect.signature(func).parameters}
        func(**kwargs)
    except Exception as err:  # noqa: BLE001 - a failing student function may raise anything
        return f"{type(err).__name__}: {err}"
    return None


def check(master: Master, cells: list[str]) -> dict[str, str | None]:
    """Execute ``cells`` (set-up and answers) and run every test case: ``{question:name: failure}``."""
    env: dict = {"__name__": "__main__"}
    for source in cells:
        exec(compile(source, f"<{master.name}>", "exec"), env)
    return {f"{case.question}:{case.name}": run_test_case(case, env) for case in master.tests}


def score(master: Master, results: dict[str, str | None]) -> tuple[float, float]:
    """Points earned and points possible for the results of :func:`check`."""
    got = sum(c.points for c in master.tests if results[f"{c.question}:{c.name}"] is None)
    return got, sum(c.points for c in master.tests)


# -- grading -------------------------------------------------------------------------------
@dataclass
class Submission:
    student: str
    path: Path
    exercise: str | None
    scores: dict[str, float] = field(default_factory=dict)
    possible: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


def _exercise_of(path: Path, known: list[str]) -> str | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        name = meta.get("otter", {}).get("assignment_name")
        if name in known:
            return name
    except (OSError, ValueError, AttributeError):
        pass
    matches = [k for k in known if k in path.name]
    return max(matches, key=len) if matches else None


def find_submissions(folder: Path, known: list[str]) -> list[Submission]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):  # .ipynb_checkpoints and the like
            continue
        student = rel.parts[0] if len(rel.parts) > 1 else path.stem
        found.append(Submission(student, path, _exercise_of(path, known)))
    return found


def _kill_tree(pid: int) -> None:
    """Kill a process and all its descendants (the Jupyter kernel runs in its own session)."""
    try:
        import psutil

        try:
            parent = psutil.Process(pid)
            procs = parent.children(recursive=True) + [parent]
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
    except ImportError:  # pragma: no cover - psutil comes with ipykernel
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _short(text: str, limit: int = REASON_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_failure(output: str) -> str:
    """The most useful line of otter's output for a failed question: the failure message
    written for the first failed test case, else the first exception line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    message = next((line.split("message:", 1)[1].strip() for line in lines
                    if re.match(r"^\S+ - \d+ message:", line)), "")
    error = next((line for line in lines if not line.startswith("Error at")
                  and re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", line)), "")
    if message and error:
        return f"{message} ({error})"
    return message or error or (lines[-1] if lines else "failed")


def grade_one(sub: Submission, autograder: Path, timeout: float, log_dir: Path | None = None) -> Submission:
    """Grade one notebook with ``otter run`` in a fresh temporary folder. Never raises."""
    start = time.monotonic()
    zip_path = autograder / f"{sub.exercise}.zip"
    if sub.exercise is None:
        sub.reason = ("cannot tell which exercise this notebook is "
                      "(no otter metadata, no exercise name in the file name)")
        return sub
    if not zip_path.exists():
        sub.reason = f"no autograder {zip_path} (run `make autograder`)"
        return sub
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    log_path = work / "otter-run.log"
    try:
        for d in ("home", "tmp", "submission", "results"):
            (work / d).mkdir()
        notebook = work / "submission" / f"{sub.exercise}.ipynb"
        shutil.copy(sub.path, notebook)
        shutil.copy(zip_path, work / "autograder.zip")
        env = {
            **os.environ, "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "LECTURE_DEVICE": os.environ.get("LECTURE_DEVICE", "cpu"), "LECTURE_OFFLINE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        # keep torch's download cache (pretrained torchvision weights) visible although HOME moved
        home = Path.home()
        env.setdefault("TORCH_HOME", str(home / ".cache" / "torch"))
        env.setdefault("MPLCONFIGDIR", str(work / "tmp"))
        cmd = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(work / "autograder.zip"),
               "-o", str(work / "results"), str(notebook)]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=work / "submission", env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)
                proc.wait()
                sub.reason = (f"timed out after {timeout:.0f} s (an endless loop or very slow code?); "
                              "graded zero")
        results = work / "results" / "results.json"
        if not sub.reason and results.exists():
            _read_results(sub, json.loads(results.read_text()))
        elif not sub.reason:
            tail = log_path.read_bytes()[-3000:].decode("utf-8", "replace")
            sub.reason = _short(f"grading failed (exit {proc.returncode}; did the notebook delete or "
                                f"break its grading folder?), graded zero: {_last_error(tail)}")
    except Exception as err:  # noqa: BLE001 - one bad notebook must not stop the batch
        sub.reason = _short(f"grading failed, graded zero: {type(err).__name__}: {err}")
    finally:
        if log_dir is not None and log_path.exists():
            log_dir.mkdir(parents=True, exist_ok=True)
            data = log_path.read_bytes()
            if len(data) > LOG_CHARS:
                data = b"[... truncated ...]\n" + data[-LOG_CHARS:]
            (log_dir / f"{sub.student}__{sub.exercise or sub.path.stem}.log").write_bytes(data)
        shutil.rmtree(work, ignore_errors=True)
        sub.seconds = time.monotonic() - start
    return sub


def _last_error(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"(Error|Exception)\b", line)]
    return (errors or lines or ["no output"])[-1]


def _read_results(sub: Submission, results: dict) -> None:
    failures = []
    for test in results.get("tests", []):
        name = test.get("name", "")
        if name == "Public Tests" or "max_score" not in test:
            continue
        sub.scores[name] = float(test.get("score") or 0.0)
        sub.possible[name] = float(test["max_score"])
        if sub.scores[name] < sub.possible[name]:
            failures.append(f"{name}: {_first_failure(test.get('output', ''))}")
    sub.reason = _short("; ".join(failures))


def grade(folder: Path, out: Path, autograder: Path = AUTOGRADER, timeout: float = 600, jobs: int = 2,
          solutions: Path = SOLUTIONS, log_dir: Path | None = None) -> list[dict]:
    """Grade every notebook under ``folder`` into the CSV ``out``; return its rows."""
    known = sorted({p.stem for p in autograder.glob("*.zip")} | set(exercise_names(solutions)))
    subs = find_submissions(folder, known)
    if not subs:
        raise SystemExit(f"No notebooks (*.ipynb) under {folder}.")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        subs = list(pool.map(lambda s: grade_one(s, autograder, timeout, log_dir), subs))
    rows = _rows(subs, solutions)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["student"]
    for row in rows:
        columns += [c for c in row if c not in columns and c != "reason"]
    columns.append("reason")
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    for s in subs:
        got, total = sum(s.scores.values()), sum(s.possible.values())
        print(f"{s.student:20s} {s.exercise or '?':28s} {got:5.1f}/{total:5.1f}  "
              f"{s.seconds:5.1f} s  {s.reason}")
    print(f"wrote {out} ({len(rows)} students)")
    return rows


def _rows(subs: list[Submission], solutions: Path) -> list[dict]:
    exercises = sorted({s.exercise for s in subs if s.exercise})
    layout: dict[str, list[Question]] = {}
    for ex in exercises:
        master = solutions / f"{ex}.ipynb"
        layout[ex] = questions(master) if master.exists() else []
        for s in subs:  # questions graded but not in a master (no solutions folder)
            for q in s.scores if s.exercise == ex else ():
                if q not in [x.name for x in layout[ex]]:
                    layout[ex].append(Question(q))
    rows: dict[str, dict] = {}
    for s in sorted(subs, key=lambda s: (s.student, s.exercise or "")):
        row = rows.setdefault(s.student, {"student": s.student})
        for ex in exercises:
            for q in layout[ex]:
                row.setdefault(f"{ex}:{q.name}", "")
            row.setdefault(f"{ex}:auto_total", "")
        if s.exercise:
            for q in layout[s.exercise]:
                if not q.manual:  # manual questions stay empty, for the instructor to fill in
                    row[f"{s.exercise}:{q.name}"] = f"{s.scores.get(q.name, 0.0):g}"
            row[f"{s.exercise}:auto_total"] = f"{sum(s.scores.values()):g}"
        reason = f"{s.exercise or s.path.name}: {s.reason}" if s.reason else ""
        row["reason"] = " | ".join(r for r in (row.get("reason", ""), reason) if r)

    return list(rows.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="build exercises/ and autograder/ from solutions/")
    a.add_argument("names", nargs="*", help="exercise names (default: all)")
    a.add_argument("--no-run-tests", action="store_true", help="do not check that the solutions pass")
    c = sub.add_parser("check", help="run every master's tests in-process (quick, no otter)")
    c.add_argument("names", nargs="*", help="exercise names (default: all)")
    g = sub.add_parser("grade", help="grade a folder of submissions into a CSV")
    g.add_argument("submissions", type=Path)
    g.add_argument("--out", type=Path, default=Path("grades.csv"))
    g.add_argument("--autograder", type=Path, default=AUTOGRADER)
    g.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    g.add_argument("--jobs", type=int, default=2, help="notebooks graded at once (default 2)")
    g.add_argument("--logs", type=Path, default=None, help="folder for each notebook's grading log")
    args = parser.parse_args(argv)
    if args.command == "assign":
        assign(args.names or None, run_tests=not args.no_run_tests)
    elif args.command == "check":
        failed = 0
        for name in args.names or exercise_names():
            master = read_master(SOLUTIONS / f"{name}.ipynb")
            cells = master.setup + [c for q in master.solutions.values() for c in q]
            results = check(master, cells)
            got, total = score(master, results)
            print(f"{name}: {got:g}/{total:g}")
            for case, why in results.items():
                if why:
                    failed += 1
                    print(f"  FAILED {case}: {why}")
        return 1 if failed else 0
    else:
        if not args.submissions.is_dir():
            parser.error(f"{args.submissions} is not a folder")
        grade(args.submissions, args.out, args.autograder, args.timeout, args.jobs, log_dir=args.logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
