"""Stopping child processes for good: one place for "signal, wait, SIGKILL, reap" (Linux).

Every long-running child here (Prefect server, worker, dashboard, `reportrunner up`)
leads a process group of its own (`start_new_session=True`), so one signal reaches
everything it started in that group. Prefect's process worker starts each flow run in
a session of its own, out of reach of the worker's group: the SIGKILL escalation
therefore also walks the process tree. No Prefect import: the test session and the
benchmarks use this too.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
_PROC = Path("/proc")


# ---- in a child, between fork and exec (preexec_fn) -----------------------------------


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In a child: get `signum` when the parent dies, even by SIGKILL, so nothing is orphaned."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signum)


def default_stop_signals() -> None:
    """In a child: SIGINT and SIGTERM back to their default actions before it execs.

    A process started in the background by a non-interactive shell (a CI runner, `cmd &`,
    nohup) inherits SIGINT *ignored*, and an ignored signal stays ignored across exec.
    Python then installs no KeyboardInterrupt handler and `asyncio.run` no SIGINT
    cancellation, so Prefect's "SIGTERM → send SIGINT to myself" shutdown does nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def service_preexec(parent_death_signal: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for a service child: default stop signals, and it dies with its parent."""

    def preexec() -> None:
        default_stop_signals()
        die_with_parent(parent_death_signal)

    return preexec


# ---- reading /proc ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    pgid: int
    state: str
    start: int  # clock ticks after boot: tells a process from a later one with the same pid


def proc_stat(pid: int) -> ProcStat | None:
    """The process's /proc stat, or None when there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces and ")"
    return ProcStat(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))


def process_table() -> dict[int, ProcStat]:
    table = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            table[stat.pid] = stat
    return table


def _alive(stat: ProcStat | None) -> bool:
    # A zombie is dead, only not yet reaped: where PID 1 does not reap orphans it stays.
    return stat is not None and stat.state not in ("Z", "X")


def descendants(pid: int, table: dict[int, ProcStat] | None = None) -> dict[int, int]:
    """Live descendants of `pid` (not `pid` itself): pid → start time."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: dict[int, int] = {}
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        if child not in found and _alive(table[child]):
            found[child] = table[child].start
            pending += children.get(child, [])
    return found


def live_group_members(pgid: int) -> list[int]:
    """Processes of process group `pgid` that are still alive (zombies excluded)."""
    return [s.pid for s in process_table().values() if s.pgid == pgid and _alive(s)]


def processes_with(marker: str) -> list[int]:
    """Live processes other than this one whose environment or command line contains `marker`."""
    needle, found = marker.encode(), []
    for stat in process_table().values():
        if stat.pid == os.getpid() or not _alive(stat):
            continue
        for name in ("environ", "cmdline"):
            with contextlib.suppress(OSError):
                if needle in (_PROC / str(stat.pid) / name).read_bytes():
                    found.append(stat.pid)
                    break
    return found


# ---- signalling --------------------------------------------------------------------------


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def signal_group(pgid: int, signum: int) -> None:
    """`os.killpg` that treats a group that is already gone as done."""
    if pgid == os.getpgrp():
        raise ValueError(f"process group {pgid} is this process's own group")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def kill_pids(processes: dict[int, int]) -> int:
    """SIGKILL each pid → start time that still is the process it was; return how many."""
    killed = 0
    for pid, start in processes.items():
        stat = proc_stat(pid)
        if _alive(stat) and stat.start == start and pid != os.getpid():
            _signal(pid, signal.SIGKILL)
            killed += 1
    return killed


def kill_tree(root: int) -> int:
    """SIGKILL `root`, the rest of its process group and all its descendants, whatever
    their groups; return how many processes were killed.

    Everything found is stopped (SIGSTOP) before the tree is read again, so that nothing
    forks or loses its parent (and with it the link to `root`) while we look.
    """
    own = os.getpid(), os.getpgrp()
    frozen: dict[int, int] = {}
    for _ in range(10):
        table = process_table()
        found = descendants(root, table)
        if _alive(table.get(root)):
            found[root] = table[root].start
            group = table[root].pgid
            if group != own[1]:
                found.update({s.pid: s.start for s in table.values() if s.pgid == group})
        new = {pid: start for pid, start in found.items() if pid not in frozen and pid != own[0]}
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        frozen.update(new)
    killed = kill_pids(frozen)
    wait_until_gone(frozen, timeout=5.0)
    return killed


def wait_until_gone(processes: dict[int, int], timeout: float) -> bool:
    """Wait until none of pid → start time is alive; False if some still are at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p, start in processes.items() if _same_alive(p, start)]
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _same_alive(pid: int, start: int) -> bool:
    stat = proc_stat(pid)
    return _alive(stat) and stat.start == start


def stop_process_group(
    process: subprocess.Popen, grace_s: float, *, signum: int = signal.SIGTERM
) -> float:
    """Stop a child that leads its own process group, and everything it started.

    Sends `signum` to the group; when the leader has not exited after `grace_s`, SIGKILLs
    the group and every descendant (a stop that hangs must not hang the caller). Reaps
    the leader, SIGKILLs group members that outlived it, and returns the seconds from the
    signal until nothing of the group was alive. A process already gone costs nothing.
    """
    started = time.monotonic()
    if process.returncode is not None:  # reaped earlier: its pid may be someone else's now
        return 0.0
    pgid = process.pid
    stat = proc_stat(pgid)
    if stat is not None and stat.pgid != pgid:
        raise ValueError(f"pid {pgid} does not lead a process group: start it in a new session")
    signal_group(pgid, signum)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        kill_tree(pgid)
        process.wait(10)  # SIGKILL cannot be caught; only a hung kernel call delays it
    signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while live_group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.monotonic() - started
