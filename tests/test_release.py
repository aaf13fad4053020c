"""The students' edition (`make release`): everything students need, nothing of the solutions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grading import release

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    target = tmp_path_factory.mktemp("release") / "student-release"
    archive = release.build(target)
    return target, archive


def test_edition_holds_what_students_need_and_no_instructor_material(edition):
    target, archive = edition
    names = {p.name for p in target.iterdir()}
    assert {"lecture_utils", "notebooks", "exercises", "tests", "README.md", "Makefile",
            "pyproject.toml", "environment.yml"} <= names
    assert not names & {"solutions", "grading", "autograder", "tools", "benchmarks", ".ci"}
    assert sorted(p.name for p in (target / "exercises").glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert not {p.name for p in (target / "tests").iterdir()} & release.INSTRUCTOR_TESTS
    with zipfile.ZipFile(archive) as z:
        assert {n.split("/")[1] for n in z.namelist() if n.count("/") > 1} >= {"lecture_utils", "exercises"}


def test_no_solution_or_hidden_test_text_anywhere(edition):
    target, archive = edition
    assert len(release.secret_lines()) > 100  # the check has something to look for
    assert release.leaks(target) == []
    secret = release.secret_lines()
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            text = z.read(name).decode("utf-8", "replace")
            assert not release._lines(text) & secret, name
            assert not any(marker in text for marker in release.MARKERS), name


def test_leaks_are_found(tmp_path):
    shutil.copy(ROOT / "solutions" / "02_data_gradient.ipynb", tmp_path / "notes.ipynb")
    found = release.leaks(tmp_path)
    assert found and all(f.startswith("notes.ipynb: ") for f in found)


def test_existing_target_is_refused_or_replaced_whole(tmp_path):
    target = tmp_path / "student-release"
    target.mkdir()
    (target / "old.txt").write_text("from an older release")
    with pytest.raises(SystemExit, match="already exists"):
        release.build(target)
    assert (target / "old.txt").exists()
    release.build(target, replace=True)
    assert not (target / "old.txt").exists() and (target / "exercises").is_dir()


def test_make_lab_and_make_test_work_inside_the_edition(edition):
    target, _ = edition
    dry = subprocess.run(["make", "-n", "lab"], cwd=target, capture_output=True, text=True, check=True).stdout
    assert "jupyter lab" in dry and f'--ServerApp.root_dir="{target}"' in dry
    assert ("--allow-root" in dry) == (os.geteuid() == 0)
    # its own tests, with this environment (as `make test` would after `make venv`), on its own copy
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run([sys.executable, "-c", "import lecture_utils; print(lecture_utils.__file__)"],
                           cwd=target, capture_output=True, text=True, env=env, check=True).stdout
    assert where.startswith(str(target))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_tiny_net.py", "tests/test_priors.py", "tests/test_targets.py"],
                          cwd=target, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:]
