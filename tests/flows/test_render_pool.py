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
