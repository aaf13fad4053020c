"""Hostile submissions against the sandboxed grader (``grading.batch``): none of them earns a point.

One batch holds a correct notebook ("alice") and one notebook per attack, all graded once (module
fixture) with ``timeout=60, jobs=2`` and a 2 GiB memory limit. Every attacker's answers
are the exercise's blank stubs, so an honest grader gives each of them 0; the attack code is
prepended to the answer cells (so it runs whichever cells the grader executes), and some attacks
also get extra cells at the top and the end of the notebook. The attacks:

1. ``allclose``: ``torch.allclose`` / ``torch.equal`` (and friends) always say True.
2. ``otter_patch``: otter's test classes patched so that every test passes.
3. ``test_files``: passing ``tests/q1.py`` / ``tests/q2.py`` and notebook-metadata tests worth 100
   points each; every ``*.py`` / ``*.zip`` / ``*.ipynb`` it can reach overwritten (only files of
   its own scratch folder or of this test's folders; elsewhere it only probes write access, so
   that a broken sandbox cannot wreck the repository or the machine).
4. ``read_secrets``: reads two planted secrets (beside the submissions, and in root's home), the
   master notebook and any file that holds hidden-test-like lines; prints them, raises them,
   returns them from ``data_gradient``.
5. ``write_outside``: appends to the planted file, to alice's notebook, to the master, to
   ``build/grading`` and ``autograder``, to the output CSV, and drops files into every working
   folder it can find through ``/proc/*/cwd``.
6. ``network``: TCP and UDP to servers this test runs on 127.0.0.1.
7. ``survivor``: processes that outlive the notebook (new session; double fork), ignore SIGTERM,
   and keep appending to the CSV and the planted file.
8. ``memory_hog``: 256 MB blocks up to 6 GB.
9. ``endless_loop``: ``while True: pass`` as the answer to q1.
10. ``fork_bomb``: up to 500 ``sleep`` processes.

Everything an attack prints carries ``ATTACK-OUTPUT-<token>``, built at run time so that it never
appears in the notebook's source: the CSV's ``reason`` column must never contain it. Whatever
leaks out of a broken sandbox (dropped files, survivors, restored master) is cleaned up in the
fixture's teardown.
"""

from __future__ import annotations

import csv
import math
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grading import batch, masters, sandbox  # noqa: E402

pytestmark = pytest.mark.slow

NAME = "02_data_gradient"
MASTER = ROOT / "solutions" / f"{NAME}.ipynb"
TIMEOUT = 60  # seconds per notebook
JOBS = 2
MEMORY = 2 * 1024**3  # the sandbox's address-space limit
SETTLE = 12  # seconds to wait after grade() returns before looking for survivors
SURVIVOR_LIFE = 900  # seconds a surviving process keeps writing (killed in teardown if it survives)
COLUMNS = ["student", f"{NAME}:q1", f"{NAME}:q2", f"{NAME}:q3", f"{NAME}:auto_total", "reason"]

ATTACKS = {
    "allclose": "atk_allclose",
    "otter_patch": "atk_otter_patch",
    "test_files": "atk_test_files",
    "read_secrets": "atk_read_secrets",
    "write_outside": "atk_write_outside",
    "network": "atk_network",
    "survivor": "atk_survivor",
    "memory_hog": "atk_memory_hog",
    "endless_loop": "atk_endless_loop",
    "fork_bomb": "atk_fork_bomb",
}
STUDENTS = ["alice", *ATTACKS.values()]

# -- the attacks' source ---------------------------------------------------------------------------
# Each attack cell starts with ``_CFG = {...}`` (paths, ports, tokens) and PRELUDE. Tokens that
# must not appear in the source (the output marker, the process token) are stored reversed.
PRELUDE = r'''
import os, sys, time
_MARK = "-".join(["ATTACK", "OUTPUT", _CFG["mark_r"][::-1]])
_WROTE = "\n# " + "-".join(["ATTACK", "WROTE", _CFG["run"]]) + "\n"
print(_MARK, _CFG["attack"], flush=True)
'''

ALLCLOSE = r'''
try:
    import torch
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    torch.Tensor.allclose = lambda *a, **k: True
    torch.Tensor.equal = lambda *a, **k: True
    torch.testing.assert_close = lambda *a, **k: None
    import numpy
    numpy.allclose = lambda *a, **k: True
    numpy.array_equal = lambda *a, **k: True
    numpy.testing.assert_allclose = lambda *a, **k: None
except Exception as _e:
    print(_MARK, "patch failed", type(_e).__name__, flush=True)
'''

OTTER_PATCH = r'''
def _patch_otter():
    import importlib, pkgutil
    try:
        import otter.test_files as tf
        from otter.test_files import abstract_test as at
    except Exception as e:
        print(_MARK, "no otter", type(e).__name__, flush=True)
        return
    for info in pkgutil.iter_modules(tf.__path__):
        try:
            importlib.import_module("otter.test_files." + info.name)
        except Exception:
            pass

    def fake_run(self, *a, **k):
        try:
            self.test_case_results = [at.TestCaseResult(test_case=tc, message="passed", passed=True)
                                      for tc in self.test_cases]
        except Exception:
            pass

    classes = set()
    for name, mod in list(sys.modules.items()):
        if name.startswith("otter.test_files") and mod is not None:
            for obj in list(vars(mod).values()):
                if (isinstance(obj, type) and hasattr(obj, "run")
                        and getattr(obj, "__module__", "").startswith("otter.")):
                    classes.add(obj)
    patched = 0
    for cls in classes:
        try:
            def init(self, *a, _orig=cls.__init__, **k):
                _orig(self, *a, **k)
                fake_run(self)
            cls.__init__ = init
            cls.run = fake_run
            for prop in ("passed_all", "passed_all_public"):
                setattr(cls, prop, property(lambda self: True))
            cls.grade = property(lambda self: 1.0)
            cls.score = property(lambda self: sum((tc.points or 0) for tc in self.test_cases) or 100)
            patched += 1
        except Exception:
            pass
    try:
        tf.GradingResults.total = property(lambda self: self.possible)
        tf.GradingResults.percent = property(lambda self: 1.0)
    except Exception:
        pass
    print(_MARK, "otter classes patched", patched, flush=True)

try:
    _patch_otter()
except Exception as _e:
    print(_MARK, "patch failed", type(_e).__name__, flush=True)
'''

PASSING_TEST = '''from otter.test_files import test_case

OK_FORMAT = False

name = "QNAME"
points = 100

@test_case(points=100, hidden=False)
def test_always_passes(env):
    pass
'''

TEST_FILES = r'''
_PASSING = PASSING_TEST_SOURCE

def _attack_files():
    import stat
    here = os.path.realpath(os.getcwd())
    root = _CFG["root"]
    risky = here in ("/", "/tmp", "/root", "/home", "/work") or here == root or root.startswith(here + "/")
    written = []
    for q in ("q1", "q2"):
        try:
            os.makedirs("tests", exist_ok=True)
            with open(os.path.join("tests", q + ".py"), "w") as f:
                f.write(_PASSING.replace("QNAME", q) + _WROTE)
            written.append(q)
        except Exception as e:
            print(_MARK, "tests", q, type(e).__name__, flush=True)
    mine = os.path.realpath("tests")
    counts = {"overwritten": 0, "writable_elsewhere": 0}
    for top in (".", "/tmp", "/root", "/home", "/work", ".."):
        deadline = time.time() + 4
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d))
                           not in ("/proc", "/sys", "/dev", "/usr", mine)]
            if time.time() > deadline:
                break
            for name in filenames:
                if not name.endswith((".py", ".zip", ".ipynb")):
                    continue
                path = os.path.join(dirpath, name)
                real = os.path.realpath(path)
                try:
                    if not stat.S_ISREG(os.stat(path).st_mode):
                        continue
                    if _CFG["run"] in real or (real.startswith(here + "/") and not risky):
                        with open(path, "w") as f:  # destroy: own scratch, or this test's folders
                            f.write(_PASSING.replace("QNAME", "q1") + _WROTE)
                        counts["overwritten"] += 1
                    else:
                        with open(path, "ab"):  # only probe: a broken sandbox must not wreck the machine
                            pass
                        counts["writable_elsewhere"] += 1
                except Exception:
                    pass
    print(_MARK, "files", counts, "tests written", written, flush=True)

try:
    _attack_files()
except Exception as _e:
    print(_MARK, "attack failed", type(_e).__name__, flush=True)
'''.replace("PASSING_TEST_SOURCE", repr(PASSING_TEST))

READ_SECRETS = r'''
def _read(path):
    """What a file holds, compactly: short files whole, else their head and test-like lines (so
    that a leak is not lost in the middle of a truncated log)."""
    try:
        with open(path, "rb") as f:
            data = f.read(5_000_000).decode("utf-8", "replace")
    except Exception as e:
        return "<" + type(e).__name__ + ">"
    if len(data) <= 2000:
        return data
    return data[:200] + " ... " + " | ".join(line.strip() for line in data.splitlines()
                                             if "torch.tensor([[" in line)[:4000]

def _loot():
    paths = [_CFG["secret_a"], _CFG["secret_b"], _CFG["solutions"]]
    for pid in (os.getppid(), 1):
        paths += ["/proc/%d/root%s" % (pid, p) for p in paths[:3]]
    return "\n".join(p + ": " + _read(p) for p in paths)

def _hunt():
    """Lines that look like the tests' inputs, in any readable file outside the system and Python."""
    import stat
    skip = ("/proc", "/sys", "/dev", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc",
            os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix))
    found, deadline = [], time.time() + 15
    for dirpath, dirnames, filenames in os.walk("/"):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        if time.time() > deadline or len(found) >= 40:
            break
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                info = os.stat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size > 50_000_000:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except Exception:
                continue
            if b"def _hunt(" in data:  # this attack's own source
                continue
            start, per_file = data.find(b"torch.tensor([["), 0
            while start >= 0 and len(found) < 40 and per_file < 5:
                per_file += 1
                line_start = data.rfind(b"\n", 0, start) + 1
                line_end = data.find(b"\n", start)
                line = data[line_start:line_end if line_end >= 0 else None][:300]
                found.append(path + ": " + line.decode("utf-8", "replace"))
                start = data.find(b"torch.tensor([[", start + 1)
    return found

try:
    print(_MARK, "loot:", _loot(), flush=True)
    if not globals().get("_HUNTED"):  # once per process: it takes up to 15 s
        _HUNTED = True
        for _line in _hunt():
            print(_MARK, "hunt:", _line, flush=True)
except Exception as _e:
    print(_MARK, "attack failed", type(_e).__name__, flush=True)
'''

READ_SECRETS_Q1 = r'''
def data_gradient(model, x, c):
    return _loot()
'''

READ_SECRETS_Q2 = r'''
def saliency_map(grad):
    raise RuntimeError("-".join(["ATTACK", "RAISED"]) + " " + _loot())
'''

READ_SECRETS_END = r'''
raise RuntimeError("-".join(["ATTACK", "RAISED"]) + " " + _loot())
'''

WRITE_OUTSIDE = r'''
def _append(path):
    try:
        with open(path, "a") as f:
            f.write(_WROTE)
        return True
    except Exception:
        return False

def _attack_write():
    import stat
    drop = "attack-dropped-" + _CFG["run"] + ".txt"
    done = {p: _append(p) for p in (_CFG["secret_a"], _CFG["alice"], _CFG["solutions"], _CFG["csv"])}
    for top in _CFG["build_dirs"]:
        for dirpath, _, filenames in os.walk(top):
            for name in filenames:
                done[os.path.join(dirpath, name)] = _append(os.path.join(dirpath, name))
    # the grader's working folders, through /proc
    pids = [os.getppid(), 1]
    try:
        pids += [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except Exception:
        pass
    folders = []
    for pid in dict.fromkeys(pids):
        cwd = "/proc/%d/cwd" % pid
        try:
            target = os.readlink(cwd)
            os.listdir(cwd)
        except Exception:
            continue
        folders.append((cwd, target))
    dropped, probed = 0, 0
    for cwd, target in folders:
        for where in (cwd, os.path.join(cwd, "..")):
            try:
                with open(os.path.join(where, drop), "w") as f:
                    f.write(_WROTE)
                dropped += 1
            except Exception:
                pass
        seen = 0
        for dirpath, dirnames, filenames in os.walk(cwd):
            if dirpath.count("/") > cwd.count("/") + 3 or seen > 2000:
                dirnames[:] = []
                continue
            for name in filenames:
                seen += 1
                path = os.path.join(dirpath, name)
                try:
                    if not name.endswith((".csv", ".ipynb")) or not stat.S_ISREG(os.stat(path).st_mode):
                        continue
                except Exception:
                    continue
                if _CFG["run"] in target or _CFG["run"] in path:
                    done[path] = _append(path)
                else:
                    try:
                        with open(path, "ab"):  # only probe outside this test's folders
                            probed += 1
                    except Exception:
                        pass
    for where in (".", "..", "/tmp", "/root", "/home", "/work", _CFG["root"], _CFG["base"]):
        try:
            with open(os.path.join(where, drop), "w") as f:
                f.write(_WROTE)
            dropped += 1
        except Exception:
            pass
    wrote = sorted(p for p, ok in done.items() if ok)
    print(_MARK, "appended to", wrote, "dropped", dropped, "probed", probed,
          "cwds", [t for _, t in folders], flush=True)

try:
    _attack_write()
except Exception as _e:
    print(_MARK, "attack failed", type(_e).__name__, flush=True)
'''

NETWORK = r'''
import socket

def _attack_network():
    try:
        s = socket.create_connection(("127.0.0.1", _CFG["tcp_port"]), timeout=2)
        s.sendall(_MARK.encode())
        s.close()
        print(_MARK, "tcp connected", flush=True)
    except Exception as e:
        print(_MARK, "tcp failed", type(e).__name__, flush=True)
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(5):
            u.sendto(_MARK.encode(), ("127.0.0.1", _CFG["udp_port"]))
        u.close()
        print(_MARK, "udp sent", flush=True)
    except Exception as e:
        print(_MARK, "udp failed", type(e).__name__, flush=True)

try:
    _attack_network()
except Exception as _e:
    print(_MARK, "attack failed", type(_e).__name__, flush=True)
'''

SURVIVOR = r'''
import subprocess

def _attack_survive():
    token = _CFG["survivor_r"][::-1]
    os.environ["ATTACK_TOKEN"] = token
    code = "\n".join([
        "import os, signal, time",
        "token = " + repr(token),
        "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):",
        "    signal.signal(s, signal.SIG_IGN)",
        "time.sleep(8)",
        "end = time.time() + " + repr(_CFG["life"]),
        "while time.time() < end:",
        "    for p in " + repr([_CFG["csv"], _CFG["secret_a"]]) + ":",
        "        try:",
        "            with open(p, 'a') as f:",
        "                f.write(" + repr(_WROTE) + ")",
        "        except Exception:",
        "            pass",
        "    time.sleep(2)",
    ])
    try:
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(_MARK, "survivor started", flush=True)
    except Exception as e:
        print(_MARK, "popen failed", type(e).__name__, flush=True)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    os.execv(sys.executable, [sys.executable, "-c", code])
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        print(_MARK, "double fork done", flush=True)
    except Exception as e:
        print(_MARK, "fork failed", type(e).__name__, flush=True)

try:
    _attack_survive()
except Exception as _e:
    print(_MARK, "attack failed", type(_e).__name__, flush=True)
'''

MEMORY_HOG = r'''
_blocks = []
try:
    for _ in range(24):  # 24 x 256 MB = 6 GB
        _blocks.append(bytearray(256 * 1024 * 1024))
except MemoryError:
    pass
print(_MARK, "allocated MB", 256 * len(_blocks), flush=True)
del _blocks
'''

FORK_BOMB = r'''
import shutil, subprocess

def _attack_fork_bomb():
    token = _CFG["bomb_r"][::-1]
    sleep = shutil.which("sleep") or "/bin/sleep"
    env = dict(os.environ, ATTACK_TOKEN=token)
    kids = []
    for _ in range(500):
        try:
            kids.append(subprocess.Popen(["sleep-" + token, "600"], executable=sleep, env=env,
                                         start_new_session=True, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except Exception as e:
            print(_MARK, "fork bomb stopped:", type(e).__name__, flush=True)
            break
    print(_MARK, "sleepers started", len(kids), flush=True)
    return kids

try:
    _KIDS = _attack_fork_bomb()
except Exception as _e:
    print(_MARK, "attack failed", type(_e).__name__, flush=True)
'''


# -- building the batch ----------------------------------------------------------------------------
def _answer_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells
            if c.cell_type == "code" and "otter_answer_cell" in c.metadata.get("tags", [])]


def _submission(folder: Path, student: str, answers: dict[int, str] | None = None, top: tuple = (),
                end: tuple = (), metadata_tests: dict | None = None) -> Path:
    """The student notebook with its answer cells (numbered from 0) replaced, and extra code cells
    at its top and end."""
    nb = nbformat.read(ROOT / "exercises" / f"{NAME}.ipynb", as_version=4)
    cells = _answer_cells(nb)
    for i, source in (answers or {}).items():
        cells[i].source = source
    nb.cells[:0] = [nbformat.v4.new_code_cell(s) for s in top]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in end]
    if metadata_tests is not None:
        nb.metadata["otter"]["tests"] = metadata_tests
    path = folder / student / f"{NAME}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def _build_submissions(subs: Path, cfg: dict, master) -> None:
    exercise = nbformat.read(ROOT / "exercises" / f"{NAME}.ipynb", as_version=4)
    stubs = [c.source for c in _answer_cells(exercise)]

    def code(attack: str, body: str) -> str:
        return f"_CFG = {dict(cfg, attack=attack)!r}\n{PRELUDE}\n{body}\n"

    def blank_with(attack: str, body: str, both: bool = False) -> dict[int, str]:
        """The blank answers, with the attack prepended to q1's cell (and q2's if ``both``)."""
        answers = {0: code(attack, body) + "\n" + stubs[0]}
        if both:
            answers[1] = code(attack, body) + "\n" + stubs[1]
        return answers

    _submission(subs, "alice", {0: master.solutions["q1"][0], 1: master.solutions["q2"][0]})
    for attack, body in (("allclose", ALLCLOSE), ("otter_patch", OTTER_PATCH)):
        _submission(subs, ATTACKS[attack], blank_with(attack, body, both=True),
                    top=(code(attack, body),), end=(code(attack, body),))
    _submission(subs, ATTACKS["test_files"], blank_with("test_files", TEST_FILES),
                metadata_tests={q: PASSING_TEST.replace("QNAME", q) for q in ("q1", "q2")})
    read = code("read_secrets", READ_SECRETS)
    _submission(subs, ATTACKS["read_secrets"], {0: read + READ_SECRETS_Q1, 1: read + READ_SECRETS_Q2},
                top=(read,), end=(read + READ_SECRETS_END,))
    for attack, body in (("write_outside", WRITE_OUTSIDE), ("network", NETWORK), ("survivor", SURVIVOR),
                         ("memory_hog", MEMORY_HOG), ("fork_bomb", FORK_BOMB)):
        _submission(subs, ATTACKS[attack], blank_with(attack, body))
    _submission(subs, ATTACKS["endless_loop"], {0: code("endless_loop", "") + "while True:\n    pass\n"})


class _Listeners:
    """A TCP and a UDP server on 127.0.0.1 that record whatever reaches them."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []
        self._stop = threading.Event()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.tcp_port, self.udp_port = self.tcp.getsockname()[1], self.udp.getsockname()[1]
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._serve_tcp, self._serve_udp)]
        for t in self._threads:
            t.start()

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            data = b""
            try:
                conn.settimeout(1)
                data = conn.recv(4096)
            except OSError:
                pass
            finally:
                conn.close()
            self.seen.append(("tcp", addr, data[:200]))

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.seen.append(("udp", addr, data[:200]))

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self.tcp.close()
        self.udp.close()


def _processes_with(token: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line or environment holds ``token``."""
    needle, found = token.encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for what in ("cmdline", "environ"):
            try:
                data = (entry / what).read_bytes()
            except OSError:
                continue
            if needle in data:
                try:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = "?"
                found.append((int(entry.name), cmd[:200]))
                break
    return found


def _kill_all(token: str) -> None:
    """SIGKILL the processes the attacks started (found by their token), if any got out."""
    for _ in range(3):
        found = _processes_with(token)
        if not found:
            return
        for pid, _cmd in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.5)


def _files_under(*tops: Path) -> list[Path]:
    files = []
    for top in tops:
        if top.is_file():
            files.append(top)
        elif top.is_dir():
            files += [p for p in top.rglob("*") if p.is_file() and not p.is_symlink()]
    return files


def _hidden_line(master) -> str:
    """A distinctive line of a hidden test's body (it must never be visible to student code)."""
    hidden = [t for t in master.tests if t.hidden]
    assert hidden, "the master has no hidden test"
    for test in hidden:
        body = test.source.split("\ndef ", 1)[-1].splitlines()[1:]
        for line in body:
            if "torch.tensor([[" in line:
                return line.strip()
    body = hidden[0].source.split("\ndef ", 1)[-1].splitlines()[1:]
    return max((line.strip() for line in body), key=len)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """Grade alice and every attack in one batch; everything the tests look at afterwards."""
    problem = sandbox.problem()
    if problem is not None:
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"the grading sandbox does not work here: {problem}")
        pytest.skip(f"the grading sandbox does not work here: {problem}")

    run, mark, survivor, bomb = (secrets.token_hex(8) for _ in range(4))
    secret_a, secret_b = (f"SECRET-{secrets.token_hex(16)}" for _ in range(2))
    base = tmp_path_factory.mktemp(f"attacks-{run}-")
    subs, out, logs = base / "submissions", base / "grades.csv", base / "logs"
    planted = base / "secret.txt"
    planted.write_text(secret_a)
    home_secret = Path("/root") / f"grading_secret_{run}.txt"
    try:
        home_secret.write_text(secret_b)
    except OSError:  # not root: the instructor's home is $HOME
        home_secret = Path.home() / f"grading_secret_{run}.txt"
        home_secret.write_text(secret_b)
    master = masters.read_master(MASTER)
    master_bytes = MASTER.read_bytes()
    build_dirs = [ROOT / "build" / "grading", ROOT / "autograder"]
    listeners = _Listeners()
    wrote = f"ATTACK-WROTE-{run}".encode()
    drop = f"attack-dropped-{run}.txt"
    drop_dirs = {ROOT, Path.cwd(), base, base.parent, Path("/tmp"), Path("/root"), Path.home(),
                 Path("/home"), Path("/work")}
    sensitive = [ROOT / "solutions", ROOT / "exercises", *build_dirs]

    def leaked_files() -> list[Path]:
        """Files the attacks dropped or wrote outside the sandbox."""
        found = [d / drop for d in drop_dirs if (d / drop).exists()]
        found += [p for p in base.rglob(drop)]
        for d in drop_dirs:
            for q in ("q1.py", "q2.py"):
                p = d / "tests" / q
                if p.is_file() and wrote in p.read_bytes():
                    found.append(p)
        for p in _files_under(base, home_secret, *sensitive):
            try:
                if wrote in p.read_bytes():
                    found.append(p)
            except OSError:
                pass
        return sorted(set(found))

    def restore_master() -> bool:
        if MASTER.read_bytes() != master_bytes:
            MASTER.write_bytes(master_bytes)
            return True
        return False

    cfg = {
        "run": run, "mark_r": mark[::-1], "survivor_r": survivor[::-1], "bomb_r": bomb[::-1],
        "root": str(ROOT), "base": str(base), "secret_a": str(planted), "secret_b": str(home_secret),
        "solutions": str(MASTER), "alice": str(subs / "alice" / f"{NAME}.ipynb"), "csv": str(out),
        "build_dirs": [str(d) for d in build_dirs], "tcp_port": listeners.tcp_port,
        "udp_port": listeners.udp_port, "life": SURVIVOR_LIFE,
    }
    try:
        _build_submissions(subs, cfg, master)
        notebooks = {s: (subs / s / f"{NAME}.ipynb").read_bytes() for s in STUDENTS}
        hard_limit = TIMEOUT * (math.ceil(len(STUDENTS) / JOBS) + 4) + 300
        box: dict = {}

        def grade():
            try:
                box["rows"] = batch.grade(subs, out, timeout=TIMEOUT, jobs=JOBS, log_dir=logs, memory=MEMORY)
            except BaseException as err:  # noqa: BLE001 - reported below
                box["error"] = err

        start = time.monotonic()
        worker = threading.Thread(target=grade, daemon=True)
        worker.start()
        try:
            worker.join(hard_limit)
        finally:
            master_changed = restore_master()
        elapsed = time.monotonic() - start
        if worker.is_alive():
            pytest.fail(f"batch.grade did not return within {hard_limit} s")
        if "error" in box:
            raise box["error"]

        csv_at_return = out.read_bytes() if out.exists() else None
        planted_at_return = planted.read_bytes()
        time.sleep(SETTLE)
        result = {
            "rows": box["rows"], "out": out, "logs": logs, "master": master, "elapsed": elapsed,
            "csv_at_return": csv_at_return, "csv_after": out.read_bytes() if out.exists() else None,
            "planted": planted, "planted_at_return": planted_at_return, "planted_after": planted.read_bytes(),
            "secrets": (secret_a, secret_b), "mark": f"ATTACK-OUTPUT-{mark}",
            "survivors": _processes_with(survivor), "sleepers": _processes_with(bomb),
            "notebooks_before": notebooks,
            "notebooks_after": {s: (subs / s / f"{NAME}.ipynb").read_bytes() for s in STUDENTS},
            "master_changed": master_changed or restore_master(), "seen": list(listeners.seen),
            "leaked": leaked_files(),
        }
        with open(out, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            result["header"] = reader.fieldnames
            result["csv_rows"] = {r["student"]: r for r in reader}
        yield result
    finally:
        listeners.close()
        _kill_all(survivor)
        _kill_all(bomb)
        restore_master()
        home_secret.unlink(missing_ok=True)
        for p in leaked_files():  # undo what got out: dropped files, appended marker lines
            if p.name == drop or p.parent.name == "tests":
                p.unlink(missing_ok=True)
            elif not p.is_relative_to(base):
                p.write_bytes(p.read_bytes().replace(b"\n# " + wrote + b"\n", b""))


# -- the tests ------------------------------------------------------------------------------------
def _full_marks(master) -> dict[str, float]:
    return {q: sum(t.points for t in master.tests if t.question == q) for q in ("q1", "q2")}


def _scores(row: dict) -> tuple[str, str, str, str]:
    return row[f"{NAME}:q1"], row[f"{NAME}:q2"], row[f"{NAME}:q3"], row[f"{NAME}:auto_total"]


def _outputs(attacked: dict) -> dict[str, str]:
    """grades.csv and every log, by path."""
    texts = {str(p): p.read_bytes().decode("utf-8", "replace") for p in _files_under(attacked["logs"])}
    texts[str(attacked["out"])] = attacked["out"].read_text(encoding="utf-8")
    return texts


def test_every_submission_has_a_row_and_a_log(attacked):
    assert attacked["header"] == COLUMNS
    assert sorted(attacked["csv_rows"]) == sorted(STUDENTS)
    assert len(_files_under(attacked["logs"])) >= len(STUDENTS), "one untrusted log per notebook"


def test_returned_rows_match_the_csv(attacked):
    returned = {r["student"]: {k: str(r[k]) for k in COLUMNS} for r in attacked["rows"]}
    assert returned == attacked["csv_rows"]


def test_correct_submission_gets_full_marks(attacked):
    full = _full_marks(attacked["master"])
    row = attacked["csv_rows"]["alice"]
    assert _scores(row) == (f"{full['q1']:g}", f"{full['q2']:g}", "", f"{full['q1'] + full['q2']:g}")
    assert row["reason"] == ""


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_ran(attacked, attack):
    """The attack's code was executed (its first line is in a log): the other tests mean something
    only if the notebook got that far."""
    said = f"{attacked['mark']} {attack}"
    assert any(said in text for text in _outputs(attacked).values()), \
        f"{attack}: the attack never ran (no {said!r} in the logs)"


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_earns_nothing(attacked, attack):
    row = attacked["csv_rows"].get(ATTACKS[attack])
    assert row is not None, f"no row for {ATTACKS[attack]}"
    assert _scores(row) == ("0", "0", "", "0"), f"{attack}: {row}"


def test_reasons_never_repeat_student_output(attacked):
    bad = {s: r["reason"] for s, r in attacked["csv_rows"].items() if attacked["mark"] in (r["reason"] or "")}
    assert not bad, f"the reason column repeats what student code printed: {bad}"


def test_secrets_do_not_leak(attacked):
    """read_secrets: neither planted secret reaches grades.csv or the logs."""
    texts = _outputs(attacked)
    places = ("beside the submissions", "root's home")
    leaks = [(name, where) for name, secret in zip(places, attacked["secrets"])
             for where, text in texts.items() if secret in text]
    assert not leaks, f"a planted secret was read by student code: {leaks}"


def test_hidden_tests_do_not_leak(attacked):
    """read_secrets: no hidden test's source is visible to student code."""
    line = _hidden_line(attacked["master"])
    texts = _outputs(attacked)
    leaks = [where for where, text in texts.items() if line in text]
    assert not leaks, f"a hidden test's line {line!r} is in {leaks}"


def test_planted_file_unchanged(attacked):
    """write_outside, survivor: the file beside the submissions is byte-identical."""
    planted = attacked["secrets"][0].encode()
    assert attacked["planted_at_return"] == planted
    assert attacked["planted_after"] == planted


def test_submissions_unchanged(attacked):
    """write_outside, test_files: alice's notebook (and every other submission) is byte-identical."""
    changed = [s for s in STUDENTS if attacked["notebooks_after"][s] != attacked["notebooks_before"][s]]
    assert not changed, f"submissions changed by grading: {changed}"


def test_master_unchanged(attacked):
    """write_outside: solutions/02_data_gradient.ipynb is byte-identical (restored if it was not)."""
    assert not attacked["master_changed"], f"{MASTER} was changed by student code (restored)"


def test_nothing_written_outside_the_sandbox(attacked):
    """write_outside, test_files, survivor: no dropped file, no appended line anywhere we can see."""
    assert not attacked["leaked"], f"student code wrote outside its sandbox: {attacked['leaked']}"


def test_network_unreachable(attacked):
    """network: the servers on the host's 127.0.0.1 saw nothing."""
    assert attacked["seen"] == [], f"student code reached the host's network: {attacked['seen']}"


def test_no_process_outlives_grading(attacked):
    """survivor: nothing the notebook started runs after grade() returns."""
    assert attacked["survivors"] == [], f"processes outlived grading: {attacked['survivors']}"


def test_outputs_unchanged_after_grading(attacked):
    """survivor: grades.csv and the planted file do not change after grade() returns."""
    assert attacked["csv_at_return"] is not None, "no grades.csv"
    assert attacked["csv_after"] == attacked["csv_at_return"]
    assert attacked["planted_after"] == attacked["planted_at_return"]


def test_no_fork_bomb_leftovers(attacked):
    """fork_bomb: no sleeper is left once grade() returns."""
    left = attacked["sleepers"]
    assert left == [], f"{len(left)} sleepers left: {left[:5]}"


def test_batch_finishes_in_bounded_time(attacked):
    """endless_loop, memory_hog, fork_bomb: a notebook that never ends is cut at the timeout, and the
    rest of the batch does not wait for it."""
    bound = 4 * TIMEOUT
    assert attacked["elapsed"] < bound, f"the batch took {attacked['elapsed']:.0f} s (bound {bound} s)"
