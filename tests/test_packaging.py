"""The install paths agree: pyproject.toml, environment.yml, the Makefile, README and CI."""

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _normal(req: str) -> str:
    return re.sub(r"\s+", "", req).replace("'", '"').lower()


def test_environment_yml_installs_what_pyproject_lists():
    project = _pyproject()["project"]
    wanted = set(project["dependencies"])
    for extra in ("test", "dev"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-")}
    assert {_normal(r) for r in listed} == {_normal(r) for r in wanted}
    assert "--editable ." in pip


def test_python_range_matches():
    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.10,<3.14"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python>=3.10,<3.14" in env["dependencies"]


def test_torch_range_admits_the_local_wheels():
    deps = {re.split(r"[<>=!;\[ ]", d)[0]: d for d in _pyproject()["project"]["dependencies"]}
    assert deps["torch"] == "torch>=2.2,<3"  # admits 2.14.1
    assert deps["torchvision"] == "torchvision>=0.17"  # admits 0.29.1
    assert "opencv-python-headless" in deps and "opencv-python" not in deps


def test_readme_quick_start_is_two_make_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make \w+", quick, flags=re.M)
    assert commands == ["make lab", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "set -e" in ci
    assert "|| true" not in ci


def test_captum_is_only_a_benchmark_extra():
    # the package never imports Captum; the attribution benchmark compares against it
    project = _pyproject()["project"]
    bench = {re.split(r"[<>=;\[ ]", r)[0].lower() for r in project["optional-dependencies"]["bench"]}
    assert "captum" in bench
    others = project["dependencies"] + [
        r for extra, reqs in project["optional-dependencies"].items() if extra != "bench" for r in reqs
    ]
    assert not any(r.lower().startswith("captum") for r in others)
    package = ROOT / "lecture_utils"
    imports = re.compile(r"^\s*(import|from) captum", re.M)
    assert not [p for p in package.rglob("*.py") if imports.search(p.read_text())]


def test_make_lab_allows_root_only_as_root():
    import os
    import subprocess

    dry = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "jupyter lab" in dry
    assert ("--allow-root" in dry) == (os.geteuid() == 0)
