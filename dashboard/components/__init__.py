"""Rendering pieces of the dashboard, grouped by what they show; they draw what the
query layer returns and hold no state of their own."""

from dashboard.components.batches import active_batches, batch_card, batch_text
from dashboard.components.charts import (
    DURATION_COLOURS,
    STATE_COLOURS,
    TIMELINE_FRAME_PX,
    TIMELINE_ROW_PX,
    duration_chart,
    runs_chart,
    timeline_chart,
    timeline_height,
)
from dashboard.components.insights import (
    EXAMPLE_RUNS,
    failure_group_card,
    failure_spikes_list,
    slow_runs_list,
)
from dashboard.components.items import recent_batches_table, report_figure_tiles
from dashboard.components.runs_table import runs_table
from dashboard.components.status import (
    HEALTH_LABELS,
    HEALTH_WEIGHTS,
    KPI_LABELS,
    TILE_CHARS,
    api_banner,
    health_strip,
    kpi_tiles,
    tile_chars,
)

__all__ = [
    "DURATION_COLOURS",
    "EXAMPLE_RUNS",
    "HEALTH_LABELS",
    "HEALTH_WEIGHTS",
    "KPI_LABELS",
    "STATE_COLOURS",
    "TILE_CHARS",
    "TIMELINE_FRAME_PX",
    "TIMELINE_ROW_PX",
    "active_batches",
    "api_banner",
    "batch_card",
    "batch_text",
    "duration_chart",
    "failure_group_card",
    "failure_spikes_list",
    "health_strip",
    "kpi_tiles",
    "recent_batches_table",
    "report_figure_tiles",
    "runs_chart",
    "runs_table",
    "slow_runs_list",
    "tile_chars",
    "timeline_chart",
    "timeline_height",
]
