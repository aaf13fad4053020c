"""The OS sandbox for the record step: bubblewrap on Linux.

Each notebook runs in ``bwrap`` with
- its own network namespace (no network; 127.0.0.1 is the sandbox's own loopback), its own
  PID, IPC and UTS namespaces, and a new session; every process it started dies with it;
- the system (``/usr``), the Python installation, the virtual environment and
  ``lecture_utils`` read-only; a private ``/tmp``, home and working folder ``/submission``
  (size-limited tmpfs, with the notebook in it read-only); the only host folder it can write
  is its own ``/results``, whose size the caller watches; none of the instructor's other files
  (no ``solutions/``, other submissions, ``build/``, grades, home) exist inside;
- as an unprivileged user (uid 65534 when grading runs as root), no capabilities, and
  ``no_new_privs``;
- limits (``prlimit``): memory ``GRADE_MEMORY`` (bytes, default 4 GiB, as RLIMIT_DATA: the
  heap and private mappings; an address-space limit would count torch's shared libraries,
  over 3 GiB of mappings before any work), processes
  ``GRADE_PROCS`` (default 64), file size 256 MiB, 256 open files; the wall clock is the
  caller's (``GRADE_TIMEOUT``).

``GRADE_SANDBOX=none`` runs the record step without a sandbox, with the same limits: unsafe,
for machines without bubblewrap (macOS) and trusted notebooks only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import lecture_utils

MEMORY = int(os.environ.get("GRADE_MEMORY", str(4 * 2**30)))
PROCS = int(os.environ.get("GRADE_PROCS", "64"))
NOBODY = 65534
WORK_BYTES = 512 * 2**20  # the sandbox's working folder (a tmpfs); results are watched apart
RESULTS_BYTES = 300 * 2**20  # more than this in the results folder stops the run
FIRST_UID = 62000  # as root, sandbox slot k runs as uid FIRST_UID + k: limits never shared
UNSAFE = ("GRADE_SANDBOX=none: student code runs WITHOUT a sandbox, as you, with your files "
          "and your network. Use it only for notebooks you trust.")
ENV = {
    "HOME": "/home/student", "PATH": "/usr/bin:/bin", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "LECTURE_DEVICE": "cpu",
    "LECTURE_OFFLINE": "1", "PYTHONHASHSEED": "0",
}


def mode() -> str:
    """``"bwrap"`` (default) or ``"none"`` (``GRADE_SANDBOX=none``)."""
    value = os.environ.get("GRADE_SANDBOX", "bwrap").strip().lower() or "bwrap"
    if value not in ("bwrap", "none"):
        raise SystemExit(f"GRADE_SANDBOX={value!r}: use 'bwrap' (the default) or 'none' (unsafe).")
    return value


def problem() -> str | None:
    """None when the bubblewrap sandbox works here, else what is missing and how to get it."""
    if not sys.platform.startswith("linux"):
        return (f"the grading sandbox needs Linux with bubblewrap; this is {sys.platform}. "
                "Grade on Linux, or set GRADE_SANDBOX=none (unsafe: no sandbox).")
    for tool, package in (("bwrap", "bubblewrap"), ("prlimit", "util-linux"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return (f"the grading sandbox needs `{tool}`: install the package {package} "
                    f"(sudo apt-get install {package}), or set GRADE_SANDBOX=none (unsafe: no sandbox).")
    probe = subprocess.run(wrap(["/bin/true"], scratch=None), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        return ("bubblewrap is installed but cannot create a sandbox here "
                f"({probe.stderr.strip()[:200]}); user namespaces may be disabled "
                "(sysctl kernel.unprivileged_userns_clone=1, or AppArmor's restriction on Ubuntu).")
    return None


def _read_only() -> list[Path]:
    """What the record step needs to read: Python, the virtual environment, lecture_utils."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(lecture_utils.__file__).resolve().parent}
    return sorted(p for p in paths if not str(p).startswith("/usr/"))


def _system() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                "/etc/localtime", "/etc/fonts"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    return args


def wrap(argv: list[str], scratch: Path | None, grader: Path | None = None,
         memory: int | None = None, procs: int | None = None, uid: int = NOBODY) -> list[str]:
    """The command line that runs ``argv`` in the sandbox (``scratch`` holds ``submission/``
    and ``results/``, both writable; ``grader`` is bound read-only at ``/grader``). As root,
    the sandbox runs as ``uid``; give each concurrent sandbox its own, so that the process
    limit of one never counts another's processes."""
    root = os.geteuid() == 0
    cmd = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if not root:
        cmd += ["--unshare-user"]
    cmd += ["--cap-drop", "ALL"]
    if root:  # only to drop to an unprivileged user below, before any student code runs
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for key, value in ENV.items():
        cmd += ["--setenv", key, value]
    cmd += _system() + ["--proc", "/proc", "--dev", "/dev",
                        "--perms", "1777", "--size", str(256 * 2**20), "--tmpfs", "/tmp",
                        "--perms", "0777", "--size", str(64 * 2**20), "--tmpfs", "/home/student"]
    made: set[str] = set()
    for path in _read_only():
        for parent in reversed(path.parents):
            if str(parent) != "/" and str(parent) not in made:
                made.add(str(parent))
                cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", str(path), str(path)]
    if grader is not None:
        cmd += ["--ro-bind", str(grader), "/grader"]
    if scratch is not None:  # the working folder is a tmpfs of its own size; the notebook read-only
        cmd += ["--perms", "0777", "--size", str(WORK_BYTES), "--tmpfs", "/submission"]
        for notebook in sorted((scratch / "submission").glob("*.ipynb")):
            cmd += ["--ro-bind", str(notebook), f"/submission/{notebook.name}"]
        cmd += ["--bind", str(scratch / "results"), "/results", "--chdir", "/submission"]
    cmd += ["--"]
    if root:
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--no-new-privs"]
    return cmd + limits(memory, procs) + argv


def limits(memory: int | None = None, procs: int | None = None) -> list[str]:
    return ["prlimit", f"--data={memory or MEMORY}", f"--nproc={procs or PROCS}",
            f"--fsize={256 * 2**20}", "--nofile=256", "--core=0", "--"]


def prepare(scratch: Path, uid: int = NOBODY) -> None:
    """Make the scratch folders writable for the sandbox's user."""
    for sub in ("submission", "results"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(scratch / sub, uid, uid)
            for child in (scratch / sub).iterdir():
                os.chown(child, uid, uid)
