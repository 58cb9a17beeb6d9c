"""Names of the Prefect objects reportrunner creates: one place to read and change them."""

from __future__ import annotations

from dataclasses import dataclass

WORK_POOL = "reports"


@dataclass(frozen=True)
class Queue:
    name: str
    priority: int  # lower runs first
    description: str


# Ad-hoc runs (a person is waiting) before batch chunks before scheduled parents.
QUEUES = (
    Queue("adhoc", 1, "Runs triggered by a person: dashboard form, CLI, Prefect UI."),
    Queue("chunks", 5, "Chunks of running batches: finishing started work comes next."),
    Queue("scheduled", 10, "Scheduled batches and reports."),
)

# Slots of flows.source_slots.SQL_SOURCE_LIMIT: concurrent renders of SQL-backed reports
# across all workers, and so connections to the source database.
SQL_SOURCE_SLOTS = 4
