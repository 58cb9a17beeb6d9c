"""The API banner, the health strip and the KPI tiles: is everything up, how did the window go."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboard.api import Health, Kpis
from dashboard.formatting import clock, count, duration, percent, pool_label

KPI_LABELS = ["Running", "Queued", "Completed", "Failed", "Success rate", "Median duration"]
HEALTH_LABELS = ["Prefect API", "Pools ready", "Workers online", "Late runs"]
HEALTH_WEIGHTS = (5, 4, 4, 4)  # "✅ reachable" needs the widest tile
# Measured in Chromium at 1280 px with the sidebar open: the main column is 820 px wide,
# tiles are 16 px apart, and a value's glyphs (36 px type) are at most about 18 px each.
ROW_PX, GAP_PX, GLYPH_PX = 820, 16, 18


def tile_chars(weights: tuple[int, ...], index: int) -> int:
    """The longest value tile `index` of a row of `weights` shows whole at 1280 px."""
    width = (ROW_PX - GAP_PX * (len(weights) - 1)) * weights[index] / sum(weights)
    return int(width // GLYPH_PX)


TILE_CHARS = {n: tile_chars((1,) * n, 0) for n in (2, 3, 4, 5)}  # tiles of equal width


def api_banner(message: str, last_good: datetime | None = None) -> None:
    """The API failed: say so in one line, and how old any figures still shown are."""
    st.error(f"Prefect API unavailable — {message}", icon="⚠️")
    if last_good is not None:
        st.caption(f"Figures below are from {clock(last_good)} and may be out of date.")
    else:
        st.caption("The page retries on its own at each refresh.")


def health_strip(health: Health) -> None:
    cols = st.columns(HEALTH_WEIGHTS)
    cols[0].metric(
        HEALTH_LABELS[0],
        "✅ reachable" if health.api_ok else "❌ down",
        help=f"GET {health.api_url}/health answered. Checked {clock(health.checked_at)}.",
    )
    ready = sum(p.status == "READY" for p in health.pools)
    if not health.pools:
        pools = "⚠️ none"
    else:
        pools = f"{'✅' if ready == len(health.pools) else '⚠️'} {ready} of {len(health.pools)}"
    cols[1].metric(
        HEALTH_LABELS[1],
        pools,
        help="Work pools that can run flows now, of all pools. READY: a worker polls the "
        "pool. NOT READY: no worker online. PAUSED: runs wait until the pool is resumed.",
    )
    cols[1].caption(
        "  \n".join(
            f"{p.name}: {pool_label(p.status)}"
            + ("" if p.online_workers is None else f", {p.online_workers} worker(s)")
            for p in health.pools
        )
    )
    online = health.workers_online
    cols[2].metric(
        HEALTH_LABELS[2],
        "–" if online is None else f"{'✅' if online else '⚠️'} {count(online)}",
        help="Workers that sent a heartbeat recently, over all pools that need workers.",
    )
    cols[3].metric(
        HEALTH_LABELS[3],
        f"{'⚠️' if health.late_runs else '✅'} {count(health.late_runs)}",
        help="Runs in state Late, or still waiting more than a minute after their scheduled start.",
    )
    for note in health.notes:
        st.caption(note)


def kpi_tiles(kpis: Kpis, window_text: str) -> None:
    now, before = kpis.current, kpis.previous
    counts = [
        ("Running", now.running, before.running, False, "are running now"),
        ("Queued", now.queued, before.queued, True, "are scheduled or pending"),
        ("Completed", now.completed, before.completed, False, "completed"),
        ("Failed", now.failed, before.failed, True, "failed or crashed"),
        ("Cancelled", now.cancelled, before.cancelled, True, "were cancelled by someone"),
    ]
    # Rows of four and three: seven in one row cut values ("3 min 0…") at 1280 px.
    cols = [*st.columns(4), *st.columns(3)]
    for col, (label, value, previous, inverse, meaning) in zip(cols, counts, strict=False):
        change = value - previous
        col.metric(
            label,
            count(value),
            **_delta(f"{change:+,}" if change else "±0", change, inverse),
            help=f"{value:,} flow runs expected to start in the {window_text} that {meaning}; "
            f"the previous window had {previous:,}.",
        )
    rate, rate_before = now.success_rate, before.success_rate
    rate_delta = {}
    if rate is not None and rate_before is not None:
        points = round(100 * (rate - rate_before), 1)
        rate_delta = _delta(f"{points:+.1f} pt" if points else "±0 pt", points, False)
    cols[5].metric(
        "Success rate",
        percent(rate, 1),
        **rate_delta,
        help="Completed ÷ (completed + failed + crashed) in the window; the change is in "
        f"percentage points against the previous window ({percent(rate_before, 1)}).",
    )
    med, med_before = now.median_duration_s, before.median_duration_s
    med_delta = {}
    if med is not None and med_before is not None:
        med_delta = _delta(_signed_duration(med - med_before), round(med - med_before), True)
    cols[6].metric(
        "Median duration",
        duration(med),
        **med_delta,
        help=f"Median run time of the latest {now.duration_sample} completed runs in the "
        f"window (at most 200); the previous window's was {duration(med_before)}.",
    )


def _delta(text: str, change: float, inverse: bool) -> dict:
    """st.metric's delta arguments; no change reads '±0' in grey, without an arrow."""
    if not change:
        return {"delta": text, "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text, "delta_color": "inverse" if inverse else "normal"}


def _signed_duration(seconds: float) -> str:
    return ("+" if seconds >= 0 else "−") + duration(abs(seconds))
