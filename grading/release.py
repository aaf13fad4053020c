"""``make release``: the students' edition of the course, without solutions or hidden tests.

Writes ``build/student-release/`` (a folder) and ``build/student-release.zip`` with the
lecture notebooks, the exercises, ``lecture_utils``, the environment files, the library's own
unit tests, and a README and Makefile written for students. Nothing of ``solutions/``, the
hidden tests, ``grading/`` or the autograder goes in, and :func:`leaks` checks the result
for any line of a solution, any hidden test's source or message. An existing target is
refused unless ``replace`` is given, then removed whole: never merged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .masters import ROOT, SOLUTIONS, exercise_names, read_master

TARGET = ROOT / "build" / "student-release"
COPIED = ["lecture_utils", "notebooks", "exercises", "pyproject.toml", "environment.yml", ".gitignore"]
# the library's own tests; not the grading, exercise, browser, lecture-build or packaging tests,
# which need the instructors' tools
INSTRUCTOR_TESTS = {"test_exercises.py", "test_grading.py", "test_grading_attacks.py", "test_browser.py",
                    "test_lecture_build.py", "test_packaging.py"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "backups")

README = """# Explaining CNNs: Early Methods — students' edition

Lecture notebooks, exercises and the small library `lecture_utils` for the lecture
*Explaining CNNs: Early Methods* (Simonyan, Vedaldi & Zisserman 2014; Mahendran & Vedaldi
2015; Springenberg et al. 2015). Everything runs offline on a laptop CPU; a GPU is used
when there is one.

## Quick start

On Linux or macOS with Python 3.10–3.13 and `make`:

```bash
make lab    # creates .venv, installs everything, opens JupyterLab on notebooks/
make test   # the library's tests and the lecture notebooks
```

Without `make`: `python3 -m venv .venv && source .venv/bin/activate && pip install -e ".[test,grading]"`,
then `jupyter lab`.

## The notebooks

`notebooks/01_…` to `05_…` follow the lecture: backpropagation to the image (class models
and neurons), the data gradient (saliency maps), GrabCut masks from saliency,
reconstruction from a CNN code, guided backpropagation versus the deconvnet.

## The exercises

`exercises/01_…` to `05_…`, one per notebook. Fill in each `...`, run the cell, then the
`grader.check("q1")` cell below it: it runs the public tests and says what is wrong. Your
grade also uses hidden tests, one per classic mistake, so read the docstrings carefully.
Questions marked **(written, graded by hand)** need a sentence or two.

Your work is yours: nothing in this edition writes to `exercises/`. Keep a copy of your
notebooks anyway, and submit each under its original name (e.g. `02_data_gradient.ipynb`).
"""

MAKEFILE = """# The students' edition: make lab, make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# jupyter refuses to run as root unless told; containers and hubs often run as root
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: venv lab test

$(STAMP): pyproject.toml
\t@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install -e ".[test,grading]"
\t@touch $(STAMP)

venv: $(STAMP)

lab: venv
\t$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks

test: venv
\t$(BIN)/python -m pytest $(PYTEST_ARGS)
"""


def build(target: Path = TARGET, replace: bool = False) -> Path:
    """Write the students' edition to ``target`` and ``target.zip``; return the zip's path."""
    target = Path(target)
    if target.exists():
        if not replace:
            raise SystemExit(f"{target} already exists: remove it, or run `make release REPLACE=1` "
                             "to replace it whole (a release is never merged into an old one).")
        print(f"replacing {target}")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=IGNORED)
        else:
            shutil.copy2(source, target / name)
    (target / "tests").mkdir()
    for path in sorted((ROOT / "tests").iterdir()):
        if path.is_file() and path.name not in INSTRUCTOR_TESTS:
            shutil.copy2(path, target / "tests" / path.name)
    (target / "README.md").write_text(README)
    (target / "Makefile").write_text(MAKEFILE)
    found = leaks(target)
    if found:
        shutil.rmtree(target)
        raise SystemExit("The release would contain solution or hidden-test text, so it was not made:\n  "
                         + "\n  ".join(found[:10]))
    archive = Path(shutil.make_archive(str(target), "zip", target.parent, target.name))
    print(f"students' edition: {target}/ and {archive}")
    return archive


MARKERS = ["# BEGIN SOLUTION", "# BEGIN TESTS", "# BEGIN TEST CONFIG", "hidden: true", "# ASSIGNMENT CONFIG"]


def secret_lines(solutions: Path = SOLUTIONS) -> set[str]:
    """Lines that must not reach students: those of solution bodies and of hidden tests (code
    and messages) that the public material does not have anyway. The library implements every
    method (the exercises ask students not to call it), so a line it shares with a solution,
    such as ``ys, xs = np.nonzero(mask)``, reveals nothing the students lack."""
    public = set()
    for name in COPIED + ["tests"]:
        for path in [ROOT / name] if (ROOT / name).is_file() else (ROOT / name).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".ipynb", ".toml", ".yml", ".md") \
                    and path.name not in INSTRUCTOR_TESTS:
                public |= _lines(path.read_text(encoding="utf-8"))
    secret = set()
    for name in exercise_names(solutions):
        master = read_master(solutions / f"{name}.ipynb")
        for sources in master.solutions.values():
            for source in sources:
                body = source.split('"""')[-1] if '"""' in source else source
                secret |= {ln.strip() for ln in body.splitlines() if "SOLUTION" not in ln}
        for case in master.tests:
            if case.hidden:
                secret |= {ln.strip() for ln in case.source.split("END TEST CONFIG")[-1].splitlines()}
                secret.add(case.message.strip())
    return {ln for ln in secret if len(ln) > 15 and ln not in public}


def _lines(text: str) -> set[str]:
    """The stripped lines of a text file, and of the strings inside it if it is JSON."""
    text = text + "\n" + text.replace("\\n", "\n").replace('\\"', '"')
    return {ln.strip().strip('",') for ln in text.splitlines()}


def leaks(folder: Path) -> list[str]:
    """``file: line`` for every secret line found in any text file under ``folder``."""
    secret = secret_lines()
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found += [f"{path.relative_to(folder)}: {ln}" for ln in sorted(secret & _lines(text))]
        found += [f"{path.relative_to(folder)}: {m}" for m in MARKERS if m in text]
    return found
