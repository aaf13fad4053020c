"""Grade a folder of submissions into ``grades.csv`` (``make grade SUBMISSIONS=folder``).

The folder is read by :mod:`grading.submissions`.

Each notebook goes through the two steps of :mod:`grading`: the record step in its own
sandbox (:mod:`grading.sandbox`) with a wall-clock timeout, then the judge in this process.
Every notebook gets a row, whatever it does; the ``reason`` column holds only the judge's
words, and the student's own output goes to ``grading-logs/``, marked as untrusted.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import judge as judging
from . import plain, probes, sandbox, submissions
from .masters import EXERCISES, SOLUTIONS, exercise_names, read_master
from .submissions import Submission

HERE = Path(__file__).resolve().parent
LOG_CHARS = 20_000
JUDGE = threading.Lock()  # tests seed torch's global generator: one judge at a time
REASON_CHARS = 600
UNTRUSTED = ("# UNTRUSTED: everything below was printed by the student's notebook while it was "
             "graded (truncated). Do not run or open what it says.\n")


class Exercise:
    """What grading one exercise needs: its master, probes, and the sandbox's files."""

    def __init__(self, name: str, solutions: Path, exercises: Path, workdir: Path) -> None:
        self.name = name
        self.master = read_master(solutions / f"{name}.ipynb")
        self.probes = probes.build(self.master, exercises)
        self.version = submissions.version_of(exercises / f"{name}.ipynb")
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
        argv = sandbox.limits(memory) + [sys.executable, str(ex.grader / "record.py"),
                                          str(work / "submission" / f"{ex.name}.ipynb"),
                                          str(ex.grader / "probes.pkl"), str(work / "results"), seconds]
        env = {**os.environ, **sandbox.ENV, "HOME": str(work / "submission"), "TMPDIR": str(work)}
        proc = subprocess.Popen(argv, cwd=work / "submission", env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    else:
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
        sources = submissions.notebook_functions(sub.path)
        with JUDGE:
            verdict = judging.judge(ex.master, ex.probes, tree, arrays, sources)
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
    subs, notes = submissions.find_submissions(folder, known)
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
    rows = submissions.rows(subs, solutions)
    submissions.write_csv(rows, out)
    for s in subs:
        got, total = sum(s.scores.values()), sum(s.possible.values())
        print(f"{s.student:20s} {s.exercise or '?':28s} {got:5.1f}/{total:5.1f}  {s.seconds:5.1f} s  "
              f"{s.reason}")
    print(f"wrote {out} ({len(rows)} students)")
    return rows


