"""Names and shapes shared across layers: what one layer writes and another reads.

Dependency-free on purpose: the flows, the dashboard and the deployments all import
it, and a contract test ties each producer to its consumer.
"""

from __future__ import annotations

from typing import Literal, get_args

OutputFormat = Literal["pdf", "html", "csv"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)

# Bounds of a run's tuning parameters, enforced by the flows' signatures (and so by
# each deployment's parameter schema) and by the settings. A run may ask for less
# parallelism than its worker allows, never more (`REPORTRUNNER_MAX_PARALLEL`).
MAX_PARALLEL = 64
MAX_CHUNK_SIZE = 5_000
MAX_ITEMS_PER_TASK = 500
REPORT_NAME_PATTERN = r"[a-z][a-z0-9-]*"
