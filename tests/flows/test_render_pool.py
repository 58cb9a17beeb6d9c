"""The render processes: a normal render stays far below the memory cap it runs under."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

from flows import render_pool
from reports import jobs


def _address_space_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmSize for process {pid}")


def test_a_normal_render_uses_well_under_the_address_space_cap(output_root: Path, settings):
    # The cap (RLIMIT_AS) counts reserved address space, not just memory in use: an
    # allocator reserving 1 GB up front once made half of a batch fail under 2 GB.
    for month in ("2013-01", "2013-02"):
        outcome = render_pool.submit(
            1,
            jobs.render_item,
            "carrier-monthly",
            {"carrier": "UA", "month": month},
            str(output_root),
            True,
        ).result(timeout=300)
        assert outcome.status == "rendered"
    pid = render_pool.submit(1, os.getpid).result(timeout=60)
    try:
        used = _address_space_mb(pid)
        assert used < 0.6 * settings.render_memory_mb, (
            f"a render process reserves {used:.0f} MB of its {settings.render_memory_mb} MB cap"
        )
    finally:
        render_pool.shutdown()


def test_render_processes_do_not_import_the_flow_runs_main_module(monkeypatch):
    """Spawn imports the parent's `__main__` again in each child: in a flow run that is
    `prefect.engine`, all of Prefect, which no render needs."""
    flow_run_main = types.ModuleType("__main__")
    flow_run_main.__spec__ = importlib.util.find_spec("prefect.engine")
    monkeypatch.setitem(sys.modules, "__main__", flow_run_main)
    render_pool.shutdown()  # a new pool, whose processes start under that main module
    try:
        probe = "sorted({m.split('.')[0] for m in __import__('sys').modules} & {'prefect'})"
        assert render_pool.submit(1, eval, probe).result(timeout=120) == []
    finally:
        render_pool.shutdown()


# A flow run forked by the warm process, in miniature: the "warm process" starts the
# render fork server, forks a "flow run" that adopts it and renders through the pool.
_FORKED_FLOW_RUN = """
import json, os, signal, sys, time
from flows import render_pool
from reports import jobs

assert render_pool.start_forkserver()
server = __import__("multiprocessing.forkserver").forkserver._forkserver._forkserver_pid
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    render_pool.adopt_forkserver()
    os.environ["REPORTRUNNER_RENDER_TIMEOUT_S"] = "77"  # the flow run's own settings
    outcomes = [
        render_pool.submit(2, jobs.render_item, "carrier-monthly",
                           {"carrier": "AA", "month": month}, sys.argv[1], True).result()
        for month in ("2013-01", "2013-02")
    ]
    probe = "(__import__('os').getppid(), __import__('reports').get_settings().render_timeout_s)"
    seen = render_pool.submit(2, eval, probe).result()
    os.write(write, json.dumps({
        "statuses": [o.status for o in outcomes],
        "parent": seen[0], "timeout": seen[1],
        "render_pids": list(render_pool._pool._processes),
    }).encode())
    time.sleep(60)  # killed below, as a flow run can be
os.close(write)
report = json.loads(os.read(read, 65536))
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and any(
    os.path.exists(f"/proc/{p}") and " Z " not in open(f"/proc/{p}/stat").read()
    for p in report["render_pids"]
):
    time.sleep(0.1)
report["left"] = [p for p in report["render_pids"] if os.path.exists(f"/proc/{p}")
                  and " Z " not in open(f"/proc/{p}/stat").read()]
report["server"] = server
print(json.dumps(report))
"""


def test_a_warm_flow_run_forks_render_processes_from_the_server_and_they_die_with_it(
    output_root: Path,
):
    """The fork server's processes render with the flow run's settings, and end when the
    flow run is killed, though they are the server's children, not the flow run's."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", _FORKED_FLOW_RUN, str(output_root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["statuses"] == ["rendered", "rendered"]
    assert report["parent"] == report["server"]  # forked by the server, not spawned
    assert report["timeout"] == 77.0
    assert report["left"] == [], "render processes outlived their killed flow run"
