"""`make present`: the lecture notebooks as live pages on localhost, served by Voila.

JupyterLab puts its whole interface on the projector, and the deck's panels (`make lecture`) do
not compute. Here each notebook is a page of text, formulas, pictures and live panels without
code, with a kernel per browser tab. Pages open at once because every notebook is run when the
server starts (Voila's preheated kernels, a pool of one per notebook), one at a time in lecture
order so that two cores are not shared five ways. Offline: the template in tools/present/ drops
Voila's CDN stylesheets, MathJax is JupyterLab's bundled one, only the widget extensions load.
Ctrl-C or SIGTERM stops Voila, which shuts its kernels down; a kernel left over (kernels run in
sessions of their own) is found by the private runtime folder in its command line and killed.

    python tools/present.py [--port 8866] [--device cuda] [notebooks/01_....ipynb ...]

``serving(notebooks)`` does the same as a context manager (the benchmarks use it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = Path(__file__).resolve().parent / "present"  # voila/templates/present, landing
NOTEBOOK_ENV = "PRESENT_NOTEBOOK"  # names the notebook in a preheated kernel's environment
READY, FAILED = "present:ready", "present:failed"  # the Voila process's lines to this one
EXTENSIONS = ["@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8"]


class PortInUse(RuntimeError):
    pass


def notebook_title(path: Path) -> str:
    """The first "# " heading of a markdown cell, else the file name."""
    for cell in json.loads(Path(path).read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(path).stem


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will bind
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def leftover_processes(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (Linux /proc; empty elsewhere)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if marker in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
    return [p for p in pids if p != os.getpid()]


@dataclass
class Server:
    """A running `make present` server: ``url`` is the landing page."""

    url: str
    names: list[str]
    runtime_dir: Path
    process: subprocess.Popen
    ready_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def page_url(self, notebook: str | Path) -> str:
        """The live page of one notebook, by path, file name or stem."""
        name = Path(notebook).name
        match = [n for n in self.names if n in (name, f"{name}.ipynb")]
        if not match:
            raise KeyError(f"{notebook} is not served here; served: {', '.join(self.names)}")
        return f"{self.url}voila/render/{match[0]}"


@contextlib.contextmanager
def serving(notebooks: list[Path], port: int | None = None, device: str | None = None,
            log: Callable[[str], None] | None = None, timeout: float = 1800) -> Iterator[Server]:
    """Serve ``notebooks`` (one folder) with Voila on 127.0.0.1, wait until every one is
    preheated, yield a `Server`; on exit stop Voila and every kernel. ``port=None`` takes a free
    port; ``device`` sets LECTURE_DEVICE for the kernels; ``log`` gets the progress lines."""
    log = log or (lambda _line: None)
    paths = [Path(p).resolve() for p in notebooks]
    folder = paths[0].parent
    if any(p.parent != folder for p in paths):
        raise ValueError("the notebooks must be in one folder: " + ", ".join(map(str, paths)))
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    elif port_in_use(port):
        raise PortInUse(f"port {port} is in use (another `make present`?): "
                        f"choose another with make present PORT={port + 4}")
    runtime = Path(tempfile.mkdtemp(prefix="present-"))
    spec = {"root": str(folder), "port": port, "runtime": str(runtime),
            "notebooks": [p.name for p in paths], "titles": [notebook_title(p) for p in paths]}
    # A kernel in use and one being prepared share the cores: OpenMP threads that spin while
    # they wait made torch 5x slower on 2 busy cores (19.6 s against 3.9 s when they sleep).
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "JUPYTER_RUNTIME_DIR": str(runtime),
           "PYTHONUNBUFFERED": "1",
           "JUPYTER_PATH": os.pathsep.join(filter(None, [str(TEMPLATE_PATH),
                                                         os.environ.get("JUPYTER_PATH")]))}
    if device:
        env["LECTURE_DEVICE"] = device
    voila_log = open(runtime / "voila.log", "w")  # noqa: SIM115 (closed in finally)
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, __file__, "--voila", json.dumps(spec)], cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=voila_log, text=True, start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    server = Server(f"http://127.0.0.1:{port}/", spec["notebooks"], runtime, process)
    threading.Thread(target=_read_reports, args=(process, server, start, log), daemon=True).start()
    try:
        log(f"preparing {len(paths)} notebooks one at a time, in lecture order; the landing page "
            f"{server.url} shows which are ready")
        while len(server.ready_seconds) < len(paths):
            if process.poll() is not None:
                raise RuntimeError(f"Voila exited ({process.returncode}):\n"
                                   + (runtime / "voila.log").read_text()[-3000:])
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"not every notebook was ready after {timeout:.0f} s; "
                                   f"ready: {server.ready_seconds}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process, runtime)
        voila_log.close()


def _die_with_parent() -> None:  # in the Voila process: SIGTERM when this one dies (Linux)
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_reports(process, server: Server, start: float, log) -> None:
    for line in process.stdout:  # also whatever the kernels print: only our lines count
        kind, _, rest = line.rstrip("\n").partition("\t")
        name, _, error = rest.partition("\t")
        if kind in (READY, FAILED) and name not in server.ready_seconds:  # not refills
            server.ready_seconds[name] = seconds = time.monotonic() - start
            if error:
                server.errors[name] = error
            log(f"{'ready' if kind == READY else 'FAILED'}: {Path(name).stem} ({seconds:.0f} s)"
                + (f": {error}" if error else ""))


def _stop(process: subprocess.Popen, runtime: Path) -> None:
    """SIGTERM to Voila (it shuts its kernels down), SIGKILL to whatever is left. A second
    Ctrl-C must not cut this short."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in leftover_processes(str(runtime)):  # kernels run in sessions of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--port", type=int, default=8866)
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (LECTURE_DEVICE)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):  # its terminal closed
        signal.signal(sig, signal.default_int_handler)  # clean up as on Ctrl-C
    start = time.monotonic()
    try:
        with serving(notebooks, args.port, args.device, log=lambda m: print(m, flush=True)) as s:
            failed = f", {len(s.errors)} failed (above)" if s.errors else ""
            print(f"{len(notebooks) - len(s.errors)} notebooks ready{failed} in "
                  f"{time.monotonic() - start:.0f} s: open {s.url}  (Ctrl-C stops the server and "
                  "every kernel)", flush=True)
            s.process.wait()
            print(f"Voila exited ({s.process.returncode})", file=sys.stderr)
            return 1
    except PortInUse as err:
        print(err, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: Voila and every kernel", flush=True)
        return 0


# ---- inside the Voila process: `python tools/present.py --voila SPEC` -----------------------


def _voila(spec: dict) -> None:
    import asyncio

    import tornado.template
    import tornado.web
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from tornado.ioloop import PeriodicCallback
    from traitlets.config import Config
    from voila.app import Voila
    from voila.tornado.handler import TornadoVoilaHandler

    order, titles = spec["notebooks"], dict(zip(spec["notebooks"], spec["titles"]))
    state = dict.fromkeys(order, "preparing")  # → "ready" or the error (the landing page)

    def report(kind: str, name: str, error: str = "") -> None:
        state[name] = error or "ready"
        print(f"{kind}\t{name}\t{error}", flush=True)

    class LectureOrderKernelManager(AsyncMappingKernelManager):
        """Voila's pool of preheated kernels is built on this class. It runs one notebook at a
        time, in lecture order (a page waiting for its notebook goes first), and reports when a
        page is ready (all cells run) without taking its kernel. Refills (a page took the
        kernel; the next tab will want one) run at a lower CPU priority."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.waiting: list[str] = []
            self.wanted: set[str] = set()  # notebooks whose page waits for their kernel
            self._busy: dict[str, str | None] = {}  # notebook → kernel id, while its cells run
            self._closing = False
            PeriodicCallback(self._check, 500).start()

        async def start_kernel(self, **kwargs):
            name = kwargs.get("env", {}).get(NOTEBOOK_ENV)
            if name is None:  # a page opened while its pool was empty: start at once
                return await super().start_kernel(**kwargs)
            self.waiting.append(name)
            while name not in self.wanted and (self._busy or self._next() != name):
                if self._closing:
                    raise RuntimeError("the server is stopping")
                await asyncio.sleep(0.2)
            self.waiting.remove(name)
            wanted = name in self.wanted
            self.wanted.discard(name)
            self._busy[name] = None
            try:
                kernel_id = await super().start_kernel(**kwargs)
            except Exception as err:
                del self._busy[name]
                report(FAILED, name, f"the kernel did not start: {err}")
                raise
            self._busy[name] = kernel_id
            if state[name] == "ready" and not wanted:  # a refill: leave the pages in use the CPU
                with contextlib.suppress(OSError, AttributeError):
                    os.setpriority(os.PRIO_PROCESS, self.get_kernel(kernel_id).provisioner.pid, 10)
            return kernel_id

        def _next(self) -> str | None:
            """Whose turn: the first notebook never ready yet, else the first refill waiting."""
            first = [n for n in order if state[n] == "preparing"]
            return first[0] if first else min(self.waiting, key=order.index, default=None)

        def _check(self) -> None:
            for name, kernel_id in [(n, k) for n, k in self._busy.items() if k is not None]:
                pool = [t.result() for t in self._pools.get(name, []) if t.done() and not t.exception()]
                mine = [c for c in pool if c["kernel_id"] == kernel_id]
                if not mine:  # a page took the kernel before it was ready: the page renders it
                    del self._busy[name]
                elif mine[0]["task"].done():
                    del self._busy[name]
                    task, executor = mine[0]["task"], getattr(mine[0]["renderer"], "executor", None)
                    errors = [f"{o['ename']}: {o['evalue']}" for c in (executor.nb.cells if executor else [])
                              for o in c.get("outputs", []) if o["output_type"] == "error"]
                    if task.exception() or errors:
                        report(FAILED, name, repr(task.exception()) if task.exception() else
                               f"{len(errors)} cell(s) failed, the first with {errors[0]}")
                    else:
                        report(READY, name)

        async def shutdown_all(self, *args, **kwargs):
            self._closing = True
            await super().shutdown_all(*args, **kwargs)

    class Page(TornadoVoilaHandler):
        async def get(self, path=None):
            # the page's kernel is shut down on leaving it by a POST that carries the _xsrf
            # cookie; a prepared page is not rendered here and would never set it (voila#1458)
            self.xsrf_token  # noqa: B018 (sets the cookie)
            if path in self.kernel_manager.waiting:  # its notebook's turn has not come: now
                self.kernel_manager.wanted.add(path)
            await super().get(path=path)

    landing = tornado.template.Template((TEMPLATE_PATH / "landing.html").read_bytes())

    class Landing(tornado.web.RequestHandler):
        def get(self):
            self.write(landing.generate(pages=[(n, titles[n], state[n]) for n in order],
                                        preparing="preparing" in state.values()))

    class PresentVoila(Voila):
        def init_handlers(self):
            handlers = [(r"/", Landing), *super().init_handlers()]
            return [(h[0], Page, *h[2:]) if h[1] is TornadoVoilaHandler else h for h in handlers]

    def offline_mathjax(page_config, **_kwargs):
        # both "null": Voila's front end takes JupyterLab's bundled MathJax 3, not the CDN's
        page_config.update(fullMathjaxUrl="null", mathjaxConfig="null")
        return page_config

    c = Config()
    c.Voila.update(ip="127.0.0.1", port=spec["port"], port_retries=0, open_browser=False,
                   root_dir=spec["root"], connection_dir_root=spec["runtime"], config_file_paths=[])
    c.VoilaConfiguration.update(
        template="present", preheat_kernel=True, show_tracebacks=True,
        extension_allowlist=EXTENSIONS, page_config_hook=offline_mathjax,
        multi_kernel_manager_class=LectureOrderKernelManager)
    c.VoilaKernelManager.kernel_pools_config = {
        "default": {"pool_size": 0},
        **{n: {"pool_size": 1, "kernel_env_variables": {NOTEBOOK_ENV: n}} for n in order}}
    PresentVoila.launch_instance(argv=[], config=c)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--voila"]:
        _voila(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
