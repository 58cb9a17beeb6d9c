"""Flow-run processes forked from a pre-imported process: a warm start in milliseconds.

A Prefect process worker starts every flow run as new Python processes (a workspace
supervisor, then `python -m prefect.engine`) that import Prefect, pandas, WeasyPrint
and the flows before the flow's first line runs: seconds per run on two cores, most of
the time from a click in the dashboard to its PDF (docs/BENCHMARKS.md, "Click to PDF").

`serve` is a process that imports all of that once, then forks one flow-run process
per request: the child takes the request's environment, working directory and standard
streams and runs `prefect.engine` as `python -m prefect.engine` would, in a session of
its own. `reportrunner worker` starts it beside Prefect's worker and points each flow
run's command at `connect` (see `deployments.worker`).

The worker still starts, tracks, signals and waits for one process per flow run: this
file run as a script with `python -I -S`, which imports nothing but the standard
library. It hands its environment and streams to the warm process, forwards every
signal it gets to the forked flow-run process and exits with that process's status.
The forked process kills itself when its client goes away (SIGKILL included), so
stopping or killing the client stops the flow run as before.

When the warm process is not there (still importing, stopped) or its project code is
older than the files on disk, the client execs `python -m prefect.engine` itself: the
cold start, minus the supervisor. A warm process whose code went stale takes no new
runs and exits when its last child has, and the worker starts a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

_HEADER = struct.Struct("!I")
_BASE_ENV: dict[str, str] = {}
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_FORWARDED += (signal.SIGUSR1, signal.SIGUSR2)
# Modules a flow-run process needs, imported once by the warm process. Each is
# optional: a missing one is imported by the flow run itself, as in a cold start.
PRELOAD = (
    "prefect.engine",
    "prefect.flow_engine",
    "prefect._internal.metrics",
    "flows",
    "reports.pdf",
    "reports.charts",
    "reports.jobs",
    "reports.index",
    # What the render fork server imports (watched for changes here); importing it also
    # builds WeasyPrint's font configuration once for every flow run.
    "reports.render_preload",
)


# ---- the client: what the worker starts for each flow run ------------------------------


def connect(socket_path: str) -> None:
    """Run this flow run in a process forked by the warm process at `socket_path`."""
    pending: list[int] = []
    child: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child[0], signum)
        else:
            pending.append(signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        payload = json.dumps(
            {"env": dict(os.environ), "cwd": os.getcwd(), "argv": ["prefect.engine"]}
        ).encode()
        socket.send_fds(sock, [_HEADER.pack(len(payload)) + payload], [0, 1, 2])
        reply = _read_line(sock)
    except OSError:
        reply = ""
    if not reply.startswith("pid "):
        sock.close()
        _cold_start()
    child.append(int(reply.split()[1]))
    for signum in pending:
        forward(signum, None)
    status = _read_line(sock)
    if status.startswith("exit "):
        _exit_like(int(status.split()[1]))
    # The warm process died while the run went on: wait for the run, status unknown.
    _wait_gone(child[0])
    os._exit(1)


def _cold_start() -> None:
    for signum in _FORWARDED:
        signal.signal(signum, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine"])


def _read_line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = sock.recv(64)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def _exit_like(code: int) -> None:
    """Exit as the flow-run process did: with its code, or by its signal."""
    sys.stdout.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    os._exit(code if code >= 0 else 128 - code)


def _wait_gone(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


# ---- the warm process ----------------------------------------------------------------


def serve(socket_path: str, parent: int) -> None:
    """Import what flow runs need, then fork one per request until `parent` exits.

    Returns only in a forked child, which then runs the flow (see `main`).
    """
    import importlib

    _BASE_ENV.update(os.environ)  # what flow runs are compared with (`_cold_reason`)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as error:
            print(f"warm start: {name} not preloaded: {error}", file=sys.stderr)
    _start_render_forkserver()
    sources = _project_sources()
    if threading.active_count() != 1:
        # Forking a process that runs threads could copy a held lock: serve nothing.
        print("warm start: threads after the imports; flow runs start cold", file=sys.stderr)
        return _exit_with(parent)
    sys.stdout.flush()
    sys.stderr.flush()

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{socket_path}.{os.getpid()}"
    listener.bind(temporary)
    listener.listen(16)
    os.rename(temporary, socket_path)  # appears only once it accepts
    print(
        f"warm start: ready {_age_s():.1f} s after its start at {socket_path} "
        f"({len(sys.modules)} modules)",
        file=sys.stderr,
        flush=True,
    )
    watch = selectors.DefaultSelector()
    watch.register(listener, selectors.EVENT_READ, "accept")
    watch.register(os.pidfd_open(parent), selectors.EVENT_READ, "parent")
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd → (pid, client connection)
    accepting = True
    while accepting or children:
        for key, _ in watch.select():
            if key.data == "parent":
                _unlink(socket_path)
                os._exit(0)  # the worker is gone; runs already started go on without us
            if key.data == "accept":
                conn, _ = listener.accept()
                request = _receive(conn)
                if request is None:
                    conn.close()
                    continue
                reason = _cold_reason(request[0]["env"])
                if reason:
                    _send(conn, f"cold {reason}\n")
                    conn.close()
                    _close_fds(request[1])
                    continue
                if _changed(sources):
                    # New code on disk: this run and the next ones start cold until the
                    # worker has started a fresh warm process.
                    _send(conn, "cold stale\n")
                    conn.close()
                    _close_fds(request[1])
                    watch.unregister(listener)
                    listener.close()
                    _unlink(socket_path)
                    accepting = False
                    continue
                pid = os.fork()
                if pid == 0:
                    watch.close()
                    listener.close()
                    for _, other in children.values():
                        other.close()
                    return _become_flow_run(conn, *request)
                _close_fds(request[1])
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, conn)
                watch.register(pidfd, selectors.EVENT_READ, "child")
                _send(conn, f"pid {pid}\n")
            elif key.data == "child":
                pid, conn = children.pop(key.fd)
                watch.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                _send(conn, f"exit {os.waitstatus_to_exitcode(status)}\n")
                conn.close()
    os._exit(0)


def _age_s() -> float:
    """Seconds since this process started (its imports before `serve` included)."""
    with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
        ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        return float(uptime.read().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")


def _exit_with(parent: int) -> None:
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(1)


def _start_render_forkserver() -> None:
    """The fork server that batches' render processes are forked from (flows.render_pool)."""
    try:
        from flows import render_pool

        render_pool.start_forkserver()
    except Exception as error:
        print(f"warm start: no render fork server: {error}", file=sys.stderr)


def _project_sources() -> dict[str, int]:
    """The project's imported source files and their mtimes: new code means a new process."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    venv = os.path.join(root, ".venv")
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and path.startswith(root) and not path.startswith(venv):
            try:
                found[path] = os.stat(path).st_mtime_ns
            except OSError:
                continue
    return found


def _changed(sources: dict[str, int]) -> bool:
    for path, mtime in sources.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def _receive(conn: socket.socket) -> tuple[dict, list[int]] | None:
    conn.settimeout(10)
    try:
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        if len(data) < _HEADER.size:
            _close_fds(fds)
            return None
        (size,) = _HEADER.unpack_from(data)
        data = data[_HEADER.size :]
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        conn.settimeout(None)
        if len(fds) != 3 or len(data) != size:
            _close_fds(fds)
            return None
        return json.loads(data), fds
    except (OSError, ValueError):
        return None


def _send(conn: socket.socket, line: str) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(line.encode())


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _become_flow_run(conn: socket.socket, request: dict, fds: list[int]) -> dict:
    """In the forked child: take the client's streams, environment and directory."""
    os.setsid()  # a session of its own, as Prefect gives a flow run
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_fds([fd for fd in fds if fd > 2])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    _refresh_settings(before)
    from flows import render_pool

    render_pool.adopt_forkserver()
    # The run ends when its client does: a killed client (SIGKILL) cannot forward it.
    threading.Thread(target=_end_with_client, args=(conn,), daemon=True).start()
    return request


def _end_with_client(conn: socket.socket) -> None:
    while True:
        try:
            if not conn.recv(64):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGKILL)


def _cold_reason(env: dict[str, str]) -> str | None:
    """Why this environment needs a cold start, or None when a fork can take it.

    A flow run's environment is the worker's plus its own `PREFECT__*` keys and the
    deployment's job variables. Prefect and reportrunner settings are read again in
    the child; anything else that differs (logging set up at import, PYTHON*, library
    switches) could only take effect in a fresh interpreter.
    """
    for key in {*_BASE_ENV, *env}:
        if _BASE_ENV.get(key) == env.get(key) or key.startswith("PREFECT__"):
            continue
        if key.startswith("PREFECT_LOGGING_") or key == "REPORTRUNNER_LOG_FORMAT":
            return f"env {key}"
        if not key.startswith(("PREFECT_", "REPORTRUNNER_")):
            return f"env {key}"
    return None


def _refresh_settings(before: dict[str, str]) -> None:
    """Settings are read from the environment once per process: read them again."""
    prefect_changed = any(
        before.get(k) != os.environ.get(k)
        for k in {*before, *os.environ}
        if k.startswith("PREFECT_") and not k.startswith("PREFECT__")
    )
    if prefect_changed:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    from reports.definitions import default_catalog
    from reports.settings import get_settings

    get_settings.cache_clear()
    default_catalog.cache_clear()


def _run_engine() -> None:
    """What `python -m prefect.engine` runs, in this process."""
    import runpy

    # A fresh `__main__` copy, as `-m` makes; the library copy stays for later imports.
    library = sys.modules.pop("prefect.engine", None)
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    finally:
        if library is not None:
            sys.modules["prefect.engine"] = library


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "connect":
        connect(argv[1])
    elif len(argv) == 3 and argv[0] == "serve":
        if serve(argv[1], int(argv[2])) is not None:
            _run_engine()
    else:
        sys.exit("usage: warm_start.py connect SOCKET | serve SOCKET PARENT_PID")


if __name__ == "__main__":
    main(sys.argv[1:])
