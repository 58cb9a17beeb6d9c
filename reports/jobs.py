"""What a render process does: check or render one batch item, under time and memory caps.

These functions run in `flows.render_pool`'s processes (and anywhere else): plain
Python, no Prefect, so a render process starts quickly.
"""

from __future__ import annotations

import multiprocessing.context
import os
import select
import sys
import threading
import time
import types
from typing import Any

from reports.contracts import Outcome, item_key
from reports.definitions import default_catalog
from reports.limits import limit_this_process, render_limits
from reports.render import fingerprint, is_current, load_data, render_report
from reports.settings import get_settings
from reports.store import OutputStore


def _without_main(start):
    """`start(process_obj)` while `sys.modules["__main__"]` is an empty module.

    Spawn and the fork server both make each child import the parent's main module
    again. A flow run's is `prefect.engine`, which imports all of Prefect: 1.5 s more CPU
    per render process (3.0 s against 1.35 s on the bench machine) and Prefect in its
    memory, for nothing a render uses. The main module is swapped for an empty one only
    while the child's start-up data is written, under a lock; render processes need
    nothing from it.
    """

    def popen(process_obj):
        with _main_lock:
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                return start(process_obj)
            finally:
                sys.modules["__main__"] = main

    return staticmethod(popen)


_main_lock = threading.Lock()


class _SpawnedRenderProcess(multiprocessing.context.SpawnProcess):
    _Popen = _without_main(multiprocessing.context.SpawnProcess._Popen)


class _ForkedRenderProcess(multiprocessing.context.ForkServerProcess):
    _Popen = _without_main(multiprocessing.context.ForkServerProcess._Popen)


class RenderProcessContext(multiprocessing.context.SpawnContext):
    """Spawn, for render processes: a new interpreter that imports what a render needs.

    Defined here, beside what runs in them: the child unpickles its process object, and
    a module that imports Prefect would bring Prefect back.
    """

    Process = _SpawnedRenderProcess


class RenderForkContext(multiprocessing.context.ForkServerContext):
    """Render processes forked by a fork server that has imported and warmed up what a
    render needs (`flows.render_pool.start_forkserver`)."""

    Process = _ForkedRenderProcess


def start_render_process(memory_mb: int, parent: int, environment: dict[str, str]) -> None:
    """Process-pool initializer: the batch's settings, a memory cap, and death with the batch.

    `environment`: the batch process's REPORTRUNNER_* variables. A process forked by the
    fork server has that server's environment, not the flow run's. The settings and the
    catalog are read again in any case: a forked process must not render with the specs
    and templates the server loaded, which may have changed since.

    A batch process killed with SIGKILL cannot stop its render processes; without the
    watch they would live on as orphans, rendering items nobody waits for.
    """
    for key in [k for k in os.environ if k.startswith("REPORTRUNNER_")]:
        os.environ.pop(key)
    os.environ.update(environment)
    get_settings.cache_clear()
    default_catalog.cache_clear()
    limit_this_process(memory_mb)
    try:
        # The batch process, not our parent: a forked render process's parent is the
        # fork server. A batch that has already died fails here or reads as ended.
        watch = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    threading.Thread(target=_exit_when_ended, args=(watch,), daemon=True).start()


def _exit_when_ended(pidfd: int) -> None:
    select.select([pidfd], [], [])
    os._exit(1)


def ready() -> None:
    """A no-op: submitting it makes a new render process import everything up front."""


def current_manifest(
    report_name: str, typed: dict[str, Any] | None, output_url: str
) -> dict[str, Any] | None:
    """The item's manifest when its outputs exist and were made from the same inputs.

    `typed`: the item's validated parameters (None: not validated, so not known current).
    """
    if typed is None:
        return None
    try:
        report = default_catalog().get(report_name)
        store = OutputStore(output_url)
        manifest = store.read_manifest(store.item_dir(report.name, typed))
        if manifest is None:
            return None  # never rendered: no need to load its data to know
        data = load_data(report, typed)
        fp = fingerprint(report, typed, data, report.spec.outputs)  # a batch writes them all
        return is_current(store, report, typed, fp, manifest=manifest)
    except Exception:
        return None  # anything odd: let the render step decide and report it


def outcome_of(params: dict[str, Any], manifest: dict[str, Any], **extra: Any) -> Outcome:
    """An item's outcome from the manifest of its outputs (rendered now, or found current)."""
    return Outcome(
        key=item_key(params),
        params=dict(params),
        status="skipped" if manifest.get("skipped", True) else "rendered",
        pages=manifest.get("pages"),
        item_dir=manifest.get("item_dir"),
        quality=(manifest.get("quality") or {}).get("status"),
        files=[entry["path"] for entry in manifest.get("files", [])],
        fingerprint=manifest.get("fingerprint"),
        data_hash=manifest.get("data_fingerprint"),
        rendered_at=manifest.get("created_at"),
        rows=dict(manifest.get("rows") or {}),
        kpis=dict(manifest.get("kpis") or {}),
        **extra,
    )


def render_item(report_name: str, params: dict[str, Any], output_url: str, force: bool) -> Outcome:
    """Render one item under the time and memory caps; return its outcome."""
    settings = get_settings()
    started = time.perf_counter()
    key = item_key(params)
    with render_limits(
        f"{report_name} {key}",
        seconds=settings.render_timeout_s,
        megabytes=settings.render_memory_mb,
    ):
        manifest = render_report(
            default_catalog().get(report_name),
            params,
            OutputStore(output_url),
            skip_unchanged=not force,
        )
    return outcome_of(params, manifest, duration_s=round(time.perf_counter() - started, 3))
