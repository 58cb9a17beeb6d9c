"""What a render process does: check or render one batch item, under time and memory caps.

These functions run in `flows.render_pool`'s processes (and anywhere else): plain
Python, no Prefect, so a render process starts quickly.
"""

from __future__ import annotations

import time
from typing import Any

from reports.catalog import default_catalog
from reports.limits import cap_process_memory, memory_guard, time_limit
from reports.render import fingerprint, is_current, load_data, render_report
from reports.settings import get_settings
from reports.store import OutputStore


def start_render_process(memory_mb: int) -> None:
    """Process-pool initializer: cap this process's memory."""
    cap_process_memory(memory_mb)


def ready() -> None:
    """A no-op: submitting it makes a new render process import everything up front."""


def is_item_current(report_name: str, params: dict[str, Any], output_url: str) -> bool:
    """True when the item's outputs exist and were made from the same inputs (any process)."""
    try:
        report = default_catalog().get(report_name)
        typed = report.validate(params)
        data = load_data(report, typed)
        return (
            is_current(OutputStore(output_url), report, typed, fingerprint(report, typed, data))
            is not None
        )
    except Exception:
        return False  # anything odd: let the render step decide and report it


def render_item(
    report_name: str, params: dict[str, Any], output_url: str, force: bool
) -> dict[str, Any]:
    """Render one item under the time and memory caps; return a small outcome record."""
    settings = get_settings()
    started = time.perf_counter()
    what = f"{report_name} {' '.join(f'{k}={v}' for k, v in params.items())}"
    with memory_guard(what, settings.render_memory_mb), time_limit(settings.render_timeout_s, what):
        manifest = render_report(
            default_catalog().get(report_name),
            params,
            OutputStore(output_url),
            skip_unchanged=not force,
        )
    return {
        "status": "skipped" if manifest["skipped"] else "rendered",
        "duration_s": round(time.perf_counter() - started, 3),
        "pages": manifest.get("pages"),
        "item_dir": manifest["item_dir"],
        "quality": manifest["quality"]["status"],
        "files": [entry["path"] for entry in manifest["files"]],
    }
